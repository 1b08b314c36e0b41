// State TTL in a keyed process function, driven through the operator harness with the clock
// under the test's control: expired state is invisible, and the operator's state size goes
// down as cleanup runs. Also end to end: the job reports its final state size.

#include <string>

#include "absl/strings/str_cat.h"
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

/// Remembers each key's first value for 1 s of event time and reports what it remembered
/// before each record; sets a timer 1 s after each record that reports it too.
class RememberInEventTime final
    : public KeyedProcessFunction<std::string, std::pair<std::string, int64_t>, std::string> {
 public:
  void Open(KeyedRuntimeContext<std::string>& ctx) override {
    ValueStateDescriptor<int64_t> d("first");
    d.EnableTimeToLive(StateTtlConfig::Of(absl::Seconds(1)).InEventTime());
    first_ = &ctx.GetState(d);
  }
  void ProcessElement(const std::pair<std::string, int64_t>& kv, Context& ctx,
                      Collector<std::string>& out) override {
    auto before = first_->Value();
    if (!before) first_->Update(kv.second);
    out.Collect(kv.first + ":" + (before ? std::to_string(*before) : "none"));
    ctx.Timers().RegisterEventTimeTimer(ctx.timestamp() + 500);
  }
  void OnTimer(Timestamp ts, OnTimerContext& ctx, Collector<std::string>& out) override {
    auto value = first_->Value();
    out.Collect(absl::StrCat("timer ", ts, " ", ctx.CurrentKey(), ":",
                             value ? std::to_string(*value) : "none"));
  }

 private:
  ValueState<int64_t>* first_ = nullptr;
};

TEST(KeyedStateTtlTest, EventTimeTtlFollowsTheRecordsAndTimersNotTheClock) {
  using In = std::pair<std::string, int64_t>;
  Pipeline p("ttl");
  auto out = p.Source(CollectionSource<In>({})).KeyBy(&In::first).Process(RememberInEventTime{});
  testing::OperatorHarness<In, std::string> h(p.graph(), out.nodes()[0]);
  h.SetProcessingTime(0);
  h.Open();
  auto last = [&] { return h.output().records.back().value; };
  h.ProcessElement({"a", 1}, 10'000);  // stamped 10 000
  h.SetProcessingTime(1'000'000'000);  // the clock means nothing to event-time TTL
  h.ProcessElement({"a", 2}, 10'900);
  EXPECT_EQ(last(), "a:1");
  // The timer at 10 500 sees it (500 ms after the stamp), the one at 11 400 does not.
  h.ProcessWatermark(10'500);
  EXPECT_EQ(last(), "timer 10500 a:1");
  h.ProcessWatermark(11'400);
  EXPECT_EQ(last(), "timer 11400 a:none");
  // An out-of-order record counts at the watermark when that is later: 3 is stamped 11 400.
  h.ProcessElement({"a", 3}, 11'000);
  EXPECT_EQ(last(), "a:none");
  h.ProcessElement({"a", 4}, 12'399);
  EXPECT_EQ(last(), "a:3");
  h.ProcessElement({"a", 5}, 12'400);
  EXPECT_EQ(last(), "a:none");
  h.Close();
}

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
