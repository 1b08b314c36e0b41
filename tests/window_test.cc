// Event-time windows end to end on the mini-cluster, against the brute-force model in
// window_reference.h: seeded out-of-order streams, every assigner, lateness on and off,
// session merging (including late records that bridge sessions), late side output.

#include <algorithm>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"
#include "window_reference.h"

namespace sluice_window_test {

struct Event {
  std::string key;
  int64_t ts = 0;
  int64_t value = 0;
};
SLUICE_SERIALIZABLE(Event, key, ts, value)

struct Stats {
  int64_t count = 0;
  int64_t sum = 0;
  int64_t min = std::numeric_limits<int64_t>::max();
  int64_t max = std::numeric_limits<int64_t>::min();
};
SLUICE_SERIALIZABLE(Stats, count, sum, min, max)

}  // namespace sluice_window_test

namespace sluice {
namespace {

using sluice_window_test::Event;
using sluice_window_test::Stats;
using testing::RefEvent;
using testing::RefFiring;
using testing::RefSpec;
using testing::RefWindowKind;
using ::testing::UnorderedElementsAreArray;

class StatsAggregate final : public AggregateFunction<Event, Stats, Stats> {
 public:
  Stats CreateAccumulator() const override { return {}; }
  void Add(const Event& e, Stats& s) const override {
    s.count++;
    s.sum += e.value;
    s.min = std::min(s.min, e.value);
    s.max = std::max(s.max, e.value);
  }
  Stats GetResult(const Stats& s) const override { return s; }
  Stats Merge(Stats a, const Stats& b) const override {
    return {a.count + b.count, a.sum + b.sum, std::min(a.min, b.min), std::max(a.max, b.max)};
  }
};

/// Turns the aggregate into a firing record with key and window.
class ToFiring final : public ProcessWindowFunction<Stats, RefFiring, std::string, TimeWindow> {
 public:
  void Process(const std::string& key, Context& ctx, const std::vector<Stats>& in,
               Collector<RefFiring>& out) override {
    ASSERT_EQ(in.size(), 1u);
    const Stats& s = in[0];
    EXPECT_EQ(ctx.window().max_timestamp() <= ctx.CurrentWatermark() ||
                  ctx.CurrentWatermark() == kMaxWatermark,
              true);
    out.Collect({key, ctx.window().start, ctx.window().end, s.count, s.sum, s.min, s.max});
  }
};

/// The same from all elements (no pre-aggregation).
class ToFiringFromElements final
    : public ProcessWindowFunction<Event, RefFiring, std::string, TimeWindow> {
 public:
  void Process(const std::string& key, Context& ctx, const std::vector<Event>& in,
               Collector<RefFiring>& out) override {
    Stats s;
    StatsAggregate agg;
    for (const Event& e : in) agg.Add(e, s);
    out.Collect({key, ctx.window().start, ctx.window().end, s.count, s.sum, s.min, s.max});
  }
};

std::vector<Event> RandomStream(uint32_t seed, int n, int64_t jitter) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> jit(-jitter, jitter);
  std::uniform_int_distribution<int> key(0, 4);
  std::uniform_int_distribution<int64_t> value(-1000, 1000);
  std::vector<Event> events;
  for (int i = 0; i < n; ++i) {
    events.push_back({absl::StrCat("k", key(rng)), 100000 + i * 10 + jit(rng), value(rng)});
  }
  return events;
}

enum class Flavor { kAggregateProcess, kProcessAll };

struct RunOutput {
  std::vector<RefFiring> firings;
  std::vector<RefEvent> late;
};

template <typename Assigner>
RunOutput RunEngine(const std::vector<Event>& events, Assigner assigner, const RefSpec& spec,
                    Flavor flavor) {
  Pipeline p("windows");
  auto firings = std::make_shared<CollectedRecords<RefFiring>>();
  auto late = std::make_shared<CollectedRecords<Event>>();
  OutputTag<Event> late_tag("late");
  auto windowed =
      p.Source(CollectionSource<Event>(events))
          .AssignTimestampsAndWatermarks(WatermarkStrategy<Event>::ForBoundedOutOfOrderness(
                                             absl::Milliseconds(spec.out_of_orderness))
                                             .WithTimestampAssigner(&Event::ts)
                                             .WithEmitInterval(absl::ZeroDuration()))
          .KeyBy(&Event::key)
          .Window(assigner);
  windowed.AllowedLateness(absl::Milliseconds(spec.allowed_lateness)).SideOutputLateData(late_tag);
  auto result = flavor == Flavor::kAggregateProcess
                    ? windowed.Aggregate(StatsAggregate{}, ToFiring{})
                    : windowed.Process(ToFiringFromElements{});
  result.Parallelism(2);
  result.Sink(CollectSink<RefFiring>(firings));
  result.GetSideOutput(late_tag).Sink(CollectSink<Event>(late));
  auto r = ExecuteLocally(p);
  EXPECT_TRUE(r.ok()) << r.status();
  RunOutput out;
  out.firings = firings->Values();
  for (const Event& e : late->Values()) out.late.push_back({e.key, e.ts, e.value});
  return out;
}

std::vector<RefEvent> ToRef(const std::vector<Event>& events) {
  std::vector<RefEvent> out;
  for (const Event& e : events) out.push_back({e.key, e.ts, e.value});
  return out;
}

std::vector<std::tuple<std::string, int64_t, int64_t>> LateKeys(const std::vector<RefEvent>& v) {
  std::vector<std::tuple<std::string, int64_t, int64_t>> out;
  for (const auto& e : v) out.emplace_back(e.key, e.ts, e.value);
  return out;
}

struct Case {
  const char* name;
  RefSpec spec;
};

template <typename Assigner>
void CheckAgainstReference(Assigner assigner, RefSpec base) {
  const std::vector<std::pair<int64_t, int64_t>> bounds_and_lateness = {
      {700, 0},   // the bound covers the jitter: nothing is late
      {50, 0},    // records later than the watermark are dropped to the side output
      {50, 150},  // allowed lateness re-fires windows; only the very late are dropped
  };
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::vector<Event> events = RandomStream(seed, 2000, 300);
    for (auto [bound, lateness] : bounds_and_lateness) {
      RefSpec spec = base;
      spec.out_of_orderness = bound;
      spec.allowed_lateness = lateness;
      auto expected = testing::RunReference(ToRef(events), spec);
      for (Flavor flavor : {Flavor::kAggregateProcess, Flavor::kProcessAll}) {
        SCOPED_TRACE(absl::StrCat("seed ", seed, " bound ", bound, " lateness ", lateness,
                                  " flavor ", static_cast<int>(flavor)));
        RunOutput got = RunEngine(events, assigner, spec, flavor);
        EXPECT_THAT(got.firings, UnorderedElementsAreArray(expected.firings));
        EXPECT_THAT(LateKeys(got.late), UnorderedElementsAreArray(LateKeys(expected.late)));
      }
      if (bound == 700) {
        EXPECT_TRUE(expected.late.empty());
      } else {
        EXPECT_FALSE(expected.late.empty()) << "the stream must exercise lateness";
      }
    }
  }
}

TEST(WindowTest, TumblingMatchesReference) {
  RefSpec spec;
  spec.kind = RefWindowKind::kTumbling;
  spec.size = 100;
  CheckAgainstReference(TumblingEventTimeWindows::Of(absl::Milliseconds(100)), spec);
}

TEST(WindowTest, SlidingMatchesReference) {
  RefSpec spec;
  spec.kind = RefWindowKind::kSliding;
  spec.size = 100;
  spec.slide = 30;
  CheckAgainstReference(
      SlidingEventTimeWindows::Of(absl::Milliseconds(100), absl::Milliseconds(30)), spec);
}

TEST(WindowTest, SessionsMatchReference) {
  RefSpec spec;
  spec.kind = RefWindowKind::kSession;
  spec.gap = 40;
  CheckAgainstReference(EventTimeSessionWindows::WithGap(absl::Milliseconds(40)), spec);
}

TEST(WindowTest, LateRecordBridgesTwoSessionsAndRefiresTheMergedOne) {
  // Two sessions of key a fire at the watermark; a late (but allowed) record between them
  // merges them into one session, which fires again with everything.
  std::vector<Event> events = {
      {"a", 1000, 1}, {"a", 1010, 2},  // session [1000, 1060)
      {"a", 1100, 3},                  // session [1100, 1150)
      {"z", 2000, 0},                  // moves the watermark to 1999: both fire
      {"a", 1055, 4},                  // late, within lateness: bridges both sessions
  };
  RefSpec spec;
  spec.kind = RefWindowKind::kSession;
  spec.gap = 50;
  spec.out_of_orderness = 0;
  spec.allowed_lateness = 5000;
  auto expected = testing::RunReference(ToRef(events), spec);
  RunOutput got = RunEngine(events, EventTimeSessionWindows::WithGap(absl::Milliseconds(50)), spec,
                            Flavor::kAggregateProcess);
  EXPECT_THAT(got.firings, UnorderedElementsAreArray(expected.firings));
  EXPECT_THAT(got.firings, ::testing::Contains(RefFiring{"a", 1000, 1150, 4, 10, 1, 4}));
  EXPECT_THAT(got.firings, ::testing::Contains(RefFiring{"a", 1000, 1060, 2, 3, 1, 2}));
  EXPECT_THAT(got.firings, ::testing::Contains(RefFiring{"a", 1100, 1150, 1, 3, 3, 3}));
}

TEST(WindowTest, ReduceGivesTheSameSumsAsAggregate) {
  std::vector<Event> events = RandomStream(9, 500, 0);
  Pipeline p("reduce");
  auto out = std::make_shared<CollectedRecords<Event>>();
  p.Source(CollectionSource<Event>(events))
      .AssignTimestampsAndWatermarks(
          WatermarkStrategy<Event>::ForMonotonousTimestamps().WithTimestampAssigner(&Event::ts))
      .KeyBy(&Event::key)
      .Window(Tumbling(absl::Milliseconds(100)))
      .Reduce([](const Event& a, const Event& b) {
        return Event{a.key, a.ts, a.value + b.value};
      })
      .Sink(CollectSink<Event>(out));
  ASSERT_OK(ExecuteLocally(p));
  RefSpec spec;
  spec.size = 100;
  auto expected = testing::RunReference(ToRef(events), spec);
  std::vector<std::tuple<std::string, int64_t, int64_t>> got, want;
  for (const auto& r : out->Records()) {
    // Output timestamp is the window's max timestamp.
    got.emplace_back(r.value.key, r.timestamp + 1 - 100, r.value.value);
  }
  for (const auto& f : expected.firings)
    want.emplace_back(std::get<0>(f), std::get<1>(f), std::get<4>(f));
  EXPECT_THAT(got, UnorderedElementsAreArray(want));
}

}  // namespace
}  // namespace sluice
