#pragma once

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>

#include "sluice/core/stable_hash.h"
#include "sluice/core/time.h"
#include "sluice/serialization/serializer.h"

namespace sluice {

/// A time interval [start, end) in milliseconds. Its last timestamp, `max_timestamp()`, is
/// end - 1: event-time windows fire when the watermark reaches it.
struct TimeWindow {
  Timestamp start = 0;
  Timestamp end = 0;

  Timestamp max_timestamp() const { return end - 1; }
  /// Windows that overlap or touch merge (as Flink's TimeWindow.intersects).
  bool Intersects(const TimeWindow& o) const { return start <= o.end && end >= o.start; }
  TimeWindow Cover(const TimeWindow& o) const {
    return {std::min(start, o.start), std::max(end, o.end)};
  }
  bool operator==(const TimeWindow&) const = default;
  bool operator<(const TimeWindow& o) const {
    return start != o.start ? start < o.start : end < o.end;
  }
  template <typename H>
  friend H AbslHashValue(H h, const TimeWindow& w) {
    return H::combine(std::move(h), w.start, w.end);
  }
  uint64_t StableHash() const {
    return internal::HashCombine(internal::Mix64(static_cast<uint64_t>(start)),
                                 internal::Mix64(static_cast<uint64_t>(end)));
  }
  friend std::ostream& operator<<(std::ostream& os, const TimeWindow& w) {
    return os << "TimeWindow[" << w.start << ", " << w.end << ")";
  }
};

/// The one window of GlobalWindows: everything, never ending.
struct GlobalWindow {
  Timestamp max_timestamp() const { return kMaxWatermark; }
  bool operator==(const GlobalWindow&) const { return true; }
  bool operator<(const GlobalWindow&) const { return false; }
  template <typename H>
  friend H AbslHashValue(H h, const GlobalWindow&) {
    return h;
  }
  uint64_t StableHash() const { return 0; }
  friend std::ostream& operator<<(std::ostream& os, const GlobalWindow&) {
    return os << "GlobalWindow";
  }
};

template <>
struct Serializer<TimeWindow> {
  static void Write(const TimeWindow& w, ByteWriter& out) {
    out.WriteRaw(w.start);
    out.WriteRaw(w.end);
  }
  static bool Read(ByteReader& in, TimeWindow* w) {
    return in.ReadRaw(&w->start) && in.ReadRaw(&w->end);
  }
  static std::string TypeName() { return "TimeWindow"; }
};

template <>
struct Serializer<GlobalWindow> {
  static void Write(const GlobalWindow&, ByteWriter&) {}
  static bool Read(ByteReader&, GlobalWindow*) { return true; }
  static std::string TypeName() { return "GlobalWindow"; }
};

/// The start of the window of `size` (aligned to `offset`) that contains `timestamp`, as
/// Flink's TimeWindow.getWindowStartWithOffset (correct for negative timestamps too).
inline Timestamp WindowStartWithOffset(Timestamp timestamp, int64_t offset, int64_t size) {
  const int64_t remainder = (timestamp - offset) % size;
  return remainder < 0 ? timestamp - (remainder + size) : timestamp - remainder;
}

}  // namespace sluice
