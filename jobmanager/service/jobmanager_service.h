#pragma once

#include <string>

#include "absl/time/time.h"
#include "jobmanager/blob/blob_server.h"
#include "jobmanager/dispatcher/dispatcher.h"
#include "jobmanager/heartbeat/taskmanager_registry.h"
#include "proto/cluster.grpc.pb.h"

namespace sluice::cluster {

/// The JobManager's gRPC service: a thin adapter. Each RPC converts its request, calls the
/// part that owns the matter (the TaskManager registry, the dispatcher, the blob server) and
/// converts the answer, an absl::Status becoming a grpc::Status in one place. gRPC's sync
/// server threads run the handlers.
class JobManagerService final : public JobManager::Service {
 public:
  /// The parts outlive the service. TaskManagers are told to beat every `heartbeat_interval`.
  JobManagerService(TaskManagerRegistry* registry, Dispatcher* dispatcher, BlobServer* blobs,
                    const BlobStore* store, absl::Duration heartbeat_interval);

  grpc::Status RegisterTaskManager(grpc::ServerContext* ctx,
                                   const RegisterTaskManagerRequest* request,
                                   RegisterTaskManagerResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const HeartbeatRequest* request,
                         HeartbeatResponse* response) override;
  grpc::Status UploadBlob(grpc::ServerContext* ctx, grpc::ServerReader<BlobChunk>* reader,
                          BlobRef* response) override;
  grpc::Status DownloadBlob(grpc::ServerContext* ctx, const BlobRef* request,
                            grpc::ServerWriter<BlobChunk>* writer) override;
  grpc::Status GetClusterStatus(grpc::ServerContext* ctx, const ClusterStatusRequest* request,
                                ClusterStatus* response) override;
  grpc::Status SubmitJob(grpc::ServerContext* ctx, const SubmitJobRequest* request,
                         SubmitJobResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const JobRequest* request,
                      JobStatus* response) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const ListJobsRequest* request,
                        ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const JobRequest* request,
                         JobStatus* response) override;
  grpc::Status ReportJobPart(grpc::ServerContext* ctx, const JobPartReport* request,
                             JobPartAck* response) override;
  grpc::Status AcknowledgeCheckpoint(grpc::ServerContext* ctx, const CheckpointAck* request,
                                     CheckpointAckResponse* response) override;
  grpc::Status ReportAwaitingFinalCheckpoint(grpc::ServerContext* ctx, const JobPartReport* request,
                                             JobPartAck* response) override;
  grpc::Status TriggerSavepoint(grpc::ServerContext* ctx, const SavepointRequest* request,
                                SavepointResponse* response) override;

 private:
  TaskManagerRegistry* const registry_;
  Dispatcher* const dispatcher_;
  BlobServer* const blobs_;
  const BlobStore* const store_;
  const absl::Duration heartbeat_interval_;
  const std::string jobmanager_id_;
};

}  // namespace sluice::cluster
