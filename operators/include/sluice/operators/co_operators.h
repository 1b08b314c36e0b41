#pragma once

#include <set>
#include <string>
#include <typeindex>
#include <utility>

#include "sluice/function/co_functions.h"
#include "sluice/operators/basic_operators.h"
#include "sluice/operators/keyed_operators.h"

namespace sluice::internal {

/// A two-input operator running a user function over connected streams.
template <typename In1, typename In2, typename Out, typename F>
class CoUdfOperator : public FunctionOperator<TwoInputOperatorWithOutput<In1, In2, Out>, F> {
 public:
  using FunctionOperator<TwoInputOperatorWithOutput<In1, In2, Out>, F>::FunctionOperator;

 protected:
  Batch<Out> out_;
};

template <typename In1, typename In2, typename Out, typename F>
class CoMapOperator final : public CoUdfOperator<In1, In2, Out, F> {
 public:
  using CoUdfOperator<In1, In2, Out, F>::CoUdfOperator;
  void ProcessBatch1(Batch<In1>& batch) override {
    this->RunUserCode([&] {
      for (const auto& r : batch) this->out_.Add(this->fn_.Map1(r.value), r.timestamp);
    });
    this->Emit(this->out_);
  }
  void ProcessBatch2(Batch<In2>& batch) override {
    this->RunUserCode([&] {
      for (const auto& r : batch) this->out_.Add(this->fn_.Map2(r.value), r.timestamp);
    });
    this->Emit(this->out_);
  }
};

template <typename In1, typename In2, typename Out, typename F>
class CoFlatMapOperator final : public CoUdfOperator<In1, In2, Out, F> {
 public:
  using CoUdfOperator<In1, In2, Out, F>::CoUdfOperator;
  void ProcessBatch1(Batch<In1>& batch) override {
    Each(batch, [this](const In1& v, Collector<Out>& out) { this->fn_.FlatMap1(v, out); });
  }
  void ProcessBatch2(Batch<In2>& batch) override {
    Each(batch, [this](const In2& v, Collector<Out>& out) { this->fn_.FlatMap2(v, out); });
  }

 private:
  template <typename In, typename Call>
  void Each(Batch<In>& batch, Call call) {
    Collector<Out> collector(&this->out_, kNoTimestamp);
    this->RunUserCode([&] {
      for (const auto& r : batch) {
        collector.set_timestamp(r.timestamp);
        call(r.value, collector);
      }
    });
    this->Emit(this->out_);
  }
};

/// Common part of the non-keyed two-input operators whose functions get a context: the
/// side outputs and the current watermark the contexts read.
template <typename In1, typename In2, typename Out, typename F>
class ContextCoOperator : public CoUdfOperator<In1, In2, Out, F> {
 public:
  using CoUdfOperator<In1, In2, Out, F>::CoUdfOperator;
  void Open() override {
    side_outputs_.CountDroppedIn(*this->ctx_.metrics);
    CoUdfOperator<In1, In2, Out, F>::Open();
  }
  void SetSideOutput(const std::string& tag, std::type_index type, ErasedOutput* output) override {
    side_outputs_.Connect(tag, type, output);
  }
  void ProcessWatermark(Timestamp watermark) override {
    watermark_ = watermark;
    this->output_->PushWatermark(watermark);
  }

 protected:
  /// Runs `call(value, ctx, collector)` for each record with a `Context` that `bind` has
  /// prepared, then sends what it emitted.
  template <typename Context, typename In, typename Bind, typename Call>
  void Each(Batch<In>& batch, Bind bind, Call call) {
    Context ctx(this->ctx_.processing_time, &watermark_, &side_outputs_);
    bind(ctx);
    Collector<Out> collector(&this->out_, kNoTimestamp);
    this->RunUserCode([&] {
      for (const auto& r : batch) {
        ctx.set_timestamp(r.timestamp);
        collector.set_timestamp(r.timestamp);
        call(r.value, ctx, collector);
      }
    });
    this->Emit(this->out_);
    side_outputs_.Flush();
  }

 private:
  Timestamp watermark_ = kMinWatermark;
  SideOutputs side_outputs_;
};

/// Runs a CoProcessFunction (not keyed: time access and side outputs, no state or timers).
template <typename In1, typename In2, typename Out, typename F>
class CoProcessOperator final : public ContextCoOperator<In1, In2, Out, F> {
 public:
  using ContextCoOperator<In1, In2, Out, F>::ContextCoOperator;
  void ProcessBatch1(Batch<In1>& batch) override {
    this->template Each<ProcessContext>(
        batch, [](ProcessContext&) {},
        [this](const In1& v, ProcessContext& ctx, Collector<Out>& out) {
          this->fn_.ProcessElement1(v, ctx, out);
        });
  }
  void ProcessBatch2(Batch<In2>& batch) override {
    this->template Each<ProcessContext>(
        batch, [](ProcessContext&) {},
        [this](const In2& v, ProcessContext& ctx, Collector<Out>& out) {
          this->fn_.ProcessElement2(v, ctx, out);
        });
  }
};

/// Runs a KeyedCoProcessFunction: each input's records under the key its selector gives
/// them, one keyed state and one set of timers for both inputs.
template <typename K, typename In1, typename In2, typename Out, typename F, typename KS1,
          typename KS2>
class KeyedCoProcessOperator final
    : public KeyedFunctionOperator<TwoInputOperatorWithOutput<In1, In2, Out>, K, Out, F> {
 public:
  KeyedCoProcessOperator(F fn, KS1 selector1, KS2 selector2)
      : KeyedFunctionOperator<TwoInputOperatorWithOutput<In1, In2, Out>, K, Out, F>(std::move(fn)),
        selector1_(std::move(selector1)),
        selector2_(std::move(selector2)) {}

  void Open() override {
    // A function that emits to side outputs itself (an interval join's pairs) writes to
    // the operator's.
    if constexpr (requires { this->fn_.BindSideOutputs(&this->side_outputs_); }) {
      this->fn_.BindSideOutputs(&this->side_outputs_);
    }
    KeyedFunctionOperator<TwoInputOperatorWithOutput<In1, In2, Out>, K, Out, F>::Open();
  }

  void ProcessBatch1(Batch<In1>& batch) override {
    this->ProcessKeyed(batch, selector1_, [this](const In1& value, auto& ctx, auto& out) {
      this->fn_.ProcessElement1(value, ctx, out);
    });
  }
  void ProcessBatch2(Batch<In2>& batch) override {
    this->ProcessKeyed(batch, selector2_, [this](const In2& value, auto& ctx, auto& out) {
      this->fn_.ProcessElement2(value, ctx, out);
    });
  }

 private:
  KS1 selector1_;
  KS2 selector2_;
};

/// Runs a BroadcastProcessFunction: the second input is the broadcast side (every subtask
/// gets every record), which writes the broadcast state the first input reads.
template <typename In1, typename In2, typename Out, typename F>
class BroadcastProcessOperator final : public ContextCoOperator<In1, In2, Out, F> {
  using Base = ContextCoOperator<In1, In2, Out, F>;

 public:
  BroadcastProcessOperator(F fn, std::set<std::string> declared)
      : Base(std::move(fn)), broadcast_(std::move(declared)) {}
  void Open() override {
    if (this->restored_) broadcast_.Restore(this->restored_->broadcast_states);
    Base::Open();
  }
  absl::Status SnapshotState(int64_t id, PendingOperatorSnapshot* out) override {
    SLUICE_RETURN_IF_ERROR(Base::SnapshotState(id, out));
    out->snapshot.broadcast_states = broadcast_.Snapshot();
    return absl::OkStatus();
  }
  void ProcessBatch1(Batch<In1>& batch) override {
    this->template Each<typename F::ReadOnlyContext>(
        batch, [this](auto& ctx) { ctx.BindBroadcast(&broadcast_); },
        [this](const In1& v, auto& ctx, Collector<Out>& out) {
          this->fn_.ProcessElement(v, ctx, out);
        });
  }
  void ProcessBatch2(Batch<In2>& batch) override {
    this->template Each<typename F::Context>(
        batch, [this](auto& ctx) { ctx.BindBroadcast(&broadcast_); },
        [this](const In2& v, auto& ctx, Collector<Out>& out) {
          this->fn_.ProcessBroadcastElement(v, ctx, out);
        });
  }

 private:
  BroadcastStateStore broadcast_;
};

/// Runs a KeyedBroadcastProcessFunction: the first input keyed (keyed state, timers, read
/// access to the broadcast state), the second the broadcast side (no key; writes the
/// broadcast state).
template <typename K, typename In1, typename In2, typename Out, typename F, typename KS>
class KeyedBroadcastProcessOperator final
    : public KeyedFunctionOperator<TwoInputOperatorWithOutput<In1, In2, Out>, K, Out, F> {
  using Base = KeyedFunctionOperator<TwoInputOperatorWithOutput<In1, In2, Out>, K, Out, F>;

 public:
  KeyedBroadcastProcessOperator(F fn, KS selector, std::set<std::string> declared)
      : Base(std::move(fn)), selector_(std::move(selector)), broadcast_(std::move(declared)) {
    this->SetBroadcastStore(&broadcast_);
  }

  void Open() override {
    if (this->restored_) broadcast_.Restore(this->restored_->broadcast_states);
    Base::Open();
  }
  absl::Status SnapshotState(int64_t id, PendingOperatorSnapshot* out) override {
    SLUICE_RETURN_IF_ERROR(Base::SnapshotState(id, out));
    out->snapshot.broadcast_states = broadcast_.Snapshot();
    return absl::OkStatus();
  }
  void ProcessWatermark(Timestamp watermark) override {
    watermark_ = watermark;
    Base::ProcessWatermark(watermark);
  }

  void ProcessBatch1(Batch<In1>& batch) override {
    this->ProcessKeyed(batch, selector_, [this](const In1& value, auto& ctx, auto& out) {
      this->fn_.ProcessElement(value, ctx, out);
    });
  }
  void ProcessBatch2(Batch<In2>& batch) override {
    typename F::Context ctx(this->ctx_.processing_time, &watermark_, &this->side_outputs_);
    ctx.BindBroadcast(&broadcast_);
    Collector<Out> collector(&this->out_, kNoTimestamp);
    this->RunUserCode([&] {
      for (const auto& r : batch) {
        ctx.set_timestamp(r.timestamp);
        collector.set_timestamp(r.timestamp);
        this->fn_.ProcessBroadcastElement(r.value, ctx, collector);
      }
    });
    this->Emit(this->out_);
    this->side_outputs_.Flush();
  }

 private:
  KS selector_;
  BroadcastStateStore broadcast_;
  Timestamp watermark_ = kMinWatermark;
};

}  // namespace sluice::internal
