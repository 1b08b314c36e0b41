// A sink slower than its source: the source must be held back by full channels, so the
// records in flight stay bounded by the buffer configuration, not by the input size.

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

struct Progress {
  std::atomic<int64_t> emitted{0};
  std::atomic<int64_t> consumed{0};
  std::atomic<int64_t> max_in_flight{0};
};

/// Consumes slowly and records how far the source ran ahead.
class SlowSink final : public SinkFunction<int64_t> {
 public:
  explicit SlowSink(std::shared_ptr<Progress> progress) : progress_(std::move(progress)) {}
  void Invoke(const int64_t&, const SinkContext&) override {}
  void InvokeBatch(std::span<const Record<int64_t>> records, SinkContext&) override {
    int64_t consumed = progress_->consumed.fetch_add(static_cast<int64_t>(records.size())) +
                       static_cast<int64_t>(records.size());
    int64_t in_flight = progress_->emitted.load() - consumed;
    int64_t prev = progress_->max_in_flight.load();
    while (in_flight > prev && !progress_->max_in_flight.compare_exchange_weak(prev, in_flight)) {
    }
    // The slowness under test, not a synchronization.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }

 private:
  std::shared_ptr<Progress> progress_;
};

TEST(BackPressureTest, SlowSinkBoundsRecordsInFlight) {
  constexpr int64_t kRecords = 400000;
  auto progress = std::make_shared<Progress>();
  Pipeline p("back-pressure");
  p.SetChannelCapacity(2);
  p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }, {.count = kRecords}))
      .Map([progress](const int64_t& v) {
        progress->emitted.fetch_add(1, std::memory_order_relaxed);
        return v;
      })
      .Rebalance()
      .Sink(SlowSink(progress))
      .Parallelism(1);
  auto result = ExecuteLocally(p);
  ASSERT_OK(result);
  EXPECT_EQ(progress->consumed.load(), kRecords);

  const int64_t buffer = static_cast<int64_t>(BufferRecordsFor<int64_t>(p.config()));
  // In flight at most: the source's batch, the writer's pending buffer, the channel's
  // capacity, and the batch in the sink.
  const int64_t bound = (1 + 1 + p.config().channel_capacity + 1) * buffer;
  EXPECT_LE(progress->max_in_flight.load(), bound);
  EXPECT_LE(result->MaxQueuedRecords(), p.config().channel_capacity * buffer);
  EXPECT_LT(bound * 10, kRecords)
      << "the input must dwarf the bound for this test to mean anything";

  // The task metrics: every record sent once and taken once, and where each task's time
  // went. The source spends most of it blocked on the full channel, the sink working.
  ASSERT_EQ(result->tasks.size(), 2u);
  const TaskStats& source = result->tasks[0].records_in == 0 ? result->tasks[0] : result->tasks[1];
  const TaskStats& sink = &source == &result->tasks[0] ? result->tasks[1] : result->tasks[0];
  EXPECT_EQ(source.records_sent, kRecords);
  EXPECT_EQ(sink.records_in, kRecords);
  EXPECT_EQ(sink.records_sent, 0);
  EXPECT_GT(source.backpressured, source.busy) << source.name;
  EXPECT_GT(sink.busy, sink.idle) << sink.name;
  EXPECT_EQ(sink.backpressured, absl::ZeroDuration());
  for (const TaskStats& t : result->tasks) {
    // Each slice of the task thread's time goes to one of the three, within the run.
    EXPECT_LE(t.busy + t.idle + t.backpressured, result->duration) << t.name;
  }
}

}  // namespace
}  // namespace sluice
