#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/time/time.h"
#include "sluice/core/time.h"

namespace sluice {

/// Where a watermark generator emits.
class WatermarkOutput {
 public:
  virtual ~WatermarkOutput() = default;
  /// Declares that no record with a timestamp <= `watermark` follows. Lower or equal
  /// watermarks than the last one are ignored.
  virtual void EmitWatermark(Timestamp watermark) = 0;
};

/// Generates watermarks from the records of one source subtask. OnEvent() sees every
/// record (and may emit: per-event generators); OnPeriodicEmit() is called every emit
/// interval (and after every record when the interval is 0). One instance per subtask,
/// called on its task thread.
template <typename T>
class WatermarkGenerator {
 public:
  virtual ~WatermarkGenerator() = default;
  virtual void OnEvent(const T& record, Timestamp timestamp, WatermarkOutput& out) = 0;
  virtual void OnPeriodicEmit(WatermarkOutput& out) = 0;
  /// What the generator has learnt from the records so far (e.g. the highest timestamp), at
  /// a checkpoint barrier; handed back to RestoreState after a restart at the same
  /// parallelism, so the restored job emits the watermarks the failure-free run did. A
  /// generator that keeps nothing needs neither.
  virtual std::string SnapshotState() const { return {}; }
  virtual void RestoreState(std::string_view /*state*/) {}
};

/// Watermark = the highest timestamp seen - bound - 1 ms (Flink's
/// BoundedOutOfOrdernessWatermarks). A bound of 0 is the monotonous-timestamps strategy.
class BoundedOutOfOrdernessGenerator {
 public:
  explicit BoundedOutOfOrdernessGenerator(int64_t bound_ms) : bound_ms_(bound_ms) {}
  void OnTimestamp(Timestamp ts) {
    if (ts > max_timestamp_) max_timestamp_ = ts;
  }
  /// The highest timestamp seen (kMinWatermark before the first record); what a checkpoint
  /// keeps of the generator.
  Timestamp max_timestamp() const { return max_timestamp_; }
  void set_max_timestamp(Timestamp ts) { max_timestamp_ = ts; }
  /// The current watermark (kMinWatermark before the first record).
  Timestamp Current() const {
    return max_timestamp_ == kMinWatermark ? kMinWatermark : max_timestamp_ - bound_ms_ - 1;
  }

 private:
  int64_t bound_ms_;
  Timestamp max_timestamp_ = kMinWatermark;
};

/// How a stream gets event timestamps and watermarks: a timestamp assigner, a watermark
/// generator, an idleness timeout and the periodic emit interval. Applied with
/// DataStream::AssignTimestampsAndWatermarks(), usually right after the source.
template <typename T>
class WatermarkStrategy {
 public:
  using TimestampFn = std::function<Timestamp(const T& record, Timestamp previous)>;
  using GeneratorFactory = std::function<std::unique_ptr<WatermarkGenerator<T>>()>;

  /// Watermark = max timestamp seen - bound - 1 ms.
  static WatermarkStrategy ForBoundedOutOfOrderness(absl::Duration bound) {
    WatermarkStrategy s;
    s.bound_ms_ = absl::ToInt64Milliseconds(bound);
    return s;
  }
  /// Timestamps never decrease: watermark = max timestamp seen - 1 ms.
  static WatermarkStrategy ForMonotonousTimestamps() {
    return ForBoundedOutOfOrderness(absl::ZeroDuration());
  }
  /// A user-defined generator, created once per subtask.
  static WatermarkStrategy ForGenerator(GeneratorFactory factory) {
    WatermarkStrategy s;
    s.generator_factory_ = std::move(factory);
    return s;
  }
  /// Timestamps only, no watermarks (the final watermark at end of input still passes).
  static WatermarkStrategy NoWatermarks() {
    WatermarkStrategy s;
    s.no_watermarks_ = true;
    return s;
  }

  /// Takes the event timestamp from a function of the record (and its previous timestamp).
  WatermarkStrategy& WithTimestampAssigner(TimestampFn fn) {
    timestamp_fn_ = std::move(fn);
    return *this;
  }
  /// Takes the event timestamp (milliseconds) from a data member.
  template <typename M, typename U = T>
  requires std::is_class_v<U> && std::is_integral_v<M> WatermarkStrategy& WithTimestampAssigner(
      M U::*field) {
    timestamp_fn_ = [field](const T& r, Timestamp) { return static_cast<Timestamp>(r.*field); };
    return *this;
  }
  /// Marks the subtask idle after this long without records (processing time), so it stops
  /// holding back the watermark downstream; its next record makes it active again.
  WatermarkStrategy& WithIdleness(absl::Duration timeout) {
    idle_timeout_ = timeout;
    return *this;
  }
  /// How often periodic watermarks are emitted (default 200 ms); zero means after every
  /// record.
  WatermarkStrategy& WithEmitInterval(absl::Duration interval) {
    emit_interval_ = interval;
    return *this;
  }

  const TimestampFn& timestamp_fn() const { return timestamp_fn_; }
  std::optional<int64_t> bound_ms() const { return bound_ms_; }
  const GeneratorFactory& generator_factory() const { return generator_factory_; }
  bool no_watermarks() const { return no_watermarks_; }
  std::optional<absl::Duration> idle_timeout() const { return idle_timeout_; }
  absl::Duration emit_interval() const { return emit_interval_; }

 private:
  WatermarkStrategy() = default;
  TimestampFn timestamp_fn_;
  std::optional<int64_t> bound_ms_;
  GeneratorFactory generator_factory_;
  bool no_watermarks_ = false;
  std::optional<absl::Duration> idle_timeout_;
  absl::Duration emit_interval_ = absl::Milliseconds(200);
};

}  // namespace sluice
