#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sluice/function/co_functions.h"
#include "sluice/state/descriptors.h"

namespace sluice::internal {

/// The bounds of an interval join, inclusive, in milliseconds: a left record at time t joins
/// the right records at [t + lower, t + upper].
struct IntervalBounds {
  int64_t lower = 0;
  int64_t upper = 0;
};

/// An interval join as a keyed two-input function (run by KeyedCoProcessOperator): each
/// side's records wait in keyed map state, by timestamp, until no record of the other side
/// can match them any more; a new record is joined with the waiting records of the other
/// side in its interval. A record at or below the watermark is late: it is dropped and
/// counted ("interval_join_late_records"), as in Flink. A left record at t is removed when
/// the watermark passes t + max(upper, 0) (a right one at t + max(-lower, 0)): a later right
/// record is above the watermark, so above t + upper.
template <typename K, typename L, typename R, typename Out, typename F>
class IntervalJoiner final : public KeyedCoProcessFunction<K, L, R, Out> {
 public:
  using Base = KeyedCoProcessFunction<K, L, R, Out>;

  IntervalJoiner(F fn, IntervalBounds bounds) : fn_(std::move(fn)), bounds_(bounds) {}

  void Open(KeyedRuntimeContext<K>& ctx) override {
    left_ = &ctx.GetMapState(MapStateDescriptor<Timestamp, std::vector<L>>("interval-join-left"));
    right_ = &ctx.GetMapState(MapStateDescriptor<Timestamp, std::vector<R>>("interval-join-right"));
    late_ = &ctx.Metrics().GetCounter("interval_join_late_records");
    fn_.Open(ctx);
  }
  void Close() override { fn_.Close(); }

  void ProcessElement1(const L& left, typename Base::Context& ctx, Collector<Out>& out) override {
    const Timestamp t = ctx.timestamp();
    if (!Admit(t, ctx, "left")) return;
    Buffer(*left_, t, left);
    for (const auto& [rt, rights] : right_->Entries()) {
      if (rt < t + bounds_.lower || rt > t + bounds_.upper) continue;
      for (const R& right : rights) Emit(left, t, right, rt, out);
    }
    ctx.Timers().RegisterEventTimeTimer(t + std::max<int64_t>(bounds_.upper, 0));
  }

  void ProcessElement2(const R& right, typename Base::Context& ctx, Collector<Out>& out) override {
    const Timestamp t = ctx.timestamp();
    if (!Admit(t, ctx, "right")) return;
    Buffer(*right_, t, right);
    for (const auto& [lt, lefts] : left_->Entries()) {
      if (t < lt + bounds_.lower || t > lt + bounds_.upper) continue;
      for (const L& left : lefts) Emit(left, lt, right, t, out);
    }
    ctx.Timers().RegisterEventTimeTimer(t + std::max<int64_t>(-bounds_.lower, 0));
  }

  void OnTimer(Timestamp time, typename Base::OnTimerContext&, Collector<Out>&) override {
    // The buckets whose removal time this is (a timer serves either side, or both).
    left_->Remove(time - std::max<int64_t>(bounds_.upper, 0));
    right_->Remove(time - std::max<int64_t>(-bounds_.lower, 0));
  }

  /// Where the pairs' side outputs go (the operator's, bound before Open).
  void BindSideOutputs(SideOutputs* side_outputs) { join_ctx_.Bind(side_outputs); }

 private:
  bool Admit(Timestamp t, typename Base::Context& ctx, const char* side) {
    if (t == kNoTimestamp) {
      throw std::runtime_error(std::string("interval join: a ") + side +
                               " record has no timestamp (assign timestamps and watermarks "
                               "before the join)");
    }
    if (t <= ctx.Timers().CurrentWatermark()) {
      late_->Inc();
      return false;
    }
    return true;
  }
  template <typename V>
  static void Buffer(MapState<Timestamp, std::vector<V>>& state, Timestamp t, const V& value) {
    std::vector<V> at = state.Get(t).value_or(std::vector<V>{});
    at.push_back(value);
    state.Put(t, std::move(at));
  }
  void Emit(const L& left, Timestamp lt, const R& right, Timestamp rt, Collector<Out>& out) {
    join_ctx_.set_timestamps(lt, rt);
    Collector<Out> pair_out = out;
    pair_out.set_timestamp(std::max(lt, rt));
    fn_.ProcessElement(left, right, join_ctx_, pair_out);
  }

  F fn_;
  IntervalBounds bounds_;
  MapState<Timestamp, std::vector<L>>* left_ = nullptr;
  MapState<Timestamp, std::vector<R>>* right_ = nullptr;
  Counter* late_ = nullptr;
  typename ProcessJoinFunction<L, R, Out>::Context join_ctx_;
};

}  // namespace sluice::internal
