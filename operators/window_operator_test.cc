// The window operator and the timestamps/watermarks operator driven directly through the
// operator harness: processing time under the test's control, triggers, purging, global
// windows, per-window state, dynamic session gaps, idleness.

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/operator_harness.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using KV = std::pair<std::string, int64_t>;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

KV Sum(const KV& a, const KV& b) { return {a.first, a.second + b.second}; }

/// Builds `stream -> KeyBy(first) -> window...` and returns the harness of the window node.
template <typename MakeWindowed>
auto HarnessFor(MakeWindowed make) {
  auto p = std::make_shared<Pipeline>("harness");
  auto keyed = p->Source(CollectionSource<KV>({})).KeyBy(&KV::first);
  auto out = make(keyed);
  using Out = std::decay_t<decltype(out)>;
  using OutT = typename decltype([]<typename X>(DataStream<X>*) {
    return std::type_identity<X>{};
  }(static_cast<Out*>(nullptr)))::type;
  return std::make_pair(
      std::make_unique<testing::OperatorHarness<KV, OutT>>(p->graph(), out.nodes()[0]), p);
}

TEST(WindowOperatorTest, ProcessingTimeTumblingFiresOnTheClock) {
  auto [h, p] = HarnessFor([](auto keyed) {
    return keyed.Window(TumblingProcessingTimeWindows::Of(absl::Seconds(10))).Reduce(&Sum);
  });
  h->SetProcessingTime(1000);
  h->Open();
  h->ProcessElement({"a", 1});
  h->ProcessElement({"a", 2});
  h->ProcessElement({"b", 5});
  h->SetProcessingTime(9998);
  EXPECT_TRUE(h->output().records.empty());
  h->SetProcessingTime(9999);  // the window [0, 10000) ends
  EXPECT_THAT(h->output().Values(), UnorderedElementsAre(KV{"a", 3}, KV{"b", 5}));
  for (const auto& r : h->output().records) EXPECT_EQ(r.timestamp, 9999);
  h->ProcessElement({"a", 7});  // now in [10000, 20000)
  h->SetProcessingTime(19999);
  EXPECT_EQ(h->output().records.back().value, (KV{"a", 7}));
}

/// Reports each firing as "key@start-end=sum".
class Describe final : public ProcessWindowFunction<KV, std::string, std::string, TimeWindow> {
 public:
  void Process(const std::string& key, Context& ctx, const std::vector<KV>& in,
               Collector<std::string>& out) override {
    int64_t sum = 0;
    for (const auto& kv : in) sum += kv.second;
    out.Collect(absl::StrCat(key, "@", ctx.window().start, "-", ctx.window().end, "=", sum));
  }
};

TEST(WindowOperatorTest, TumblingWindowsAlignToTheOffset) {
  auto [h, p] = HarnessFor([](auto keyed) {
    return keyed.Window(TumblingEventTimeWindows::Of(absl::Milliseconds(10), absl::Milliseconds(3)))
        .Process(Describe{});
  });
  h->Open();
  h->ProcessElement({"a", 1}, 2);
  h->ProcessElement({"a", 10}, 3);
  h->ProcessElement({"a", 100}, -8);  // negative timestamps align the same way
  h->ProcessWatermark(kMaxWatermark);
  EXPECT_THAT(h->output().Values(), UnorderedElementsAre("a@-7-3=1", "a@3-13=10", "a@-17--7=100"));
}

TEST(WindowOperatorTest, ProcessingTimeSlidingAndSessionWindows) {
  auto [sliding, p1] = HarnessFor([](auto keyed) {
    return keyed
        .Window(SlidingProcessingTimeWindows::Of(absl::Milliseconds(100), absl::Milliseconds(50)))
        .Process(Describe{});
  });
  sliding->SetProcessingTime(120);
  sliding->Open();
  sliding->ProcessElement({"a", 1});  // in [50,150) and [100,200)
  sliding->SetProcessingTime(199);
  EXPECT_THAT(sliding->output().Values(), UnorderedElementsAre("a@50-150=1", "a@100-200=1"));

  auto [session, p2] = HarnessFor([](auto keyed) {
    return keyed.Window(ProcessingTimeSessionWindows::WithGap(absl::Milliseconds(30)))
        .Process(Describe{});
  });
  session->SetProcessingTime(0);
  session->Open();
  session->ProcessElement({"a", 1});
  session->SetProcessingTime(20);
  session->ProcessElement({"a", 2});  // extends the session to [0, 50)
  session->SetProcessingTime(45);
  EXPECT_TRUE(session->output().records.empty());
  session->SetProcessingTime(49);
  EXPECT_THAT(session->output().Values(), ElementsAre("a@0-50=3"));
}

TEST(WindowOperatorTest, CountTriggerOnGlobalWindows) {
  auto [h, p] = HarnessFor([](auto keyed) {
    return keyed.Window(GlobalWindows::Create()).Trigger(triggers::Count(3)).Reduce(&Sum);
  });
  h->Open();
  for (int i = 1; i <= 7; ++i) h->ProcessElement({"a", i});
  // Fires at 3 and 6 elements; without purging the window keeps growing.
  EXPECT_THAT(h->output().Values(), ElementsAre(KV{"a", 6}, KV{"a", 21}));
  h->ProcessWatermark(kMaxWatermark);  // a global window never fires by time
  EXPECT_EQ(h->output().records.size(), 2u);
}

TEST(WindowOperatorTest, PurgingCountTriggerStartsOver) {
  auto [h, p] = HarnessFor([](auto keyed) {
    return keyed.Window(GlobalWindows::Create())
        .Trigger(triggers::Purging(triggers::Count(2)))
        .Reduce(&Sum);
  });
  h->Open();
  for (int i = 1; i <= 5; ++i) h->ProcessElement({"a", i});
  EXPECT_THAT(h->output().Values(), ElementsAre(KV{"a", 3}, KV{"a", 7}));
}

TEST(WindowOperatorTest, ContinuousEventTimeTriggerFiresEarly) {
  auto [h, p] = HarnessFor([](auto keyed) {
    return keyed.Window(TumblingEventTimeWindows::Of(absl::Seconds(10)))
        .Trigger(triggers::ContinuousEventTime(absl::Seconds(2)))
        .Reduce(&Sum);
  });
  h->Open();
  h->ProcessElement({"a", 1}, 500);
  h->ProcessWatermark(1999);
  h->ProcessElement({"a", 2}, 2500);
  h->ProcessWatermark(2000);  // periodic firing at 2000
  EXPECT_THAT(h->output().Values(), ElementsAre(KV{"a", 3}));
  h->ProcessElement({"a", 4}, 3000);
  h->ProcessWatermark(4000);
  h->ProcessWatermark(9999);  // 6000, 8000 and the end
  EXPECT_THAT(h->output().Values(),
              ElementsAre(KV{"a", 3}, KV{"a", 7}, KV{"a", 7}, KV{"a", 7}, KV{"a", 7}));
}

TEST(WindowOperatorTest, ContinuousProcessingTimeTriggerFiresPeriodically) {
  auto [h, p] = HarnessFor([](auto keyed) {
    return keyed.Window(TumblingProcessingTimeWindows::Of(absl::Seconds(10)))
        .Trigger(triggers::ContinuousProcessingTime(absl::Seconds(3)))
        .Reduce(&Sum);
  });
  h->SetProcessingTime(100);
  h->Open();
  h->ProcessElement({"a", 1});
  h->SetProcessingTime(3000);
  EXPECT_THAT(h->output().Values(), ElementsAre(KV{"a", 1}));
  h->ProcessElement({"a", 1});
  h->SetProcessingTime(6000);
  EXPECT_THAT(h->output().Values(), ElementsAre(KV{"a", 1}, KV{"a", 2}));
}

/// Counts how often each window fired, in per-window state, and clears it with the window.
class CountFirings final : public ProcessWindowFunction<KV, std::string, std::string, TimeWindow> {
 public:
  void Process(const std::string& key, Context& ctx, const std::vector<KV>& elements,
               Collector<std::string>& out) override {
    auto& fired = ctx.WindowState(ValueStateDescriptor<int64_t>("fired"));
    int64_t n = fired.ValueOr(0) + 1;
    fired.Update(n);
    auto& total = ctx.GlobalState(ValueStateDescriptor<int64_t>("total"));
    total.Update(total.ValueOr(0) + 1);
    out.Collect(absl::StrCat(key, "@", ctx.window().start, ":", elements.size(), " firing ", n,
                             " total ", total.ValueOr(0)));
  }
  void Clear(Context& ctx) override {
    ctx.WindowState(ValueStateDescriptor<int64_t>("fired")).Clear();
  }
};

TEST(WindowOperatorTest, ProcessWindowFunctionKeepsPerWindowStateUntilCleanup) {
  testing::OperatorHarness<KV, std::string>* raw = nullptr;
  auto [h, p] = HarnessFor([](auto keyed) {
    auto w = keyed.Window(TumblingEventTimeWindows::Of(absl::Milliseconds(100)));
    w.AllowedLateness(absl::Milliseconds(50));
    return w.Process(CountFirings{});
  });
  raw = h.get();
  raw->Open();
  raw->ProcessElement({"a", 1}, 10);
  raw->ProcessWatermark(99);          // fires [0,100)
  raw->ProcessElement({"a", 1}, 20);  // late but allowed: fires again
  raw->ProcessWatermark(149);         // cleanup of [0,100)
  raw->ProcessElement({"a", 1}, 120);
  raw->ProcessWatermark(199);
  EXPECT_THAT(
      raw->output().Values(),
      ElementsAre("a@0:1 firing 1 total 1", "a@0:2 firing 2 total 2", "a@100:1 firing 1 total 3"));
}

TEST(WindowOperatorTest, LateRecordsAreCountedWhenNoSideOutput) {
  auto [h, p] = HarnessFor([](auto keyed) {
    return keyed.Window(TumblingEventTimeWindows::Of(absl::Milliseconds(100))).Reduce(&Sum);
  });
  h->Open();
  h->ProcessWatermark(500);
  h->ProcessElement({"a", 1}, 10);
  h->ProcessElement({"a", 1}, 499);
  EXPECT_EQ(h->metrics().GetCounter("late_records_dropped").value(), 2);
  h->ProcessElement({"a", 1}, 501);
  h->ProcessWatermark(599);
  EXPECT_THAT(h->output().Values(), ElementsAre(KV{"a", 1}));
}

TEST(WindowOperatorTest, DynamicSessionGapPerElement) {
  auto [h, p] = HarnessFor([](auto keyed) {
    return keyed
        .Window(EventTimeSessionWindows::WithDynamicGap<KV>(
            [](const KV& kv) { return kv.second * 10; }))  // the value sets the gap
        .Process(CountFirings{});
  });
  h->Open();
  h->ProcessElement({"a", 5}, 0);   // [0, 50)
  h->ProcessElement({"a", 1}, 45);  // [45, 55): merges -> [0, 55)
  h->ProcessElement({"a", 1}, 60);  // [60, 70): separate
  h->ProcessWatermark(kMaxWatermark);
  EXPECT_THAT(h->output().Values(),
              UnorderedElementsAre("a@0:2 firing 1 total 1", "a@60:1 firing 1 total 2"));
}

TEST(WindowOperatorTest, EventTimeWindowWithoutTimestampsFailsClearly) {
  auto [h, p] = HarnessFor([](auto keyed) {
    return keyed.Window(TumblingEventTimeWindows::Of(absl::Seconds(1))).Reduce(&Sum);
  });
  h->Open();
  try {
    h->ProcessElement({"a", 1});
    FAIL() << "expected a failure";
  } catch (const OperatorFailure& e) {
    EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr("record has no timestamp"));
  }
}

/// A user-written trigger: fires when an element's value is negative.
class FireOnNegative final : public Trigger<std::string, KV, GlobalWindow> {
 public:
  TriggerResult OnElement(const KV& e, Timestamp, const GlobalWindow&,
                          TriggerContext<std::string, GlobalWindow>&) override {
    return e.second < 0 ? TriggerResult::kFireAndPurge : TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp, const GlobalWindow&,
                            TriggerContext<std::string, GlobalWindow>&) override {
    return TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const GlobalWindow&,
                                 TriggerContext<std::string, GlobalWindow>&) override {
    return TriggerResult::kContinue;
  }
  void Clear(const GlobalWindow&, TriggerContext<std::string, GlobalWindow>&) override {}
  std::unique_ptr<Trigger<std::string, KV, GlobalWindow>> Clone() const override {
    return std::make_unique<FireOnNegative>(*this);
  }
};

TEST(WindowOperatorTest, UserDefinedTrigger) {
  auto [h, p] = HarnessFor([](auto keyed) {
    return keyed.Window(GlobalWindows::Create()).Trigger(FireOnNegative{}).Reduce(&Sum);
  });
  h->Open();
  for (int64_t v : {1, 2, -1, 5, 5, -10}) h->ProcessElement({"a", v});
  EXPECT_THAT(h->output().Values(), ElementsAre(KV{"a", 2}, KV{"a", 0}));
}

TEST(WindowAllTest, WindowsOverTheWholeStreamRunAtParallelismOne) {
  Pipeline p("window-all");
  p.SetParallelism(3);
  auto out = std::make_shared<CollectedRecords<KV>>();
  std::vector<KV> input;
  for (int i = 0; i < 100; ++i) input.push_back({absl::StrCat("k", i % 7), i});
  class Total final : public ProcessAllWindowFunction<KV, KV, TimeWindow> {
   public:
    void Process(Context& ctx, const std::vector<KV>& elements, Collector<KV>& out) override {
      int64_t sum = 0;
      for (const auto& e : elements) sum += e.second;
      out.Collect({absl::StrCat(ctx.window().start), sum});
    }
  };
  p.Source(CollectionSource<KV>(input))
      .AssignTimestampsAndWatermarks(
          WatermarkStrategy<KV>::ForMonotonousTimestamps().WithTimestampAssigner(
              [](const KV& kv, Timestamp) { return kv.second; }))
      .WindowAll(TumblingEventTimeWindows::Of(absl::Milliseconds(50)))
      .Process(Total{})
      .Sink(CollectSink<KV>(out));
  auto graph = p.BuildJobGraph();
  ASSERT_OK(graph);
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_THAT(out->Values(), UnorderedElementsAre(KV{"0", 1225}, KV{"50", 3725}));
}

// --- timestamps and watermarks ---

using TsHarness = testing::OperatorHarness<KV, KV>;

std::unique_ptr<TsHarness> WatermarkHarness(WatermarkStrategy<KV> strategy,
                                            std::shared_ptr<Pipeline>* keep) {
  auto p = std::make_shared<Pipeline>("wm");
  auto s = p->Source(CollectionSource<KV>({})).AssignTimestampsAndWatermarks(strategy);
  auto h = std::make_unique<TsHarness>(p->graph(), s.nodes()[0]);
  *keep = p;
  return h;
}

TEST(WatermarkStrategyTest, BoundedOutOfOrdernessEmitsPeriodically) {
  std::shared_ptr<Pipeline> p;
  auto h = WatermarkHarness(
      WatermarkStrategy<KV>::ForBoundedOutOfOrderness(absl::Milliseconds(10))
          .WithTimestampAssigner([](const KV& kv, Timestamp) { return kv.second; }),
      &p);
  h->SetProcessingTime(0);
  h->Open();
  h->ProcessElement({"a", 100});
  h->ProcessElement({"a", 90});
  EXPECT_TRUE(h->output().watermarks.empty());  // not before the interval
  h->SetProcessingTime(200);
  EXPECT_THAT(h->output().watermarks, ElementsAre(89));  // max 100 - 10 - 1
  EXPECT_EQ(h->output().records[1].timestamp, 90);
  h->ProcessWatermark(5000);           // upstream watermarks are ignored...
  h->ProcessWatermark(kMaxWatermark);  // ...but the final one passes
  EXPECT_THAT(h->output().watermarks, ElementsAre(89, kMaxWatermark));
}

TEST(WatermarkStrategyTest, ZeroIntervalEmitsAfterEveryRecordInOrder) {
  std::shared_ptr<Pipeline> p;
  auto h =
      WatermarkHarness(WatermarkStrategy<KV>::ForMonotonousTimestamps()
                           .WithTimestampAssigner([](const KV& kv, Timestamp) { return kv.second; })
                           .WithEmitInterval(absl::ZeroDuration()),
                       &p);
  h->Open();
  Batch<KV> b;
  for (int64_t t : {5, 7, 6, 9}) b.Add(KV{"a", t}, kNoTimestamp);
  h->op().AsInput()->PushErased(b);
  EXPECT_THAT(h->output().watermarks, ElementsAre(4, 6, 8));
  EXPECT_EQ(h->output().records.size(), 4u);
}

/// Emits a watermark on every event whose value is a multiple of 10 (punctuated).
class Punctuated final : public WatermarkGenerator<KV> {
 public:
  void OnEvent(const KV& kv, Timestamp ts, WatermarkOutput& out) override {
    if (kv.second % 10 == 0) out.EmitWatermark(ts);
  }
  void OnPeriodicEmit(WatermarkOutput&) override {}
};

TEST(WatermarkStrategyTest, UserDefinedPerEventGenerator) {
  std::shared_ptr<Pipeline> p;
  auto h =
      WatermarkHarness(WatermarkStrategy<KV>::ForGenerator([] {
                         return std::make_unique<Punctuated>();
                       }).WithTimestampAssigner([](const KV& kv, Timestamp) { return kv.second; }),
                       &p);
  h->Open();
  for (int64_t v : {3, 10, 12, 20, 25}) h->ProcessElement({"a", v});
  EXPECT_THAT(h->output().watermarks, ElementsAre(10, 20));
}

TEST(WatermarkStrategyTest, IdleAfterTimeoutAndActiveWithNextRecord) {
  std::shared_ptr<Pipeline> p;
  auto h =
      WatermarkHarness(WatermarkStrategy<KV>::ForMonotonousTimestamps()
                           .WithTimestampAssigner([](const KV& kv, Timestamp) { return kv.second; })
                           .WithIdleness(absl::Seconds(1)),
                       &p);
  h->SetProcessingTime(0);
  h->Open();
  h->ProcessElement({"a", 1});
  h->SetProcessingTime(800);
  EXPECT_TRUE(h->output().idle_changes.empty());
  h->SetProcessingTime(1200);
  EXPECT_THAT(h->output().idle_changes, ElementsAre(true));
  h->ProcessElement({"a", 2});
  EXPECT_THAT(h->output().idle_changes, ElementsAre(true, false));
}

}  // namespace
}  // namespace sluice
