#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/chaos_monkey.h"
#include "runtime/snapshot_worker.h"
#include "runtime/task_metrics.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/core/mutex.h"
#include "sluice/graph/job_graph.h"
#include "sluice/internal/metrics/metric_registry.h"
#include "sluice/internal/network/input_gate.h"
#include "sluice/internal/network/record_writer.h"
#include "sluice/internal/network/status_watermark_valve.h"
#include "sluice/internal/runtime/job_checkpoints.h"
#include "sluice/metrics/state_growth_watch.h"
#include "sluice/operator/stream_operator.h"
#include "sluice/runtime/mini_cluster.h"

namespace sluice::internal {

/// Receives a task's acknowledgement of checkpoint `id`, or why the task declined it (its
/// snapshot failed). Called on the task's snapshot thread.
using AckCallback = std::function<void(int64_t id, int task_index, absl::StatusOr<TaskAck> ack)>;

/// A task's part in checkpoints.
struct TaskCheckpointing {
  int task_index = 0;
  AckCallback ack;
  /// Where the asynchronous phase writes state files; null keeps snapshots in memory.
  CheckpointStorage* storage = nullptr;
  /// Stream node id -> the state that operator starts from.
  std::map<int, RestoredOperatorState> restored;
  /// The job starts from a checkpoint or savepoint (even if this task's part is empty).
  bool job_restored = false;
  /// Simulated crashes (the chaos option); null for none.
  ChaosMonkey* chaos = nullptr;
  /// Also keeps a copy of each state file written (see SubtaskCheckpointing).
  std::function<void(int64_t id, const StateHandle& handle, std::string_view bytes)>
      keep_local_copy;
  std::function<void(int64_t id, const std::string& dir, const std::vector<StoredFile>& stored)>
      keep_native_copy;
};

/// The writers' channels for one outgoing job edge of one subtask.
struct TaskOutputEdge {
  int stream_edge = -1;
  std::vector<ChannelTarget> targets;
};

/// One subtask of one job vertex: its chain of operators, its input gate (none for a
/// source chain) and its writers. Runs entirely on its own thread (Run()); operators,
/// timers and flushes all happen there, so they need no locks. Cancel() may be called from
/// any thread.
class Task final : public ProcessingTimeService, public TaskMailbox {
 public:
  Task(const JobGraph* graph, int vertex, int subtask, InputGate* gate,
       std::vector<TaskOutputEdge> outputs, std::shared_ptr<const Clock> clock,
       TaskCheckpointing checkpointing = {}, MetricLabels run_labels = {});
  ~Task() override;

  /// Runs the task to its end. Returns the failure, naming the operator, if it failed.
  absl::Status Run();
  void Cancel();
  /// TaskMailbox (see stream_operator.h).
  void Execute(std::function<void()> action) override;
  void Yield(absl::Time deadline) override;
  /// Asks a source task to take checkpoint `id` between two polls (any thread).
  void TriggerCheckpoint(int64_t id) { Post({Mail::kTrigger, id}); }
  /// Stop with savepoint: a source task takes checkpoint `id` and then emits nothing more
  /// (so nothing after the savepoint can be committed and then replayed on resume).
  void TriggerFinalSavepoint(int64_t id) { Post({Mail::kTriggerAndSuspend, id}); }
  /// Checkpoint `id` completed / was aborted: tells the operators on the task thread.
  void NotifyCheckpointComplete(int64_t id) { Post({Mail::kComplete, id}); }
  void NotifyCheckpointAborted(int64_t id) { Post({Mail::kAbort, id}); }
  /// The job's final checkpoint completed: a task waiting for it ends (any thread).
  void Release() { Post({Mail::kRelease, 0}); }
  /// Stop with savepoint: the task ends after the notifications posted before (any thread).
  void Stop() {
    stopping_.store(true, std::memory_order_release);
    Post({Mail::kStop, 0});
  }
  bool stopped() const { return stopping_.load(std::memory_order_acquire); }
  /// True once the task's input ended and it only waits for the final checkpoint.
  bool awaiting_final_checkpoint() const { return awaiting_final_.load(std::memory_order_acquire); }
  bool is_source() const;
  /// True once Run() returned.
  bool finished() const { return finished_.load(std::memory_order_acquire); }

  const std::string& name() const { return name_; }
  int64_t records_in() const { return records_in_; }
  const TaskMetrics& metrics() const { return task_metrics_; }
  int vertex() const { return vertex_.id; }
  int subtask() const { return subtask_; }
  /// When this run of the task processed its first record (a source: emitted; others:
  /// took from their input), or nothing yet. After a restore, the end of recovery as the
  /// engine sees it. Any thread.
  std::optional<absl::Time> first_record_at() const {
    const int64_t micros = first_record_micros_.load(std::memory_order_acquire);
    if (micros == 0) return std::nullopt;
    return absl::FromUnixMicros(micros);
  }
  /// Keyed state of the chain's operators when the task ended: entries and serialized bytes.
  std::pair<int64_t, int64_t> final_state_size() const { return final_state_size_; }
  /// The counters of the chain's operators, as "<operator name>.<counter>" (after the run).
  std::map<std::string, int64_t> Counters() const;

  // ProcessingTimeService
  Timestamp CurrentProcessingTime() const override { return clock_->NowMillis(); }
  void ScheduleAt(Timestamp time, Target* target) override;

 private:
  struct Scheduled {
    Timestamp time;
    Target* target;
    bool operator>(const Scheduled& o) const { return time > o.time; }
  };

  void BuildChain();
  void RunSourceLoop();
  void RunInputLoop();
  /// Sends what the valve decided after an input event down the chain.
  void Forward(const StatusWatermarkValve::Output& out);
  /// Barrier `id` arrived on `channel`: align (exactly-once) and checkpoint once it has
  /// arrived on every live input.
  void OnBarrier(int channel, int64_t id);
  void MaybeCompleteAlignment();
  /// Snapshots every operator of the chain, forwards the barrier, hands the snapshot on.
  void PerformCheckpoint(int64_t id);
  /// Fires due processing-time callbacks and flushes buffers whose timeout passed.
  void DoHousekeeping();
  absl::Time NextHousekeepingDeadline() const;
  void FinishChain();
  void CloseChain() noexcept;
  /// This task run's directory for local state (RocksDB), made on first use and removed when
  /// the task ends.
  const std::string& LocalStateDir();
  std::string task_name_safe() const { return absl::StrCat(vertex_.id, "-", subtask_); }

  /// Requests from other threads, handled on the task thread between records.
  struct Mail {
    enum Kind { kTrigger, kTriggerAndSuspend, kComplete, kAbort, kRelease, kStop } kind;
    int64_t id;
  };
  void Post(Mail mail);
  /// Records this task has emitted (a source) or received so far in this attempt.
  int64_t records_processed() const;
  /// The chaos option's check at a moment of kind `moment` (task thread unless `records`
  /// is given: the count the snapshot thread took with it).
  void MaybeChaos(ChaosMonkey::Moment moment, std::optional<int64_t> records = std::nullopt);
  /// Fails the task from its snapshot thread: the task thread throws at its next mail check.
  void FailFromSnapshotThread(const std::string& why);
  /// Handles what other threads posted; fails the task if its asynchronous snapshot part
  /// failed.
  void HandleMail();
  /// Runs the TaskMailbox actions posted so far (task thread).
  void RunActions();
  void HandleMailAndChaos();
  /// A stopped task still tells its operators of checkpoints that completed (so sinks
  /// commit what the savepoint covers).
  void DeliverPendingCompletions() noexcept;
  /// Waits for mail until `deadline` at most, doing housekeeping meanwhile (a source whose
  /// input ended, or a throttled one).
  void WaitForMail(absl::Time deadline);
  /// The input ended: finish the operators and send end of stream downstream.
  void EndInput();
  /// The asynchronous part of checkpoint `id`: serialize, write, build the acknowledgement.
  absl::StatusOr<TaskAck> FinishSnapshot(
      int64_t id, std::vector<std::pair<int, PendingOperatorSnapshot>> pending);

  const JobGraph* graph_;
  const JobVertex& vertex_;
  const int subtask_;
  InputGate* gate_;
  std::vector<TaskOutputEdge> output_edges_;
  std::shared_ptr<const Clock> clock_;
  std::string name_;
  std::atomic<bool> canceled_{false};

  std::vector<std::unique_ptr<StreamOperator>> operators_;  // chain order (head first)
  std::vector<std::unique_ptr<ErasedOutput>> fan_outs_;
  std::vector<std::unique_ptr<RecordWriterBase>> writers_;
  TaskMetrics task_metrics_;
  std::vector<MetricGroup*> metrics_;  // the chain's operators', in task_metrics_'s group
  StateGrowthWatch state_growth_;      // warns of keyed states that look like leaks
  MetricRegistry::Registration metrics_registration_;  // after the groups: goes first
  ErasedOutput* head_input_ = nullptr;
  /// Per input channel: the chain head's input its records go to (of a two-input head, the
  /// first or the second).
  std::vector<ErasedOutput*> channel_inputs_;
  SourceOperatorBase* source_ = nullptr;
  bool opened_ = false;

  std::unique_ptr<StatusWatermarkValve> valve_;
  /// The chain head's input channels from the checkpoint the task restores (until the input
  /// loop starts from them).
  std::optional<StatusWatermarkValve::State> restored_input_channels_;
  std::vector<bool> ended_;

  // Checkpoints.
  TaskCheckpointing checkpointing_;  // its `restored` is consumed by BuildChain
  Mutex mail_mu_;
  CondVar mail_cv_;
  std::vector<Mail> mail_ SLUICE_GUARDED_BY(mail_mu_);
  std::vector<std::function<void()>> actions_ SLUICE_GUARDED_BY(mail_mu_);  // TaskMailbox's
  absl::Status async_failure_ SLUICE_GUARDED_BY(mail_mu_);
  std::atomic<bool> has_mail_{false};
  std::atomic<bool> awaiting_final_{false};
  std::atomic<bool> stopping_{false};
  bool ended_input_ = false;
  bool suspended_ = false;  // a source after its stop-with-savepoint barrier
  bool released_ = false;
  std::unique_ptr<SnapshotWorker> snapshot_worker_;
  int64_t last_checkpoint_ = 0;
  int64_t last_completed_ = 0;
  int64_t aligning_id_ = 0;
  absl::Time alignment_start_;
  std::vector<bool> barrier_seen_;
  std::vector<bool> blocked_;
  std::atomic<bool> finished_{false};

  std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<>> timers_;
  absl::Duration buffer_timeout_;
  absl::Time next_flush_;
  int64_t records_in_ = 0;
  std::atomic<int64_t> first_record_micros_{0};  // unix micros; 0: none yet
  std::pair<int64_t, int64_t> final_state_size_{0, 0};
  std::string local_state_dir_;
};

/// What a finished task reports about itself (`gate`: its input gate, or null).
TaskStats StatsOf(const Task& task, const InputGate* gate);

}  // namespace sluice::internal
