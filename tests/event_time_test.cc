// Watermarks through the mini-cluster: minimum over input channels, event-time timers in
// order, the final watermark at the end of bounded input, processing-time timers.

#include <atomic>
#include <map>
#include <memory>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

/// Emits records first..last, each at its own timestamp and followed by it as watermark;
/// then, if given a gate, stays open (its channel live) until `processed` reaches `until`.
class TimedSource final : public SourceFunction<int64_t> {
 public:
  TimedSource(int64_t first, int64_t last,
              std::shared_ptr<std::atomic<int64_t>> processed = nullptr, int64_t until = 0)
      : next_(first), last_(last), processed_(std::move(processed)), until_(until) {}

  SourceStatus Poll(SourceOutput<int64_t>& out) override {
    while (next_ <= last_ && out.collected() < out.batch_hint()) {
      out.CollectWithTimestamp(next_, next_);
      out.EmitWatermark(next_);
      ++next_;
    }
    if (next_ <= last_) return SourceStatus::kMoreAvailable;
    if (processed_ && processed_->load() < until_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling a test condition
      return SourceStatus::kNothingAvailable;
    }
    return SourceStatus::kEndOfInput;
  }
  bool IsParallel() const override { return false; }

 private:
  int64_t next_;
  int64_t last_;
  std::shared_ptr<std::atomic<int64_t>> processed_;
  int64_t until_;
};

// (timer time, watermark when it fired, subtask, whether the slow input had been released)
using Fired = std::tuple<int64_t, int64_t, int, bool>;

class TimerPerRecord final : public KeyedProcessFunction<int64_t, int64_t, Fired> {
 public:
  TimerPerRecord(std::shared_ptr<std::atomic<int64_t>> processed, int64_t release_at)
      : processed_(std::move(processed)), release_at_(release_at) {}
  void Open(KeyedRuntimeContext<int64_t>& ctx) override { subtask_ = ctx.SubtaskIndex(); }
  void ProcessElement(const int64_t&, Context& ctx, Collector<Fired>&) override {
    ctx.Timers().RegisterEventTimeTimer(ctx.timestamp());
    processed_->fetch_add(1);
  }
  void OnTimer(Timestamp ts, OnTimerContext& ctx, Collector<Fired>& out) override {
    EXPECT_EQ(ctx.domain(), TimeDomain::kEventTime);
    out.Collect({ts, ctx.Timers().CurrentWatermark(), subtask_, processed_->load() >= release_at_});
  }

 private:
  std::shared_ptr<std::atomic<int64_t>> processed_;
  int64_t release_at_;
  int subtask_ = 0;
};

TEST(EventTimeTest, WatermarkIsTheMinimumOverInputsAndTimersFireInOrder) {
  Pipeline p("event-time");
  // The slow source stops at watermark 4 and stays open until every record of both sources
  // was processed; the fast one goes to 999. Until the slow one is released, no watermark
  // downstream may pass 4, so no timer after 4 may fire.
  constexpr int64_t kAll = 5 + 1000;
  auto processed = std::make_shared<std::atomic<int64_t>>(0);
  auto slow = p.Source(TimedSource(0, 4, processed, kAll), "Slow");
  auto fast = p.Source(TimedSource(0, 999), "Fast");
  auto out = std::make_shared<CollectedRecords<Fired>>();
  slow.Union(fast)
      .KeyBy([](const int64_t& v) { return v % 7; })
      .Process(TimerPerRecord(processed, kAll))
      .Parallelism(2)
      .Sink(CollectSink<Fired>(out))
      .Parallelism(2);
  ASSERT_OK(ExecuteLocally(p));

  auto fired = out->Values();
  // Every distinct (key, timestamp) timer fired once: 0..999 (0..4 twice, deduplicated).
  std::map<int64_t, int> count;
  for (const auto& [ts, wm, subtask, released] : fired) count[ts]++;
  ASSERT_EQ(count.size(), 1000u);
  for (const auto& [ts, n] : count) EXPECT_EQ(n, 1) << "timer " << ts;

  std::map<int, int64_t> last_per_subtask;
  for (const auto& [ts, wm, subtask, released] : fired) {
    EXPECT_LE(ts, wm) << "a timer fired before the watermark reached it";
    if (!released) {
      EXPECT_LE(wm, 4) << "watermark ran ahead of the slow input";
    }
    auto it = last_per_subtask.find(subtask);
    if (it != last_per_subtask.end()) {
      EXPECT_LE(it->second, ts) << "timers out of order";
    }
    last_per_subtask[subtask] = ts;
  }
}

class ProcessingTimeAlarm final : public KeyedProcessFunction<int64_t, int64_t, int64_t> {
 public:
  explicit ProcessingTimeAlarm(std::shared_ptr<std::atomic<int>> fired)
      : fired_(std::move(fired)) {}
  void ProcessElement(const int64_t&, Context& ctx, Collector<int64_t>&) override {
    ctx.Timers().RegisterProcessingTimeTimer(ctx.Timers().CurrentProcessingTime() + 20);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<int64_t>& out) override {
    EXPECT_EQ(ctx.domain(), TimeDomain::kProcessingTime);
    out.Collect(ctx.CurrentKey());
    fired_->fetch_add(1);
  }

 private:
  std::shared_ptr<std::atomic<int>> fired_;
};

/// Emits 0..n-1 once, then stays open until `until` reaches n.
class HoldOpenSource final : public SourceFunction<int64_t> {
 public:
  HoldOpenSource(int64_t n, std::shared_ptr<std::atomic<int>> until)
      : n_(n), until_(std::move(until)) {}
  SourceStatus Poll(SourceOutput<int64_t>& out) override {
    while (next_ < n_) out.Collect(next_++);
    if (until_->load() >= n_) return SourceStatus::kEndOfInput;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling a test condition
    return SourceStatus::kNothingAvailable;
  }
  bool IsParallel() const override { return false; }

 private:
  int64_t n_;
  int64_t next_ = 0;
  std::shared_ptr<std::atomic<int>> until_;
};

TEST(EventTimeTest, ProcessingTimeTimersFireOnTheTaskThread) {
  Pipeline p("processing-time");
  auto fired = std::make_shared<std::atomic<int>>(0);
  auto out = std::make_shared<CollectedRecords<int64_t>>();
  p.Source(HoldOpenSource(10, fired))
      .KeyBy([](const int64_t& v) { return v; })
      .Process(ProcessingTimeAlarm(fired))
      .Sink(CollectSink<int64_t>(out));
  ASSERT_OK(ExecuteLocally(p));
  std::vector<int64_t> keys = out->Values();
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(EventTimeTest, RecordTimestampsFlowThroughOperators) {
  Pipeline p("timestamps");
  auto out = std::make_shared<CollectedRecords<int64_t>>();
  p.Source(TimedSource(100, 109))
      .Map([](const int64_t& v) { return v * 10; })
      .Sink(CollectSink<int64_t>(out));
  ASSERT_OK(ExecuteLocally(p));
  for (const auto& r : out->Records()) EXPECT_EQ(r.value, r.timestamp * 10);
  EXPECT_EQ(out->Records().size(), 10u);
}

}  // namespace
}  // namespace sluice
