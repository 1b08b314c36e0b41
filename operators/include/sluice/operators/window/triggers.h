#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "sluice/core/time.h"
#include "sluice/state/any_keyed_backend.h"
#include "sluice/timer/internal_timer_service.h"

namespace sluice {

/// What a trigger decides for a window.
enum class TriggerResult { kContinue, kFire, kPurge, kFireAndPurge };

inline bool IsFire(TriggerResult r) {
  return r == TriggerResult::kFire || r == TriggerResult::kFireAndPurge;
}
inline bool IsPurge(TriggerResult r) {
  return r == TriggerResult::kPurge || r == TriggerResult::kFireAndPurge;
}

/// What a trigger may do for the (key, window) it is called for: read time, set and delete
/// timers, and keep its own state scoped to the window. Provided by the window operator.
template <typename K, typename W>
class TriggerContext {
 public:
  TriggerContext(AnyKeyedBackend<K> backend, InternalTimerService<K, W>* timers)
      : backend_(backend), timers_(timers) {}

  const W& window() const { return *window_; }
  Timestamp CurrentWatermark() const { return timers_->CurrentWatermark(); }
  Timestamp CurrentProcessingTime() const { return timers_->CurrentProcessingTime(); }
  /// True while the element being added is the first of its window, or its window was just
  /// made by merging: timers that depend only on the window are not set yet. (Flink's
  /// triggers set them on every element; this saves a timer lookup per element.)
  bool IsFirstElementOfWindow() const { return first_element_; }

  void RegisterEventTimeTimer(Timestamp t) { timers_->RegisterEventTimeTimer(t); }
  void RegisterProcessingTimeTimer(Timestamp t) { timers_->RegisterProcessingTimeTimer(t); }
  void DeleteEventTimeTimer(Timestamp t) { timers_->DeleteEventTimeTimer(t); }
  void DeleteProcessingTimeTimer(Timestamp t) { timers_->DeleteProcessingTimeTimer(t); }

  /// Per-window trigger state. The handle is valid for the current window only.
  template <typename V>
  ValueState<V>& GetState(const ValueStateDescriptor<V>& d) {
    return backend_.Visit([&](auto& b) -> ValueState<V>& {
      auto* h = b.template GetState<W>(d);
      h->SetCurrentNamespace(*window_);
      return *h;
    });
  }
  template <typename V>
  ReducingState<V>& GetReducingState(const ReducingStateDescriptor<V>& d) {
    return backend_.Visit([&](auto& b) -> ReducingState<V>& {
      auto* h = b.template GetReducingState<W>(d);
      h->SetCurrentNamespace(*window_);
      return *h;
    });
  }

  /// While merging windows: the windows merged into the current one.
  const std::vector<W>& merged_windows() const { return *merged_; }
  /// While merging: folds the reducing state of the merged windows into the current one.
  template <typename V>
  void MergeReducingState(const ReducingStateDescriptor<V>& d) {
    backend_.Visit([&](auto& b) {
      auto* h = b.template GetReducingState<W>(d);
      for (const W& w : *merged_) {
        if (w == *window_) continue;
        h->SetCurrentNamespace(w);
        std::optional<V> v = h->Get();
        if (!v) continue;
        h->Clear();
        h->SetCurrentNamespace(*window_);
        h->Add(std::move(*v));
      }
      h->SetCurrentNamespace(*window_);
    });
  }

  // Set by the window operator before each call.
  void Bind(const W* window, bool first_element = false, const std::vector<W>* merged = nullptr) {
    window_ = window;
    first_element_ = first_element;
    merged_ = merged;
    timers_->SetCurrentNamespace(*window);
  }

 private:
  AnyKeyedBackend<K> backend_;
  InternalTimerService<K, W>* timers_;
  const W* window_ = nullptr;
  bool first_element_ = false;
  const std::vector<W>* merged_ = nullptr;
};

/// Decides when a window fires and when its contents are purged. Implement it for custom
/// firing rules; one copy runs per subtask. K is the stream's key type (it types the
/// trigger's own state), T the element type, W the window type. All on the task thread.
template <typename K, typename T, typename W>
class Trigger {
 public:
  virtual ~Trigger() = default;
  virtual TriggerResult OnElement(const T& element, Timestamp timestamp, const W& window,
                                  TriggerContext<K, W>& ctx) = 0;
  virtual TriggerResult OnEventTime(Timestamp time, const W& window, TriggerContext<K, W>& ctx) = 0;
  virtual TriggerResult OnProcessingTime(Timestamp time, const W& window,
                                         TriggerContext<K, W>& ctx) = 0;
  /// Whether the trigger supports merging windows (sessions).
  virtual bool CanMerge() const { return false; }
  /// Called when windows merged into `window` (ctx.merged_windows()).
  virtual void OnMerge(const W& /*window*/, TriggerContext<K, W>& /*ctx*/) {}
  /// The window is being discarded: delete its timers and state.
  virtual void Clear(const W& window, TriggerContext<K, W>& ctx) = 0;
  virtual std::unique_ptr<Trigger> Clone() const = 0;
};

namespace internal {
template <typename Derived, typename K, typename T, typename W>
class TriggerBase : public Trigger<K, T, W> {
 public:
  std::unique_ptr<Trigger<K, T, W>> Clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }
};
}  // namespace internal

namespace internal {
/// Timers and "now" in one time domain, so a trigger can be written once for both.
template <bool kEventTime>
struct TimeDomain {
  template <typename Ctx>
  static void Register(Ctx& ctx, Timestamp t) {
    if constexpr (kEventTime) {
      ctx.RegisterEventTimeTimer(t);
    } else {
      ctx.RegisterProcessingTimeTimer(t);
    }
  }
  template <typename Ctx>
  static void Delete(Ctx& ctx, Timestamp t) {
    if constexpr (kEventTime) {
      ctx.DeleteEventTimeTimer(t);
    } else {
      ctx.DeleteProcessingTimeTimer(t);
    }
  }
  template <typename Ctx>
  static Timestamp Now(const Ctx& ctx) {
    return kEventTime ? ctx.CurrentWatermark() : ctx.CurrentProcessingTime();
  }
};
}  // namespace internal

/// Fires when time passes the end of the window: the watermark (EventTimeTrigger, default of
/// event-time assigners; a late element of a window kept by allowed lateness fires it at
/// once) or the task's clock (ProcessingTimeTrigger, default of processing-time assigners).
template <typename K, typename T, typename W, bool kEventTime>
class WindowEndTrigger final
    : public internal::TriggerBase<WindowEndTrigger<K, T, W, kEventTime>, K, T, W> {
  using Domain = internal::TimeDomain<kEventTime>;

 public:
  TriggerResult OnElement(const T&, Timestamp, const W& window,
                          TriggerContext<K, W>& ctx) override {
    if (kEventTime && window.max_timestamp() <= ctx.CurrentWatermark()) return TriggerResult::kFire;
    // The timer depends only on the window: set when its first element arrived.
    if (ctx.IsFirstElementOfWindow()) Domain::Register(ctx, window.max_timestamp());
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp time, const W& window, TriggerContext<K, W>&) override {
    return kEventTime && time == window.max_timestamp() ? TriggerResult::kFire
                                                        : TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const W&, TriggerContext<K, W>&) override {
    return kEventTime ? TriggerResult::kContinue : TriggerResult::kFire;
  }
  bool CanMerge() const override { return true; }
  void OnMerge(const W& window, TriggerContext<K, W>& ctx) override {
    // Only if not already past: a late merge fires through OnElement instead.
    if (window.max_timestamp() > Domain::Now(ctx)) Domain::Register(ctx, window.max_timestamp());
  }
  void Clear(const W& window, TriggerContext<K, W>& ctx) override {
    Domain::Delete(ctx, window.max_timestamp());
  }
};

template <typename K, typename T, typename W>
using EventTimeTrigger = WindowEndTrigger<K, T, W, true>;
template <typename K, typename T, typename W>
using ProcessingTimeTrigger = WindowEndTrigger<K, T, W, false>;

/// Fires every `count` elements of a window (the count is per window, in trigger state).
template <typename K, typename T, typename W>
class CountTrigger final : public internal::TriggerBase<CountTrigger<K, T, W>, K, T, W> {
 public:
  explicit CountTrigger(int64_t count) : count_(count) {}
  TriggerResult OnElement(const T&, Timestamp, const W&, TriggerContext<K, W>& ctx) override {
    auto& state = ctx.GetReducingState(Descriptor());
    state.Add(1);
    if (*state.Get() >= count_) {
      state.Clear();
      return TriggerResult::kFire;
    }
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp, const W&, TriggerContext<K, W>&) override {
    return TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const W&, TriggerContext<K, W>&) override {
    return TriggerResult::kContinue;
  }
  bool CanMerge() const override { return true; }
  void OnMerge(const W&, TriggerContext<K, W>& ctx) override {
    ctx.MergeReducingState(Descriptor());
  }
  void Clear(const W&, TriggerContext<K, W>& ctx) override {
    ctx.GetReducingState(Descriptor()).Clear();
  }

 private:
  static ReducingStateDescriptor<int64_t> Descriptor() {
    return ReducingStateDescriptor<int64_t>(
        "count-trigger", [](const int64_t& a, const int64_t& b) { return a + b; });
  }
  int64_t count_;
};

namespace internal {
/// The next periodic firing time of a window, kept as the minimum (so it merges).
inline ReducingStateDescriptor<Timestamp> NextFireDescriptor(const char* name) {
  return ReducingStateDescriptor<Timestamp>(
      name, [](const Timestamp& a, const Timestamp& b) { return std::min(a, b); });
}
inline Timestamp AlignDown(Timestamp t, int64_t interval) {
  return t - (((t % interval) + interval) % interval);
}
}  // namespace internal

/// Fires every `interval` while the window is open (early results), as Flink's
/// ContinuousEventTimeTrigger (kEventTime) and ContinuousProcessingTimeTrigger. The next
/// firing time is per-window state (a minimum, so it merges with sessions); the event-time
/// variant also fires at the window's end.
template <typename K, typename T, typename W, bool kEventTime>
class ContinuousTrigger final
    : public internal::TriggerBase<ContinuousTrigger<K, T, W, kEventTime>, K, T, W> {
 public:
  explicit ContinuousTrigger(int64_t interval_ms) : interval_(interval_ms) {}

  TriggerResult OnElement(const T&, Timestamp timestamp, const W& window,
                          TriggerContext<K, W>& ctx) override {
    if constexpr (kEventTime) {
      if (window.max_timestamp() <= ctx.CurrentWatermark()) return TriggerResult::kFire;
      ctx.RegisterEventTimeTimer(window.max_timestamp());
    }
    auto& next = ctx.GetReducingState(Descriptor());
    if (!next.Get()) {
      const Timestamp base = kEventTime ? timestamp : ctx.CurrentProcessingTime();
      RegisterNext(internal::AlignDown(base, interval_), window, ctx, next);
    }
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp time, const W& window, TriggerContext<K, W>& ctx) override {
    if constexpr (kEventTime) {
      if (time == window.max_timestamp()) return TriggerResult::kFire;
      return OnTimer(time, window, ctx);
    }
    return TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp time, const W& window,
                                 TriggerContext<K, W>& ctx) override {
    if constexpr (!kEventTime) return OnTimer(time, window, ctx);
    return TriggerResult::kContinue;
  }
  bool CanMerge() const override { return true; }
  void OnMerge(const W& window, TriggerContext<K, W>& ctx) override {
    if constexpr (kEventTime) {
      if (window.max_timestamp() > ctx.CurrentWatermark()) {
        ctx.RegisterEventTimeTimer(window.max_timestamp());
      }
    }
    ctx.MergeReducingState(Descriptor());
    if (auto fire = ctx.GetReducingState(Descriptor()).Get()) Register(ctx, *fire);
  }
  void Clear(const W& window, TriggerContext<K, W>& ctx) override {
    auto& next = ctx.GetReducingState(Descriptor());
    if (auto fire = next.Get()) {
      internal::TimeDomain<kEventTime>::Delete(ctx, *fire);
      next.Clear();
    }
    if constexpr (kEventTime) ctx.DeleteEventTimeTimer(window.max_timestamp());
  }

 private:
  static ReducingStateDescriptor<Timestamp> Descriptor() {
    return internal::NextFireDescriptor(kEventTime ? "continuous-event-time-trigger"
                                                   : "continuous-processing-time-trigger");
  }
  TriggerResult OnTimer(Timestamp time, const W& window, TriggerContext<K, W>& ctx) {
    auto& next = ctx.GetReducingState(Descriptor());
    auto fire = next.Get();
    if (fire && *fire == time) {
      next.Clear();
      RegisterNext(time, window, ctx, next);
      return TriggerResult::kFire;
    }
    return TriggerResult::kContinue;
  }
  static void Register(TriggerContext<K, W>& ctx, Timestamp t) {
    internal::TimeDomain<kEventTime>::Register(ctx, t);
  }
  void RegisterNext(Timestamp time, const W& window, TriggerContext<K, W>& ctx,
                    ReducingState<Timestamp>& next) {
    const Timestamp fire = std::min(time + interval_, window.max_timestamp());
    next.Add(fire);
    Register(ctx, fire);
  }
  int64_t interval_;
};

template <typename K, typename T, typename W>
using ContinuousEventTimeTrigger = ContinuousTrigger<K, T, W, true>;
template <typename K, typename T, typename W>
using ContinuousProcessingTimeTrigger = ContinuousTrigger<K, T, W, false>;

/// Fires only when told to from outside: the default of GlobalWindows, which need a trigger.
template <typename K, typename T, typename W>
class NeverTrigger final : public internal::TriggerBase<NeverTrigger<K, T, W>, K, T, W> {
 public:
  TriggerResult OnElement(const T&, Timestamp, const W&, TriggerContext<K, W>&) override {
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp, const W&, TriggerContext<K, W>&) override {
    return TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const W&, TriggerContext<K, W>&) override {
    return TriggerResult::kContinue;
  }
  bool CanMerge() const override { return true; }
  void Clear(const W&, TriggerContext<K, W>&) override {}
};

/// Wraps a trigger so that every firing also purges the window's contents.
template <typename K, typename T, typename W>
class PurgingTrigger final : public Trigger<K, T, W> {
 public:
  explicit PurgingTrigger(std::unique_ptr<Trigger<K, T, W>> inner) : inner_(std::move(inner)) {}
  PurgingTrigger(const PurgingTrigger& o) : inner_(o.inner_->Clone()) {}

  TriggerResult OnElement(const T& e, Timestamp ts, const W& w,
                          TriggerContext<K, W>& ctx) override {
    return Purging(inner_->OnElement(e, ts, w, ctx));
  }
  TriggerResult OnEventTime(Timestamp t, const W& w, TriggerContext<K, W>& ctx) override {
    return Purging(inner_->OnEventTime(t, w, ctx));
  }
  TriggerResult OnProcessingTime(Timestamp t, const W& w, TriggerContext<K, W>& ctx) override {
    return Purging(inner_->OnProcessingTime(t, w, ctx));
  }
  bool CanMerge() const override { return inner_->CanMerge(); }
  void OnMerge(const W& w, TriggerContext<K, W>& ctx) override { inner_->OnMerge(w, ctx); }
  void Clear(const W& w, TriggerContext<K, W>& ctx) override { inner_->Clear(w, ctx); }
  std::unique_ptr<Trigger<K, T, W>> Clone() const override {
    return std::make_unique<PurgingTrigger>(*this);
  }

 private:
  static TriggerResult Purging(TriggerResult r) {
    return IsFire(r) ? TriggerResult::kFireAndPurge : r;
  }
  std::unique_ptr<Trigger<K, T, W>> inner_;
};

// Trigger specs: what a job passes to WindowedStream::Trigger(). The window operator
// instantiates them once the key, element and window types are known.

struct EventTimeTriggerSpec {
  template <typename K, typename T, typename W>
  std::unique_ptr<Trigger<K, T, W>> Create() const {
    return std::make_unique<EventTimeTrigger<K, T, W>>();
  }
};
struct ProcessingTimeTriggerSpec {
  template <typename K, typename T, typename W>
  std::unique_ptr<Trigger<K, T, W>> Create() const {
    return std::make_unique<ProcessingTimeTrigger<K, T, W>>();
  }
};
struct CountTriggerSpec {
  int64_t count;
  template <typename K, typename T, typename W>
  std::unique_ptr<Trigger<K, T, W>> Create() const {
    return std::make_unique<CountTrigger<K, T, W>>(count);
  }
};
struct ContinuousEventTimeTriggerSpec {
  int64_t interval_ms;
  template <typename K, typename T, typename W>
  std::unique_ptr<Trigger<K, T, W>> Create() const {
    return std::make_unique<ContinuousEventTimeTrigger<K, T, W>>(interval_ms);
  }
};
struct ContinuousProcessingTimeTriggerSpec {
  int64_t interval_ms;
  template <typename K, typename T, typename W>
  std::unique_ptr<Trigger<K, T, W>> Create() const {
    return std::make_unique<ContinuousProcessingTimeTrigger<K, T, W>>(interval_ms);
  }
};
template <typename Inner>
struct PurgingTriggerSpec {
  Inner inner;
  template <typename K, typename T, typename W>
  std::unique_ptr<Trigger<K, T, W>> Create() const {
    return std::make_unique<PurgingTrigger<K, T, W>>(inner.template Create<K, T, W>());
  }
};

/// Built-in triggers by name, as in Flink.
namespace triggers {
inline EventTimeTriggerSpec EventTime() { return {}; }
inline ProcessingTimeTriggerSpec ProcessingTime() { return {}; }
inline CountTriggerSpec Count(int64_t count) { return {count}; }
inline ContinuousEventTimeTriggerSpec ContinuousEventTime(absl::Duration interval) {
  return {absl::ToInt64Milliseconds(interval)};
}
inline ContinuousProcessingTimeTriggerSpec ContinuousProcessingTime(absl::Duration interval) {
  return {absl::ToInt64Milliseconds(interval)};
}
template <typename Inner>
PurgingTriggerSpec<Inner> Purging(Inner inner) {
  return {std::move(inner)};
}
}  // namespace triggers

}  // namespace sluice
