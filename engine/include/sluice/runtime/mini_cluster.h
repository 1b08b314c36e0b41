#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/core/mutex.h"
#include "sluice/core/time.h"
#include "sluice/graph/job_graph.h"

namespace sluice {

namespace internal {
class ChaosMonkey;
class JobCheckpoints;
}  // namespace internal

/// A completed checkpoint as the mini-cluster reports it.
struct CompletedCheckpoint {
  int64_t id = 0;
  /// Stream node id -> each subtask's snapshot; empty when the checkpoint was stored (read
  /// it back with LoadCheckpoint).
  std::map<int, std::vector<OperatorSnapshot>> operators;
  bool stored = false;  // written to the checkpoint storage
};

/// How one checkpoint went.
struct CheckpointStats {
  int64_t id = 0;
  bool failed = false;
  absl::Duration duration;            // trigger to completion
  absl::Duration max_sync_duration;   // the longest stall of a task thread
  absl::Duration max_sync_cpu;        // the most CPU time a task thread spent on it
  absl::Duration max_async_duration;  // the longest asynchronous part of a task
  uint64_t state_bytes = 0;           // of the state files its handles name (0: in memory)
};

/// How many checkpoints' stats a job keeps (the newest): a job runs for months.
inline constexpr size_t kCheckpointStatsKept = 1000;

/// Settings of an in-process execution.
struct MiniClusterOptions {
  /// Processing time for every task; the wall clock if null. Tests inject their own.
  std::shared_ptr<const Clock> clock;
  /// Called for every completed checkpoint (on the thread that completed it).
  std::function<void(const CompletedCheckpoint&)> on_checkpoint_complete;
};

/// What one task did, for tests and reports.
struct TaskStats {
  std::string name;  // "vertex name (subtask/parallelism)"
  int64_t records_in = 0;
  int64_t records_sent = 0;  // downstream, once per outgoing edge
  /// Where the task thread's time went: working, waiting for input, blocked sending.
  absl::Duration busy, idle, backpressured;
  int64_t max_queued_records = 0;           // high-water mark of its input gate
  int64_t state_entries = 0;                // keyed state left when the task ended
  int64_t state_bytes = 0;                  // the same, serialized
  std::map<std::string, int64_t> counters;  // "<operator>.<counter>" of its operators
};

/// The outcome of a finished job.
struct JobResult {
  absl::Duration duration;
  std::vector<TaskStats> tasks;
  int64_t completed_checkpoints = 0;
  std::vector<CheckpointStats> checkpoints;  // the newest kCheckpointStatsKept
  int restarts = 0;                          // how often the job was restarted after a failure
  bool stopped = false;         // ended by StopWithSavepoint, not by the end of its input
  std::string final_savepoint;  // the savepoint it was stopped with
  /// The most records queued in any one task's inputs at once: what back pressure bounds.
  int64_t MaxQueuedRecords() const;
  /// A counter summed over every operator and subtask of the last run (e.g.
  /// "kafka_deserialization_failures").
  int64_t CounterTotal(const std::string& counter) const;
  /// A table, one line per task of the last run: records in and sent, and the shares of its
  /// thread's time spent busy, back-pressured and idle. Where a job's time went: the busiest
  /// task is its bottleneck, and the tasks upstream of it are back-pressured.
  std::string DescribeTasks() const;
};

/// Runs a job inside this process: one thread per chain subtask, in-memory channels. Blocks
/// until the job finishes (all sources ended and all records drained; with checkpoints, a
/// final checkpoint commits the last output) or fails. A failure in any task cancels the
/// others; with restart attempts configured, all tasks then start again from the latest
/// completed checkpoint (fixed delay); otherwise, or when attempts run out, the returned
/// status names the operator and the error. Savepoints can be taken from another thread
/// while Execute runs.
class MiniCluster {
 public:
  explicit MiniCluster(MiniClusterOptions options = {});
  ~MiniCluster();
  absl::StatusOr<JobResult> Execute(const JobGraph& graph);

  /// Takes a savepoint of the running job into a new directory under `dir` and returns
  /// that directory; with `stop`, the job then ends (Execute returns with `stopped`). Any
  /// thread; fails if no job runs or the savepoint cannot complete.
  absl::StatusOr<std::string> TriggerSavepoint(const std::string& dir, bool stop = false);
  /// True while Execute runs tasks (for callers that want to wait before a savepoint).
  bool running() const;

 private:
  /// Runs every task once, restoring from `restore` (node id -> per-subtask snapshots).
  absl::Status RunAttempt(const JobGraph& graph,
                          const std::map<int, std::vector<OperatorSnapshot>>* restore,
                          JobResult* result);
  /// The state the next attempt starts from: the latest completed checkpoint, else the
  /// configured savepoint; nothing for a fresh start.
  absl::StatusOr<std::optional<std::map<int, std::vector<OperatorSnapshot>>>> RestoreState(
      const JobGraph& graph);

  MiniClusterOptions options_;
  std::unique_ptr<internal::ChaosMonkey> chaos_;

  mutable Mutex mu_;
  std::unique_ptr<internal::JobCheckpoints> checkpoints_;  // of the running job; replaced under mu_
  bool running_ SLUICE_GUARDED_BY(mu_) = false;
};

}  // namespace sluice
