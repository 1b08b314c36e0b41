#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "blob/blob_cache.h"
#include "exchange/exchange_channels.h"
#include "exchange/exchange_server.h"
#include "proto/taskmanager_service.pb.h"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/checkpoint/local_state_store.h"
#include "sluice/core/mutex.h"
#include "sluice/internal/runtime/local_subtasks.h"
#include "sluice/jobmanager/jobmanager_client.h"

namespace sluice::cluster {

/// One job's share on a TaskManager: fetches the job binary (verified, cached), loads it
/// (the engine ABI is checked here too), builds the job graph from the job's arguments,
/// checks it is the graph the JobManager scheduled, and runs the subtasks placed here, with
/// their remote channels over the exchange, restoring the checkpoint the deployment names.
/// Takes checkpoint commands from the JobManager and sends it the subtasks'
/// acknowledgements. Runs on its own thread; reports how it ended.
class JobPart {
 public:
  using Report = std::function<void(const JobPartReport&)>;

  /// `local_state` (may be null) keeps copies of the subtasks' snapshots and gives them back
  /// to a restore here (task-local recovery).
  JobPart(DeployJobRequest request, std::string taskmanager_id, BlobCache* blobs,
          LocalStateStore* local_state, ExchangeServer* exchange, JobManagerClient* jobmanager,
          Report report);
  ~JobPart();  // cancels and joins

  void Start();
  /// Any thread: ends the subtasks (reported as CANCELED unless they failed first).
  void Cancel();
  bool done() const;
  int64_t attempt() const { return request_.attempt(); }
  /// A command of the job's checkpoint coordinator; one that arrives before the subtasks
  /// run is held until they do.
  void Command(const CheckpointCommandRequest& command);
  /// Adds the running subtasks' metrics to a heartbeat (any thread).
  void AddMetricsTo(HeartbeatRequest* heartbeat) const;

 private:
  absl::Status Run();
  /// Runs the subtasks; with checkpoints, tells the JobManager once they all wait for the
  /// final checkpoint.
  absl::Status RunSubtasks(internal::LocalSubtasks& subtasks, bool checkpointing);
  void Apply(const CheckpointCommandRequest& command, internal::LocalSubtasks& subtasks);
  /// Tells the JobManager what the restore read (for `sluice status`).
  void ReportRestore(const RestoreCounts& counts);

  const DeployJobRequest request_;
  const std::string taskmanager_id_;
  BlobCache* blobs_;
  LocalStateStore* local_state_;
  ExchangeServer* exchange_;
  JobManagerClient* jobmanager_;
  Report report_;
  std::thread thread_;
  mutable Mutex mu_;
  bool canceled_ SLUICE_GUARDED_BY(mu_) = false;
  bool done_ SLUICE_GUARDED_BY(mu_) = false;
  internal::LocalSubtasks* running_ SLUICE_GUARDED_BY(mu_) = nullptr;  // while Run runs them
  ExchangeChannels* channels_ SLUICE_GUARDED_BY(mu_) = nullptr;
  std::vector<CheckpointCommandRequest> held_ SLUICE_GUARDED_BY(mu_);  // until the subtasks run
  std::optional<absl::Time> first_record_at_ SLUICE_GUARDED_BY(mu_);   // of the subtasks here
  google::protobuf::RepeatedPtrField<TaskMetricsReport> final_metrics_ SLUICE_GUARDED_BY(mu_);
  CondVar ended_cv_;  // the subtasks ended
};

}  // namespace sluice::cluster
