#include "sluice/internal/metrics/metric_registry.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sluice::internal {

namespace {

/// A label value with `\`, `"` and newlines escaped.
std::string Escaped(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

/// A metric or label name of Prometheus' alphabet ([a-zA-Z_:][a-zA-Z0-9_:]*): anything else
/// becomes '_'.
std::string ValidName(const std::string& name) {
  std::string out = name;
  for (size_t i = 0; i < out.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(out[i]);
    const bool ok = std::isalpha(c) || c == '_' || c == ':' || (i > 0 && std::isdigit(c));
    if (!ok) out[i] = '_';
  }
  return out;
}

std::string Number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  // %.15g: counters stay exact integers (StrCat would round 1234567 to 1.23457e+06).
  return absl::StrFormat("%.15g", value);
}

}  // namespace

void PrometheusWriter::Family(const std::string& name, const char* type, const std::string& help) {
  family_ = ValidName(name);
  std::string one_line = help;
  std::replace(one_line.begin(), one_line.end(), '\n', ' ');
  absl::StrAppend(&out_, "# HELP ", family_, " ", one_line, "\n# TYPE ", family_, " ", type, "\n");
}

void PrometheusWriter::Sample(const MetricLabels& labels, double value, const char* suffix) {
  absl::StrAppend(&out_, family_, suffix);
  if (!labels.empty()) {
    out_.push_back('{');
    for (size_t i = 0; i < labels.size(); ++i) {
      absl::StrAppend(&out_, i == 0 ? "" : ",", ValidName(labels[i].first), "=\"",
                      Escaped(labels[i].second), "\"");
    }
    out_.push_back('}');
  }
  absl::StrAppend(&out_, " ", Number(value), "\n");
}

void WriteSamples(const std::vector<MetricSample>& samples, absl::Time now, PrometheusWriter* out) {
  struct Family {
    const char* type;
    std::string help;
    std::vector<const MetricSample*> samples;
    bool rate = false;  // a meter's _per_second gauge
  };
  std::map<std::string, Family> families;
  auto family = [&](const std::string& name, const char* type, const MetricSample& s,
                    std::string help) -> Family& {
    Family& f = families[name];
    if (f.type == nullptr) {
      f.type = type;
      f.help = help.empty() ? absl::StrCat("Metric '", s.name, "'.") : std::move(help);
    }
    return f;
  };
  for (const MetricSample& s : samples) {
    const std::string base = absl::StrCat("sluice_", ValidName(s.name));
    const std::string total = base.ends_with("_total") ? base : base + "_total";
    switch (s.kind) {
      case MetricSample::Kind::kCounter:
        family(total, "counter", s, s.help).samples.push_back(&s);
        break;
      case MetricSample::Kind::kGauge:
      case MetricSample::Kind::kHistogram:
        family(base, s.kind == MetricSample::Kind::kGauge ? "gauge" : "histogram", s, s.help)
            .samples.push_back(&s);
        break;
      case MetricSample::Kind::kMeter: {
        family(total, "counter", s, s.help).samples.push_back(&s);
        Family& rate = family(base + "_per_second", "gauge", s,
                              absl::StrCat(s.help, " Per second over the last minute."));
        rate.rate = true;
        rate.samples.push_back(&s);
        break;
      }
    }
  }
  for (const auto& [name, f] : families) {
    out->Family(name, f.type, f.help);
    for (const MetricSample* s : f.samples) {
      switch (s->kind) {
        case MetricSample::Kind::kCounter:
          out->Sample(s->labels, static_cast<double>(s->counter->value()));
          break;
        case MetricSample::Kind::kGauge:
          out->Sample(s->labels, s->gauge->value());
          break;
        case MetricSample::Kind::kMeter:
          out->Sample(s->labels, f.rate
                                     ? s->meter->Rate(now)
                                     : static_cast<double>(s->meter->count()) * s->meter->scale());
          break;
        case MetricSample::Kind::kHistogram: {
          const Histogram& h = *s->histogram;
          int64_t cumulative = 0;
          MetricLabels labels = s->labels;
          labels.emplace_back("le", "");
          for (size_t i = 0; i <= h.bounds().size(); ++i) {
            cumulative += h.BucketCount(i);
            labels.back().second = i < h.bounds().size() ? Number(h.bounds()[i]) : "+Inf";
            out->Sample(labels, static_cast<double>(cumulative), "_bucket");
          }
          out->Sample(s->labels, h.sum(), "_sum");
          out->Sample(s->labels, static_cast<double>(h.count()), "_count");
          break;
        }
      }
    }
  }
}

MetricRegistry& MetricRegistry::Process() {
  static MetricRegistry* registry = new MetricRegistry();  // never destroyed: threads may read
  return *registry;
}

MetricRegistry::Registration& MetricRegistry::Registration::operator=(Registration&& o) noexcept {
  if (this != &o) {
    if (registry_ != nullptr) registry_->Unregister(group_);
    registry_ = std::exchange(o.registry_, nullptr);
    group_ = o.group_;
  }
  return *this;
}

MetricRegistry::Registration::~Registration() {
  if (registry_ != nullptr) registry_->Unregister(group_);
}

MetricRegistry::Registration MetricRegistry::Register(const MetricGroup* group) {
  MutexLock lock(&mu_);
  groups_.push_back(group);
  return Registration(this, group);
}

void MetricRegistry::Unregister(const MetricGroup* group) {
  MutexLock lock(&mu_);
  auto it = std::find(groups_.begin(), groups_.end(), group);
  if (it != groups_.end()) groups_.erase(it);
}

void MetricRegistry::WriteTo(PrometheusWriter* out, absl::Time now) const {
  // Held while writing: a group's owner destroys it only after it is unregistered.
  MutexLock lock(&mu_);
  std::vector<MetricSample> samples;
  for (const MetricGroup* group : groups_) group->Collect(&samples);
  WriteSamples(samples, now, out);
}

}  // namespace sluice::internal
