#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "sluice/function/functions.h"
#include "sluice/operator/stream_operator.h"
#include "sluice/operators/function_traits.h"
#include "sluice/operators/keyed_backend.h"
#include "sluice/state/heap_keyed_state_backend.h"
#include "sluice/timer/internal_timer_service.h"

namespace sluice::internal {

class BroadcastStateStore;

/// The context a keyed function's records are processed with: its read-only context if it
/// has one (a broadcast function's data side), else its Context.
template <typename F>
struct ElementContextOf {
  using Type = typename F::Context;
};
template <typename F>
requires requires { typename F::ReadOnlyContext; }
struct ElementContextOf<F> {
  using Type = typename F::ReadOnlyContext;
};

/// Common part of operators that run a keyed user function `F` (one input or two: `Base`):
/// the keyed state of the operator's key groups and the timers, their snapshot and restore,
/// the function's lifecycle, and event-time timers fired before a watermark is forwarded (so
/// their output precedes the watermark downstream). `F` has Open(KeyedRuntimeContext<K>&),
/// OnTimer(timestamp, F::OnTimerContext&, Collector<Out>&) and Close().
template <typename Base, typename K, typename Out, typename F>
class KeyedFunctionOperator : public Base,
                              public InternalTimerService<K, VoidNamespace>::Triggerable {
 public:
  explicit KeyedFunctionOperator(F fn) : fn_(std::move(fn)) {}

  void SetSideOutput(const std::string& tag, std::type_index type, ErasedOutput* output) override {
    side_outputs_.Connect(tag, type, output);
  }

  void Open() override {
    const OperatorContext& ctx = this->ctx_;
    side_outputs_.CountDroppedIn(*ctx.metrics);
    backend_ =
        MakeKeyedBackend<K>(ctx.info, ctx.key_group_range, &this->restored_, &owned_backend_);
    backend_.SetProcessingTimeService(ctx.processing_time);  // the clock of state TTL
    typename Timers::KeyContext key_ctx{[this]() -> const K& { return backend_.CurrentKey(); },
                                        [this](const K& key) { backend_.SetCurrentKey(key); }};
    timers_ = std::make_unique<Timers>(ctx.processing_time, std::move(key_ctx), this);
    runtime_.emplace(ctx.info, ctx.processing_time, ctx.metrics, backend_, timers_.get());
    if (this->restored_) {
      ThrowIfError(RestoreKeyedOperator(*backend_.base(), timers_.get(), *this->restored_));
      this->RunUserCode([&] { ThrowIfError(RestoreFunctionState(fn_, *this->restored_)); });
      this->restored_.reset();
    }
    this->RunUserCode([&] { fn_.Open(*runtime_); });
  }

  absl::Status SnapshotState(int64_t id, PendingOperatorSnapshot* out) override {
    SnapshotKeyedOperator(*backend_.base(), timers_.get(), this->ctx_.info.max_parallelism, out);
    this->RunUserCode([&] { SnapshotFunctionState(fn_, id, out->snapshot); });
    return absl::OkStatus();
  }
  void NotifyCheckpointComplete(int64_t id) override {
    NotifyKeyedCheckpointComplete(*backend_.base(), id);
    this->RunUserCode([&] { NotifyFunctionCheckpointComplete(fn_, id); });
  }
  void NotifyCheckpointAborted(int64_t id) override {
    this->RunUserCode([&] { NotifyFunctionCheckpointAborted(fn_, id); });
  }

  void ProcessWatermark(Timestamp watermark) override {
    timers_->AdvanceWatermark(watermark);
    this->Emit(out_);
    side_outputs_.Flush();
    this->output_->PushWatermark(watermark);
  }

  void Close() override {
    if (runtime_) this->RunUserCode([&] { fn_.Close(); });
  }

  const KeyedStateBackendBase* keyed_state() const override { return owned_backend_.get(); }

 protected:
  using Timers = InternalTimerService<K, VoidNamespace>;

  /// Runs `call(value, ctx, collector)` for each record of `batch` under the key `selector`
  /// gives it, then sends what it emitted.
  template <typename In, typename KeySelector, typename Call>
  void ProcessKeyed(Batch<In>& batch, KeySelector& selector, Call call) {
    Collector<Out> collector(&out_, kNoTimestamp);
    typename ElementContextOf<F>::Type ctx;
    BindBroadcast(ctx);
    this->RunUserCode([&] {
      for (const auto& r : batch) {
        backend_.SetCurrentKey(K(selector(r.value)));
        backend_.SetEventTime(std::max(r.timestamp, timers_->CurrentWatermark()));
        ctx.Bind(&backend_.CurrentKey(), timers_.get(), &side_outputs_);
        ctx.set_timestamp(r.timestamp);
        collector.set_timestamp(r.timestamp);
        call(r.value, ctx, collector);
      }
    });
    this->Emit(out_);
    side_outputs_.Flush();
  }

  /// Gives contexts of a broadcast function read access to `*store` (null: none).
  void SetBroadcastStore(BroadcastStateStore* store) { broadcast_ = store; }
  template <typename Context>
  void BindBroadcast(Context& ctx) {
    if constexpr (requires { ctx.BindBroadcast(broadcast_); }) ctx.BindBroadcast(broadcast_);
  }

  F fn_;
  Batch<Out> out_;
  SideOutputs side_outputs_;

 private:
  void FireTimer(const Timer<K, VoidNamespace>& t, TimeDomain domain) {
    backend_.SetEventTime(domain == TimeDomain::kEventTime ? t.timestamp
                                                           : timers_->CurrentWatermark());
    typename F::OnTimerContext ctx;
    BindBroadcast(ctx);
    ctx.Bind(&backend_.CurrentKey(), timers_.get(), &side_outputs_);
    ctx.set_timestamp(t.timestamp);
    ctx.set_domain(domain);
    Collector<Out> collector(&out_, t.timestamp);
    this->RunUserCode([&] { fn_.OnTimer(t.timestamp, ctx, collector); });
  }
  void OnEventTime(const Timer<K, VoidNamespace>& t) override {
    FireTimer(t, TimeDomain::kEventTime);
    if (out_.size() >= 1024) this->Emit(out_);
  }
  void OnProcessingTime(const Timer<K, VoidNamespace>& t) override {
    FireTimer(t, TimeDomain::kProcessingTime);
    this->Emit(out_);
    side_outputs_.Flush();
  }

  std::unique_ptr<KeyedStateBackendBase> owned_backend_;
  AnyKeyedBackend<K> backend_;
  std::unique_ptr<Timers> timers_;
  std::optional<KeyedRuntimeContext<K>> runtime_;
  BroadcastStateStore* broadcast_ = nullptr;
};

/// Runs a KeyedProcessFunction: sets the current key per record.
template <typename K, typename In, typename Out, typename F, typename KeySelector>
class KeyedProcessOperator final
    : public KeyedFunctionOperator<OneInputOperatorWithOutput<In, Out>, K, Out, F> {
 public:
  KeyedProcessOperator(F fn, KeySelector selector)
      : KeyedFunctionOperator<OneInputOperatorWithOutput<In, Out>, K, Out, F>(std::move(fn)),
        selector_(std::move(selector)) {}

  void ProcessBatch(Batch<In>& batch) override {
    this->ProcessKeyed(batch, selector_, [this](const In& value, auto& ctx, auto& out) {
      this->fn_.ProcessElement(value, ctx, out);
    });
  }

 private:
  KeySelector selector_;
};

/// Keyed rolling reduce: keeps one value per key in keyed state and emits the updated value
/// for every input, as Flink's KeyedStream.reduce. Reads its state table directly: one hash
/// for the key group and one map lookup per record.
template <typename K, typename T, typename F, typename KeySelector>
class KeyedReduceOperator final : public OneInputOperatorWithOutput<T, T> {
 public:
  KeyedReduceOperator(F fn, KeySelector selector)
      : fn_(std::move(fn)), selector_(std::move(selector)) {}

  void Open() override {
    backend_ = MakeKeyedBackend<K>(this->ctx_.info, this->ctx_.key_group_range, &this->restored_,
                                   &owned_backend_);
    if (this->restored_) {
      ThrowIfError(internal::RestoreKeyedOperator<InternalTimerService<K, VoidNamespace>>(
          *backend_.base(), nullptr, *this->restored_));
      this->restored_.reset();
    }
    table_ = AnyStateTable<K, VoidNamespace, T>(backend_, "reduce");
    range_ = this->ctx_.key_group_range;
    max_parallelism_ = this->ctx_.info.max_parallelism;
  }

  void ProcessBatch(Batch<T>& batch) override {
    this->RunUserCode([&] {
      for (auto& r : batch) {
        decltype(auto) key = selector_(r.value);
        const int kg = KeyGroupFor(key, max_parallelism_);
        if (!range_.Contains(kg)) [[unlikely]] {
          backend_.SetCurrentKey(K(key), kg);  // throws the descriptive error
        }
        T* current = table_.Find(kg, key, VoidNamespace{});
        if (current == nullptr) {
          out_.Add(r.value, r.timestamp);
          K owned_key(key);  // before the value (which the key may point into) is moved
          table_.Put(kg, owned_key, VoidNamespace{}, std::move(r.value));
        } else {
          *current = fn_(*current, r.value);
          out_.Add(*current, r.timestamp);
        }
      }
    });
    this->Emit(out_);
  }

  const KeyedStateBackendBase* keyed_state() const override { return owned_backend_.get(); }

  absl::Status SnapshotState(int64_t, PendingOperatorSnapshot* out) override {
    internal::SnapshotKeyedOperator<InternalTimerService<K, VoidNamespace>>(
        *backend_.base(), nullptr, this->ctx_.info.max_parallelism, out);
    return absl::OkStatus();
  }
  void NotifyCheckpointComplete(int64_t id) override {
    NotifyKeyedCheckpointComplete(*backend_.base(), id);
  }

 private:
  F fn_;
  KeySelector selector_;
  std::unique_ptr<KeyedStateBackendBase> owned_backend_;
  AnyKeyedBackend<K> backend_;
  AnyStateTable<K, VoidNamespace, T> table_;
  KeyGroupRange range_;
  int max_parallelism_ = kDefaultMaxParallelism;
  Batch<T> out_;
};

}  // namespace sluice::internal
