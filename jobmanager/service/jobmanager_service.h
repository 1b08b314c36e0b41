#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "jobmanager/blob/blob_store.h"
#include "jobmanager/checkpoint/remote_participants.h"
#include "jobmanager/scheduler/slot_allocation.h"
#include "proto/cluster.grpc.pb.h"
#include "sluice/api/job.h"
#include "sluice/runtime/job_checkpoints.h"

namespace sluice::cluster {

struct JobManagerOptions {
  absl::Duration heartbeat_interval = absl::Seconds(1);
  /// A TaskManager silent this long is declared lost.
  absl::Duration heartbeat_timeout = absl::Seconds(10);
  /// A job that cannot get its slots fails after waiting this long.
  absl::Duration slot_wait = absl::Seconds(30);
  SlotStrategy slot_strategy = SlotStrategy::kSpread;
};

/// The JobManager's RPCs: TaskManager registration and heartbeats, the blob store, jobs and
/// their checkpoints, status. It loads each job's binary to build its graph, which the
/// job's checkpoint coordinator (JobCheckpoints) works on. A failed run restarts from the
/// latest checkpoint while the job has restart attempts left. gRPC calls arrive on its
/// threads; the registry is under one mutex (`mu_`, taken before any JobCheckpoints lock).
class JobManagerService final : public JobManager::Service {
 public:
  JobManagerService(BlobStore* blobs, JobManagerOptions options);
  ~JobManagerService() override;

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
  struct TaskManagerEntry {
    RegisterTaskManagerRequest registration;
    absl::Time last_heartbeat;
    int used_slots = 0;
  };
  struct JobEntry {
    JobStatus status;
    SubmitJobRequest request;
    absl::Time submitted;
    absl::Time ended = absl::InfiniteFuture();
    absl::Time waiting_since;              // for slots (since submission or a restart)
    absl::Time restart_at;                 // RESTARTING: when the next run may start
    int64_t attempt = 0;                   // the number of the current (or last) run
    std::vector<std::string> slot_owners;  // TaskManager of each slot, once scheduled
    std::set<std::string> parts_running;   // TaskManagers that have not reported the end
    // Declared in the order they must outlive each other (destroyed in reverse).
    std::unique_ptr<JobLibrary> library;  // the graph holds its code
    std::unique_ptr<JobGraph> graph;
    std::unique_ptr<RemoteParticipants> run;      // the current run's; null between runs
    std::unique_ptr<JobCheckpoints> checkpoints;  // null without a checkpoint interval
  };
  /// Where to send a job part's deployment or cancellation (taken under mu_).
  struct PartCall {
    std::string taskmanager_id;
    std::string address;
    DeployJobRequest deploy;
  };

  /// Places waiting jobs whose slots are free, deploys them, fails those that waited too
  /// long (its own thread).
  void Schedule();
  /// Under mu_: allocates `job`'s slots and returns its deployments, or nothing.
  std::vector<PartCall> TryPlace(JobEntry& job);
  /// Under mu_: the job ends (or failed): state, time, and the other parts to cancel.
  std::vector<PartCall> EndJob(JobEntry& job, JobState state, const std::string& failure);
  /// Under mu_: a run failed: the job restarts if it has attempts left, else fails.
  /// Returns the parts to cancel.
  std::vector<PartCall> FailRun(JobEntry& job, const std::string& why);
  /// Under mu_: a part of the job ended as `state` (FINISHED, FAILED, CANCELED).
  std::vector<PartCall> PartEnded(JobEntry& job, const std::string& taskmanager_id, JobState state,
                                  const std::string& failure);
  /// Under mu_: once no part of the job's run is left, ends the run's checkpoints and
  /// hands its participants out (destroyed outside the lock); a restarting job whose delay
  /// passed waits for slots again.
  std::unique_ptr<RemoteParticipants> RetireRun(JobEntry& job);
  /// The job's checkpoints failed run `attempt` (too many checkpoint failures, a failed
  /// stop): as any failure of a run.
  void CheckpointsFailedRun(const std::string& job_id, int64_t attempt, const absl::Status& why);
  /// Under mu_: the TaskManagers still running a part of the job.
  std::vector<PartCall> PartsOf(const JobEntry& job) const;
  /// The checkpoint or savepoint a new run of the job restores from (empty: none).
  std::string RestorePath(const JobEntry& job, bool* allow_non_restored) const;
  /// Builds the submitted job's graph here too (for its checkpoints) and checks what would
  /// otherwise only fail on the TaskManagers.
  absl::Status Prepare(const SubmitJobRequest& request, JobEntry* job);
  /// Under mu_: gives a job's slots back once no part of it runs.
  void FreeSlotsIfDone(JobEntry& job);
  static void CancelParts(const std::string& job_id, const std::vector<PartCall>& parts);
  JobStatus StatusOf(const JobEntry& job) const;
  /// Under mu_: the job enters `state` (recorded in its history with `detail`).
  static void SetState(JobEntry& job, JobState state, const std::string& detail);
  /// Stores an upload's chunks as one blob (nothing stays if it fails).
  absl::StatusOr<BlobId> ReceiveBlob(grpc::ServerReader<BlobChunk>* reader);
  /// Declares TaskManagers lost that have been silent for the heartbeat timeout.
  void WatchHeartbeats();

  BlobStore* blobs_;
  const JobManagerOptions options_;
  const std::string jobmanager_id_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::map<std::string, TaskManagerEntry> taskmanagers_;
  std::map<std::string, JobEntry> jobs_;
  int next_job_ = 1;
  std::condition_variable schedule_cv_;
  std::thread watcher_;
  std::thread scheduler_;
};

}  // namespace sluice::cluster
