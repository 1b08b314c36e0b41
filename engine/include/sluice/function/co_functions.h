#pragma once

#include <algorithm>
#include <vector>

#include "sluice/function/functions.h"
#include "sluice/state/broadcast_state.h"

namespace sluice {

// Functions over two connected streams (DataStream::Connect): one method per input. Both
// inputs run in the same function object, so it may share members between them (and, keyed,
// keyed state and timers).

/// One output per input record of either stream.
template <typename In1, typename In2, typename Out>
class CoMapFunction : public RichFunction {
 public:
  using FirstInputType = In1;
  using SecondInputType = In2;
  using OutputType = Out;
  virtual Out Map1(const In1& value) = 0;
  virtual Out Map2(const In2& value) = 0;
};

/// Zero or more outputs per input record of either stream.
template <typename In1, typename In2, typename Out>
class CoFlatMapFunction : public RichFunction {
 public:
  using FirstInputType = In1;
  using SecondInputType = In2;
  using OutputType = Out;
  virtual void FlatMap1(const In1& value, Collector<Out>& out) = 0;
  virtual void FlatMap2(const In2& value, Collector<Out>& out) = 0;
};

/// A function over two non-keyed streams with access to time and side outputs. (Timers
/// need a key: connect two keyed streams for a KeyedCoProcessFunction.)
template <typename In1, typename In2, typename Out>
class CoProcessFunction : public RichFunction {
 public:
  using FirstInputType = In1;
  using SecondInputType = In2;
  using OutputType = Out;
  using Context = ProcessContext;
  virtual void ProcessElement1(const In1& value, Context& ctx, Collector<Out>& out) = 0;
  virtual void ProcessElement2(const In2& value, Context& ctx, Collector<Out>& out) = 0;
};

/// A function over two streams keyed by the same key type: keyed state (shared by both
/// inputs: a record of either side sees what the other side stored for its key) and timers.
template <typename K, typename In1, typename In2, typename Out>
class KeyedCoProcessFunction {
 public:
  using KeyType = K;
  using FirstInputType = In1;
  using SecondInputType = In2;
  using OutputType = Out;
  using Context = KeyedContext<K>;
  using OnTimerContext = KeyedTimerContext<K>;

  virtual ~KeyedCoProcessFunction() = default;
  /// Called once per subtask before any record: obtain state handles here.
  virtual void Open(KeyedRuntimeContext<K>& /*ctx*/) {}
  virtual void ProcessElement1(const In1& value, Context& ctx, Collector<Out>& out) = 0;
  virtual void ProcessElement2(const In2& value, Context& ctx, Collector<Out>& out) = 0;
  /// Called when a timer set for the current key fires. Emitted records carry the timer's
  /// timestamp.
  virtual void OnTimer(Timestamp /*timestamp*/, OnTimerContext& /*ctx*/, Collector<Out>& /*out*/) {}
  virtual void Close() {}
};

/// What an interval join calls for each pair it finds: a left record and a right record of
/// the same key whose timestamps lie within the join's bounds.
template <typename L, typename R, typename Out>
class ProcessJoinFunction : public RichFunction {
 public:
  using LeftType = L;
  using RightType = R;
  using OutputType = Out;
  class Context {
   public:
    Timestamp LeftTimestamp() const { return left_; }
    Timestamp RightTimestamp() const { return right_; }
    /// The pair's timestamp, which emitted records carry: the later of the two.
    Timestamp timestamp() const { return std::max(left_, right_); }
    /// Emits `value` to the side output `tag` with the pair's timestamp.
    template <typename X>
    void Output(const OutputTag<X>& tag, X value) {
      side_outputs_->Collect(tag, std::move(value), timestamp());
    }

    // Set by the operator.
    void Bind(internal::SideOutputs* side_outputs) { side_outputs_ = side_outputs; }
    void set_timestamps(Timestamp left, Timestamp right) {
      left_ = left;
      right_ = right;
    }

   private:
    Timestamp left_ = kNoTimestamp;
    Timestamp right_ = kNoTimestamp;
    internal::SideOutputs* side_outputs_ = nullptr;
  };
  virtual void ProcessElement(const L& left, const R& right, Context& ctx, Collector<Out>& out) = 0;
};

/// What a window join calls for each pair of the same key in the same window.
template <typename L, typename R, typename Out>
class JoinFunction : public RichFunction {
 public:
  using LeftType = L;
  using RightType = R;
  using OutputType = Out;
  virtual Out Join(const L& left, const R& right) = 0;
};

/// What a co-group calls once per key and window with both sides' records (either may be
/// empty, not both).
template <typename L, typename R, typename Out>
class CoGroupFunction : public RichFunction {
 public:
  using LeftType = L;
  using RightType = R;
  using OutputType = Out;
  virtual void CoGroup(const std::vector<L>& left, const std::vector<R>& right,
                       Collector<Out>& out) = 0;
};

/// A context with read access to the operator's broadcast state (the data side, timers).
template <typename Base>
class BroadcastReadAccess : public Base {
 public:
  using Base::Base;
  /// The broadcast state `descriptor` names (declared in Broadcast()), read-only.
  template <typename K, typename V>
  const ReadOnlyBroadcastState<K, V>& GetBroadcastState(
      const MapStateDescriptor<K, V>& descriptor) {
    return store_->Get(descriptor);
  }
  void BindBroadcast(internal::BroadcastStateStore* store) { store_ = store; }

 private:
  internal::BroadcastStateStore* store_ = nullptr;
};

/// A context with write access to the operator's broadcast state (the broadcast side).
template <typename Base>
class BroadcastWriteAccess : public Base {
 public:
  using Base::Base;
  /// The broadcast state `descriptor` names (declared in Broadcast()), to change. Every
  /// subtask sees the same broadcast records: changing the state only from them, the same
  /// way everywhere, keeps every subtask's copy equal.
  template <typename K, typename V>
  BroadcastState<K, V>& GetBroadcastState(const MapStateDescriptor<K, V>& descriptor) {
    return store_->Get(descriptor);
  }
  void BindBroadcast(internal::BroadcastStateStore* store) { store_ = store; }

 private:
  internal::BroadcastStateStore* store_ = nullptr;
};

/// A function over a non-keyed stream connected to a broadcast stream
/// (`stream.Connect(rules.Broadcast(descriptor))`): the broadcast side writes broadcast
/// state, the data side reads it.
template <typename In1, typename In2, typename Out>
class BroadcastProcessFunction : public RichFunction {
 public:
  using FirstInputType = In1;
  using SecondInputType = In2;
  using OutputType = Out;
  using ReadOnlyContext = BroadcastReadAccess<ProcessContext>;
  using Context = BroadcastWriteAccess<ProcessContext>;
  virtual void ProcessElement(const In1& value, ReadOnlyContext& ctx, Collector<Out>& out) = 0;
  virtual void ProcessBroadcastElement(const In2& value, Context& ctx, Collector<Out>& out) = 0;
};

/// A function over a keyed stream connected to a broadcast stream: keyed state and timers
/// on the data side (which reads the broadcast state), broadcast state written on the
/// broadcast side (which has no key).
template <typename K, typename In1, typename In2, typename Out>
class KeyedBroadcastProcessFunction {
 public:
  using KeyType = K;
  using FirstInputType = In1;
  using SecondInputType = In2;
  using OutputType = Out;
  using ReadOnlyContext = BroadcastReadAccess<KeyedContext<K>>;
  using Context = BroadcastWriteAccess<ProcessContext>;
  using OnTimerContext = BroadcastReadAccess<KeyedTimerContext<K>>;

  virtual ~KeyedBroadcastProcessFunction() = default;
  /// Called once per subtask before any record: obtain keyed state handles here.
  virtual void Open(KeyedRuntimeContext<K>& /*ctx*/) {}
  virtual void ProcessElement(const In1& value, ReadOnlyContext& ctx, Collector<Out>& out) = 0;
  virtual void ProcessBroadcastElement(const In2& value, Context& ctx, Collector<Out>& out) = 0;
  virtual void OnTimer(Timestamp /*timestamp*/, OnTimerContext& /*ctx*/, Collector<Out>& /*out*/) {}
  virtual void Close() {}
};

}  // namespace sluice
