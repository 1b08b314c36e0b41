#include "sluice/metrics/metrics.h"

#include <algorithm>
#include <cmath>

namespace sluice {

double Meter::Rate(absl::Time now) const {
  const int64_t count = count_.value();
  MutexLock lock(&mu_);
  // At most a reading a second is kept: however often it is read, the list stays short.
  if (readings_.empty() || now - readings_.back().first >= absl::Seconds(1)) {
    readings_.emplace_back(now, count);
  }
  // Keep one reading at or before the window's start, so the rate spans the whole window.
  while (readings_.size() > 2 && readings_[1].first <= now - kWindow) readings_.pop_front();
  absl::Time since = created_;
  int64_t base = 0;
  if (readings_.size() > 1 && readings_.front().first <= now - kWindow) {
    std::tie(since, base) = readings_.front();
  }
  const double seconds = absl::ToDoubleSeconds(now - since);
  if (seconds <= 0) return 0;
  return static_cast<double>(count - base) * scale_ / seconds;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(std::make_unique<Counter[]>(bounds_.size() + 1)) {}

std::vector<double> Histogram::DurationBounds() {
  std::vector<double> bounds;
  for (double b = 0.001; b < 200; b *= 2) bounds.push_back(b);
  return bounds;
}

void Histogram::Observe(double value) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                       bounds_.begin());
  buckets_[i].Inc();
  count_.Inc();
  sum_.Set(sum_.value() + value);
}

Counter& MetricGroup::GetCounter(const std::string& name, const std::string& help) {
  MutexLock lock(&mu_);
  auto& e = counters_[name];
  if (!e.metric) e = {std::make_unique<Counter>(), help};
  return *e.metric;
}

Gauge& MetricGroup::GetGauge(const std::string& name, const std::string& help) {
  MutexLock lock(&mu_);
  auto& e = gauges_[name];
  if (!e.metric) e = {std::make_unique<Gauge>(), help};
  return *e.metric;
}

Meter& MetricGroup::GetMeter(const std::string& name, const std::string& help, double scale) {
  MutexLock lock(&mu_);
  auto& e = meters_[name];
  if (!e.metric) e = {std::make_unique<Meter>(scale), help};
  return *e.metric;
}

Histogram& MetricGroup::GetHistogram(const std::string& name, const std::string& help,
                                     std::vector<double> bounds) {
  MutexLock lock(&mu_);
  auto& e = histograms_[name];
  if (!e.metric) e = {std::make_unique<Histogram>(std::move(bounds)), help};
  return *e.metric;
}

MetricGroup& MetricGroup::AddGroup(const std::string& key, const std::string& value) {
  MutexLock lock(&mu_);
  auto& group = groups_[{key, value}];
  if (!group) {
    MetricLabels labels = labels_;
    labels.emplace_back(key, value);
    group = std::make_unique<MetricGroup>(std::move(labels));
  }
  return *group;
}

std::map<std::string, int64_t> MetricGroup::Values() const {
  std::map<std::string, int64_t> out;
  MutexLock lock(&mu_);
  for (const auto& [name, e] : counters_) out[name] = e.metric->value();
  for (const auto& [name, e] : gauges_) out[name] = std::llround(e.metric->value());
  for (const auto& [name, e] : meters_) out[name] = e.metric->count();
  return out;
}

void MetricGroup::Collect(std::vector<MetricSample>* out) const {
  MutexLock lock(&mu_);
  auto add = [&](MetricSample::Kind kind, const std::string& name, const std::string& help) {
    MetricSample& s = out->emplace_back();
    s.kind = kind;
    s.name = name;
    s.help = help;
    s.labels = labels_;
    return &s;
  };
  for (const auto& [name, e] : counters_) {
    add(MetricSample::Kind::kCounter, name, e.help)->counter = e.metric.get();
  }
  for (const auto& [name, e] : gauges_) {
    add(MetricSample::Kind::kGauge, name, e.help)->gauge = e.metric.get();
  }
  for (const auto& [name, e] : meters_) {
    add(MetricSample::Kind::kMeter, name, e.help)->meter = e.metric.get();
  }
  for (const auto& [name, e] : histograms_) {
    add(MetricSample::Kind::kHistogram, name, e.help)->histogram = e.metric.get();
  }
  for (const auto& [key, group] : groups_) group->Collect(out);
}

}  // namespace sluice
