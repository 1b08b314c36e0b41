#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sluice/operators/window/triggers.h"
#include "sluice/operators/window/windows.h"

namespace sluice {

// Window assigners, as in Flink. Each has
//   using WindowType;  kEventTime;  kMerging;
//   template <T> void AssignWindows(const T&, Timestamp ts, Timestamp now, std::vector<W>&) const;
//   DefaultTrigger()  (a trigger spec)
// and merging ones also MergeWindows(). Event-time assigners place an element by its
// timestamp, processing-time ones by the task's clock (`now`).

namespace internal {

inline int64_t CheckedMillis(absl::Duration d, const char* what, bool allow_zero = false) {
  int64_t ms = absl::ToInt64Milliseconds(d);
  if (ms < 0 || (ms == 0 && !allow_zero)) {
    throw std::invalid_argument(absl::StrCat(what, " must be ", allow_zero ? ">= 0" : "> 0",
                                             ", got ", absl::FormatDuration(d)));
  }
  return ms;
}

[[noreturn]] inline void ThrowNoTimestamp() {
  throw std::runtime_error(
      "record has no timestamp but the window is in event time: assign timestamps with "
      "AssignTimestampsAndWatermarks() or use a processing-time window");
}

/// Merges overlapping (or touching) windows, as Flink's TimeWindow.mergeWindows. Calls
/// `merge(result, merged)` for each group of two or more windows.
template <typename MergeFn>
void MergeTimeWindows(std::vector<TimeWindow> windows, MergeFn&& merge) {
  std::sort(windows.begin(), windows.end());
  std::vector<std::pair<TimeWindow, std::vector<TimeWindow>>> groups;
  for (const TimeWindow& w : windows) {
    if (!groups.empty() && groups.back().first.Intersects(w)) {
      groups.back().first = groups.back().first.Cover(w);
      groups.back().second.push_back(w);
    } else {
      groups.push_back({w, {w}});
    }
  }
  for (auto& [result, merged] : groups) {
    if (merged.size() > 1) merge(result, merged);
  }
}

/// The time that places an element: its timestamp in event time, the clock otherwise.
template <bool kEventTime>
Timestamp TimeOf(Timestamp ts, Timestamp now) {
  if constexpr (kEventTime) {
    if (ts == kNoTimestamp) ThrowNoTimestamp();
    return ts;
  } else {
    return now;
  }
}

/// The default trigger of time windows: at the window's end, in their time domain.
template <bool kEventTime>
auto DefaultTimeTrigger() {
  if constexpr (kEventTime) {
    return EventTimeTriggerSpec{};
  } else {
    return ProcessingTimeTriggerSpec{};
  }
}

}  // namespace internal

/// Fixed-size, non-overlapping windows, aligned to the epoch plus `offset`.
template <bool kIsEventTime>
class TumblingWindows {
 public:
  using WindowType = TimeWindow;
  static constexpr bool kEventTime = kIsEventTime;
  static constexpr bool kMerging = false;

  static TumblingWindows Of(absl::Duration size, absl::Duration offset = absl::ZeroDuration()) {
    TumblingWindows w;
    w.size_ = internal::CheckedMillis(size, "tumbling window size");
    w.offset_ = absl::ToInt64Milliseconds(offset) % w.size_;
    return w;
  }
  template <typename T>
  void AssignWindows(const T&, Timestamp ts, Timestamp now, std::vector<TimeWindow>& out) const {
    const Timestamp t = internal::TimeOf<kEventTime>(ts, now);
    Timestamp start = WindowStartWithOffset(t, offset_, size_);
    out.push_back({start, start + size_});
  }
  auto DefaultTrigger() const { return internal::DefaultTimeTrigger<kEventTime>(); }
  int64_t size_ms() const { return size_; }

 private:
  int64_t size_ = 1;
  int64_t offset_ = 0;
};

/// Windows of `size` starting every `slide`: an element belongs to size/slide windows.
template <bool kIsEventTime>
class SlidingWindows {
 public:
  using WindowType = TimeWindow;
  static constexpr bool kEventTime = kIsEventTime;
  static constexpr bool kMerging = false;

  static SlidingWindows Of(absl::Duration size, absl::Duration slide,
                           absl::Duration offset = absl::ZeroDuration()) {
    SlidingWindows w;
    w.size_ = internal::CheckedMillis(size, "sliding window size");
    w.slide_ = internal::CheckedMillis(slide, "sliding window slide");
    w.offset_ = absl::ToInt64Milliseconds(offset) % w.slide_;
    return w;
  }
  template <typename T>
  void AssignWindows(const T&, Timestamp ts, Timestamp now, std::vector<TimeWindow>& out) const {
    const Timestamp t = internal::TimeOf<kEventTime>(ts, now);
    Timestamp last_start = WindowStartWithOffset(t, offset_, slide_);
    for (Timestamp start = last_start; start > t - size_; start -= slide_) {
      out.push_back({start, start + size_});
    }
  }
  auto DefaultTrigger() const { return internal::DefaultTimeTrigger<kEventTime>(); }

 private:
  int64_t size_ = 1;
  int64_t slide_ = 1;
  int64_t offset_ = 0;
};

/// Session windows: an element opens [t, t + gap); windows that overlap merge, so a
/// session ends after `gap` without elements. The gap may depend on the element.
template <bool kIsEventTime, typename T = void>
class SessionWindows {
 public:
  using WindowType = TimeWindow;
  static constexpr bool kEventTime = kIsEventTime;
  static constexpr bool kMerging = true;

  static SessionWindows WithGap(absl::Duration gap) {
    SessionWindows w;
    w.gap_ = internal::CheckedMillis(gap, "session gap");
    return w;
  }
  /// The gap of each element from `extractor` (milliseconds; must be > 0).
  template <typename E>
  static SessionWindows<kIsEventTime, E> WithDynamicGap(
      std::function<int64_t(const E&)> extractor) {
    SessionWindows<kIsEventTime, E> w;
    w.extractor_ = std::move(extractor);
    return w;
  }

  template <typename E>
  void AssignWindows(const E& element, Timestamp ts, Timestamp now,
                     std::vector<TimeWindow>& out) const {
    const Timestamp t = internal::TimeOf<kEventTime>(ts, now);
    int64_t gap = gap_;
    if constexpr (!std::is_void_v<T>) {
      gap = extractor_(element);
      if (gap <= 0) {
        throw std::invalid_argument(absl::StrCat("dynamic session gap must be > 0, got ", gap));
      }
    }
    out.push_back({t, t + gap});
  }
  template <typename MergeFn>
  void MergeWindows(const std::vector<TimeWindow>& windows, MergeFn&& merge) const {
    internal::MergeTimeWindows(windows, std::forward<MergeFn>(merge));
  }
  auto DefaultTrigger() const { return internal::DefaultTimeTrigger<kEventTime>(); }

 private:
  template <bool, typename>
  friend class SessionWindows;
  int64_t gap_ = 1;
  // The per-element gap function (unused, and of a dummy type, for a fixed gap).
  std::function<int64_t(const std::conditional_t<std::is_void_v<T>, int, T>&)> extractor_;
};

/// One window holding everything; it never fires unless given a trigger.
class GlobalWindows {
 public:
  using WindowType = GlobalWindow;
  static constexpr bool kEventTime = false;
  static constexpr bool kMerging = false;

  static GlobalWindows Create() { return {}; }
  template <typename T>
  void AssignWindows(const T&, Timestamp, Timestamp, std::vector<GlobalWindow>& out) const {
    out.push_back({});
  }
  struct NeverTriggerSpec {
    template <typename K, typename T, typename W>
    std::unique_ptr<Trigger<K, T, W>> Create() const {
      return std::make_unique<NeverTrigger<K, T, W>>();
    }
  };
  NeverTriggerSpec DefaultTrigger() const { return {}; }
};

using TumblingEventTimeWindows = TumblingWindows<true>;
using TumblingProcessingTimeWindows = TumblingWindows<false>;
using SlidingEventTimeWindows = SlidingWindows<true>;
using SlidingProcessingTimeWindows = SlidingWindows<false>;
using EventTimeSessionWindows = SessionWindows<true>;
using ProcessingTimeSessionWindows = SessionWindows<false>;

/// Short names for event-time windows: `KeyBy(...).Window(Tumbling(absl::Minutes(5)))`.
inline TumblingEventTimeWindows Tumbling(absl::Duration size,
                                         absl::Duration offset = absl::ZeroDuration()) {
  return TumblingEventTimeWindows::Of(size, offset);
}
inline SlidingEventTimeWindows Sliding(absl::Duration size, absl::Duration slide,
                                       absl::Duration offset = absl::ZeroDuration()) {
  return SlidingEventTimeWindows::Of(size, slide, offset);
}
inline EventTimeSessionWindows Session(absl::Duration gap) {
  return EventTimeSessionWindows::WithGap(gap);
}

}  // namespace sluice
