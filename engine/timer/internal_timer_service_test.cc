#include "sluice/timer/internal_timer_service.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

/// Processing time under the test's control.
class ManualProcessingTime final : public ProcessingTimeService {
 public:
  Timestamp CurrentProcessingTime() const override { return now_; }
  void ScheduleAt(Timestamp time, Target* target) override { scheduled_.push_back({time, target}); }
  /// Advances the clock and runs what became due, as a task would.
  void AdvanceTo(Timestamp now) {
    now_ = now;
    auto due = std::move(scheduled_);
    scheduled_.clear();
    for (auto& [time, target] : due) {
      if (time <= now) {
        target->OnProcessingTime(now);
      } else {
        scheduled_.push_back({time, target});
      }
    }
  }

 private:
  Timestamp now_ = 0;
  std::vector<std::pair<Timestamp, Target*>> scheduled_;
};

class Recorder final : public InternalTimerService<std::string, VoidNamespace>::Triggerable {
 public:
  void OnEventTime(const Timer<std::string, VoidNamespace>& t) override {
    fired.push_back("event:" + t.key + "@" + std::to_string(t.timestamp));
    if (on_event) on_event(t);
  }
  void OnProcessingTime(const Timer<std::string, VoidNamespace>& t) override {
    fired.push_back("proc:" + t.key + "@" + std::to_string(t.timestamp));
  }
  std::vector<std::string> fired;
  std::function<void(const Timer<std::string, VoidNamespace>&)> on_event;
};

class TimerServiceTest : public ::testing::Test {
 protected:
  TimerServiceTest()
      : timers_(&clock_,
                {[this]() -> const std::string& { return key_; },
                 [this](const std::string& k) { key_ = k; }},
                &recorder_) {}
  void At(const std::string& key) { key_ = key; }

  ManualProcessingTime clock_;
  Recorder recorder_;
  std::string key_;
  InternalTimerService<std::string, VoidNamespace> timers_;
};

TEST_F(TimerServiceTest, EventTimersFireInTimeOrderUpToTheWatermark) {
  At("a");
  timers_.RegisterEventTimeTimer(30);
  At("b");
  timers_.RegisterEventTimeTimer(10);
  timers_.RegisterEventTimeTimer(20);
  timers_.AdvanceWatermark(20);
  EXPECT_EQ(recorder_.fired, (std::vector<std::string>{"event:b@10", "event:b@20"}));
  timers_.AdvanceWatermark(kMaxWatermark);
  EXPECT_EQ(recorder_.fired.back(), "event:a@30");
  EXPECT_EQ(timers_.CurrentWatermark(), kMaxWatermark);
}

TEST_F(TimerServiceTest, SameTimerTwiceFiresOnceAndDeletedTimersDoNotFire) {
  At("a");
  timers_.RegisterEventTimeTimer(5);
  timers_.RegisterEventTimeTimer(5);
  timers_.RegisterEventTimeTimer(6);
  timers_.DeleteEventTimeTimer(6);
  timers_.AdvanceWatermark(100);
  EXPECT_EQ(recorder_.fired, std::vector<std::string>{"event:a@5"});
}

TEST_F(TimerServiceTest, TimerSetWhileFiringThatIsAlreadyDueFiresInTheSameAdvance) {
  At("a");
  timers_.RegisterEventTimeTimer(1);
  recorder_.on_event = [this](const Timer<std::string, VoidNamespace>& t) {
    if (t.timestamp == 1) timers_.RegisterEventTimeTimer(2);
  };
  timers_.AdvanceWatermark(2);
  EXPECT_EQ(recorder_.fired, (std::vector<std::string>{"event:a@1", "event:a@2"}));
}

TEST_F(TimerServiceTest, ProcessingTimersFireWhenTheClockReachesThem) {
  At("x");
  timers_.RegisterProcessingTimeTimer(100);
  At("y");
  timers_.RegisterProcessingTimeTimer(50);
  clock_.AdvanceTo(49);
  EXPECT_TRUE(recorder_.fired.empty());
  clock_.AdvanceTo(60);
  EXPECT_EQ(recorder_.fired, std::vector<std::string>{"proc:y@50"});
  clock_.AdvanceTo(100);
  EXPECT_EQ(recorder_.fired.back(), "proc:x@100");
  EXPECT_EQ(timers_.NumProcessingTimeTimers(), 0u);
}

}  // namespace
}  // namespace sluice
