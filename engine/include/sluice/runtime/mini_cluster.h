#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/core/time.h"
#include "sluice/graph/job_graph.h"

namespace sluice {

namespace internal {
class CheckpointCoordinator;
}

/// A completed checkpoint as the mini-cluster reports it: per stream node, the snapshot of
/// each subtask (index = subtask; empty for a subtask without state).
struct CompletedCheckpoint {
  int64_t id = 0;
  std::map<int, std::vector<OperatorSnapshot>> operators;
};

/// Settings of an in-process execution.
struct MiniClusterOptions {
  /// Processing time for every task; the wall clock if null. Tests inject their own.
  std::shared_ptr<const Clock> clock;
  /// Called for every completed checkpoint (on the thread of the task that completed it).
  std::function<void(const CompletedCheckpoint&)> on_checkpoint_complete;
};

/// What one task did, for tests and reports.
struct TaskStats {
  std::string name;  // "vertex name (subtask/parallelism)"
  int64_t records_in = 0;
  int64_t max_queued_records = 0;  // high-water mark of its input gate
  int64_t state_entries = 0;       // keyed state left when the task ended
  int64_t state_bytes = 0;         // the same, serialized
};

/// The outcome of a finished job.
struct JobResult {
  absl::Duration duration;
  std::vector<TaskStats> tasks;
  int64_t completed_checkpoints = 0;
  int restarts = 0;  // how often the job was restarted after a failure
  /// The most records queued in any one task's inputs at once: what back pressure bounds.
  int64_t MaxQueuedRecords() const;
};

/// Runs a job inside this process: one thread per chain subtask, in-memory channels. Blocks
/// until the job finishes (all sources ended and all records drained) or fails. A failure
/// in any task cancels the others; with restart attempts configured, all tasks then start
/// again from the latest completed checkpoint (fixed delay); otherwise, or when attempts
/// run out, the returned status names the operator and the error.
class MiniCluster {
 public:
  explicit MiniCluster(MiniClusterOptions options = {});
  absl::StatusOr<JobResult> Execute(const JobGraph& graph);

 private:
  /// Runs every task once, restoring from `restore_from` if given.
  absl::Status RunAttempt(const JobGraph& graph, internal::CheckpointCoordinator* coordinator,
                          const CompletedCheckpoint* restore_from, JobResult* result);

  MiniClusterOptions options_;
};

}  // namespace sluice
