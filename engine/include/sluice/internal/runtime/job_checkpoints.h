#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/core/mutex.h"
#include "sluice/graph/job_graph.h"
#include "sluice/runtime/mini_cluster.h"

namespace sluice::internal {

class CheckpointCoordinator;

/// A task's acknowledgement of a checkpoint: its operators' state, or where it was written.
struct TaskAck {
  /// Stream node id -> the operator's snapshot (when checkpoints stay in memory).
  std::map<int, OperatorSnapshot> snapshots;
  /// Stream node id -> the file holding the operator's snapshot (with checkpoint storage).
  std::map<int, StateHandle> handles;
  /// The files under shared/ the snapshots use (incremental RocksDB checkpoints).
  std::vector<std::string> shared_files;
  absl::Duration sync_duration;   // the task thread's part: how long processing stalled
  absl::Duration sync_cpu;        // the CPU time of that part
  absl::Duration async_duration;  // serializing and writing, while processing went on
};

/// Every subtask of a job as (vertex, subtask), in the order that numbers tasks for
/// checkpoints: by vertex, then subtask. The same in every process of a job.
std::vector<std::pair<int, int>> SubtasksOf(const JobGraph& graph);
/// The number of subtask `subtask` of `vertex` in that order.
int TaskIndexOf(const JobGraph& graph, int vertex, int subtask);

/// The running tasks of one attempt of a job as checkpoints reach them: threads in this
/// process (the mini-cluster) or subtasks on TaskManagers (the JobManager sends commands).
/// Called with JobCheckpoints' lock held: implementations hand the command on and return.
class CheckpointParticipants {
 public:
  virtual ~CheckpointParticipants() = default;
  /// The source tasks take checkpoint `id`; with `final_savepoint` (stop with savepoint)
  /// they then emit nothing more.
  virtual void TriggerSources(int64_t id, bool final_savepoint) = 0;
  /// Checkpoint `id` completed; with `release` it was the job's final checkpoint: tasks
  /// waiting for it end.
  virtual void NotifyComplete(int64_t id, bool release) = 0;
  virtual void NotifyAborted(int64_t id) = 0;
  /// The stop-with-savepoint was taken: every task ends.
  virtual void Stop() = 0;
  /// The attempt fails: checkpoints failed more often than tolerated, or a stop failed.
  virtual void Fail(const absl::Status& why) = 0;
  /// Every task's input ended and it waits for the final checkpoint.
  virtual bool AllAwaitingFinalCheckpoint() = 0;
  /// Some task's run ended: the attempt is ending, no new checkpoint starts.
  virtual bool AnyFinished() = 0;
};

/// The checkpoints of one job over all its attempts, wherever its tasks run: the
/// coordinator (acknowledgements, completion, storage, retention), the trigger thread
/// (periodic checkpoints at the sources, and the final checkpoint once every task's input
/// ended), savepoints, and the latest completed checkpoint a restart starts from. The
/// mini-cluster and the JobManager both drive jobs through it.
class JobCheckpoints {
 public:
  /// For a job with a checkpoint interval (`graph` outlives this); its states go to the
  /// configured checkpoint directory, or stay in memory without one. `on_complete` is
  /// called for every completed checkpoint.
  static absl::StatusOr<std::unique_ptr<JobCheckpoints>> Create(
      const JobGraph* graph, std::function<void(const CompletedCheckpoint&)> on_complete = {});
  ~JobCheckpoints();

  /// From now on checkpoints are taken of `participants` (until EndAttempt).
  void BeginAttempt(CheckpointParticipants* participants);
  /// The attempt's tasks ended: stops triggering and drops pending checkpoints (without
  /// counting failures). Returns true if the attempt ended by stop-with-savepoint.
  bool EndAttempt();

  /// Task `task_index` (TaskIndexOf) acknowledged checkpoint `id`, or declined it. Any
  /// thread; a late acknowledgement of an aborted checkpoint is ignored. Fails only for a
  /// task index the job does not have.
  absl::Status Acknowledge(int64_t id, int task_index, absl::StatusOr<TaskAck> ack);

  /// Takes a savepoint of the running attempt into a new directory under `dir` and
  /// returns that directory; with `stop`, the attempt's tasks then end. Blocks until the
  /// savepoint is written or failed (at most the checkpoint timeout to start it).
  absl::StatusOr<std::string> TriggerSavepoint(const std::string& dir, bool stop);

  /// The newest completed checkpoint, if any.
  std::optional<CompletedCheckpoint> latest() const;
  /// The savepoint the job was stopped with, if it was.
  std::string final_savepoint() const;
  /// Null when checkpoints stay in memory.
  CheckpointStorage* storage() const;
  int64_t completed_count() const;
  int64_t failed_count() const;
  int in_progress_count() const;
  /// The newest kCheckpointStatsKept checkpoints, oldest first.
  std::vector<CheckpointStats> stats() const;

 private:
  JobCheckpoints(const JobGraph* graph,
                 std::function<void(const CompletedCheckpoint&)> on_complete);
  void OnComplete(const CompletedCheckpoint& c);
  void OnAborted(int64_t id);
  void OnTooManyFailures(const absl::Status& why);
  /// The trigger thread of one attempt.
  void TriggerLoop();

  const JobGraph* graph_;
  std::function<void(const CompletedCheckpoint&)> on_complete_;
  std::unique_ptr<CheckpointCoordinator> coordinator_;

  mutable Mutex mu_;
  CondVar cv_;  // an outcome, or the attempt changed
  CheckpointParticipants* participants_ SLUICE_GUARDED_BY(mu_) = nullptr;  // the running attempt
  int64_t attempt_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t final_checkpoint_ SLUICE_GUARDED_BY(mu_) = 0;  // started once every task waits for it
  bool stop_requested_ SLUICE_GUARDED_BY(mu_) = false;
  bool end_trigger_ SLUICE_GUARDED_BY(mu_) = false;
  std::optional<CompletedCheckpoint> latest_ SLUICE_GUARDED_BY(mu_);
  // Savepoints in flight: id -> outcome.
  std::map<int64_t, std::optional<CompletedCheckpoint>> savepoints_ SLUICE_GUARDED_BY(mu_);
  std::string final_savepoint_ SLUICE_GUARDED_BY(mu_);
  std::thread trigger_;
};

}  // namespace sluice::internal
