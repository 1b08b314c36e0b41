#pragma once

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/function/functions.h"
#include "sluice/operator/stream_operator.h"
#include "sluice/operators/keyed_backend.h"
#include "sluice/operators/keyed_operators.h"
#include "sluice/operators/window/assigners.h"
#include "sluice/operators/window/evictors.h"
#include "sluice/operators/window/merging_window_set.h"
#include "sluice/operators/window/triggers.h"
#include "sluice/operators/window/window_functions.h"
#include "sluice/state/heap_keyed_state_backend.h"
#include "sluice/timer/internal_timer_service.h"

namespace sluice::internal {

// What a window keeps per (key, window), as policies of the window operator:
//   using Acc;  Acc Create(const In&, Timestamp);  void Add(Acc&, const In&, Timestamp);
//   void Merge(Acc& into, Acc&&);

/// Incremental reduce: the window holds one value.
template <typename T, typename F>
struct ReduceContents {
  using Acc = T;
  F fn;
  Acc Create(const T& v, Timestamp) const { return v; }
  void Add(Acc& acc, const T& v, Timestamp) { acc = fn(acc, v); }
  void Merge(Acc& into, Acc&& from) { into = fn(into, from); }
};

/// Incremental aggregation: the window holds an accumulator.
template <typename In, typename A>
struct AggregateContents {
  using Acc = typename A::AccumulatorType;
  A fn;
  Acc Create(const In& v, Timestamp) const {
    Acc acc = fn.CreateAccumulator();
    fn.Add(v, acc);
    return acc;
  }
  void Add(Acc& acc, const In& v, Timestamp) const { fn.Add(v, acc); }
  void Merge(Acc& into, Acc&& from) const { into = fn.Merge(std::move(into), from); }
};

/// No pre-aggregation: the window holds all its elements (for ProcessWindowFunction).
template <typename In>
struct ListContents {
  using Acc = std::vector<In>;
  Acc Create(const In& v, Timestamp) const { return {v}; }
  void Add(Acc& acc, const In& v, Timestamp) const { acc.push_back(v); }
  void Merge(Acc& into, Acc&& from) const {
    for (auto& e : from) into.push_back(std::move(e));
  }
};

/// With an evictor: the window holds all its elements with their timestamps.
template <typename In>
struct EvictingContents {
  using Acc = TimestampedValues<In>;
  Acc Create(const In& v, Timestamp ts) const { return {{ts, v}}; }
  void Add(Acc& acc, const In& v, Timestamp ts) const { acc.emplace_back(ts, v); }
  void Merge(Acc& into, Acc&& from) const {
    for (auto& e : from) into.push_back(std::move(e));
  }
};

// How a firing window's contents become output, as policies:
//   void Open(RuntimeContext&); void Close();
//   void Emit(const K&, Ctx&, Acc&, Collector<Out>&);  void Clear(Ctx&);
// (Emit may change the contents: an evictor removes elements.)

/// Emits the reduced value itself.
struct PassThroughEmitter {
  void Open(RuntimeContext&) {}
  void Close() {}
  template <typename K, typename Ctx, typename Acc, typename Out>
  void Emit(const K&, Ctx&, const Acc& acc, Collector<Out>& out) {
    out.Collect(acc);
  }
  template <typename Ctx>
  void Clear(Ctx&) {}
};

/// Emits the aggregate's result.
template <typename A>
struct AggregateResultEmitter {
  A fn;
  void Open(RuntimeContext&) {}
  void Close() {}
  template <typename K, typename Ctx, typename Acc, typename Out>
  void Emit(const K&, Ctx&, const Acc& acc, Collector<Out>& out) {
    out.Collect(fn.GetResult(acc));
  }
  template <typename Ctx>
  void Clear(Ctx&) {}
};

/// Hands the contents to a ProcessWindowFunction: all elements, or (combined with Reduce or
/// Aggregate) the one pre-aggregated result made by `ToResult`.
template <typename P, typename ToResult>
struct ProcessEmitter {
  P fn;
  ToResult to_result;
  void Open(RuntimeContext& ctx) { fn.Open(ctx); }
  void Close() { fn.Close(); }
  template <typename K, typename Ctx, typename Acc, typename Out>
  void Emit(const K& key, Ctx& ctx, const Acc& acc, Collector<Out>& out) {
    if constexpr (std::is_same_v<ToResult, void*>) {
      fn.Process(key, ctx, acc, out);
    } else {
      one_[0] = to_result(acc);
      fn.Process(key, ctx, one_, out);
    }
  }
  template <typename Ctx>
  void Clear(Ctx& ctx) {
    fn.Clear(ctx);
  }
  std::vector<typename P::InputType> one_ = std::vector<typename P::InputType>(1);
};

/// Runs an evictor around another emitter: removes elements before, builds the contents the
/// window would have held without an evictor (`InnerContents`: reduced, aggregated or the
/// list) from what is left, emits them through `Inner`, then removes elements after.
template <typename Inner, typename InnerContents, typename Ev>
struct EvictingEmitter {
  Inner inner;
  InnerContents contents;
  Ev evictor;
  void Open(RuntimeContext& ctx) { inner.Open(ctx); }
  void Close() { inner.Close(); }
  template <typename K, typename Ctx, typename Elements, typename Out>
  void Emit(const K& key, Ctx& ctx, Elements& elements, Collector<Out>& out) {
    evictor.EvictBefore(elements);
    if (!elements.empty()) {
      auto acc = contents.Create(elements.front().second, elements.front().first);
      for (size_t i = 1; i < elements.size(); ++i) {
        contents.Add(acc, elements[i].second, elements[i].first);
      }
      inner.Emit(key, ctx, acc, out);
    }
    evictor.EvictAfter(elements);
  }
  template <typename Ctx>
  void Clear(Ctx& ctx) {
    inner.Clear(ctx);
  }
};

/// Settings of a window operator besides its policies.
template <typename In>
struct WindowSettings {
  int64_t allowed_lateness_ms = 0;
  std::string late_tag;  // side output for late records ("" drops them)
};

/// The window operator, as Flink's WindowOperator: assigns each element to windows, keeps
/// window contents in the keyed state backend namespaced by window, asks the trigger when
/// to fire and purge, honours allowed lateness, sends records later than that to the late
/// side output (or drops and counts them), merges session windows, and cleans each window
/// up when the watermark (or clock) passes its end plus the allowed lateness. Firing
/// output carries the window's max timestamp. Task thread only.
template <typename K, typename In, typename Out, typename Assigner, typename Contents,
          typename Emitter, typename KeySelector>
class WindowOperator final
    : public OneInputOperatorWithOutput<In, Out>,
      public InternalTimerService<K, typename Assigner::WindowType>::Triggerable {
 public:
  using W = typename Assigner::WindowType;
  using Acc = typename Contents::Acc;
  static constexpr bool kEventTime = Assigner::kEventTime;
  static constexpr bool kMerging = Assigner::kMerging;

  WindowOperator(KeySelector selector, Assigner assigner,
                 std::unique_ptr<Trigger<K, In, W>> trigger, Contents contents, Emitter emitter,
                 WindowSettings<In> settings)
      : selector_(std::move(selector)),
        assigner_(std::move(assigner)),
        trigger_(std::move(trigger)),
        contents_(std::move(contents)),
        emitter_(std::move(emitter)),
        settings_(std::move(settings)) {}

  // Each subtask gets its own trigger instance.
  WindowOperator(const WindowOperator& o)
      : selector_(o.selector_),
        assigner_(o.assigner_),
        trigger_(o.trigger_->Clone()),
        contents_(o.contents_),
        emitter_(o.emitter_),
        settings_(o.settings_) {}

  void SetSideOutput(const std::string& tag, std::type_index, ErasedOutput* output) override {
    if (tag == settings_.late_tag) late_output_ = static_cast<Output<In>*>(output);
  }

  void Open() override {
    const auto& ctx = this->ctx_;
    backend_ =
        MakeKeyedBackend<K>(ctx.info, ctx.key_group_range, &this->restored_, &owned_backend_);
    backend_.SetProcessingTimeService(ctx.processing_time);
    contents_table_ = AnyStateTable<K, W, Acc>(backend_, "window-contents");
    if constexpr (kMerging) {
      merging_state_ = backend_.Visit([](auto& b) -> ValueState<std::vector<std::pair<W, W>>>* {
        return b.GetState(ValueStateDescriptor<std::vector<std::pair<W, W>>>("merging-window-set"));
      });
    }
    typename InternalTimerService<K, W>::KeyContext key_ctx{
        [this]() -> const K& { return backend_.CurrentKey(); },
        [this](const K& key) { backend_.SetCurrentKey(key); }};
    timers_ =
        std::make_unique<InternalTimerService<K, W>>(ctx.processing_time, std::move(key_ctx), this);
    trigger_ctx_.emplace(backend_, timers_.get());
    runtime_.emplace(ctx.info, ctx.processing_time, ctx.metrics, backend_, timers_.get());
    late_dropped_ = &ctx.metrics->GetCounter("late_records_dropped");
    if (this->restored_) {
      ThrowIfError(RestoreKeyedOperator(*backend_.base(), timers_.get(), *this->restored_));
      this->restored_.reset();
    }
    this->RunUserCode([&] { emitter_.Open(*runtime_); });
  }

  void ProcessBatch(Batch<In>& batch) override {
    Collector<Out> collector(&out_, kNoTimestamp);
    const Timestamp now = kEventTime ? 0 : this->ctx_.processing_time->CurrentProcessingTime();
    this->RunUserCode([&] {
      for (auto& r : batch) {
        backend_.SetCurrentKey(K(selector_(r.value)));
        windows_.clear();
        assigner_.AssignWindows(r.value, r.timestamp, now, windows_);
        bool skipped;
        if constexpr (kMerging) {
          skipped = AddMerging(r, collector);
        } else {
          skipped = AddToWindows(r, collector);
        }
        if (skipped && IsElementLate(r.timestamp)) {
          if (late_output_ != nullptr) {
            late_batch_.Add(r.value, r.timestamp);
          } else {
            late_dropped_->Inc();
          }
        }
      }
    });
    this->Emit(out_);
    if (!late_batch_.empty()) {
      late_output_->Push(late_batch_);
      late_batch_.clear();
    }
  }

  void ProcessWatermark(Timestamp watermark) override {
    Collector<Out> collector(&out_, kNoTimestamp);
    collector_ = &collector;
    this->RunUserCode([&] { timers_->AdvanceWatermark(watermark); });
    collector_ = nullptr;
    this->Emit(out_);
    this->output_->PushWatermark(watermark);
  }

  void Close() override {
    if (runtime_) this->RunUserCode([&] { emitter_.Close(); });
  }

  const KeyedStateBackendBase* keyed_state() const override { return owned_backend_.get(); }

  absl::Status SnapshotState(int64_t, PendingOperatorSnapshot* out) override {
    SnapshotKeyedOperator(*backend_.base(), timers_.get(), this->ctx_.info.max_parallelism, out);
    return absl::OkStatus();
  }
  void NotifyCheckpointComplete(int64_t id) override {
    NotifyKeyedCheckpointComplete(*backend_.base(), id);
  }

 private:
  // --- elements ---

  /// Adds the element to each of its windows; returns true if every window was late.
  bool AddToWindows(const Record<In>& r, Collector<Out>& collector) {
    bool skipped = true;
    const K& key = backend_.CurrentKey();
    const int kg = backend_.CurrentKeyGroup();
    for (const W& w : windows_) {
      if (IsWindowLate(w)) continue;
      skipped = false;
      Acc* acc = contents_table_.Find(kg, key, w);
      const bool first = acc == nullptr;
      if (first) {
        contents_table_.Put(kg, key, w, contents_.Create(r.value, r.timestamp));
      } else {
        contents_.Add(*acc, r.value, r.timestamp);
      }
      trigger_ctx_->Bind(&w, first);
      TriggerResult result = trigger_->OnElement(r.value, r.timestamp, w, *trigger_ctx_);
      Act(result, w, w, collector);
      // The cleanup time depends only on the window: one timer from its first element.
      if (first) RegisterCleanupTimer(w);
    }
    return skipped;
  }

  bool AddMerging(const Record<In>& r, Collector<Out>& collector) {
    bool skipped = true;
    const int kg = backend_.CurrentKeyGroup();
    MergingWindowSet<W> set(merging_state_->ValueOr({}));
    for (const W& w : windows_) {
      bool merged = false;
      W actual = set.AddWindow(
          w, assigner_,
          [&](const W& result, const std::vector<W>& merged_windows, const W& result_state,
              const std::vector<W>& merged_state_windows) {
            merged = true;
            MergeWindows(kg, result, merged_windows, result_state, merged_state_windows);
          });
      if (IsWindowLate(actual)) {
        set.Retire(actual);
        continue;
      }
      skipped = false;
      const W state_window = *set.StateWindow(actual);
      const K& key = backend_.CurrentKey();
      Acc* acc = contents_table_.Find(kg, key, state_window);
      const bool first = acc == nullptr;
      if (first) {
        contents_table_.Put(kg, key, state_window, contents_.Create(r.value, r.timestamp));
      } else {
        contents_.Add(*acc, r.value, r.timestamp);
      }
      // A window just made by merging is new to the trigger too: merging cleared the
      // timers of the windows it replaced.
      trigger_ctx_->Bind(&actual, first || merged);
      TriggerResult result = trigger_->OnElement(r.value, r.timestamp, actual, *trigger_ctx_);
      Act(result, actual, state_window, collector);
      if (first || merged) RegisterCleanupTimer(actual);
    }
    if (set.changed()) merging_state_->Update(set.mapping());
    return skipped;
  }

  void MergeWindows(int kg, const W& result, const std::vector<W>& merged_windows,
                    const W& result_state, const std::vector<W>& merged_state_windows) {
    if (kEventTime && CleanupTime(result) <= timers_->CurrentWatermark()) {
      throw std::logic_error("merging produced a window that is already late");
    }
    trigger_ctx_->Bind(&result, false, &merged_windows);
    trigger_->OnMerge(result, *trigger_ctx_);
    for (const W& m : merged_windows) {
      trigger_ctx_->Bind(&m);
      trigger_->Clear(m, *trigger_ctx_);
      DeleteCleanupTimer(m);
    }
    const K& key = backend_.CurrentKey();
    for (const W& from_window : merged_state_windows) {
      Acc* from = contents_table_.Find(kg, key, from_window);
      if (from == nullptr) continue;
      Acc moved = std::move(*from);
      contents_table_.Remove(kg, key, from_window);
      Acc* into = contents_table_.Find(kg, key, result_state);
      if (into == nullptr) {
        contents_table_.Put(kg, key, result_state, std::move(moved));
      } else {
        contents_.Merge(*into, std::move(moved));
      }
    }
  }

  /// Fires and/or purges `window` (whose contents live under `state_window`).
  void Act(TriggerResult result, const W& window, const W& state_window,
           Collector<Out>& collector) {
    if (result == TriggerResult::kContinue) return;
    const K& key = backend_.CurrentKey();
    const int kg = backend_.CurrentKeyGroup();
    if (IsFire(result)) {
      if (Acc* acc = contents_table_.Find(kg, key, state_window)) {
        EmitWindow(window, *acc, collector);
      }
    }
    if (IsPurge(result)) contents_table_.Remove(kg, key, state_window);
  }

  void EmitWindow(const W& window, Acc& acc, Collector<Out>& collector) {
    process_ctx_.Bind(backend_, &window, timers_->CurrentWatermark(),
                      timers_->CurrentProcessingTime());
    collector.set_timestamp(window.max_timestamp());
    emitter_.Emit(backend_.CurrentKey(), process_ctx_, acc, collector);
  }

  // --- timers ---

  void OnEventTime(const Timer<K, W>& t) override { OnTimer(t, /*event_time=*/true); }
  void OnProcessingTime(const Timer<K, W>& t) override {
    Collector<Out> collector(&out_, kNoTimestamp);
    collector_ = &collector;
    this->RunUserCode([&] { OnTimer(t, /*event_time=*/false); });
    collector_ = nullptr;
    this->Emit(out_);
  }

  void OnTimer(const Timer<K, W>& t, bool event_time) {
    const W& window = t.ns;
    W state_window = window;
    std::optional<MergingWindowSet<W>> set;
    if constexpr (kMerging) {
      set.emplace(merging_state_->ValueOr({}));
      std::optional<W> sw = set->StateWindow(window);
      if (!sw) return;  // the window was merged away; its timer is stale
      state_window = *sw;
    }
    trigger_ctx_->Bind(&window);
    TriggerResult result = event_time
                               ? trigger_->OnEventTime(t.timestamp, window, *trigger_ctx_)
                               : trigger_->OnProcessingTime(t.timestamp, window, *trigger_ctx_);
    Act(result, window, state_window, *collector_);
    if (event_time == kEventTime && t.timestamp == CleanupTime(window)) {
      ClearAllState(window, state_window, set);
    }
    if (set && set->changed()) merging_state_->Update(set->mapping());
  }

  void ClearAllState(const W& window, const W& state_window,
                     std::optional<MergingWindowSet<W>>& set) {
    contents_table_.Remove(backend_.CurrentKeyGroup(), backend_.CurrentKey(), state_window);
    trigger_ctx_->Bind(&window);
    trigger_->Clear(window, *trigger_ctx_);
    process_ctx_.Bind(backend_, &window, timers_->CurrentWatermark(),
                      timers_->CurrentProcessingTime());
    emitter_.Clear(process_ctx_);
    if (set) set->Retire(window);
  }

  // --- lateness ---

  Timestamp CleanupTime(const W& window) const {
    const Timestamp max = window.max_timestamp();
    if constexpr (kEventTime) {
      const int64_t lateness = settings_.allowed_lateness_ms;
      return max > std::numeric_limits<int64_t>::max() - lateness ? kMaxWatermark : max + lateness;
    }
    return max;
  }
  bool IsWindowLate(const W& window) const {
    return kEventTime && CleanupTime(window) <= timers_->CurrentWatermark();
  }
  bool IsElementLate(Timestamp ts) const {
    return kEventTime && ts + settings_.allowed_lateness_ms <= timers_->CurrentWatermark();
  }
  void RegisterCleanupTimer(const W& window) {
    const Timestamp t = CleanupTime(window);
    if (t == kMaxWatermark) return;  // a global window is never cleaned up
    trigger_ctx_->Bind(&window);
    if constexpr (kEventTime) {
      timers_->RegisterEventTimeTimer(t);
    } else {
      timers_->RegisterProcessingTimeTimer(t);
    }
  }
  void DeleteCleanupTimer(const W& window) {
    const Timestamp t = CleanupTime(window);
    if (t == kMaxWatermark) return;
    trigger_ctx_->Bind(&window);
    if constexpr (kEventTime) {
      timers_->DeleteEventTimeTimer(t);
    } else {
      timers_->DeleteProcessingTimeTimer(t);
    }
  }

  KeySelector selector_;
  Assigner assigner_;
  std::unique_ptr<Trigger<K, In, W>> trigger_;
  Contents contents_;
  Emitter emitter_;
  WindowSettings<In> settings_;

  std::unique_ptr<KeyedStateBackendBase> owned_backend_;
  AnyKeyedBackend<K> backend_;
  AnyStateTable<K, W, Acc> contents_table_;
  ValueState<std::vector<std::pair<W, W>>>* merging_state_ = nullptr;
  std::unique_ptr<InternalTimerService<K, W>> timers_;
  std::optional<TriggerContext<K, W>> trigger_ctx_;
  std::optional<KeyedRuntimeContext<K>> runtime_;
  ProcessWindowContext<K, W> process_ctx_;
  Counter* late_dropped_ = nullptr;
  Output<In>* late_output_ = nullptr;
  std::vector<W> windows_;
  Batch<Out> out_;
  Batch<In> late_batch_;
  Collector<Out>* collector_ = nullptr;  // while timers fire
};

}  // namespace sluice::internal
