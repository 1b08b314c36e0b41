// State TTL in a keyed process function, driven through the operator harness with the clock
// under the test's control: expired state is invisible, and the operator's state size goes
// down as cleanup runs. Also end to end: the job reports its final state size.

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/operator_harness.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using Seen = std::pair<std::string, int64_t>;  // "key:value-or-none", state entries

/// Remembers each key's last value for 1 s (TTL) and reports what it remembered before
/// the record, plus the operator's state entry count.
class Remember final
    : public KeyedProcessFunction<std::string, std::pair<std::string, int64_t>, Seen> {
 public:
  void Open(KeyedRuntimeContext<std::string>& ctx) override {
    ctx_ = &ctx;
    ValueStateDescriptor<int64_t> d("last");
    d.EnableTimeToLive(StateTtlConfig::Of(absl::Seconds(1)).CleanupIncrementally(1));
    last_ = &ctx.GetState(d);
  }
  void ProcessElement(const std::pair<std::string, int64_t>& kv, Context&,
                      Collector<Seen>& out) override {
    auto before = last_->Value();
    last_->Update(kv.second);
    out.Collect({kv.first + ":" + (before ? std::to_string(*before) : "none"),
                 static_cast<int64_t>(ctx_->GetStateSize().entries)});
  }

 private:
  KeyedRuntimeContext<std::string>* ctx_ = nullptr;
  ValueState<int64_t>* last_ = nullptr;
};

TEST(KeyedStateTtlTest, ExpiredStateIsInvisibleAndCleanedUp) {
  using In = std::pair<std::string, int64_t>;
  Pipeline p("ttl");
  auto out = p.Source(CollectionSource<In>({})).KeyBy(&In::first).Process(Remember{});
  testing::OperatorHarness<In, Seen> h(p.graph(), out.nodes()[0]);
  h.SetProcessingTime(0);
  h.Open();
  for (int i = 0; i < 300; ++i) h.ProcessElement({"k" + std::to_string(i), i});
  EXPECT_EQ(h.output().records.back().value.second, 300);
  h.SetProcessingTime(500);
  h.ProcessElement({"k7", 70});
  EXPECT_EQ(h.output().records.back().value.first, "k7:7");  // not expired yet
  h.SetProcessingTime(2000);
  h.ProcessElement({"k7", 71});
  EXPECT_EQ(h.output().records.back().value.first, "k7:none");  // expired: invisible
  // Each access sweeps one key group: after enough records the old keys are gone.
  for (int i = 0; i < 200; ++i) h.ProcessElement({"fresh", i});
  EXPECT_LE(h.output().records.back().value.second, 2);
}

TEST(KeyedStateTtlTest, JobReportsItsStateSize) {
  using In = std::pair<std::string, int64_t>;
  std::vector<In> input;
  for (int i = 0; i < 100; ++i) input.push_back({"k" + std::to_string(i % 10), i});
  Pipeline p("state-size");
  p.Source(CollectionSource<In>(input))
      .KeyBy(&In::first)
      .Process(Remember{})
      .Sink(DiscardingSink<Seen>{});
  auto r = ExecuteLocally(p);
  ASSERT_OK(r);
  int64_t entries = 0, bytes = 0;
  for (const auto& t : r->tasks) {
    entries += t.state_entries;
    bytes += t.state_bytes;
  }
  EXPECT_EQ(entries, 10);
  EXPECT_GT(bytes, 10 * 8);
}

}  // namespace
}  // namespace sluice
