#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "sluice/core/time.h"

namespace sluice {

/// A window's elements as an evictor sees them: each with its timestamp, in arrival order.
template <typename T>
using TimestampedValues = std::vector<std::pair<Timestamp, T>>;

// Evictors remove elements from a window when it fires, before the window function sees
// them (EvictBefore) or after (EvictAfter); what stays is kept for the window's next firing.
// A window with an evictor keeps all its elements (no incremental Reduce or Aggregate: they
// run over what the evictor left). An evictor is any copyable class with
//   template <typename T> void EvictBefore(TimestampedValues<T>&) const;
//   template <typename T> void EvictAfter(TimestampedValues<T>&) const;
// Set with WindowedStream::Evictor(...).
namespace evictors {

namespace internal {
/// What every built-in evictor shares: it evicts either before the function or after.
template <typename Derived>
class BeforeOrAfter {
 public:
  explicit BeforeOrAfter(bool after) : after_(after) {}
  template <typename T>
  void EvictBefore(TimestampedValues<T>& elements) const {
    if (!after_) static_cast<const Derived&>(*this).Evict(elements);
  }
  template <typename T>
  void EvictAfter(TimestampedValues<T>& elements) const {
    if (after_) static_cast<const Derived&>(*this).Evict(elements);
  }

 private:
  bool after_;
};
}  // namespace internal

/// Keeps the `max` most recent elements (by arrival).
class Count : public internal::BeforeOrAfter<Count> {
 public:
  explicit Count(size_t max, bool after = false) : BeforeOrAfter(after), max_(max) {}
  template <typename T>
  void Evict(TimestampedValues<T>& elements) const {
    if (elements.size() > max_) {
      elements.erase(elements.begin(), elements.end() - static_cast<std::ptrdiff_t>(max_));
    }
  }

 private:
  size_t max_;
};

/// Keeps the elements whose timestamp is within `keep` of the newest element's.
class Time : public internal::BeforeOrAfter<Time> {
 public:
  explicit Time(absl::Duration keep, bool after = false)
      : BeforeOrAfter(after), keep_ms_(absl::ToInt64Milliseconds(keep)) {}
  template <typename T>
  void Evict(TimestampedValues<T>& elements) const {
    if (elements.empty()) return;
    Timestamp newest = elements.front().first;
    for (const auto& e : elements) newest = std::max(newest, e.first);
    const Timestamp cutoff = newest - keep_ms_;
    std::erase_if(elements, [cutoff](const auto& e) { return e.first < cutoff; });
  }

 private:
  int64_t keep_ms_;
};

/// Removes the elements whose delta to the last element (`delta(element, last)`, a double)
/// is at least `threshold`.
template <typename F>
class Delta : public internal::BeforeOrAfter<Delta<F>> {
 public:
  Delta(double threshold, F delta, bool after = false)
      : internal::BeforeOrAfter<Delta<F>>(after), threshold_(threshold), delta_(std::move(delta)) {}
  template <typename T>
  void Evict(TimestampedValues<T>& elements) const {
    if (elements.empty()) return;
    const T last = elements.back().second;
    std::erase_if(elements, [&](const auto& e) {
      return static_cast<double>(delta_(e.second, last)) >= threshold_;
    });
  }

 private:
  double threshold_;
  F delta_;
};

}  // namespace evictors
}  // namespace sluice
