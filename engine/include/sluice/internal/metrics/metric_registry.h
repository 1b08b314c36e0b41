#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "sluice/core/mutex.h"
#include "sluice/metrics/metrics.h"

namespace sluice::internal {

/// Writes Prometheus' text exposition format (version 0.0.4): families, each with its help,
/// type and samples.
class PrometheusWriter {
 public:
  void Family(const std::string& name, const char* type, const std::string& help);
  /// A sample of the family begun last; `suffix` for a histogram's _bucket, _sum, _count.
  void Sample(const MetricLabels& labels, double value, const char* suffix = "");
  const std::string& text() const { return out_; }

 private:
  std::string out_;
  std::string family_;
};

/// Adds the samples of `samples` to `out`, one family per exported name (sluice_ + name;
/// counters end in _total; a meter is a _total counter and a _per_second gauge over the
/// last minute; a histogram has its buckets). Families in name order.
void WriteSamples(const std::vector<MetricSample>& samples, absl::Time now, PrometheusWriter* out);

/// The metric groups a process exports: a TaskManager's tasks and connectors, on its
/// --metrics-port. One per process, as the process serves one /metrics.
class MetricRegistry {
 public:
  static MetricRegistry& Process();

  /// Keeps a group exported until it goes: its owner destroys it after the registration.
  class Registration {
   public:
    Registration() = default;
    Registration(MetricRegistry* registry, const MetricGroup* group)
        : registry_(registry), group_(group) {}
    Registration(Registration&& o) noexcept
        : registry_(std::exchange(o.registry_, nullptr)), group_(o.group_) {}
    Registration& operator=(Registration&& o) noexcept;
    ~Registration();

   private:
    MetricRegistry* registry_ = nullptr;
    const MetricGroup* group_ = nullptr;
  };
  [[nodiscard]] Registration Register(const MetricGroup* group);

  /// Every registered group's metrics, in Prometheus' text format.
  void WriteTo(PrometheusWriter* out, absl::Time now) const;

 private:
  void Unregister(const MetricGroup* group);
  mutable Mutex mu_;
  std::vector<const MetricGroup*> groups_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::internal
