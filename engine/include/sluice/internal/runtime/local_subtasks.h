#pragma once

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/core/mutex.h"
#include "sluice/core/time.h"
#include "sluice/graph/job_graph.h"
#include "sluice/internal/runtime/job_checkpoints.h"
#include "sluice/internal/runtime/remote_channels.h"
#include "sluice/runtime/mini_cluster.h"

namespace sluice::internal {

class ChaosMonkey;
class Task;
struct Wiring;

/// How the subtasks of one process take part in checkpoints.
struct SubtaskCheckpointing {
  /// Where acknowledgements go (`task_index`: TaskIndexOf); none: the job takes no
  /// checkpoints. Called on the tasks' snapshot threads.
  std::function<void(int64_t id, int task_index, absl::StatusOr<TaskAck> ack)> ack;
  /// Where state files go; null keeps snapshots in memory (acknowledged by value).
  CheckpointStorage* storage = nullptr;
  /// Stream node id -> every old subtask's snapshot (MatchToGraph): the state the job
  /// starts from; null for a fresh start.
  const std::map<int, std::vector<OperatorSnapshot>>* restore = nullptr;
  /// Simulated crashes (the chaos option; every subtask must be local); null for none.
  ChaosMonkey* chaos = nullptr;
  /// Also keeps a copy of each state file written (task-local recovery); none: no copies.
  /// Called on the tasks' snapshot threads.
  std::function<void(int64_t id, const StateHandle& handle, std::string_view bytes)>
      keep_local_copy;
  /// The same for the RocksDB files a snapshot stored (`dir`: its native checkpoint).
  std::function<void(int64_t id, const std::string& dir, const std::vector<StoredFile>& stored)>
      keep_native_copy;
};

/// The subtasks of a job that a placement puts in this process — all of them on the
/// mini-cluster, a TaskManager's share on a cluster — with their channels to the other
/// processes through `remote`. One thread per subtask. They receive checkpoint commands as
/// CheckpointParticipants (from JobCheckpoints here, or from the JobManager).
/// One subtask's metrics at a moment; rates and shares over the last minute.
/// The size of one keyed state of one operator of a task at its newest checkpoint.
struct KeyedStateSample {
  std::string operator_id;  // its uid (or generated id), as savepoints name it
  std::string state;
  int64_t entries = 0;
  int64_t bytes = 0;
};

struct TaskMetricsSnapshot {
  int vertex = 0;
  int subtask = 0;
  int64_t records_in = 0;
  int64_t records_sent = 0;
  double records_in_per_second = 0;
  double records_sent_per_second = 0;
  /// Shares of the task thread's time, 0 to 1.
  double busy = 0;
  double idle = 0;
  double backpressured = 0;
  /// Unix milliseconds; 0: none yet.
  int64_t input_watermark_ms = 0;
  int64_t output_watermark_ms = 0;
  std::vector<KeyedStateSample> states;
};

class LocalSubtasks final : public CheckpointParticipants {
 public:
  /// `run_labels` go first on the tasks' metrics (on a cluster, the job's id).
  LocalSubtasks(const JobGraph* graph, Placement placement, RemoteChannels* remote,
                std::shared_ptr<const Clock> clock = std::make_shared<SystemClock>(),
                SubtaskCheckpointing checkpointing = {}, MetricLabels run_labels = {});
  ~LocalSubtasks() override;

  /// Runs the local subtasks to their end (finished, or stopped with a savepoint). The
  /// first failure (naming the operator) cancels the others and is returned.
  absl::Status Run();
  /// Any thread: ends the run (Run returns CANCELLED unless something failed first).
  void Cancel();
  /// True if the run ended by stop-with-savepoint.
  bool stopped() const;
  /// Per local subtask, after Run.
  std::vector<TaskStats> Stats() const;
  /// The remote channels delivering into this process's gates (to unregister afterwards).
  const std::vector<int>& inbound_channels() const;

  /// When the first of these subtasks processed its first record, or nothing yet (any
  /// thread, while this lives).
  std::optional<absl::Time> FirstRecordAt() const;
  /// Each subtask's metrics now (any thread, while this lives): what a TaskManager reports
  /// to the JobManager with its heartbeats.
  std::vector<TaskMetricsSnapshot> MetricsNow(absl::Time now) const;

  // CheckpointParticipants: any thread.
  void TriggerSources(int64_t id, bool final_savepoint) override;
  void NotifyComplete(int64_t id, bool release) override;
  void NotifyAborted(int64_t id) override;
  void Stop() override;
  void Fail(const absl::Status& why) override;
  bool AllAwaitingFinalCheckpoint() override;
  bool AnyFinished() override;

 private:
  void CancelTasks();

  const JobGraph* graph_;
  RemoteChannels* remote_;
  ChaosMonkey* chaos_;
  const bool restored_;  // the run starts from a checkpoint or savepoint
  std::unique_ptr<Wiring> wiring_;
  std::vector<std::unique_ptr<Task>> tasks_;
  std::vector<InputGate*> task_gates_;
  mutable Mutex mu_;
  bool canceled_ SLUICE_GUARDED_BY(mu_) = false;
  bool stopped_ SLUICE_GUARDED_BY(mu_) = false;
  absl::Status failure_ SLUICE_GUARDED_BY(mu_);  // the first failure
};

}  // namespace sluice::internal
