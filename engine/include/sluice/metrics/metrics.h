#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "sluice/core/mutex.h"

namespace sluice {

/// Labels of a metric group, in the order they were added (job, task, subtask, operator, ...).
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

/// A count that only grows, written by one thread (the task's, or whoever owns it) and read
/// by any: a relaxed load and store, so the writer pays no locked instruction per update.
class Counter {
 public:
  void Inc(int64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  /// For counts kept elsewhere (a connector's I/O thread) and copied in by the writer.
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

/// A value that goes up and down (a lag, a buffer's fill, a watermark). One writer.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// A counter of events with their rate: events per second over the last minute, measured
/// by whoever reads it (the writer only counts).
class Meter {
 public:
  /// `scale` converts the counted unit into the exported one (microseconds counted, seconds
  /// exported: 1e-6).
  explicit Meter(double scale = 1, absl::Time created = absl::Now())
      : scale_(scale), created_(created) {}
  void Mark(int64_t n = 1) { count_.Inc(n); }
  int64_t count() const { return count_.value(); }
  double scale() const { return scale_; }
  /// Exported units per second over the last minute (since creation, until a minute passed).
  double Rate(absl::Time now) const;

 private:
  static constexpr absl::Duration kWindow = absl::Minutes(1);
  Counter count_;
  const double scale_;
  const absl::Time created_;
  mutable Mutex mu_;
  /// Readings the readers took, oldest first, the oldest at most a window before the newest.
  mutable std::deque<std::pair<absl::Time, int64_t>> readings_ SLUICE_GUARDED_BY(mu_);
};

/// A distribution in fixed buckets (Prometheus' histogram): count, sum and how many
/// observations fell at or under each bound. One writer.
class Histogram {
 public:
  /// Upper bounds, ascending; an implicit +Inf bucket follows.
  explicit Histogram(std::vector<double> bounds);
  /// 1 ms to about 2 minutes, doubling: durations in seconds.
  static std::vector<double> DurationBounds();
  void Observe(double value);
  const std::vector<double>& bounds() const { return bounds_; }
  /// Observations in bucket i (not cumulative); i == bounds().size() is +Inf.
  int64_t BucketCount(size_t i) const { return buckets_[i].value(); }
  int64_t count() const { return count_.value(); }
  double sum() const { return sum_.value(); }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<Counter[]> buckets_;
  Counter count_;
  Gauge sum_;
};

/// What a reader of a group sees of one metric.
struct MetricSample {
  enum class Kind { kCounter, kGauge, kMeter, kHistogram };
  Kind kind = Kind::kCounter;
  std::string name;
  std::string help;
  MetricLabels labels;
  const Counter* counter = nullptr;
  const Gauge* gauge = nullptr;
  const Meter* meter = nullptr;
  const Histogram* histogram = nullptr;
};

/// The metrics of one scope (an operator subtask, a task, a connector's partition), with
/// the labels that say which. Metrics are made on first use and live as long as the group;
/// references to them stay valid. Made and read from any thread (a scrape reads while the
/// task writes); a metric itself has one writer.
class MetricGroup {
 public:
  MetricGroup() = default;
  explicit MetricGroup(MetricLabels labels) : labels_(std::move(labels)) {}
  MetricGroup(const MetricGroup&) = delete;
  MetricGroup& operator=(const MetricGroup&) = delete;

  /// Names are snake_case words ([a-z0-9_]); `help` says what is counted (first one wins).
  Counter& GetCounter(const std::string& name, const std::string& help = "");
  Gauge& GetGauge(const std::string& name, const std::string& help = "");
  Meter& GetMeter(const std::string& name, const std::string& help = "", double scale = 1);
  Histogram& GetHistogram(const std::string& name, const std::string& help = "",
                          std::vector<double> bounds = Histogram::DurationBounds());
  /// The group below this one with one more label (`key` = `value`), made on first use.
  MetricGroup& AddGroup(const std::string& key, const std::string& value);

  const MetricLabels& labels() const { return labels_; }
  /// This group's counters and gauges (not its subgroups'), by name: what an embedded run
  /// reports in its JobResult.
  std::map<std::string, int64_t> Values() const;
  /// Every metric of this group and its subgroups.
  void Collect(std::vector<MetricSample>* out) const;

 private:
  template <typename M>
  struct Entry {
    std::unique_ptr<M> metric;
    std::string help;
  };
  const MetricLabels labels_{};
  mutable Mutex mu_;
  std::map<std::string, Entry<Counter>> counters_ SLUICE_GUARDED_BY(mu_);
  std::map<std::string, Entry<Gauge>> gauges_ SLUICE_GUARDED_BY(mu_);
  std::map<std::string, Entry<Meter>> meters_ SLUICE_GUARDED_BY(mu_);
  std::map<std::string, Entry<Histogram>> histograms_ SLUICE_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, std::unique_ptr<MetricGroup>> groups_
      SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice
