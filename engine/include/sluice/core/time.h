#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

namespace sluice {

/// Milliseconds since the Unix epoch, as in Flink. Event time and processing time share it.
using Timestamp = int64_t;

/// The timestamp of a record that has none (no timestamp assigner ran).
inline constexpr Timestamp kNoTimestamp = std::numeric_limits<int64_t>::min();
/// The watermark before any watermark was seen.
inline constexpr Timestamp kMinWatermark = std::numeric_limits<int64_t>::min();
/// The final watermark, sent at the end of a bounded input: every event-time timer fires.
inline constexpr Timestamp kMaxWatermark = std::numeric_limits<int64_t>::max();
/// An event-time timer at this time fires exactly when the input ends.
inline constexpr Timestamp kEndOfTime = kMaxWatermark;

/// The source of processing time for tasks. Injectable so that tests control time.
/// Implementations must be thread-safe: every task thread reads it.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Returns the current processing time in milliseconds since the epoch.
  virtual Timestamp NowMillis() const = 0;
};

/// The wall clock.
class SystemClock final : public Clock {
 public:
  Timestamp NowMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

/// A clock that moves only when told: for tests of processing-time behaviour without
/// sleeps. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start = 0) : now_(start) {}
  Timestamp NowMillis() const override { return now_.load(std::memory_order_acquire); }
  void Set(Timestamp t) { now_.store(t, std::memory_order_release); }
  void Advance(int64_t ms) { now_.fetch_add(ms, std::memory_order_acq_rel); }

 private:
  std::atomic<Timestamp> now_;
};

}  // namespace sluice
