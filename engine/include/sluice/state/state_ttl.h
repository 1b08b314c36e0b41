#pragma once

#include <cstdint>
#include <stdexcept>

#include "absl/time/time.h"
#include "sluice/core/time.h"
#include "sluice/serialization/serializer.h"

namespace sluice {

/// Time-to-live of a piece of keyed state, measured in processing time (as Flink's
/// StateTtlConfig) or, with InEventTime(), in event time. An expired value is never
/// returned; it is removed when accessed and, incrementally, by a sweep over one key group
/// every `cleanup_every` accesses of the state.
struct StateTtlConfig {
  enum class UpdateType {
    kOnCreateAndWrite,  // writes restart the clock
    kOnReadAndWrite,    // reads restart it too
  };

  int64_t ttl_ms = 0;
  UpdateType update_type = UpdateType::kOnCreateAndWrite;
  int cleanup_every = 16;
  /// Measured in event time: an access is stamped with the event time of what the operator
  /// processes (the record's timestamp, or the watermark if that is later; a timer's time),
  /// and a value expires once that event time is `ttl` past its stamp. So a job replaying
  /// old data (a backfill, a restore after downtime) keeps state as long as it would have
  /// live, and expiry does not depend on how fast it runs.
  bool event_time = false;

  static StateTtlConfig Of(absl::Duration ttl) {
    StateTtlConfig c;
    c.ttl_ms = absl::ToInt64Milliseconds(ttl);
    if (c.ttl_ms <= 0) throw std::invalid_argument("state TTL must be > 0");
    return c;
  }
  StateTtlConfig& UpdateOnReadAndWrite() {
    update_type = UpdateType::kOnReadAndWrite;
    return *this;
  }
  /// Measures the TTL in event time (see `event_time`).
  StateTtlConfig& InEventTime() {
    event_time = true;
    return *this;
  }
  /// Sweeps one key group for expired entries every `accesses` accesses (>= 1).
  StateTtlConfig& CleanupIncrementally(int accesses) {
    if (accesses < 1) throw std::invalid_argument("CleanupIncrementally() needs >= 1");
    cleanup_every = accesses;
    return *this;
  }
};

/// Whether `ttl` passed from `stamp` to `now` (both processing or both event time; `now`
/// before `stamp` never: event time can go back with an out-of-order record). Without
/// overflow near the ends of time (an event-time stamp before the first watermark).
inline bool TtlElapsed(Timestamp now, Timestamp stamp, int64_t ttl) {
  return now > stamp &&
         static_cast<uint64_t>(now) - static_cast<uint64_t>(stamp) >= static_cast<uint64_t>(ttl);
}

/// A stored value with the time of its last counted access.
template <typename V>
struct TtlValue {
  V value{};
  Timestamp last_access = 0;
};

template <typename V>
struct Serializer<TtlValue<V>> {
  static void Write(const TtlValue<V>& v, ByteWriter& w) {
    Serializer<V>::Write(v.value, w);
    w.WriteRaw(v.last_access);
  }
  static bool Read(ByteReader& r, TtlValue<V>* v) {
    return Serializer<V>::Read(r, &v->value) && r.ReadRaw(&v->last_access);
  }
  static std::string TypeName() { return "ttl<" + SerializedTypeName<V>() + ">"; }
};

}  // namespace sluice
