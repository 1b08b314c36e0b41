// Window evictors end to end, against models of each firing written here: count, time and
// delta evictors, before and after the window function, with reduce, aggregate and process
// functions, on both state backends.

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using Reading = std::pair<int64_t, int64_t>;  // sensor, value
using ::testing::UnorderedElementsAreArray;

constexpr int kReadings = 3000;
constexpr int64_t kSensors = 7;

Reading ReadingOf(uint64_t i) {
  return {static_cast<int64_t>((i * 31) % kSensors), static_cast<int64_t>((i * 7919) % 1000)};
}

class EvictorTest : public ::testing::TestWithParam<StateBackendKind> {
 protected:
  Pipeline MakePipeline() {
    Pipeline p("evictors");
    p.SetParallelism(2);
    p.mutable_config().state_backend = GetParam();
    return p;
  }
};

struct SumAggregate final : AggregateFunction<Reading, Reading, Reading> {
  Reading CreateAccumulator() const override { return {0, 0}; }
  void Add(const Reading& r, Reading& acc) const override {
    acc.first = r.first;
    acc.second += r.second;
  }
  Reading GetResult(const Reading& acc) const override { return acc; }
  Reading Merge(Reading a, const Reading& b) const override {
    return {a.first, a.second + b.second};
  }
};

TEST_P(EvictorTest, CountEvictorKeepsTheLastElementsForEachFiring) {
  // Every 10 readings of a sensor: the sum of its last 25.
  Pipeline p = MakePipeline();
  auto out = std::make_shared<CollectedRecords<Reading>>();
  p.Source(Generator(ReadingOf, {.count = kReadings}))
      .Parallelism(1)
      .KeyBy(&Reading::first)
      .Window(GlobalWindows::Create())
      .Trigger(triggers::Count(10))
      .Evictor(evictors::Count(25))
      .Aggregate(SumAggregate{})
      .Sink(CollectSink<Reading>(out));
  ASSERT_OK(ExecuteLocally(p).status());
  std::map<int64_t, std::vector<int64_t>> seen;
  std::vector<Reading> expected;
  for (uint64_t i = 0; i < kReadings; ++i) {
    const Reading r = ReadingOf(i);
    std::vector<int64_t>& values = seen[r.first];
    values.push_back(r.second);
    if (values.size() % 10 == 0) {
      const size_t from = values.size() > 25 ? values.size() - 25 : 0;
      expected.push_back(
          {r.first, std::accumulate(values.begin() + static_cast<std::ptrdiff_t>(from),
                                    values.end(), int64_t{0})});
    }
  }
  EXPECT_THAT(out->Values(), UnorderedElementsAreArray(expected));
}

TEST_P(EvictorTest, CountEvictorAfterTheFunctionSeesEverythingOnce) {
  // Evicting after the function: each firing sums the previous firing's 5 kept readings
  // and the 10 new ones.
  Pipeline p = MakePipeline();
  auto out = std::make_shared<CollectedRecords<Reading>>();
  p.Source(Generator(ReadingOf, {.count = kReadings}))
      .Parallelism(1)
      .KeyBy(&Reading::first)
      .Window(GlobalWindows::Create())
      .Trigger(triggers::Count(10))
      .Evictor(evictors::Count(5, /*after=*/true))
      .Reduce([](const Reading& a, const Reading& b) {
        return Reading{a.first, a.second + b.second};
      })
      .Sink(CollectSink<Reading>(out));
  ASSERT_OK(ExecuteLocally(p).status());
  std::map<int64_t, std::vector<int64_t>> kept, fresh;
  std::vector<Reading> expected;
  for (uint64_t i = 0; i < kReadings; ++i) {
    const Reading r = ReadingOf(i);
    fresh[r.first].push_back(r.second);
    if (fresh[r.first].size() == 10) {
      std::vector<int64_t> window = kept[r.first];
      window.insert(window.end(), fresh[r.first].begin(), fresh[r.first].end());
      expected.push_back({r.first, std::accumulate(window.begin(), window.end(), int64_t{0})});
      kept[r.first].assign(window.end() - 5, window.end());
      fresh[r.first].clear();
    }
  }
  EXPECT_THAT(out->Values(), UnorderedElementsAreArray(expected));
}

TEST_P(EvictorTest, TimeAndDeltaEvictorsOverEventTimeWindows) {
  // Tumbling 1 s windows of readings 10 ms apart (event time), each firing listing what it
  // saw: the time evictor keeps the last 300 ms of each window; the delta evictor drops the
  // readings that differ from the window's last one by 500 or more.
  struct List final : ProcessWindowFunction<Reading, std::string, int64_t, TimeWindow> {
    void Process(const int64_t& sensor, Context& ctx, const std::vector<Reading>& elements,
                 Collector<std::string>& out) override {
      std::string values;
      for (const Reading& r : elements) absl::StrAppend(&values, " ", r.second);
      out.Collect(absl::StrCat(sensor, "@", ctx.window().start, ":", values));
    }
  };
  for (bool delta : {false, true}) {
    SCOPED_TRACE(delta ? "delta" : "time");
    Pipeline p = MakePipeline();
    auto out = std::make_shared<CollectedRecords<std::string>>();
    // Event time: the reading's index * 10 ms.
    auto indexed =
        p.Source(Generator(
                     [](uint64_t i) {
                       return std::pair<uint64_t, Reading>{i, ReadingOf(i)};
                     },
                     {.count = kReadings}))
            .Parallelism(1)
            .AssignTimestampsAndWatermarks(
                WatermarkStrategy<std::pair<uint64_t, Reading>>::ForMonotonousTimestamps()
                    .WithTimestampAssigner([](const std::pair<uint64_t, Reading>& e, Timestamp) {
                      return static_cast<Timestamp>(e.first * 10);
                    }))
            .Parallelism(1)
            .Map([](const std::pair<uint64_t, Reading>& e) { return e.second; })
            .Parallelism(1);  // one chain: each sensor's readings stay in order
    auto windowed =
        indexed.KeyBy(&Reading::first).Window(TumblingEventTimeWindows::Of(absl::Seconds(1)));
    if (delta) {
      windowed
          .Evictor(evictors::Delta(
              500.0,
              [](const Reading& a, const Reading& b) { return std::abs(a.second - b.second); }))
          .Process(List{})
          .Sink(CollectSink<std::string>(out));
    } else {
      windowed.Evictor(evictors::Time(absl::Milliseconds(300)))
          .Process(List{})
          .Sink(CollectSink<std::string>(out));
    }
    ASSERT_OK(ExecuteLocally(p).status());
    std::map<std::pair<int64_t, int64_t>, std::vector<std::pair<int64_t, int64_t>>> windows;
    for (uint64_t i = 0; i < kReadings; ++i) {
      const Reading r = ReadingOf(i);
      const auto ts = static_cast<int64_t>(i * 10);
      windows[{r.first, ts - ts % 1000}].push_back({ts, r.second});
    }
    std::vector<std::string> expected;
    for (const auto& [sensor_start, elements] : windows) {
      std::string values;
      const int64_t newest = elements.back().first;
      const int64_t last = elements.back().second;
      for (const auto& [ts, v] : elements) {
        const bool keep = delta ? std::abs(v - last) < 500 : ts >= newest - 300;
        if (keep) absl::StrAppend(&values, " ", v);
      }
      expected.push_back(absl::StrCat(sensor_start.first, "@", sensor_start.second, ":", values));
    }
    EXPECT_THAT(out->Values(), UnorderedElementsAreArray(expected));
  }
}

TEST_P(EvictorTest, EvictingWindowStateRescalesFromASavepoint) {
  // The count-evicted windows (each sensor's last 25 readings, kept between firings) stopped
  // with a savepoint mid-stream at parallelism 2 and resumed at 3: every firing once, as the
  // model.
  auto make = [&](int parallelism, const std::string& out, double rate) {
    Pipeline p("evictors-rescale");
    p.SetParallelism(parallelism);
    p.mutable_config().state_backend = GetParam();
    p.mutable_config().max_source_rate = rate;
    p.EnableCheckpointing(absl::Milliseconds(30));
    p.Source(Generator(ReadingOf, {.count = kReadings}))
        .Parallelism(1)
        .Uid("readings")
        .KeyBy(&Reading::first)
        .Window(GlobalWindows::Create())
        .Trigger(triggers::Count(10))
        .Evictor(evictors::Count(25))
        .Aggregate(SumAggregate{})
        .Uid("last-25")
        .Map([](const Reading& r) { return absl::StrCat(r.first, ",", r.second); })
        .Uid("format")
        .Sink(TextFileSink<std::string>(out))
        .Uid("sink");
    return p;
  };
  testing::TempDir dir;
  auto graph = make(2, dir.Join("first"), 4000).BuildJobGraph();
  ASSERT_OK(graph);
  auto savepoint = testing::StopWithSavepointAfter(*graph, dir.Join("sp"), 2);
  ASSERT_OK(savepoint);
  std::vector<std::string> lines = testing::ReadPartFileLines(dir.Join("first"));
  const size_t first_part = lines.size();
  Pipeline resumed = make(3, dir.Join("second"), 0);
  resumed.mutable_config().restore_from = *savepoint;
  ASSERT_OK(ExecuteLocally(resumed));
  for (const std::string& line : testing::ReadPartFileLines(dir.Join("second"))) {
    lines.push_back(line);
  }
  std::map<int64_t, std::vector<int64_t>> seen;
  std::vector<std::string> expected;
  for (uint64_t i = 0; i < kReadings; ++i) {
    const Reading r = ReadingOf(i);
    std::vector<int64_t>& values = seen[r.first];
    values.push_back(r.second);
    if (values.size() % 10 == 0) {
      const auto from = static_cast<std::ptrdiff_t>(values.size() > 25 ? values.size() - 25 : 0);
      expected.push_back(absl::StrCat(
          r.first, ",", std::accumulate(values.begin() + from, values.end(), int64_t{0})));
    }
  }
  EXPECT_GT(first_part, 0u);
  EXPECT_LT(first_part, expected.size()) << "stopped before the end of its input";
  EXPECT_THAT(lines, UnorderedElementsAreArray(expected));
}

INSTANTIATE_TEST_SUITE_P(Backends, EvictorTest,
                         ::testing::Values(StateBackendKind::kHeap, StateBackendKind::kRocksDb),
                         [](const auto& info) {
                           return info.param == StateBackendKind::kHeap ? "Heap" : "RocksDb";
                         });

}  // namespace
}  // namespace sluice
