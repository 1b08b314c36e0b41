#include "heartbeat/taskmanager_registry.h"

#include <condition_variable>
#include <mutex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sluice::cluster {
namespace {

RegisterTaskManagerRequest Registration(const std::string& id) {
  RegisterTaskManagerRequest r;
  r.set_taskmanager_id(id);
  r.set_address("127.0.0.1:1");
  r.set_slots(1);
  return r;
}

TEST(TaskManagerRegistryTest, OnlyTaskManagersSilentLongerThanTheTimeoutAreLost) {
  absl::Time now = absl::FromUnixSeconds(1000);
  TaskManagerRegistry registry(absl::Seconds(10), [&] { return now; });
  const int64_t a = registry.Register(Registration("a")).registration_number;
  const int64_t b = registry.Register(Registration("b")).registration_number;
  EXPECT_GT(b, a);
  int b_streams_ended = 0;
  ASSERT_TRUE(registry.Connect("b", b, [&] { ++b_streams_ended; }));
  now += absl::Seconds(6);
  EXPECT_TRUE(registry.Heartbeat("a", a));
  EXPECT_FALSE(registry.Heartbeat("stranger", 1)) << "an unknown TaskManager must register";
  EXPECT_FALSE(registry.Heartbeat("a", b)) << "another registration's heartbeat";
  now += absl::Seconds(4);  // b silent exactly the timeout: not lost yet
  EXPECT_TRUE(registry.RemoveSilent().empty());
  now += absl::Milliseconds(1);
  auto lost = registry.RemoveSilent();
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].taskmanager_id, "b");
  EXPECT_EQ(lost[0].registration_number, b);
  EXPECT_EQ(lost[0].why, "TaskManager 'b' was lost (no heartbeat for 10.001s)");
  EXPECT_EQ(b_streams_ended, 1) << "a silent TaskManager's control stream is ended";
  ASSERT_EQ(registry.Entries().size(), 1u);
  EXPECT_EQ(registry.Entries()[0].registration.taskmanager_id(), "a");
  EXPECT_FALSE(registry.Heartbeat("b", b)) << "a lost TaskManager registers again";
  EXPECT_EQ(registry.Disconnected("b", b), std::nullopt) << "lost once, not twice";
}

TEST(TaskManagerRegistryTest, ABrokenControlStreamLosesItsRegistrationAtOnce) {
  absl::Time now = absl::FromUnixSeconds(1000);
  TaskManagerRegistry registry(absl::Seconds(10), [&] { return now; });
  const int64_t a = registry.Register(Registration("a")).registration_number;
  ASSERT_TRUE(registry.Connect("a", a, [] {}));
  EXPECT_FALSE(registry.Connect("a", a + 1, [] {})) << "not a current registration";
  auto lost = registry.Disconnected("a", a);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->registration_number, a);
  EXPECT_THAT(lost->why,
              ::testing::HasSubstr("TaskManager 'a' was lost (its control stream broke"));
  EXPECT_TRUE(registry.Entries().empty());
}

TEST(TaskManagerRegistryTest, RegisteringAgainReplacesTheEntryAndLosesTheOldRegistration) {
  absl::Time now = absl::FromUnixSeconds(1000);
  TaskManagerRegistry registry(absl::Seconds(1), [&] { return now; });
  const auto first = registry.Register(Registration("a"));
  EXPECT_EQ(first.replaced, std::nullopt);
  int old_streams_ended = 0;
  ASSERT_TRUE(registry.Connect("a", first.registration_number, [&] { ++old_streams_ended; }));
  now += absl::Seconds(5);
  const auto second = registry.Register(Registration("a"));
  EXPECT_NE(first.registration_number, second.registration_number);
  ASSERT_TRUE(second.replaced.has_value()) << "the old registration's runs must fail";
  EXPECT_EQ(second.replaced->registration_number, first.registration_number);
  EXPECT_EQ(old_streams_ended, 1);
  EXPECT_EQ(registry.Disconnected("a", first.registration_number), std::nullopt)
      << "the old stream's end loses nothing more";
  EXPECT_TRUE(registry.RemoveSilent().empty()) << "the new registration counts as heard from";
  ASSERT_EQ(registry.Entries().size(), 1u);
  EXPECT_EQ(registry.Entries()[0].registration_number, second.registration_number);
}

TEST(HeartbeatMonitorTest, HandsEachLostTaskManagerOverOnce) {
  TaskManagerRegistry registry(absl::Milliseconds(50));
  registry.Register(Registration("quiet"));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> lost;
  {
    HeartbeatMonitor monitor(&registry, absl::Milliseconds(20),
                             [&](const TaskManagerRegistry::Lost& l) {
                               std::lock_guard<std::mutex> lock(mu);
                               lost.push_back(l.taskmanager_id);
                               cv.notify_all();
                             });
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return !lost.empty(); }));
  }  // the monitor stops here: no call after this
  EXPECT_EQ(lost, std::vector<std::string>{"quiet"});
  EXPECT_TRUE(registry.Entries().empty());
}

}  // namespace
}  // namespace sluice::cluster
