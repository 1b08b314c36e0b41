#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/graph/job_graph.h"
#include "sluice/network/input_gate.h"
#include "sluice/network/record_writer.h"
#include "sluice/network/status_watermark_valve.h"
#include "sluice/operator/stream_operator.h"

namespace sluice::internal {

/// The state of one task at a checkpoint: stream node id -> that operator's snapshot.
using TaskSnapshot = std::map<int, OperatorSnapshot>;
/// Receives a task's snapshot for checkpoint `id` (called on the task's thread).
using SnapshotCallback = std::function<void(int64_t id, int task_index, TaskSnapshot snapshot)>;

/// The writers' channels for one outgoing job edge of one subtask.
struct TaskOutputEdge {
  int stream_edge = -1;
  std::vector<ChannelTarget> targets;
};

/// One subtask of one job vertex: its chain of operators, its input gate (none for a
/// source chain) and its writers. Runs entirely on its own thread (Run()); operators,
/// timers and flushes all happen there, so they need no locks. Cancel() may be called from
/// any thread.
class Task final : public ProcessingTimeService {
 public:
  Task(const JobGraph* graph, int vertex, int subtask, InputGate* gate,
       std::vector<TaskOutputEdge> outputs, std::shared_ptr<const Clock> clock, int task_index = 0,
       SnapshotCallback on_snapshot = nullptr, std::map<int, RestoredOperatorState> restored = {});
  ~Task() override;

  /// Runs the task to its end. Returns the failure, naming the operator, if it failed.
  absl::Status Run();
  void Cancel();
  /// Asks a source task to take checkpoint `id` between two polls (any thread).
  void TriggerCheckpoint(int64_t id) { trigger_id_.store(id, std::memory_order_release); }
  bool is_source() const;
  /// True once Run() returned.
  bool finished() const { return finished_.load(std::memory_order_acquire); }

  const std::string& name() const { return name_; }
  int64_t records_in() const { return records_in_; }
  /// Keyed state of the chain's operators when the task ended: entries and serialized bytes.
  std::pair<int64_t, int64_t> final_state_size() const { return final_state_size_; }

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
  std::vector<std::unique_ptr<MetricGroup>> metrics_;
  ErasedOutput* head_input_ = nullptr;
  SourceOperatorBase* source_ = nullptr;
  bool opened_ = false;

  std::unique_ptr<StatusWatermarkValve> valve_;
  std::vector<bool> ended_;

  // Checkpoints.
  const int task_index_;
  SnapshotCallback on_snapshot_;
  std::map<int, RestoredOperatorState> restored_;  // node id -> state, until BuildChain
  std::atomic<int64_t> trigger_id_{0};
  int64_t last_checkpoint_ = 0;
  int64_t aligning_id_ = 0;
  std::vector<bool> barrier_seen_;
  std::vector<bool> blocked_;
  std::atomic<bool> finished_{false};

  std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<>> timers_;
  absl::Duration buffer_timeout_;
  absl::Time next_flush_;
  int64_t records_in_ = 0;
  std::pair<int64_t, int64_t> final_state_size_{0, 0};
};

}  // namespace sluice::internal
