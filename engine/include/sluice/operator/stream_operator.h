#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeindex>
#include <utility>

#include "absl/status/status.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/core/key_groups.h"
#include "sluice/core/record.h"
#include "sluice/core/status_macros.h"
#include "sluice/core/time.h"
#include "sluice/function/runtime_context.h"
#include "sluice/operator/task_mailbox.h"
#include "sluice/timer/timer_service.h"

namespace sluice {

/// Where an operator sends its results: the next operator of its chain, a fan-out to
/// several, or a RecordWriter into channels to other tasks. Untyped half used by the task.
class ErasedOutput {
 public:
  virtual ~ErasedOutput() = default;
  virtual void PushErased(BatchBase& batch) = 0;
  virtual void PushWatermark(Timestamp watermark) = 0;
  /// The stream went idle (no records for a while: it must not hold back watermarks
  /// downstream) or became active again.
  virtual void PushIdle(bool idle) = 0;
};

/// Typed output. Push() may move records out of `batch`; the caller clears it afterwards.
template <typename T>
class Output : public ErasedOutput {
 public:
  virtual void Push(Batch<T>& batch) = 0;
  void PushErased(BatchBase& batch) final { Push(static_cast<Batch<T>&>(batch)); }
};

/// Thrown inside a task when it finds the job canceled (a push into a canceled channel), to
/// unwind the task quickly. Not a failure: user-code wrappers let it pass.
class TaskCanceled : public std::exception {
 public:
  const char* what() const noexcept override { return "task canceled"; }
};

/// A failure in user code, tagged with the operator that raised it.
class OperatorFailure : public std::runtime_error {
 public:
  OperatorFailure(std::string operator_name, const std::string& message)
      : std::runtime_error(message), operator_name_(std::move(operator_name)) {}
  const std::string& operator_name() const { return operator_name_; }

 private:
  std::string operator_name_;
};

/// What the task hands each operator when it builds the chain.
struct OperatorContext {
  TaskInfo info;
  KeyGroupRange key_group_range;
  ProcessingTimeService* processing_time = nullptr;
  TaskMailbox* mailbox = nullptr;
  MetricGroup* metrics = nullptr;
};

/// An operator instance in a task's chain. Lifecycle, all on the task thread:
/// Setup -> Open -> (records, watermarks)* -> Finish (only if the input ended normally) ->
/// Close (always). Operators of a chain are opened tail first and finished head first, so
/// a downstream operator is ready before records reach it and finishes after them.
class StreamOperator {
 public:
  virtual ~StreamOperator() = default;

  void Setup(OperatorContext ctx, ErasedOutput* output) {
    ctx_ = std::move(ctx);
    SetOutput(output);
  }
  virtual void Open() {}
  /// The input ended: emit whatever is pending.
  virtual void Finish() {}
  virtual void Close() {}

  const std::string& name() const { return ctx_.info.operator_name; }
  const OperatorContext& context() const { return ctx_; }
  /// The operator's input side, for the operator before it in the chain (null for sources).
  /// A two-input operator's first input, which also takes the watermarks and idle statuses
  /// the task combined over both inputs.
  virtual ErasedOutput* AsInput() { return nullptr; }
  /// A two-input operator's second input (records only); null for other operators.
  virtual ErasedOutput* AsSecondInput() { return nullptr; }
  /// Takes the operator's state at a checkpoint barrier (task thread, between records):
  /// fills `out->snapshot` and/or sets `out->async_part` for the slow rest, which runs on
  /// another thread while processing goes on, so it may only read what the synchronous part
  /// froze. Default: no state.
  virtual absl::Status SnapshotState(int64_t /*checkpoint_id*/, PendingOperatorSnapshot* /*out*/) {
    return absl::OkStatus();
  }
  /// Both parts of SnapshotState at once (tests, savepoints of a stopped job).
  absl::StatusOr<OperatorSnapshot> SnapshotNow(int64_t checkpoint_id) {
    PendingOperatorSnapshot pending;
    SLUICE_RETURN_IF_ERROR(SnapshotState(checkpoint_id, &pending));
    return std::move(pending).Finish();
  }
  /// Checkpoint `checkpoint_id` is complete everywhere (task thread): make its effects
  /// visible (commit transactions, publish files).
  virtual void NotifyCheckpointComplete(int64_t /*checkpoint_id*/) {}
  /// Checkpoint `checkpoint_id` will not complete (task thread).
  virtual void NotifyCheckpointAborted(int64_t /*checkpoint_id*/) {}
  /// Hands the operator its restored state; called after Setup() and before Open().
  virtual void InitializeState(RestoredOperatorState state) { restored_ = std::move(state); }

  /// The operator's keyed state, if it keeps any (for state-size reporting).
  virtual const KeyedStateBackendBase* keyed_state() const { return nullptr; }
  /// Connects a side output the job reads (by tag, with its record type); operators without
  /// side outputs ignore it.
  virtual void SetSideOutput(const std::string& /*tag*/, std::type_index /*type*/,
                             ErasedOutput* /*output*/) {}

 protected:
  virtual void SetOutput(ErasedOutput* output) = 0;

  /// Runs user code; an exception escapes as an OperatorFailure naming this operator (the
  /// innermost operator's name wins when failures cross a chain).
  template <typename F>
  void RunUserCode(F&& f) {
    try {
      f();
    } catch (const OperatorFailure&) {
      throw;
    } catch (const TaskCanceled&) {
      throw;
    } catch (const std::exception& e) {
      throw OperatorFailure(name(), e.what());
    } catch (...) {
      throw OperatorFailure(name(), "unknown exception");
    }
  }

  OperatorContext ctx_;
  std::optional<RestoredOperatorState> restored_;  // until Open() applies it
};

/// An operator with one typed input, which is the Output of the operator before it.
template <typename In>
class OneInputOperator : public StreamOperator, public Output<In> {
 public:
  ErasedOutput* AsInput() final { return this; }
  void Push(Batch<In>& batch) final { ProcessBatch(batch); }
  void PushWatermark(Timestamp watermark) final { ProcessWatermark(watermark); }
  void PushIdle(bool idle) final { ProcessIdle(idle); }

  virtual void ProcessBatch(Batch<In>& batch) = 0;
  /// Default: forward. Operators with event-time timers fire them first.
  virtual void ProcessWatermark(Timestamp watermark) = 0;
  /// Default: forward (see ErasedOutput::PushIdle).
  virtual void ProcessIdle(bool idle) = 0;
};

/// An operator (one input or two: `Base`) that emits Out through a typed output; by default
/// it forwards watermarks and idle statuses.
template <typename Base, typename Out>
class OperatorWithOutput : public Base {
 public:
  void ProcessWatermark(Timestamp watermark) override { output_->PushWatermark(watermark); }
  void ProcessIdle(bool idle) override { output_->PushIdle(idle); }

 protected:
  void SetOutput(ErasedOutput* output) override { output_ = static_cast<Output<Out>*>(output); }
  /// Sends `out` downstream (if non-empty) and empties it for reuse.
  void Emit(Batch<Out>& out) {
    if (!out.empty()) {
      output_->Push(out);
      out.clear();
    }
  }
  Output<Out>* output_ = nullptr;
};

/// A one-input operator that emits Out through a typed output.
template <typename In, typename Out>
using OneInputOperatorWithOutput = OperatorWithOutput<OneInputOperator<In>, Out>;

/// An operator with two typed inputs (a connected stream, a join): always the head of its
/// task's chain. The task routes each input channel's records to the input its edge feeds,
/// and combines the watermarks and idle statuses of all channels of both inputs (the
/// minimum over the active ones), so the operator sees one event time.
template <typename In1, typename In2>
class TwoInputOperator : public StreamOperator {
 public:
  ErasedOutput* AsInput() final { return &first_; }
  ErasedOutput* AsSecondInput() final { return &second_; }

  virtual void ProcessBatch1(Batch<In1>& batch) = 0;
  virtual void ProcessBatch2(Batch<In2>& batch) = 0;
  virtual void ProcessWatermark(Timestamp watermark) = 0;
  virtual void ProcessIdle(bool idle) = 0;

 private:
  template <typename In, void (TwoInputOperator::*process)(Batch<In>&)>
  class Side final : public Output<In> {
   public:
    explicit Side(TwoInputOperator* op) : op_(op) {}
    void Push(Batch<In>& batch) override { (op_->*process)(batch); }
    void PushWatermark(Timestamp watermark) override { op_->ProcessWatermark(watermark); }
    void PushIdle(bool idle) override { op_->ProcessIdle(idle); }

   private:
    TwoInputOperator* op_;
  };
  Side<In1, &TwoInputOperator::ProcessBatch1> first_{this};
  Side<In2, &TwoInputOperator::ProcessBatch2> second_{this};
};

/// A two-input operator that emits Out through a typed output.
template <typename In1, typename In2, typename Out>
using TwoInputOperatorWithOutput = OperatorWithOutput<TwoInputOperator<In1, In2>, Out>;

/// A chain head that produces records itself.
class SourceOperatorBase : public StreamOperator {
 public:
  enum class PollResult { kMoreAvailable, kNothingAvailable, kEndOfInput };
  virtual PollResult PollNext() = 0;
  /// Sends the watermark down the chain (used for the final watermark at end of input).
  virtual void EmitWatermark(Timestamp watermark) = 0;
  /// Sends an idle/active status down the chain.
  virtual void EmitIdle(bool idle) = 0;
  /// Records emitted so far (for the source throttle).
  int64_t records_out() const { return records_out_; }
  /// Asks for at most `records` per poll (a throttled source: its rate holds within a poll).
  virtual void LimitBatchSize(size_t records) = 0;

 protected:
  int64_t records_out_ = 0;
};

/// Builds operator instances for one node of the graph, one per subtask.
class OperatorFactory {
 public:
  virtual ~OperatorFactory() = default;
  virtual std::unique_ptr<StreamOperator> Create() const = 0;
};

template <typename F>
class LambdaOperatorFactory final : public OperatorFactory {
 public:
  explicit LambdaOperatorFactory(F f) : f_(std::move(f)) {}
  std::unique_ptr<StreamOperator> Create() const override { return f_(); }

 private:
  F f_;
};

template <typename F>
std::shared_ptr<const OperatorFactory> MakeOperatorFactory(F f) {
  return std::make_shared<LambdaOperatorFactory<F>>(std::move(f));
}

}  // namespace sluice
