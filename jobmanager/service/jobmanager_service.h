#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "blob/blob_server.h"
#include "dispatcher/dispatcher.h"
#include "heartbeat/taskmanager_registry.h"
#include "proto/jobmanager_service.grpc.pb.h"
#include "sluice/jobmanager/credentials.h"

namespace sluice::cluster {

/// The JobManager's gRPC service: a thin adapter. Each RPC converts its request, calls the
/// part that owns the matter (the TaskManager registry, the dispatcher, the blob server) and
/// converts the answer, an absl::Status becoming a grpc::Status in one place. gRPC's sync
/// server threads run the handlers.
class JobManagerService final : public JobManager::Service {
 public:
  /// The parts outlive the service. TaskManagers are told to beat every `heartbeat_interval`;
  /// a TaskManager whose control stream breaks goes to `on_lost`. With a token in `credentials`,
  /// every call but the three that only read (cluster status, a job, the job list) must carry it.
  JobManagerService(TaskManagerRegistry* registry, Dispatcher* dispatcher, BlobServer* blobs,
                    const BlobStore* store, absl::Duration heartbeat_interval,
                    std::function<void(const TaskManagerRegistry::Lost&)> on_lost,
                    Credentials credentials = {});
  /// The JobManager goes down: control streams that end from now on lose no TaskManager
  /// (their jobs' parts keep running for the JobManager that comes back).
  void StopDeclaringLosses() { shutting_down_.store(true); }
  /// The cluster as `sluice status` and the REST API show it: TaskManagers, slots, jobs.
  GetClusterStatusReply ClusterStatus() const;

  grpc::Status RegisterTaskManager(grpc::ServerContext* ctx,
                                   const RegisterTaskManagerRequest* request,
                                   RegisterTaskManagerReply* reply) override;
  grpc::Status Heartbeats(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<HeartbeatReply, HeartbeatRequest>* stream) override;
  grpc::Status UploadBlob(grpc::ServerContext* ctx, grpc::ServerReader<UploadBlobRequest>* reader,
                          UploadBlobReply* reply) override;
  grpc::Status DownloadBlob(grpc::ServerContext* ctx, const DownloadBlobRequest* request,
                            grpc::ServerWriter<DownloadBlobReply>* writer) override;
  grpc::Status GetClusterStatus(grpc::ServerContext* ctx, const GetClusterStatusRequest* request,
                                GetClusterStatusReply* reply) override;
  grpc::Status SubmitJob(grpc::ServerContext* ctx, const SubmitJobRequest* request,
                         SubmitJobReply* reply) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const GetJobRequest* request,
                      GetJobReply* reply) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const ListJobsRequest* request,
                        ListJobsReply* reply) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const CancelJobRequest* request,
                         CancelJobReply* reply) override;
  grpc::Status ReportJobPart(grpc::ServerContext* ctx, const ReportJobPartRequest* request,
                             ReportJobPartReply* reply) override;
  grpc::Status AcknowledgeCheckpoint(grpc::ServerContext* ctx,
                                     const AcknowledgeCheckpointRequest* request,
                                     AcknowledgeCheckpointReply* reply) override;
  grpc::Status ReportPartRestored(grpc::ServerContext* ctx,
                                  const ReportPartRestoredRequest* request,
                                  ReportPartRestoredReply* reply) override;
  grpc::Status ReportAwaitingFinalCheckpoint(grpc::ServerContext* ctx,
                                             const ReportAwaitingFinalCheckpointRequest* request,
                                             ReportAwaitingFinalCheckpointReply* reply) override;
  grpc::Status TriggerSavepoint(grpc::ServerContext* ctx, const TriggerSavepointRequest* request,
                                TriggerSavepointReply* reply) override;

 private:
  TaskManagerRegistry* const registry_;
  Dispatcher* const dispatcher_;
  BlobServer* const blobs_;
  const BlobStore* const store_;
  const absl::Duration heartbeat_interval_;
  const std::function<void(const TaskManagerRegistry::Lost&)> on_lost_;
  const std::string jobmanager_id_;
  const Credentials credentials_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace sluice::cluster
