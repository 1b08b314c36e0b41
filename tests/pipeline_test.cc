// Operators and partitioners end to end on the mini-cluster, checked with a collect sink.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/operator_harness.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::UnorderedElementsAreArray;

template <typename T>
std::vector<T> Sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<int64_t> Range(int64_t n) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(PipelineTest, MapFilterFlatMapAcrossParallelism) {
  for (int parallelism : {1, 3}) {
    Pipeline p("ops");
    p.SetParallelism(parallelism);
    auto out = std::make_shared<CollectedRecords<int64_t>>();
    p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }, {.count = 1000}))
        .Map([](const int64_t& v) { return v * 3; })
        .Filter([](const int64_t& v) { return v % 2 == 0; })
        .FlatMap<int64_t>([](const int64_t& v, Collector<int64_t>& c) {
          c.Collect(v);
          c.Collect(-v);
        })
        .Sink(CollectSink<int64_t>(out));
    ASSERT_OK(ExecuteLocally(p));
    std::vector<int64_t> expected;
    for (int64_t i = 0; i < 1000; ++i) {
      if ((i * 3) % 2 == 0) {
        expected.push_back(i * 3);
        expected.push_back(-i * 3);
      }
    }
    EXPECT_THAT(out->Values(), UnorderedElementsAreArray(expected))
        << "parallelism " << parallelism;
  }
}

class Doubler final : public MapFunction<int64_t, int64_t> {
 public:
  void Open(RuntimeContext& ctx) override { subtask_ = ctx.SubtaskIndex(); }
  int64_t Map(const int64_t& v) override { return v * 2 + (subtask_ < 0 ? 1 : 0); }

 private:
  int subtask_ = -1;  // -1 until Open ran: a missing Open shows in the results
};

TEST(PipelineTest, RichFunctionsAreOpenedBeforeRecords) {
  Pipeline p("rich");
  auto out = std::make_shared<CollectedRecords<int64_t>>();
  p.Source(CollectionSource<int64_t>(Range(100)))
      .Map(Doubler{})
      .Parallelism(2)
      .Sink(CollectSink<int64_t>(out));
  ASSERT_OK(ExecuteLocally(p));
  std::vector<int64_t> expected;
  for (int64_t i = 0; i < 100; ++i) expected.push_back(2 * i);
  EXPECT_EQ(Sorted(out->Values()), expected);
}

TEST(PipelineTest, KeyedReduceEmitsRunningValuesPerKey) {
  Pipeline p("reduce");
  p.SetParallelism(2);
  using KV = std::pair<std::string, int64_t>;
  std::vector<KV> input = {{"a", 1}, {"b", 10}, {"a", 2}, {"b", 20}, {"a", 3}};
  auto out = std::make_shared<CollectedRecords<KV>>();
  p.Source(CollectionSource<KV>(input))
      .KeyBy(&KV::first)
      .Reduce([](const KV& acc, const KV& v) {
        return KV{acc.first, acc.second + v.second};
      })
      .Sink(CollectSink<KV>(out));
  ASSERT_OK(ExecuteLocally(p));
  // Per key, the running sums arrive in input order.
  std::map<std::string, std::vector<int64_t>> per_key;
  for (const auto& kv : out->Values()) per_key[kv.first].push_back(kv.second);
  EXPECT_EQ(per_key["a"], (std::vector<int64_t>{1, 3, 6}));
  EXPECT_EQ(per_key["b"], (std::vector<int64_t>{10, 30}));
}

TEST(PipelineTest, KeyByRoutesEachKeyToExactlyOneSubtask) {
  Pipeline p("routing");
  using Tagged = std::pair<int64_t, int>;  // key, subtask that saw it
  class TagSubtask final : public KeyedProcessFunction<int64_t, int64_t, Tagged> {
   public:
    void Open(KeyedRuntimeContext<int64_t>& ctx) override { subtask_ = ctx.SubtaskIndex(); }
    void ProcessElement(const int64_t& v, Context&, Collector<Tagged>& out) override {
      out.Collect({v % 50, subtask_});
    }

   private:
    int subtask_ = 0;
  };
  auto out = std::make_shared<CollectedRecords<Tagged>>();
  p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }, {.count = 5000}))
      .Parallelism(3)
      .KeyBy([](const int64_t& v) { return v % 50; })
      .Process(TagSubtask{})
      .Parallelism(4)
      .Sink(CollectSink<Tagged>(out));
  ASSERT_OK(ExecuteLocally(p));
  std::map<int64_t, std::set<int>> subtasks_of_key;
  for (const auto& [key, subtask] : out->Values()) subtasks_of_key[key].insert(subtask);
  ASSERT_EQ(subtasks_of_key.size(), 50u);
  std::set<int> used;
  for (const auto& [key, subtasks] : subtasks_of_key) {
    ASSERT_EQ(subtasks.size(), 1u) << "key " << key;
    int expected = OperatorIndexForKeyGroup(KeyGroupFor(key, 128), 4, 128);
    EXPECT_EQ(*subtasks.begin(), expected);
    used.insert(expected);
  }
  EXPECT_GT(used.size(), 1u);
  EXPECT_EQ(out->Values().size(), 5000u);
}

TEST(PipelineTest, MaxParallelismSetsTheKeyGroupsOfAKeyedOperator) {
  Pipeline p("max-parallelism");
  using Tagged = std::pair<int64_t, int>;
  class TagSubtask final : public KeyedProcessFunction<int64_t, int64_t, Tagged> {
   public:
    void Open(KeyedRuntimeContext<int64_t>& ctx) override {
      subtask_ = ctx.SubtaskIndex();
      EXPECT_EQ(ctx.MaxParallelism(), 8);
      EXPECT_EQ(ctx.key_group_range(), KeyGroupRangeForOperator(subtask_, 3, 8));
    }
    void ProcessElement(const int64_t& v, Context&, Collector<Tagged>& out) override {
      out.Collect({v, subtask_});
    }

   private:
    int subtask_ = 0;
  };
  auto out = std::make_shared<CollectedRecords<Tagged>>();
  p.Source(CollectionSource<int64_t>(Range(200)))
      .KeyBy([](const int64_t& v) { return v; })
      .Process(TagSubtask{})
      .Parallelism(3)
      .MaxParallelism(8)
      .Sink(CollectSink<Tagged>(out));
  ASSERT_OK(ExecuteLocally(p));
  ASSERT_EQ(out->Values().size(), 200u);
  for (const auto& [key, subtask] : out->Values()) {
    EXPECT_EQ(subtask, OperatorIndexForKeyGroup(KeyGroupFor(key, 8), 3, 8)) << "key " << key;
  }
}

TEST(PipelineTest, UnionRebalanceBroadcastAndForward) {
  Pipeline p("partitioning");
  auto a = p.Source(CollectionSource<int64_t>({1, 2, 3}), "A");
  auto b = p.Source(CollectionSource<int64_t>({10, 20}), "B");
  auto unioned = std::make_shared<CollectedRecords<int64_t>>();
  a.Union(b)
      .Rebalance()
      .Map([](const int64_t& v) { return v; })
      .Parallelism(2)
      .Sink(CollectSink<int64_t>(unioned));
  auto broadcast = std::make_shared<CollectedRecords<int64_t>>();
  a.Broadcast()
      .Map([](const int64_t& v) { return v; })
      .Parallelism(3)
      .Sink(CollectSink<int64_t>(broadcast));
  auto forwarded = std::make_shared<CollectedRecords<int64_t>>();
  b.Forward().Map([](const int64_t& v) { return v + 1; }).Sink(CollectSink<int64_t>(forwarded));
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_EQ(Sorted(unioned->Values()), (std::vector<int64_t>{1, 2, 3, 10, 20}));
  EXPECT_EQ(Sorted(broadcast->Values()), (std::vector<int64_t>{1, 1, 1, 2, 2, 2, 3, 3, 3}));
  EXPECT_EQ(Sorted(forwarded->Values()), (std::vector<int64_t>{11, 21}));
}

TEST(PipelineTest, RebalanceSpreadsRecordsEvenly) {
  Pipeline p("rebalance");
  using Seen = std::pair<int64_t, int>;
  class Tag final : public ProcessFunction<int64_t, Seen> {
   public:
    void Open(RuntimeContext& ctx) override { subtask_ = ctx.SubtaskIndex(); }
    void ProcessElement(const int64_t& v, Context&, Collector<Seen>& out) override {
      out.Collect({v, subtask_});
    }

   private:
    int subtask_ = 0;
  };
  auto out = std::make_shared<CollectedRecords<Seen>>();
  p.Source(CollectionSource<int64_t>(Range(900)))
      .Rebalance()
      .Process(Tag{})
      .Parallelism(3)
      .Sink(CollectSink<Seen>(out));
  ASSERT_OK(ExecuteLocally(p));
  std::map<int, int> per_subtask;
  for (const auto& [v, s] : out->Values()) per_subtask[s]++;
  EXPECT_EQ(per_subtask, (std::map<int, int>{{0, 300}, {1, 300}, {2, 300}}));
}

TEST(PipelineTest, ForwardBetweenUnequalParallelismIsRefused) {
  Pipeline p("bad-forward");
  p.Source(CollectionSource<int64_t>({1}))
      .Forward()
      .Map([](const int64_t& v) { return v; })
      .Parallelism(2)
      .Print();
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("needs equal parallelism"));
}

TEST(PipelineTest, GeneratorIsDeterministicAndIndependentOfParallelism) {
  std::vector<std::vector<uint64_t>> runs;
  for (int parallelism : {1, 4}) {
    Pipeline p("gen");
    auto out = std::make_shared<CollectedRecords<uint64_t>>();
    p.Source(Generator([](uint64_t, uint64_t random) { return random % 1000003; },
                       {.count = 2000, .seed = 7}))
        .Parallelism(parallelism)
        .Sink(CollectSink<uint64_t>(out));
    ASSERT_OK(ExecuteLocally(p));
    runs.push_back(Sorted(out->Values()));
  }
  ASSERT_EQ(runs[0].size(), 2000u);
  EXPECT_EQ(runs[0], runs[1]);
}

TEST(PipelineTest, GeneratorRateLimitHoldsTheRate) {
  // 2000 records at 20000/s cannot finish in less than ~0.1 s; an unlimited generator
  // would take microseconds. The bound is a floor, so a slow machine cannot break it.
  Pipeline p("rate");
  auto out = std::make_shared<CollectedRecords<uint64_t>>();
  p.Source(Generator([](uint64_t i) { return i; }, {.count = 2000, .records_per_second = 20000}))
      .Sink(CollectSink<uint64_t>(out));
  auto r = ExecuteLocally(p);
  ASSERT_OK(r);
  EXPECT_GE(r->duration, absl::Milliseconds(90));
  EXPECT_EQ(out->Values().size(), 2000u);
}

/// Emits one record, then stays open until the sink has seen it (or gives up after 10 s).
class OneThenWait final : public SourceFunction<int64_t> {
 public:
  explicit OneThenWait(std::shared_ptr<std::atomic<bool>> seen) : seen_(std::move(seen)) {}
  SourceStatus Poll(SourceOutput<int64_t>& out) override {
    if (!sent_) {
      out.Collect(42);
      sent_ = true;
      start_ = std::chrono::steady_clock::now();
      return SourceStatus::kMoreAvailable;
    }
    if (seen_->load() || std::chrono::steady_clock::now() - start_ > std::chrono::seconds(10)) {
      return SourceStatus::kEndOfInput;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling a test condition
    return SourceStatus::kNothingAvailable;
  }
  bool IsParallel() const override { return false; }

 private:
  std::shared_ptr<std::atomic<bool>> seen_;
  bool sent_ = false;
  std::chrono::steady_clock::time_point start_;
};

class FlagSink final : public SinkFunction<int64_t> {
 public:
  explicit FlagSink(std::shared_ptr<std::atomic<bool>> seen) : seen_(std::move(seen)) {}
  void Invoke(const int64_t&, const SinkContext&) override { seen_->store(true); }

 private:
  std::shared_ptr<std::atomic<bool>> seen_;
};

TEST(PipelineTest, BufferTimeoutDeliversARecordAtLowRates) {
  // One record in a buffer of thousands: only the timeout flush can send it on, at both
  // hops (from the source task and from a task fed by a channel), while the source is still
  // running.
  auto seen = std::make_shared<std::atomic<bool>>(false);
  Pipeline p("latency");
  p.SetBufferTimeout(absl::Milliseconds(2));
  p.Source(OneThenWait(seen))
      .Rebalance()
      .Map([](const int64_t& v) { return v; })
      .Rebalance()
      .Sink(FlagSink(seen));
  auto start = absl::Now();
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_TRUE(seen->load());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "the record only arrived at end of input";
}

// Side outputs of user functions: records set aside by a process function, a keyed process
// function or a source travel as their own stream, with their own type.

const OutputTag<std::string> kOdd("odd");

class SplitOdd final : public ProcessFunction<int64_t, int64_t> {
 public:
  void ProcessElement(const int64_t& v, Context& ctx, Collector<int64_t>& out) override {
    if (v % 2 == 0) {
      out.Collect(v);
    } else {
      ctx.Output(kOdd, absl::StrCat("odd ", v));
    }
  }
};

TEST(PipelineTest, ProcessFunctionSideOutputIsAStreamOfItsOwn) {
  for (int parallelism : {1, 3}) {
    Pipeline p("split");
    p.SetParallelism(parallelism);
    auto evens = std::make_shared<CollectedRecords<int64_t>>();
    auto odds = std::make_shared<CollectedRecords<std::string>>();
    auto odds_remote = std::make_shared<CollectedRecords<std::string>>();
    auto split = p.Source(CollectionSource<int64_t>(Range(1000))).Process(SplitOdd{});
    split.Sink(CollectSink<int64_t>(evens));
    // Read twice: chained into a sink, and through channels to another parallelism.
    split.GetSideOutput(kOdd).Sink(CollectSink<std::string>(odds));
    split.GetSideOutput(kOdd)
        .Rebalance()
        .Map([](const std::string& s) { return s; })
        .Parallelism(2)
        .Sink(CollectSink<std::string>(odds_remote));
    ASSERT_OK(ExecuteLocally(p));
    std::vector<int64_t> expected_evens;
    std::vector<std::string> expected_odds;
    for (int64_t i = 0; i < 1000; ++i) {
      if (i % 2 == 0) {
        expected_evens.push_back(i);
      } else {
        expected_odds.push_back(absl::StrCat("odd ", i));
      }
    }
    EXPECT_THAT(evens->Values(), UnorderedElementsAreArray(expected_evens));
    EXPECT_THAT(odds->Values(), UnorderedElementsAreArray(expected_odds));
    EXPECT_THAT(odds_remote->Values(), UnorderedElementsAreArray(expected_odds));
  }
}

TEST(PipelineTest, ASideOutputNobodyReadsIsDroppedAndCounted) {
  Pipeline p("unread");
  auto node = p.Source(CollectionSource<int64_t>(Range(10))).Process(SplitOdd{});
  testing::OperatorHarness<int64_t, int64_t> h(p.graph(), node.nodes()[0]);
  h.Open();
  for (int64_t i = 0; i < 10; ++i) h.ProcessElement(i);
  h.Close();
  EXPECT_EQ(h.metrics().GetCounter("side_output_records_dropped").value(), 5);
  EXPECT_EQ(h.output().records.size(), 5u);
}

TEST(PipelineTest, ASideOutputReadWithAnotherTypeFailsTheJob) {
  Pipeline p("mistyped");
  auto split = p.Source(CollectionSource<int64_t>(Range(10))).Process(SplitOdd{});
  split.GetSideOutput(OutputTag<int64_t>("odd"))
      .Sink(CollectSink<int64_t>(std::make_shared<CollectedRecords<int64_t>>()));
  auto result = ExecuteLocally(p);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::HasSubstr("side output 'odd' is read with another type"));
}

// Keyed: a record per key goes to the side output when its key's timer fires.
const OutputTag<int64_t> kTimedOut("timed-out");

class SideOnTimer final : public KeyedProcessFunction<int64_t, int64_t, int64_t> {
 public:
  void ProcessElement(const int64_t& v, Context& ctx, Collector<int64_t>& out) override {
    out.Collect(v);
    ctx.Timers().RegisterEventTimeTimer(ctx.timestamp() + 10);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<int64_t>&) override {
    ctx.Output(kTimedOut, ctx.CurrentKey());
  }
};

TEST(PipelineTest, KeyedProcessFunctionWritesASideOutputFromTimers) {
  Pipeline p("keyed-side");
  p.SetParallelism(2);
  auto main = std::make_shared<CollectedRecords<int64_t>>();
  auto side = std::make_shared<CollectedRecords<int64_t>>();
  auto out = p.Source(CollectionSource<int64_t>(Range(100)))
                 .AssignTimestampsAndWatermarks(
                     WatermarkStrategy<int64_t>::ForMonotonousTimestamps().WithTimestampAssigner(
                         [](const int64_t& v, Timestamp) { return v; }))
                 .KeyBy([](const int64_t& v) { return v % 7; })
                 .Process(SideOnTimer{});
  out.Sink(CollectSink<int64_t>(main));
  out.GetSideOutput(kTimedOut).Sink(CollectSink<int64_t>(side));
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_EQ(Sorted(main->Values()), Range(100));
  // Each key's timers fire once per distinct timestamp + 10: one side record per record.
  std::vector<int64_t> expected;
  for (int64_t i = 0; i < 100; ++i) expected.push_back(i % 7);
  EXPECT_EQ(Sorted(side->Values()), Sorted(expected));
}

// A source that sets every tenth record aside.
const OutputTag<std::string> kTenth("tenth");

class TenthAside final : public SourceFunction<int64_t> {
 public:
  SourceStatus Poll(SourceOutput<int64_t>& out) override {
    for (size_t n = 0; n < out.batch_hint() && next_ < 1000; ++n, ++next_) {
      if (next_ % 10 == 0) {
        out.CollectSide(kTenth, absl::StrCat(next_), next_);
      } else {
        out.CollectWithTimestamp(next_, next_);
      }
    }
    return next_ < 1000 ? SourceStatus::kMoreAvailable : SourceStatus::kEndOfInput;
  }
  bool IsParallel() const override { return false; }

 private:
  int64_t next_ = 0;
};

TEST(PipelineTest, SourceSideOutputCarriesItsRecordsAndTimestamps) {
  Pipeline p("source-side");
  auto main = std::make_shared<CollectedRecords<int64_t>>();
  auto side = std::make_shared<CollectedRecords<std::string>>();
  auto source = p.Source(TenthAside{});
  source.Sink(CollectSink<int64_t>(main));
  source.GetSideOutput(kTenth).Rebalance().Sink(CollectSink<std::string>(side));
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_EQ(main->Values().size(), 900u);
  std::vector<Record<std::string>> records = side->Records();
  ASSERT_EQ(records.size(), 100u);
  for (const auto& r : records) EXPECT_EQ(r.value, absl::StrCat(r.timestamp));
}

TEST(PipelineTest, OperatorsWithFixedSideOutputsRefuseOtherTags) {
  Pipeline p("fixed");
  auto mapped =
      p.Source(CollectionSource<int64_t>(Range(10))).Map([](const int64_t& v) { return v; });
  EXPECT_THROW(mapped.GetSideOutput(kTimedOut), std::logic_error);
}

}  // namespace
}  // namespace sluice
