#pragma once

#include <cstdint>
#include <stdexcept>

#include "absl/time/time.h"
#include "sluice/core/time.h"
#include "sluice/serialization/serializer.h"

namespace sluice {

/// Time-to-live of a piece of keyed state, measured in processing time (as Flink's
/// StateTtlConfig). An expired value is never returned; it is removed when accessed and,
/// incrementally, by a sweep over one key group every `cleanup_every` accesses of the state.
struct StateTtlConfig {
  enum class UpdateType {
    kOnCreateAndWrite,  // writes restart the clock
    kOnReadAndWrite,    // reads restart it too
  };

  int64_t ttl_ms = 0;
  UpdateType update_type = UpdateType::kOnCreateAndWrite;
  int cleanup_every = 16;

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
  /// Sweeps one key group for expired entries every `accesses` accesses (>= 1).
  StateTtlConfig& CleanupIncrementally(int accesses) {
    if (accesses < 1) throw std::invalid_argument("CleanupIncrementally() needs >= 1");
    cleanup_every = accesses;
    return *this;
  }
};

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
