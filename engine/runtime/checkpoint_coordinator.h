#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "runtime/task.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/graph/job_graph.h"
#include "sluice/runtime/mini_cluster.h"

namespace sluice::internal {

/// Starts checkpoints, collects every task's snapshot, and completes a checkpoint once all
/// tasks acknowledged it: stores it (state files, then the metadata atomically) when a
/// storage is configured, keeps the retained count, and reports it. A newer completed
/// checkpoint aborts older pending ones. Thread-safe: tasks acknowledge from their threads.
class CheckpointCoordinator {
 public:
  /// `tasks[i]` is (vertex, subtask) of task i.
  CheckpointCoordinator(const JobGraph* graph, std::vector<std::pair<int, int>> tasks,
                        std::unique_ptr<CheckpointStorage> storage,
                        std::function<void(const CompletedCheckpoint&)> on_complete);

  /// Registers a new pending checkpoint and returns its id — unless one is still pending
  /// (one at a time, so every source takes the same checkpoint), in which case it returns
  /// 0; a pending one older than `timeout` is aborted first.
  int64_t MaybeStart(absl::Duration timeout);
  /// Records task `task_index`'s snapshot for checkpoint `id`.
  void Acknowledge(int64_t id, int task_index, TaskSnapshot snapshot);

  int64_t completed_count() const;
  /// Drops every pending checkpoint (the job is going down or restarting).
  void AbortPending();
  /// A failure while storing a checkpoint (the job goes on; the checkpoint is dropped).
  absl::Status last_error() const;

 private:
  struct Pending {
    absl::Time started;
    std::set<int> acked;
    std::map<int, std::vector<OperatorSnapshot>> operators;
  };
  absl::Status Store(int64_t id, const CompletedCheckpoint& checkpoint);
  std::string OperatorId(int node) const;

  const JobGraph* graph_;
  const std::vector<std::pair<int, int>> tasks_;
  std::unique_ptr<CheckpointStorage> storage_;
  std::function<void(const CompletedCheckpoint&)> on_complete_;

  mutable std::mutex mu_;
  int64_t next_id_ = 1;                 // guarded by mu_
  std::map<int64_t, Pending> pending_;  // guarded by mu_
  int64_t completed_ = 0;               // guarded by mu_
  absl::Status last_error_;             // guarded by mu_
};

}  // namespace sluice::internal
