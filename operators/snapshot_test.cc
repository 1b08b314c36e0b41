// Operator snapshots in the backend-independent per-key-group format: keyed state, timers,
// window contents and session merging state survive snapshot and restore, also into a
// different parallelism; corrupt or incompatible state is refused with a clear message.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/internal/network/status_watermark_valve.h"
#include "sluice/sluice.h"
#include "sluice/testing/operator_harness.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;
using KV = std::pair<std::string, int64_t>;

/// Sums per key; emits each key's sum from an event-time timer at the end, and counts
/// records in a second state to exercise several tables.
class SumUntilEnd final : public KeyedProcessFunction<std::string, KV, KV> {
 public:
  void Open(KeyedRuntimeContext<std::string>& ctx) override {
    sum_ = &ctx.GetState(ValueStateDescriptor<int64_t>("sum"));
    seen_ = &ctx.GetListState(ListStateDescriptor<int64_t>("seen"));
  }
  void ProcessElement(const KV& kv, Context& ctx, Collector<KV>&) override {
    if (!sum_->Value()) ctx.Timers().RegisterEventTimeTimer(kEndOfTime);
    sum_->Update(sum_->ValueOr(0) + kv.second);
    seen_->Add(kv.second);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<KV>& out) override {
    out.Collect(
        {ctx.CurrentKey(), *sum_->Value() * 1000 + static_cast<int64_t>(seen_->Get().size())});
  }

 private:
  ValueState<int64_t>* sum_ = nullptr;
  ListState<int64_t>* seen_ = nullptr;
};

using Harness = testing::OperatorHarness<KV, KV>;

struct KeyedJob {
  std::shared_ptr<Pipeline> pipeline = std::make_shared<Pipeline>("snap");
  int node = -1;
  KeyedJob() {
    auto out = pipeline->Source(CollectionSource<KV>({})).KeyBy(&KV::first).Process(SumUntilEnd{});
    node = out.nodes()[0];
  }
  std::vector<std::unique_ptr<Harness>> Start(
      int parallelism, const std::vector<OperatorSnapshot>* restore = nullptr) {
    std::vector<std::unique_ptr<Harness>> hs;
    for (int i = 0; i < parallelism; ++i) {
      hs.push_back(std::make_unique<Harness>(pipeline->graph(), node, i, parallelism));
      if (restore != nullptr) {
        hs.back()->op().InitializeState(RedistributeState(*restore, i, parallelism, 128));
      }
      hs.back()->Open();
    }
    return hs;
  }
};

void Feed(std::vector<std::unique_ptr<Harness>>& hs, const std::vector<KV>& input) {
  const int p = static_cast<int>(hs.size());
  for (const KV& kv : input) {
    hs[OperatorIndexForKeyGroup(KeyGroupFor(kv.first, 128), p, 128)]->ProcessElement(kv, 1);
  }
}

std::vector<KV> Finish(std::vector<std::unique_ptr<Harness>>& hs) {
  std::vector<KV> out;
  for (auto& h : hs) {
    h->ProcessWatermark(kMaxWatermark);
    for (const auto& v : h->output().Values()) out.push_back(v);
  }
  return out;
}

std::vector<OperatorSnapshot> Snapshot(std::vector<std::unique_ptr<Harness>>& hs) {
  std::vector<OperatorSnapshot> snaps(hs.size());
  for (size_t i = 0; i < hs.size(); ++i) {
    // Through the serialized form, as checkpoint storage will keep it.
    auto s = hs[i]->op().SnapshotNow(1);
    EXPECT_OK(s);
    auto back = DeserializeFromString<OperatorSnapshot>(SerializeToString(*s));
    EXPECT_OK(back);
    snaps[i] = *back;
  }
  return snaps;
}

std::vector<KV> Input(int from, int to) {
  std::vector<KV> v;
  for (int i = from; i < to; ++i) v.push_back({absl::StrCat("key-", i % 37), i});
  return v;
}

TEST(SnapshotTest, KeyedStateAndTimersRestoreAtAnyParallelism) {
  KeyedJob job;
  auto reference_run = job.Start(1);
  Feed(reference_run, Input(0, 1000));
  const std::vector<KV> expected = Finish(reference_run);
  ASSERT_EQ(expected.size(), 37u);

  for (auto [before, after] : {std::pair{1, 1}, {2, 3}, {4, 1}, {3, 2}}) {
    SCOPED_TRACE(absl::StrCat(before, " -> ", after));
    auto first = job.Start(before);
    Feed(first, Input(0, 600));
    std::vector<OperatorSnapshot> snaps = Snapshot(first);
    auto second = job.Start(after, &snaps);  // the old instances are simply dropped: a crash
    Feed(second, Input(600, 1000));
    EXPECT_THAT(Finish(second), UnorderedElementsAreArray(expected));
  }
}

TEST(SnapshotTest, WindowContentsTriggersAndSessionsSurviveRestore) {
  auto make = [](Pipeline& p) {
    auto w = p.Source(CollectionSource<KV>({}))
                 .KeyBy(&KV::first)
                 .Window(EventTimeSessionWindows::WithGap(absl::Milliseconds(50)));
    w.AllowedLateness(absl::Milliseconds(100));
    return w.Reduce([](const KV& a, const KV& b) {
              return KV{a.first, a.second + b.second};
            })
        .nodes()[0];
  };
  Pipeline p;
  const int node = make(p);
  std::vector<std::tuple<std::string, int64_t, int64_t>> events;  // key, ts, value
  for (int i = 0; i < 400; ++i) {
    events.push_back({absl::StrCat("s", i % 5), (i * 37) % 2000, i});
  }
  auto run = [&](bool crash_midway) {
    auto h = std::make_unique<Harness>(p.graph(), node);
    h->Open();
    int64_t wm = kMinWatermark;
    std::vector<KV> out;
    for (size_t i = 0; i < events.size(); ++i) {
      if (crash_midway && i == events.size() / 2) {
        auto s = h->op().SnapshotNow(7);
        EXPECT_OK(s);
        for (const auto& v : h->output().Values()) out.push_back(v);
        h = std::make_unique<Harness>(p.graph(), node);
        h->op().InitializeState(RedistributeState({*s}, 0, 1, 128));
        h->Open();
        h->ProcessWatermark(wm);  // the restored operator learns the watermark again
      }
      auto [key, ts, value] = events[i];
      h->ProcessElement({key, value}, ts);
      if (i % 10 == 9) h->ProcessWatermark(wm = ts - 300);
    }
    h->ProcessWatermark(kMaxWatermark);
    for (const auto& v : h->output().Values()) out.push_back(v);
    return out;
  };
  const auto expected = run(false);
  ASSERT_FALSE(expected.empty());
  EXPECT_THAT(run(true), UnorderedElementsAreArray(expected));
}

TEST(SnapshotTest, CorruptSnapshotIsRefused) {
  KeyedJob job;
  auto hs = job.Start(1);
  Feed(hs, Input(0, 100));
  auto snaps = Snapshot(hs);
  for (auto& [kg, bytes] : snaps[0].key_groups) {
    if (bytes.size() > 20) bytes.resize(bytes.size() / 2);
  }
  Harness h(job.pipeline->graph(), job.node);
  h.op().InitializeState(RedistributeState(snaps, 0, 1, 128));
  try {
    h.Open();
    FAIL() << "expected the restore to fail";
  } catch (const std::exception& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("corrupt"));
  }
}

/// The same state name with another value type, as after an incompatible job change.
class SumAsString final : public KeyedProcessFunction<std::string, KV, KV> {
 public:
  void Open(KeyedRuntimeContext<std::string>& ctx) override {
    ctx.GetState(ValueStateDescriptor<std::string>("sum"));
  }
  void ProcessElement(const KV&, Context&, Collector<KV>&) override {}
};

TEST(SnapshotTest, StateWithChangedTypesIsRefusedByName) {
  KeyedJob job;
  auto hs = job.Start(1);
  Feed(hs, Input(0, 100));
  auto snaps = Snapshot(hs);
  Pipeline other;
  int node =
      other.Source(CollectionSource<KV>({})).KeyBy(&KV::first).Process(SumAsString{}).nodes()[0];
  Harness h(other.graph(), node);
  h.op().InitializeState(RedistributeState(snaps, 0, 1, 128));
  try {
    h.Open();
    FAIL() << "expected the restore to fail";
  } catch (const std::exception& e) {
    EXPECT_THAT(std::string(e.what()),
                HasSubstr("state 'sum' cannot be restored: the value was i64 and is now string"));
  }
}

// --- Event time across a restore: a restored operator decides lateness and fires timers
// exactly as the failure-free run did (docs/architecture.md, "Why a restore is exact").

/// Round trip through the serialized form, as checkpoint storage keeps it.
OperatorSnapshot Stored(StreamOperator& op) {
  auto s = op.SnapshotNow(1);
  EXPECT_OK(s);
  auto back = DeserializeFromString<OperatorSnapshot>(SerializeToString(*s));
  EXPECT_OK(back);
  return *back;
}

/// A 1 s tumbling event-time window summing per key, late records to the side output
/// "late"; returns its node.
int SummingWindowWithLateOutput(Pipeline& p) {
  auto windowed = p.Source(CollectionSource<KV>({}))
                      .KeyBy(&KV::first)
                      .Window(TumblingEventTimeWindows::Of(absl::Milliseconds(1000)));
  windowed.SideOutputLateData(OutputTag<KV>("late"));
  return windowed.Reduce([](const KV& a, const KV& b) {
                   return KV{a.first, a.second + b.second};
                 })
      .nodes()[0];
}

TEST(SnapshotTest, AWindowOperatorKeepsItsWatermarkSoLateRecordsStayLate) {
  Pipeline p;
  const int node = SummingWindowWithLateOutput(p);
  Harness before(p.graph(), node);
  before.Open();
  before.ProcessElement({"a", 1}, 500);
  before.ProcessWatermark(1500);  // fires [0, 1000)
  ASSERT_EQ(before.output().Values(), (std::vector<KV>{{"a", 1}}));
  const OperatorSnapshot snapshot = Stored(before.op());

  Harness after(p.graph(), node);
  auto* late_out = after.SideOutput<KV>("late");
  after.op().InitializeState(RedistributeState({snapshot}, 0, 1, 128));
  after.Open();
  // Before any watermark reaches the restored operator: [0, 1000) is long gone.
  after.ProcessElement({"a", 10}, 600);
  after.ProcessWatermark(kMaxWatermark);
  EXPECT_TRUE(after.output().Values().empty()) << "a late record opened its window again";
  EXPECT_EQ(late_out->Values(), (std::vector<KV>{{"a", 10}}));
}

TEST(SnapshotTest, RescaledKeyedOperatorsContinueFromTheLowestWatermark) {
  // One subtask takes over both halves: no record either would still have taken is late.
  Pipeline p;
  const int node = SummingWindowWithLateOutput(p);
  std::vector<OperatorSnapshot> windows(2);
  for (int i = 0; i < 2; ++i) {
    Harness h(p.graph(), node, i, 2);
    h.Open();
    h.ProcessWatermark(i == 0 ? 3000 : 2000);
    windows[i] = Stored(h.op());
  }
  Harness merged(p.graph(), node);
  auto* late_out = merged.SideOutput<KV>("late");
  merged.op().InitializeState(RedistributeState(windows, 0, 1, 128));
  merged.Open();
  merged.ProcessElement({"a", 1}, 2500);  // late for the first old subtask, not the second
  merged.ProcessElement({"b", 2}, 1500);  // late for both
  merged.ProcessWatermark(kMaxWatermark);
  EXPECT_EQ(merged.output().Values(), (std::vector<KV>{{"a", 1}}));
  EXPECT_EQ(late_out->Values(), (std::vector<KV>{{"b", 2}}));
}

/// Registers, for each record, an event-time timer 1000 ms before it (often in the past:
/// it fires with the next watermark) and emits the key's count when it fires.
class CountAtPastTimer final : public KeyedProcessFunction<std::string, KV, KV> {
 public:
  void Open(KeyedRuntimeContext<std::string>& ctx) override {
    count_ = &ctx.GetState(ValueStateDescriptor<int64_t>("count"));
  }
  void ProcessElement(const KV&, Context& ctx, Collector<KV>&) override {
    count_->Update(count_->ValueOr(0) + 1);
    ctx.Timers().RegisterEventTimeTimer(ctx.timestamp() - 1000);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<KV>& out) override {
    out.Collect({ctx.CurrentKey(), *count_->Value()});
  }

 private:
  ValueState<int64_t>* count_ = nullptr;
};

TEST(SnapshotTest, ATimerSetInThePastFiresWithTheNextWatermarkAlsoAfterARestore) {
  Pipeline p;
  const int node =
      p.Source(CollectionSource<KV>({})).KeyBy(&KV::first).Process(CountAtPastTimer{}).nodes()[0];
  Harness before(p.graph(), node);
  before.Open();
  before.ProcessWatermark(5000);
  before.ProcessElement({"a", 0}, 3000);  // a timer at 2000, due with the next watermark
  const OperatorSnapshot snapshot = Stored(before.op());

  Harness after(p.graph(), node);
  after.op().InitializeState(RedistributeState({snapshot}, 0, 1, 128));
  after.Open();
  after.ProcessWatermark(5000);  // what a restored task hears first: its own watermark again
  after.ProcessElement({"a", 0}, 3100);
  EXPECT_TRUE(after.output().Values().empty()) << "the timer fired before the next watermark";
  after.ProcessWatermark(5001);
  // As without the restart: both records counted when the timers fire.
  EXPECT_EQ(after.output().Values(), (std::vector<KV>{{"a", 2}, {"a", 2}}));
}

TEST(SnapshotTest, TheWatermarkGeneratorContinuesFromItsCheckpoint) {
  Pipeline p;
  const int node = p.Source(CollectionSource<KV>({}))
                       .AssignTimestampsAndWatermarks(
                           WatermarkStrategy<KV>::ForBoundedOutOfOrderness(absl::Milliseconds(100))
                               .WithTimestampAssigner(&KV::second)
                               .WithEmitInterval(absl::ZeroDuration()))
                       .nodes()[0];
  Harness before(p.graph(), node);
  before.Open();
  before.ProcessElement({"a", 1000});
  before.ProcessElement({"a", 900});
  ASSERT_EQ(before.output().watermarks, (std::vector<Timestamp>{899}));
  const OperatorSnapshot snapshot = Stored(before.op());

  Harness after(p.graph(), node);
  after.op().InitializeState(RedistributeState({snapshot}, 0, 1, 128));
  after.Open();
  after.ProcessElement({"a", 950});  // below the highest timestamp seen before the restart
  after.ProcessElement({"a", 1200});
  // The restored watermark first (for the operators after it), then as if nothing happened.
  EXPECT_EQ(after.output().watermarks, (std::vector<Timestamp>{899, 1099}));
}

TEST(SnapshotTest, ARestoredValveCombinesChannelsAsBefore) {
  internal::StatusWatermarkValve valve(2);
  valve.OnWatermark(0, 100);
  valve.OnWatermark(1, 50);
  const auto state = DeserializeFromString<internal::StatusWatermarkValve::State>(
      SerializeToString(valve.state()));
  ASSERT_OK(state);
  internal::StatusWatermarkValve restored(*state);
  EXPECT_EQ(restored.current_watermark(), 50);
  // Channel 0 says nothing new; the output follows channel 1 up to channel 0's watermark.
  EXPECT_EQ(restored.OnWatermark(1, 120).watermark, std::optional<Timestamp>(100));
}

TEST(SnapshotTest, OperatorStateIsSplitEvenlyOrUnited) {
  std::vector<OperatorSnapshot> old(2);
  old[0].operator_state = {"a", "b", "c"};
  old[1].operator_state = {"d"};
  EXPECT_EQ(RedistributeState(old, 0, 3, 128).operator_state, (std::vector<std::string>{"a", "d"}));
  EXPECT_EQ(RedistributeState(old, 1, 3, 128).operator_state, (std::vector<std::string>{"b"}));
  EXPECT_EQ(RedistributeState(old, 2, 3, 128).operator_state, (std::vector<std::string>{"c"}));
  EXPECT_EQ(RedistributeState(old, 1, 3, 128).Items(OperatorStateMode::kUnion).size(), 4u);
}

}  // namespace
}  // namespace sluice
