#include "sluice/metrics/metrics.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/internal/metrics/back_pressure.h"
#include "sluice/internal/metrics/metric_registry.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MeterTest, TheRateSpansTheLastMinuteOrTheTimeSinceCreation) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  Meter m(/*scale=*/1, t0);
  m.Mark(600);
  EXPECT_DOUBLE_EQ(m.Rate(t0 + absl::Seconds(60)), 10);  // 600 in the first minute
  m.Mark(1200);
  // Less than a minute after the first reading: still since creation, 1800 in 90 s.
  EXPECT_DOUBLE_EQ(m.Rate(t0 + absl::Seconds(90)), 20);
  // A minute on with nothing new: the reading at 90 s is the base.
  EXPECT_DOUBLE_EQ(m.Rate(t0 + absl::Seconds(150)), 0);
  m.Mark(300);
  EXPECT_DOUBLE_EQ(m.Rate(t0 + absl::Seconds(210)), 5);  // 300 since the reading at 150 s
}

TEST(MeterTest, AScaledMeterRatesInTheExportedUnit) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  Meter busy(/*scale=*/1e-9, t0);  // nanoseconds counted
  busy.Mark(30'000'000'000);       // 30 s busy of 60
  EXPECT_DOUBLE_EQ(busy.Rate(t0 + absl::Seconds(60)), 0.5);
}

TEST(HistogramTest, ObservationsFallInTheFirstBucketTheyFitAndPromtoolSeesThemCumulated) {
  MetricGroup group(MetricLabels{{"job", "j"}});
  Histogram& h = group.GetHistogram("latency_seconds", "How long.", {1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 7.0}) h.Observe(v);
  EXPECT_EQ(h.BucketCount(0), 2);  // 0.5, 1 (a bound is inclusive)
  EXPECT_EQ(h.BucketCount(1), 1);
  EXPECT_EQ(h.BucketCount(2), 0);
  EXPECT_EQ(h.BucketCount(3), 1);  // +Inf
  std::vector<MetricSample> samples;
  group.Collect(&samples);
  internal::PrometheusWriter out;
  internal::WriteSamples(samples, absl::Now(), &out);
  EXPECT_EQ(out.text(),
            "# HELP sluice_latency_seconds How long.\n"
            "# TYPE sluice_latency_seconds histogram\n"
            "sluice_latency_seconds_bucket{job=\"j\",le=\"1\"} 2\n"
            "sluice_latency_seconds_bucket{job=\"j\",le=\"2\"} 3\n"
            "sluice_latency_seconds_bucket{job=\"j\",le=\"5\"} 3\n"
            "sluice_latency_seconds_bucket{job=\"j\",le=\"+Inf\"} 4\n"
            "sluice_latency_seconds_sum{job=\"j\"} 10\n"
            "sluice_latency_seconds_count{job=\"j\"} 4\n");
}

TEST(MetricGroupTest, SubgroupsAddALabelAndTheSameNameIsTheSameMetric) {
  MetricGroup task({{"job", "j"}, {"subtask", "0"}});
  MetricGroup& op = task.AddGroup("operator", "Map");
  EXPECT_EQ(&task.AddGroup("operator", "Map"), &op);
  EXPECT_EQ(op.labels(), (MetricLabels{{"job", "j"}, {"subtask", "0"}, {"operator", "Map"}}));
  op.GetCounter("dropped").Inc(2);
  op.GetCounter("dropped").Inc();
  op.GetGauge("lag").Set(7.4);
  op.GetMeter("records").Mark(5);
  op.AddGroup("partition", "t.0").GetGauge("lag").Set(1);
  // What an embedded run reports: this group's own, not its subgroups'.
  EXPECT_EQ(op.Values(),
            (std::map<std::string, int64_t>{{"dropped", 3}, {"lag", 7}, {"records", 5}}));
  std::vector<MetricSample> samples;
  task.Collect(&samples);
  EXPECT_EQ(samples.size(), 4u);
}

TEST(PrometheusTextTest, NamesLabelsAndValuesFollowTheExpositionFormat) {
  MetricGroup group({{"job", "say \"hi\"\\now"}, {"operator", "a\nb"}});
  group.GetCounter("late-records.dropped").Inc(1234567);
  group.GetCounter("points_total", "Points.").Inc(2);
  group.GetGauge("lag").Set(-1.5);
  std::vector<MetricSample> samples;
  group.Collect(&samples);
  internal::PrometheusWriter out;
  internal::WriteSamples(samples, absl::Now(), &out);
  const std::string labels = "{job=\"say \\\"hi\\\"\\\\now\",operator=\"a\\nb\"}";
  EXPECT_EQ(out.text(), absl::StrCat("# HELP sluice_lag Metric 'lag'.\n# TYPE sluice_lag gauge\n",
                                     "sluice_lag", labels, " -1.5\n",
                                     "# HELP sluice_late_records_dropped_total Metric "
                                     "'late-records.dropped'.\n",
                                     "# TYPE sluice_late_records_dropped_total counter\n",
                                     "sluice_late_records_dropped_total", labels, " 1234567\n",
                                     "# HELP sluice_points_total Points.\n",
                                     "# TYPE sluice_points_total counter\n", "sluice_points_total",
                                     labels, " 2\n"));
}

TEST(PrometheusTextTest, AMeterIsACounterAndARatePerSecond) {
  MetricGroup group;
  group.GetMeter("busy_seconds", "Busy.", 1e-9).Mark(2'000'000'000);
  std::vector<MetricSample> samples;
  group.Collect(&samples);
  internal::PrometheusWriter out;
  internal::WriteSamples(samples, absl::Now(), &out);
  EXPECT_THAT(out.text(), HasSubstr("# TYPE sluice_busy_seconds_total counter\n"
                                    "sluice_busy_seconds_total 2\n"));
  EXPECT_THAT(out.text(), HasSubstr("# TYPE sluice_busy_seconds_per_second gauge\n"));
}

TEST(MetricRegistryTest, AGroupIsExportedWhileItsRegistrationLives) {
  MetricGroup group(MetricLabels{{"job", "registry-test"}});
  group.GetCounter("things").Inc();
  auto text = [] {
    internal::PrometheusWriter out;
    internal::MetricRegistry::Process().WriteTo(&out, absl::Now());
    return out.text();
  };
  {
    auto registration = internal::MetricRegistry::Process().Register(&group);
    EXPECT_THAT(text(), HasSubstr("sluice_things_total{job=\"registry-test\"} 1\n"));
  }
  EXPECT_THAT(text(), Not(HasSubstr("registry-test")));
}

TEST(BackPressureTest, OnlyAThreadWithAMeterCountsItsBlockedTime) {
  Meter meter;
  { internal::ScopedBackPressure blocked; }  // no meter on this thread: nothing to count
  internal::SetThreadBackPressureMeter(&meter);
  {
    internal::ScopedBackPressure blocked;
    absl::SleepFor(absl::Milliseconds(2));  // the blocking under test
  }
  internal::SetThreadBackPressureMeter(nullptr);
  EXPECT_GE(meter.count(), 2'000'000);
}

}  // namespace
}  // namespace sluice
