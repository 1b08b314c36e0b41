// An input that goes quiet must not stall event time: with idleness configured, windows
// fire from the other input while the quiet one is still open. Processing time comes from
// a manual clock that the test advances.

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using KV = std::pair<std::string, int64_t>;  // key, timestamp

struct Flags {
  std::atomic<bool> release{false};
  std::atomic<bool> fired_while_open{false};
  std::atomic<int64_t> b_emitted{0};
};

/// Emits one record for key "quiet" at ts 10, then nothing until released.
class QuietSource final : public SourceFunction<KV> {
 public:
  explicit QuietSource(std::shared_ptr<Flags> f) : f_(std::move(f)) {}
  SourceStatus Poll(SourceOutput<KV>& out) override {
    if (!sent_) {
      out.Collect({"quiet", 10});
      sent_ = true;
    }
    if (f_->release.load()) return SourceStatus::kEndOfInput;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // nothing to read
    return SourceStatus::kNothingAvailable;
  }
  bool IsParallel() const override { return false; }

 private:
  std::shared_ptr<Flags> f_;
  bool sent_ = false;
};

/// Emits key "busy" with timestamps 0, 10, 20, ... until released.
class BusySource final : public SourceFunction<KV> {
 public:
  explicit BusySource(std::shared_ptr<Flags> f) : f_(std::move(f)) {}
  SourceStatus Poll(SourceOutput<KV>& out) override {
    if (f_->release.load()) return SourceStatus::kEndOfInput;
    for (int i = 0; i < 10; ++i) out.Collect({"busy", next_ += 10});
    f_->b_emitted.fetch_add(10);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a steady, modest rate
    return SourceStatus::kMoreAvailable;
  }
  bool IsParallel() const override { return false; }

 private:
  std::shared_ptr<Flags> f_;
  int64_t next_ = -10;
};

class NoteFiring final : public SinkFunction<KV> {
 public:
  explicit NoteFiring(std::shared_ptr<Flags> f) : f_(std::move(f)) {}
  void Invoke(const KV& kv, const SinkContext&) override {
    if (kv.first == "busy" && !f_->release.load()) f_->fired_while_open.store(true);
  }

 private:
  std::shared_ptr<Flags> f_;
};

void RunWithQuietInput(bool with_idleness, bool* fired_while_open) {
  auto flags = std::make_shared<Flags>();
  auto clock = std::make_shared<ManualClock>(0);
  auto by_ts = [](const KV& kv, Timestamp) { return kv.second; };
  auto quiet_strategy = WatermarkStrategy<KV>::ForMonotonousTimestamps()
                            .WithTimestampAssigner(by_ts)
                            .WithEmitInterval(absl::ZeroDuration());
  if (with_idleness) quiet_strategy.WithIdleness(absl::Seconds(1));
  Pipeline p("idleness");
  auto quiet = p.Source(QuietSource(flags), "Quiet").AssignTimestampsAndWatermarks(quiet_strategy);
  auto busy = p.Source(BusySource(flags), "Busy")
                  .AssignTimestampsAndWatermarks(WatermarkStrategy<KV>::ForMonotonousTimestamps()
                                                     .WithTimestampAssigner(by_ts)
                                                     .WithEmitInterval(absl::ZeroDuration()));
  quiet.Union(busy)
      .KeyBy(&KV::first)
      .Window(Tumbling(absl::Milliseconds(100)))
      .Reduce([](const KV& a, const KV&) { return a; })
      .Sink(NoteFiring(flags));

  absl::Status status;
  std::thread job([&] {
    status = ExecuteLocally(p, {.clock = clock, .on_checkpoint_complete = nullptr}).status();
  });
  // Once the busy input is well past the first windows, let processing time pass the
  // idleness timeout, then give the windows a bounded time to fire.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (flags->b_emitted.load() < 1000 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  clock->Advance(1500);
  // The positive case fires within milliseconds; the control needs only a short look.
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(with_idleness ? 5 : 1);
  while (!flags->fired_while_open.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  *fired_while_open = flags->fired_while_open.load();
  flags->release.store(true);
  job.join();
  EXPECT_OK(status);
}

TEST(IdlenessTest, IdleInputDoesNotHoldBackWindows) {
  bool fired = false;
  RunWithQuietInput(/*with_idleness=*/true, &fired);
  EXPECT_TRUE(fired) << "no window fired while the quiet input was open";
}

TEST(IdlenessTest, WithoutIdlenessTheQuietInputHoldsWindowsBack) {
  // The control: the same job without idleness fires nothing until the quiet input ends.
  bool fired = true;
  RunWithQuietInput(/*with_idleness=*/false, &fired);
  EXPECT_FALSE(fired);
}

}  // namespace
}  // namespace sluice
