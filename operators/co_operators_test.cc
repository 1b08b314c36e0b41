// Two-input operators in the operator harness: the interval join's buffers are cleaned up
// as the watermark passes, late records are dropped and counted, and the keyed co-process
// operator snapshots and restores the state both inputs share.

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/operator_harness.h"

namespace sluice {
namespace {

using KV = std::pair<int64_t, int64_t>;  // key, id
using ::testing::ElementsAre;

class PairIds final : public ProcessJoinFunction<KV, KV, std::string> {
 public:
  void ProcessElement(const KV& l, const KV& r, Context&, Collector<std::string>& out) override {
    out.Collect(absl::StrCat(l.second, "-", r.second));
  }
};

TEST(IntervalJoinOperatorTest, BuffersAreCleanedUpAsTheWatermarkPasses) {
  Pipeline p("harness");
  auto left = p.Source(CollectionSource<KV>({})).KeyBy(&KV::first);
  auto right = p.Source(CollectionSource<KV>({})).KeyBy(&KV::first);
  auto joined = left.IntervalJoin(right)
                    .Between(absl::Milliseconds(-10), absl::Milliseconds(10))
                    .Process(PairIds{});
  testing::OperatorHarness<KV, std::string> h(p.graph(), joined.nodes()[0]);
  h.Open();
  // Keyed state entries: one per key and side that has records waiting.
  auto entries = [&] { return h.op().keyed_state()->TotalEntryCount(); };

  h.ProcessElement(KV{1, 1}, 100);
  h.ProcessElement2(KV{1, 2}, 105);  // within [90, 110]
  h.ProcessElement2(KV{1, 3}, 120);  // beyond
  h.ProcessElement2(KV{2, 4}, 101);  // another key
  ASSERT_EQ(h.output().records.size(), 1u);
  EXPECT_EQ(h.output().records[0].value, "1-2");
  EXPECT_EQ(h.output().records[0].timestamp, 105);  // the later of the two
  EXPECT_EQ(entries(), 3u);                         // left of key 1, right of key 1, right of key 2

  // A left record at t cannot match a right record after t + 10 (a later one is above the
  // watermark): it goes when the watermark reaches t + 10. A right record at t can match
  // left records up to t + 10: it goes then too.
  h.ProcessWatermark(104);
  EXPECT_EQ(entries(), 3u);
  h.ProcessWatermark(110);
  EXPECT_EQ(entries(), 2u);  // left 100 gone: key 1 has no left records
  // A left record at 115 finds the right ones at 105 and 120.
  h.ProcessElement(KV{1, 5}, 115);
  ASSERT_EQ(h.output().records.size(), 3u);
  EXPECT_THAT(std::vector<std::string>({h.output().records[1].value, h.output().records[2].value}),
              ::testing::UnorderedElementsAre("5-2", "5-3"));
  h.ProcessWatermark(116);
  // Right 105 (at 115) and right 101 of key 2 (at 111) gone: key 2 has nothing left; key 1
  // has left 115 and right 120.
  EXPECT_EQ(entries(), 2u);

  // At or below the watermark: late, dropped, counted.
  h.ProcessElement(KV{1, 6}, 116);
  h.ProcessElement2(KV{1, 7}, 90);
  EXPECT_EQ(h.metrics().GetCounter("interval_join_late_records").value(), 2);
  EXPECT_EQ(h.output().records.size(), 3u);

  h.ProcessWatermark(1'000);
  EXPECT_EQ(entries(), 0u);
  EXPECT_THAT(h.output().watermarks, ElementsAre(104, 110, 116, 1'000));
  h.Close();
}

/// Counts per key across both inputs: the first input adds 1, the second 100.
class CountBoth final : public KeyedCoProcessFunction<int64_t, KV, KV, std::string> {
 public:
  void Open(KeyedRuntimeContext<int64_t>& ctx) override {
    count_ = &ctx.GetState(ValueStateDescriptor<int64_t>("count"));
  }
  void ProcessElement1(const KV&, Context& ctx, Collector<std::string>& out) override {
    Add(1, ctx, out);
  }
  void ProcessElement2(const KV&, Context& ctx, Collector<std::string>& out) override {
    Add(100, ctx, out);
  }

 private:
  void Add(int64_t n, Context& ctx, Collector<std::string>& out) {
    const int64_t total = count_->Value().value_or(0) + n;
    count_->Update(total);
    out.Collect(absl::StrCat(ctx.CurrentKey(), "=", total));
  }
  ValueState<int64_t>* count_ = nullptr;
};

TEST(KeyedCoProcessOperatorTest, StateOfBothInputsIsSnapshottedAndRestored) {
  Pipeline p("harness");
  auto a = p.Source(CollectionSource<KV>({})).KeyBy(&KV::first);
  auto b = p.Source(CollectionSource<KV>({})).KeyBy(&KV::first);
  auto out = a.Connect(b).Process(CountBoth{});
  testing::OperatorHarness<KV, std::string> first(p.graph(), out.nodes()[0]);
  first.Open();
  first.ProcessElement(KV{7, 0});
  first.ProcessElement2(KV{7, 0});
  first.ProcessElement2(KV{8, 0});
  auto snapshot = first.op().SnapshotNow(1);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  first.Close();

  testing::OperatorHarness<KV, std::string> second(p.graph(), out.nodes()[0]);
  second.op().InitializeState(RedistributeState({*snapshot}, 0, 1, kDefaultMaxParallelism));
  second.Open();
  second.ProcessElement(KV{7, 0});
  second.ProcessElement(KV{8, 0});
  EXPECT_THAT(second.output().Values(), ElementsAre("7=102", "8=101"));
  second.Close();
}

}  // namespace
}  // namespace sluice
