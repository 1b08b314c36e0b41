#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/core/mutex.h"
#include "sluice/graph/job_graph.h"
#include "sluice/internal/runtime/job_checkpoints.h"
#include "sluice/runtime/mini_cluster.h"

namespace sluice::internal {

/// Starts checkpoints, collects every task's acknowledgement, and completes a checkpoint
/// once all tasks acknowledged it: writes its metadata atomically (the tasks wrote their
/// state files) when a storage is configured, keeps the retained count, and tells the
/// tasks. A checkpoint that times out, or that a task declines, is aborted; more
/// consecutive failures than tolerated fail the job. Settings come from the JobConfig.
/// Thread-safe: tasks acknowledge from their snapshot threads. Used through
/// JobCheckpoints, by the mini-cluster and the JobManager.
class CheckpointCoordinator {
 public:
  /// How the coordinator reaches the running tasks; called outside its lock.
  struct Listener {
    std::function<void(const CompletedCheckpoint&)> on_complete;
    std::function<void(int64_t id)> on_abort;
    /// More consecutive checkpoint failures than the job tolerates: the job fails.
    std::function<void(const absl::Status&)> on_too_many_failures;
  };

  /// `tasks[i]` is (vertex, subtask) of task i. `clock` (default: the wall clock) times
  /// timeouts and pauses.
  CheckpointCoordinator(const JobGraph* graph, std::vector<std::pair<int, int>> tasks,
                        std::unique_ptr<CheckpointStorage> storage, Listener listener,
                        std::shared_ptr<const Clock> clock = nullptr);

  /// Aborts pending checkpoints older than the timeout, then registers a new checkpoint and
  /// returns its id if the settings allow one now (max concurrent, min pause since the last
  /// one ended; `force` ignores the pause), else 0.
  int64_t MaybeStart(bool force = false);
  /// Records task `task_index`'s acknowledgement of checkpoint `id`, or its refusal. Fails
  /// only for a task the job does not have.
  absl::Status Acknowledge(int64_t id, int task_index, absl::StatusOr<TaskAck> ack);
  /// Drops every pending checkpoint without counting a failure (the job is restarting).
  void AbortPending();
  /// Drops pending checkpoint `id` the same way.
  void Drop(int64_t id);

  int64_t completed_count() const;
  int64_t failed_count() const;
  /// Checkpoints triggered and not yet completed, failed or dropped.
  int in_progress_count() const;
  /// A failure while storing a checkpoint (the job goes on; the checkpoint is dropped).
  absl::Status last_error() const;
  /// The newest kCheckpointStatsKept checkpoints, oldest first.
  std::vector<CheckpointStats> stats() const;
  CheckpointStorage* storage() const { return storage_.get(); }
  const JobGraph& graph() const { return *graph_; }
  const JobConfig& config() const { return config_; }

 private:
  struct Pending {
    absl::Time started;
    std::set<int> acked;
    std::map<int, std::vector<OperatorSnapshot>> operators;
    std::map<int, std::vector<StateHandle>> handles;
    std::vector<std::string> shared_files;
    absl::Duration max_sync, max_sync_cpu, max_async;
    bool storing = false;  // every task acknowledged; its metadata is being written
  };
  absl::Status Store(int64_t id, const Pending& p);
  /// Counts a failed checkpoint; returns the job failure if the tolerance is exceeded.
  absl::Status CountFailure(int64_t id, const absl::Status& why) SLUICE_REQUIRES(mu_);
  void Abort(int64_t id, const absl::Status& why);
  absl::Time Now() const { return absl::FromUnixMillis(clock_->NowMillis()); }

  const JobGraph* graph_;
  const JobConfig& config_;
  const std::vector<std::pair<int, int>> tasks_;
  std::unique_ptr<CheckpointStorage> storage_;
  Listener listener_;
  const std::shared_ptr<const Clock> clock_;

  mutable Mutex mu_;
  int64_t next_id_ SLUICE_GUARDED_BY(mu_) = 1;
  std::map<int64_t, Pending> pending_ SLUICE_GUARDED_BY(mu_);
  int64_t completed_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t failed_ SLUICE_GUARDED_BY(mu_) = 0;
  absl::Time last_ended_ SLUICE_GUARDED_BY(mu_) = absl::InfinitePast();
  int consecutive_failures_ SLUICE_GUARDED_BY(mu_) = 0;
  absl::Status last_error_ SLUICE_GUARDED_BY(mu_);
  std::deque<CheckpointStats> stats_ SLUICE_GUARDED_BY(mu_);  // bounded: kCheckpointStatsKept
  void Record(const CheckpointStats& stats) SLUICE_REQUIRES(mu_);
};

}  // namespace sluice::internal
