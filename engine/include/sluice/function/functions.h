#pragma once

#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "sluice/core/record.h"
#include "sluice/function/checkpointed_function.h"
#include "sluice/function/collector.h"
#include "sluice/function/runtime_context.h"
#include "sluice/function/side_outputs.h"
#include "sluice/timer/timer_service.h"

namespace sluice {

/// Base of user functions that need set-up and tear-down. Each parallel subtask works on
/// its own copy of the function object, so functions must be copyable; Open() runs on the
/// task thread before the first record, Close() after the last (also after a failure).
class RichFunction {
 public:
  virtual ~RichFunction() = default;
  virtual void Open(RuntimeContext& /*ctx*/) {}
  virtual void Close() {}
};

/// One output per input. (A plain lambda works too.)
template <typename In, typename Out>
class MapFunction : public RichFunction {
 public:
  using InputType = In;
  using OutputType = Out;
  virtual Out Map(const In& value) = 0;
};

/// Keeps the inputs for which Filter() is true.
template <typename T>
class FilterFunction : public RichFunction {
 public:
  using InputType = T;
  virtual bool Filter(const T& value) = 0;
};

/// Zero or more outputs per input.
template <typename In, typename Out>
class FlatMapFunction : public RichFunction {
 public:
  using InputType = In;
  using OutputType = Out;
  virtual void FlatMap(const In& value, Collector<Out>& out) = 0;
};

/// What a process function (one or two inputs, not keyed) sees of the record it processes:
/// its timestamp, the time, and the side outputs.
class ProcessContext {
 public:
  ProcessContext(ProcessingTimeService* pts, const Timestamp* watermark,
                 internal::SideOutputs* side_outputs)
      : pts_(pts), watermark_(watermark), side_outputs_(side_outputs) {}
  /// The input record's timestamp (kNoTimestamp if it has none).
  Timestamp timestamp() const { return timestamp_; }
  Timestamp CurrentProcessingTime() const { return pts_->CurrentProcessingTime(); }
  Timestamp CurrentWatermark() const { return *watermark_; }
  /// Emits `value` to the side output `tag` (read with GetSideOutput(tag)), with the input
  /// record's timestamp.
  template <typename X>
  void Output(const OutputTag<X>& tag, X value) {
    side_outputs_->Collect(tag, std::move(value), timestamp_);
  }
  void set_timestamp(Timestamp ts) { timestamp_ = ts; }

 private:
  ProcessingTimeService* pts_;
  const Timestamp* watermark_;
  internal::SideOutputs* side_outputs_;
  Timestamp timestamp_ = kNoTimestamp;
};

/// A function over a non-keyed stream with access to time.
template <typename In, typename Out>
class ProcessFunction : public RichFunction {
 public:
  using InputType = In;
  using OutputType = Out;
  using Context = ProcessContext;
  virtual void ProcessElement(const In& value, Context& ctx, Collector<Out>& out) = 0;
};

enum class TimeDomain { kEventTime, kProcessingTime };

/// What a keyed function (one or two inputs) sees of the record it processes: its
/// timestamp and key, the timers of that key, and the side outputs.
template <typename K>
class KeyedContext {
 public:
  Timestamp timestamp() const { return timestamp_; }
  const K& CurrentKey() const { return *key_; }
  TimerService& Timers() { return *timers_; }
  /// Emits `value` to the side output `tag` (read with GetSideOutput(tag)), with the
  /// current record's (or timer's) timestamp.
  template <typename X>
  void Output(const OutputTag<X>& tag, X value) {
    side_outputs_->Collect(tag, std::move(value), timestamp_);
  }

  // Set by the operator.
  void Bind(const K* key, TimerService* timers, internal::SideOutputs* side_outputs) {
    key_ = key;
    timers_ = timers;
    side_outputs_ = side_outputs;
  }
  void set_timestamp(Timestamp ts) { timestamp_ = ts; }

 private:
  Timestamp timestamp_ = kNoTimestamp;
  const K* key_ = nullptr;
  TimerService* timers_ = nullptr;
  internal::SideOutputs* side_outputs_ = nullptr;
};

/// What a keyed function sees of a timer that fires: its key's context and its time domain.
template <typename K>
class KeyedTimerContext : public KeyedContext<K> {
 public:
  TimeDomain domain() const { return domain_; }
  void set_domain(TimeDomain d) { domain_ = d; }

 private:
  TimeDomain domain_ = TimeDomain::kEventTime;
};

/// A function over a keyed stream with keyed state and timers: the building block of custom
/// stateful operators. State and timers are scoped to the current key.
template <typename K, typename In, typename Out>
class KeyedProcessFunction {
 public:
  using KeyType = K;
  using InputType = In;
  using OutputType = Out;
  using Context = KeyedContext<K>;
  using OnTimerContext = KeyedTimerContext<K>;

  virtual ~KeyedProcessFunction() = default;
  /// Called once per subtask before any record: obtain state handles here.
  virtual void Open(KeyedRuntimeContext<K>& /*ctx*/) {}
  virtual void ProcessElement(const In& value, Context& ctx, Collector<Out>& out) = 0;
  /// Called when a timer set for the current key fires. Emitted records carry the timer's
  /// timestamp.
  virtual void OnTimer(Timestamp /*timestamp*/, OnTimerContext& /*ctx*/, Collector<Out>& /*out*/) {}
  virtual void Close() {}
};

/// What a source's Poll() emits into.
template <typename T>
class SourceOutput {
 public:
  SourceOutput(Batch<T>* batch, size_t batch_hint, void (*emit_watermark)(void*, Timestamp),
               void* owner, void (*mark_idle)(void*, bool) = nullptr,
               internal::SideOutputs* side_outputs = nullptr)
      : batch_(batch),
        batch_hint_(batch_hint),
        emit_watermark_(emit_watermark),
        mark_idle_(mark_idle),
        owner_(owner),
        side_outputs_(side_outputs) {}

  void Collect(const T& value) { batch_->Add(value, kNoTimestamp); }
  void Collect(T&& value) { batch_->Add(std::move(value), kNoTimestamp); }
  void CollectWithTimestamp(T value, Timestamp ts) { batch_->Add(std::move(value), ts); }
  /// Emits `value` to the side output `tag` (read with GetSideOutput(tag)).
  template <typename X>
  void CollectSide(const OutputTag<X>& tag, X value, Timestamp ts = kNoTimestamp) {
    side_outputs_->Collect(tag, std::move(value), ts);
  }
  /// Declares that no record with a timestamp <= `watermark` follows. Records collected
  /// before this call are sent before the watermark.
  void EmitWatermark(Timestamp watermark) { emit_watermark_(owner_, watermark); }
  /// Declares this subtask idle (it has nothing to read: downstream watermarks stop waiting
  /// for it) or active again. Records collected before this call are sent first.
  void MarkIdle(bool idle) {
    if (mark_idle_ != nullptr) mark_idle_(owner_, idle);
  }

  /// How many records one Poll() should emit at most (a buffer's worth).
  size_t batch_hint() const { return batch_hint_; }
  /// Records collected so far in this Poll().
  size_t collected() const { return batch_->size(); }

 private:
  Batch<T>* batch_;
  size_t batch_hint_;
  void (*emit_watermark_)(void*, Timestamp);
  void (*mark_idle_)(void*, bool);
  void* owner_;
  internal::SideOutputs* side_outputs_;
};

enum class SourceStatus {
  kMoreAvailable,     // call Poll() again at once
  kNothingAvailable,  // nothing now; Poll() again soon (the source may block briefly inside)
  kEndOfInput,        // a bounded source is done
};

/// A source a user can implement. Pull-based: the task calls Poll() in a loop, so it can
/// interleave timers, buffer flushes and (later) checkpoint barriers between calls. Poll()
/// should emit about batch_hint() records and must not block for more than ~10 ms.
template <typename T>
class SourceFunction {
 public:
  using OutputType = T;
  virtual ~SourceFunction() = default;
  virtual void Open(RuntimeContext& /*ctx*/) {}
  virtual SourceStatus Poll(SourceOutput<T>& out) = 0;
  virtual void Close() {}
  /// A source that cannot split its input returns false and always runs with parallelism 1.
  virtual bool IsParallel() const { return true; }
  /// The source's position at a checkpoint barrier, as list items; restored (before Open)
  /// with RestoreState. Sources without a position to keep return nothing.
  virtual std::vector<std::string> SnapshotState(int64_t /*checkpoint_id*/) { return {}; }
  virtual void RestoreState(std::vector<std::string> /*items*/) {}
  /// How restored items are shared among subtasks: evenly, or all of them to every subtask
  /// (a source that assigns its splits itself, such as Kafka partitions, takes its own).
  virtual OperatorStateMode StateMode() const { return OperatorStateMode::kEven; }
};

/// What a sink sees of a record besides its value.
class SinkContext {
 public:
  Timestamp timestamp() const { return timestamp_; }
  Timestamp CurrentWatermark() const { return watermark_; }
  void set_timestamp(Timestamp ts) { timestamp_ = ts; }
  void set_watermark(Timestamp wm) { watermark_ = wm; }

 private:
  Timestamp timestamp_ = kNoTimestamp;
  Timestamp watermark_ = kMinWatermark;
};

/// A sink a user can implement: Invoke() per record, or InvokeBatch() to take whole batches.
template <typename T>
class SinkFunction {
 public:
  using InputType = T;
  virtual ~SinkFunction() = default;
  virtual void Open(RuntimeContext& /*ctx*/) {}
  virtual void Invoke(const T& value, const SinkContext& ctx) = 0;
  virtual void InvokeBatch(std::span<const Record<T>> records, SinkContext& ctx) {
    for (const auto& r : records) {
      ctx.set_timestamp(r.timestamp);
      Invoke(r.value, ctx);
    }
  }
  /// The input ended normally: make the output final (commit files, flush buffers).
  virtual void Finish() {}
  /// Release resources; runs after Finish() and also when the job fails.
  virtual void Close() {}
};

}  // namespace sluice
