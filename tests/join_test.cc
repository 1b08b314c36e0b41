// Joins end to end on the mini-cluster against brute-force models over the whole input:
// the interval join, the window join and the co-group, on randomized out-of-order inputs
// (with late records), at parallelism 1-4, on both state backends.

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/operator_harness.h"
#include "sluice/testing/test_util.h"

namespace sluice_join_test {

struct Side {
  int64_t key = 0;
  int64_t ts = 0;
  int64_t id = 0;
};
SLUICE_SERIALIZABLE(Side, key, ts, id)

}  // namespace sluice_join_test

namespace sluice {
namespace {

using sluice_join_test::Side;
using ::testing::IsSubsetOf;
using ::testing::IsSupersetOf;
using ::testing::UnorderedElementsAreArray;

constexpr int64_t kBoundMs = 30;  // the watermark strategies' out-of-orderness

uint64_t FreshSeed() {
  if (const char* fixed = std::getenv("SLUICE_TEST_SEED")) return std::stoull(fixed);
  return std::random_device()();
}

/// One side's records in arrival order: timestamps advancing 0-3 ms, about 12 keys; each
/// record arrives up to kBoundMs after its time (on time), or with `late_percent` percent
/// probability 100-400 ms later (late for its own stream's watermark). `on_time` marks the
/// records no watermark can have passed when they arrive.
struct Input {
  std::vector<Side> records;
  std::set<int64_t> on_time;  // ids
};

Input Generate(std::mt19937_64& rng, int count, int64_t first_id, int late_percent) {
  Input in;
  std::vector<std::pair<int64_t, Side>> arrival;
  int64_t t = 100'000;
  for (int i = 0; i < count; ++i) {
    t += static_cast<int64_t>(rng() % 4);
    Side s{static_cast<int64_t>(rng() % 12), t, first_id + i};
    const bool late = static_cast<int>(rng() % 100) < late_percent;
    const int64_t delay = late ? 100 + static_cast<int64_t>(rng() % 301)
                               : static_cast<int64_t>(rng() % (kBoundMs + 1));
    arrival.emplace_back(t + delay, s);
  }
  std::stable_sort(arrival.begin(), arrival.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  // On time for sure: no record before it in its own stream is more than kBoundMs later in
  // event time (its stream's watermark, max - bound - 1, is below it; the joined
  // watermark, the lower of both streams', too).
  int64_t max_ts = std::numeric_limits<int64_t>::min();
  for (const auto& [when, s] : arrival) {
    in.records.push_back(s);
    if (max_ts == std::numeric_limits<int64_t>::min() || s.ts > max_ts - kBoundMs - 1) {
      in.on_time.insert(s.id);
    }
    max_ts = std::max(max_ts, s.ts);
  }
  return in;
}

DataStream<Side> Timed(Pipeline& p, const std::vector<Side>& records, const std::string& uid) {
  return p.Source(CollectionSource<Side>(records))
      .Uid(uid)
      .AssignTimestampsAndWatermarks(
          WatermarkStrategy<Side>::ForBoundedOutOfOrderness(absl::Milliseconds(kBoundMs))
              .WithTimestampAssigner(&Side::ts)
              .WithEmitInterval(absl::ZeroDuration()));
}

std::string PairOf(const Side& l, const Side& r) {
  return absl::StrCat(l.key, ":", l.id, "-", r.id);
}

class PairUp final : public ProcessJoinFunction<Side, Side, std::string> {
 public:
  void ProcessElement(const Side& l, const Side& r, Context& ctx,
                      Collector<std::string>& out) override {
    if (ctx.LeftTimestamp() != l.ts || ctx.RightTimestamp() != r.ts ||
        ctx.timestamp() != std::max(l.ts, r.ts)) {
      throw std::runtime_error("interval join: wrong timestamps in the context");
    }
    out.Collect(PairOf(l, r));
  }
};

struct JoinCase {
  StateBackendKind backend;
  int parallelism;
};

class JoinTest : public ::testing::TestWithParam<JoinCase> {
 protected:
  Pipeline MakePipeline(const std::string& name) {
    Pipeline p(name);
    p.SetParallelism(GetParam().parallelism);
    p.mutable_config().state_backend = GetParam().backend;
    return p;
  }
};

/// The model of an interval join over `left` and `right` restricted to records in `use`.
std::vector<std::string> IntervalModel(const Input& left, const Input& right, int64_t lower,
                                       int64_t upper, bool only_on_time) {
  std::vector<std::string> out;
  for (const Side& l : left.records) {
    if (only_on_time && !left.on_time.contains(l.id)) continue;
    for (const Side& r : right.records) {
      if (only_on_time && !right.on_time.contains(r.id)) continue;
      if (l.key == r.key && r.ts >= l.ts + lower && r.ts <= l.ts + upper) {
        out.push_back(PairOf(l, r));
      }
    }
  }
  return out;
}

TEST_P(JoinTest, IntervalJoinMatchesTheBruteForceModel) {
  const uint64_t seed = FreshSeed();
  SCOPED_TRACE(absl::StrCat("SLUICE_TEST_SEED=", seed));
  std::mt19937_64 rng(seed);
  for (auto [lower, upper] : {std::pair<int64_t, int64_t>{-20, 15}, {5, 40}, {-60, -10}}) {
    SCOPED_TRACE(absl::StrCat("between ", lower, " and ", upper));
    const Input left = Generate(rng, 1500, 0, 3);
    const Input right = Generate(rng, 1500, 1'000'000, 3);
    Pipeline p = MakePipeline("interval-join");
    auto out = std::make_shared<CollectedRecords<std::string>>();
    Timed(p, left.records, "left")
        .KeyBy(&Side::key)
        .IntervalJoin(Timed(p, right.records, "right").KeyBy(&Side::key))
        .Between(absl::Milliseconds(lower), absl::Milliseconds(upper))
        .Process(PairUp{})
        .Sink(CollectSink<std::string>(out));
    ASSERT_OK(ExecuteLocally(p).status());
    const std::vector<std::string> got = out->Values();
    // Every pair of on-time records, each once; late records may have been dropped.
    EXPECT_THAT(got, IsSupersetOf(IntervalModel(left, right, lower, upper, true)));
    EXPECT_THAT(got, IsSubsetOf(IntervalModel(left, right, lower, upper, false)));
    EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), got.size()) << "duplicates";
  }
}

/// Window join and co-group models over tumbling windows of `size` ms.
std::map<std::pair<int64_t, int64_t>, std::pair<std::vector<Side>, std::vector<Side>>> Windows(
    const Input& left, const Input& right, int64_t size, bool only_on_time) {
  std::map<std::pair<int64_t, int64_t>, std::pair<std::vector<Side>, std::vector<Side>>> w;
  for (const Side& l : left.records) {
    if (!only_on_time || left.on_time.contains(l.id)) w[{l.key, l.ts / size}].first.push_back(l);
  }
  for (const Side& r : right.records) {
    if (!only_on_time || right.on_time.contains(r.id)) {
      w[{r.key, r.ts / size}].second.push_back(r);
    }
  }
  return w;
}

struct PairsOf final : JoinFunction<Side, Side, std::string> {
  std::string Join(const Side& l, const Side& r) override { return PairOf(l, r); }
};

/// The window join's pairs by the model.
std::vector<std::string> WindowPairs(const Input& left, const Input& right, int64_t size,
                                     bool only_on_time) {
  std::vector<std::string> v;
  for (const auto& [key_window, sides] : Windows(left, right, size, only_on_time)) {
    for (const Side& l : sides.first) {
      for (const Side& r : sides.second) v.push_back(PairOf(l, r));
    }
  }
  return v;
}

TEST_P(JoinTest, WindowJoinMatchesTheBruteForceModel) {
  const uint64_t seed = FreshSeed();
  SCOPED_TRACE(absl::StrCat("SLUICE_TEST_SEED=", seed));
  std::mt19937_64 rng(seed);
  const Input left = Generate(rng, 2000, 0, 3);
  const Input right = Generate(rng, 2000, 1'000'000, 3);
  Pipeline p = MakePipeline("window-join");
  auto out = std::make_shared<CollectedRecords<std::string>>();
  Timed(p, left.records, "left")
      .Join(Timed(p, right.records, "right"))
      .Where(&Side::key)
      .EqualTo(&Side::key)
      .Window(TumblingEventTimeWindows::Of(absl::Milliseconds(50)))
      .Apply(PairsOf{})
      .Sink(CollectSink<std::string>(out));
  ASSERT_OK(ExecuteLocally(p).status());
  const std::vector<std::string> got = out->Values();
  EXPECT_THAT(got, IsSupersetOf(WindowPairs(left, right, 50, true)));
  EXPECT_THAT(got, IsSubsetOf(WindowPairs(left, right, 50, false)));
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), got.size()) << "duplicates";
}

TEST_P(JoinTest, CoGroupSeesBothSidesOfEveryKeyAndWindow) {
  // An outer view: per key and window the ids of both sides, sorted (either side may be
  // empty). Without late records the result is exact.
  struct Describe final : CoGroupFunction<Side, Side, std::string> {
    void CoGroup(const std::vector<Side>& left, const std::vector<Side>& right,
                 Collector<std::string>& out) override {
      out.Collect(Describe::Of(left, right));
    }
    static std::string Of(const std::vector<Side>& left, const std::vector<Side>& right) {
      const Side& any = left.empty() ? right.front() : left.front();
      std::vector<int64_t> l, r;
      for (const Side& s : left) l.push_back(s.id);
      for (const Side& s : right) r.push_back(s.id);
      std::sort(l.begin(), l.end());
      std::sort(r.begin(), r.end());
      return absl::StrCat(any.key, "@", any.ts / 40, " [", absl::StrJoin(l, ","), "] [",
                          absl::StrJoin(r, ","), "]");
    }
  };
  const uint64_t seed = FreshSeed();
  SCOPED_TRACE(absl::StrCat("SLUICE_TEST_SEED=", seed));
  std::mt19937_64 rng(seed);
  const Input left = Generate(rng, 1500, 0, 0);
  const Input right = Generate(rng, 800, 1'000'000, 0);
  Pipeline p = MakePipeline("co-group");
  auto out = std::make_shared<CollectedRecords<std::string>>();
  Timed(p, left.records, "left")
      .CoGroup(Timed(p, right.records, "right"))
      .Where(&Side::key)
      .EqualTo(&Side::key)
      .Window(TumblingEventTimeWindows::Of(absl::Milliseconds(40)))
      .Apply(Describe{})
      .Sink(CollectSink<std::string>(out));
  ASSERT_OK(ExecuteLocally(p).status());
  std::vector<std::string> expected;
  for (const auto& [key_window, sides] : Windows(left, right, 40, false)) {
    expected.push_back(Describe::Of(sides.first, sides.second));
  }
  EXPECT_THAT(out->Values(), UnorderedElementsAreArray(expected));
}

/// Runs `make(parallelism, out, rate)` throttled until a few checkpoints completed, stops it
/// with a savepoint, resumes it from there at `after` and returns both runs' output lines
/// (`*first_part`: how many came from the first).
template <typename Make>
std::vector<std::string> StopAndResume(const Make& make, int before, int after,
                                       const std::string& dir, size_t* first_part) {
  auto graph = make(before, dir + "/first", 2000.0).BuildJobGraph();
  EXPECT_OK(graph);
  if (!graph.ok()) return {};
  absl::StatusOr<std::string> savepoint = testing::StopWithSavepointAfter(*graph, dir + "/sp", 2);
  EXPECT_OK(savepoint);
  if (!savepoint.ok()) return {};
  std::vector<std::string> lines = testing::ReadPartFileLines(dir + "/first");
  *first_part = lines.size();
  Pipeline resumed = make(after, dir + "/second", 0.0);
  resumed.mutable_config().restore_from = *savepoint;
  EXPECT_OK(ExecuteLocally(resumed));
  for (const std::string& line : testing::ReadPartFileLines(dir + "/second")) {
    lines.push_back(line);
  }
  return lines;
}

TEST_P(JoinTest, JoinStateRescalesFromASavepoint) {
  // The interval join's buffers and the co-group's windows, each side's records waiting in
  // keyed state, taken over by more (or fewer) subtasks: output exactly once, as the model.
  const uint64_t seed = FreshSeed();
  SCOPED_TRACE(absl::StrCat("SLUICE_TEST_SEED=", seed));
  std::mt19937_64 rng(seed);
  const Input left = Generate(rng, 4000, 0, 0);
  const Input right = Generate(rng, 4000, 1'000'000, 0);
  const int before = GetParam().parallelism;
  const int after = before == 1 ? 3 : before - 1;
  auto make = [&](bool interval) {
    return [&, interval](int parallelism, const std::string& out, double rate) {
      Pipeline p("rescale-" + std::string(interval ? "interval" : "co-group"));
      p.SetParallelism(parallelism);
      p.mutable_config().state_backend = GetParam().backend;
      p.mutable_config().max_source_rate = rate;
      p.EnableCheckpointing(absl::Milliseconds(30));
      auto l = Timed(p, left.records, "left");
      auto r = Timed(p, right.records, "right");
      if (interval) {
        l.KeyBy(&Side::key)
            .IntervalJoin(r.KeyBy(&Side::key))
            .Between(absl::Milliseconds(-20), absl::Milliseconds(20))
            .Process(PairUp{})
            .Uid("join")
            .Sink(TextFileSink<std::string>(out))
            .Uid("sink");
      } else {
        l.Join(r)
            .Where(&Side::key)
            .EqualTo(&Side::key)
            .Window(TumblingEventTimeWindows::Of(absl::Milliseconds(50)))
            .Apply(PairsOf{})
            .Uid("join")
            .Sink(TextFileSink<std::string>(out))
            .Uid("sink");
      }
      return p;
    };
  };
  for (bool interval : {true, false}) {
    SCOPED_TRACE(interval ? "interval join" : "window join");
    testing::TempDir dir;
    size_t first_part = 0;
    const std::vector<std::string> got =
        StopAndResume(make(interval), before, after, dir.path(), &first_part);
    const std::vector<std::string> expected =
        interval ? IntervalModel(left, right, -20, 20, false) : WindowPairs(left, right, 50, false);
    EXPECT_GT(first_part, 0u);
    EXPECT_LT(first_part, expected.size()) << "stopped before the end of its input";
    EXPECT_THAT(got, UnorderedElementsAreArray(expected));
  }
}

TEST(JoinErrorsTest, MisusedBuildersAndRecordsWithoutTimestampsAreNamed) {
  Pipeline p("errors");
  auto left = p.Source(CollectionSource<Side>({{1, 10, 1}})).KeyBy(&Side::key);
  auto right = p.Source(CollectionSource<Side>({{1, 12, 2}})).KeyBy(&Side::key);
  EXPECT_THROW(left.IntervalJoin(right).Between(absl::Milliseconds(5), absl::Milliseconds(1)),
               std::invalid_argument);
  EXPECT_THROW(left.IntervalJoin(right).Process(PairUp{}), std::logic_error);
  EXPECT_THROW(left.IntervalJoin(right)
                   .Between(absl::Milliseconds(1), absl::Milliseconds(1))
                   .LowerBoundExclusive()
                   .Process(PairUp{}),
               std::invalid_argument);
  // No timestamps assigned: the job fails saying so, instead of joining nothing.
  left.IntervalJoin(right)
      .Between(absl::Milliseconds(-5), absl::Milliseconds(5))
      .Process(PairUp{})
      .Print();
  p.SetRestartStrategy(RestartStrategyConfig::None());
  auto result = ExecuteLocally(p);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::HasSubstr("record has no timestamp (assign timestamps and watermarks"));
}

INSTANTIATE_TEST_SUITE_P(BackendsAndParallelism, JoinTest,
                         ::testing::Values(JoinCase{StateBackendKind::kHeap, 1},
                                           JoinCase{StateBackendKind::kHeap, 3},
                                           JoinCase{StateBackendKind::kRocksDb, 2},
                                           JoinCase{StateBackendKind::kRocksDb, 4}),
                         [](const auto& info) {
                           return absl::StrCat(
                               info.param.backend == StateBackendKind::kHeap ? "Heap" : "RocksDb",
                               info.param.parallelism);
                         });

}  // namespace
}  // namespace sluice
