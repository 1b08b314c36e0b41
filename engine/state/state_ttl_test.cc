#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sluice/state/heap_keyed_state_backend.h"

namespace sluice {
namespace {

class FixedTime final : public ProcessingTimeService {
 public:
  Timestamp CurrentProcessingTime() const override { return now; }
  void ScheduleAt(Timestamp, Target*) override {}
  Timestamp now = 0;
};

class StateTtlTest : public ::testing::Test {
 protected:
  StateTtlTest() { backend_.SetProcessingTimeService(&time_); }

  template <typename D>
  static D WithTtl(D d, StateTtlConfig c) {
    d.EnableTimeToLive(c);
    return d;
  }

  FixedTime time_;
  HeapKeyedStateBackend<int64_t> backend_{KeyGroupRange{0, 127}, 128};
};

TEST_F(StateTtlTest, ExpiredValueIsNeverReturnedAndIsRemovedOnAccess) {
  auto* v = backend_.GetUserState(
      WithTtl(ValueStateDescriptor<int64_t>("v"), StateTtlConfig::Of(absl::Milliseconds(100))));
  backend_.SetCurrentKey(1);
  v->Update(42);
  time_.now = 99;
  EXPECT_EQ(v->Value(), 42);
  time_.now = 100;
  EXPECT_FALSE(v->Value().has_value());
  EXPECT_EQ(backend_.TotalEntryCount(), 0u);
}

TEST_F(StateTtlTest, ReadsRefreshOnlyWithOnReadAndWrite) {
  auto* create_write = backend_.GetUserState(
      WithTtl(ValueStateDescriptor<int64_t>("cw"), StateTtlConfig::Of(absl::Milliseconds(100))));
  auto* read_write = backend_.GetUserState(
      WithTtl(ValueStateDescriptor<int64_t>("rw"),
              StateTtlConfig::Of(absl::Milliseconds(100)).UpdateOnReadAndWrite()));
  backend_.SetCurrentKey(7);
  create_write->Update(1);
  read_write->Update(1);
  time_.now = 60;
  EXPECT_TRUE(create_write->Value().has_value());
  EXPECT_TRUE(read_write->Value().has_value());  // restarts its clock at 60
  time_.now = 120;
  EXPECT_FALSE(create_write->Value().has_value());
  EXPECT_EQ(read_write->Value(), 1);
  time_.now = 130;
  create_write->Update(2);  // a write restarts the clock in both modes
  time_.now = 200;
  EXPECT_EQ(create_write->Value(), 2);
}

TEST_F(StateTtlTest, EveryStateKindExpires) {
  StateTtlConfig ttl = StateTtlConfig::Of(absl::Milliseconds(10));
  auto* list = backend_.GetUserListState(WithTtl(ListStateDescriptor<std::string>("l"), ttl));
  auto* map = backend_.GetUserMapState(WithTtl(MapStateDescriptor<std::string, int>("m"), ttl));
  auto* sum = backend_.GetUserReducingState(
      WithTtl(ReducingStateDescriptor<int64_t>(
                  "r", [](const int64_t& a, const int64_t& b) { return a + b; }),
              ttl));
  backend_.SetCurrentKey(3);
  list->Add("a");
  map->Put("k", 1);
  sum->Add(5);
  time_.now = 5;
  sum->Add(5);
  EXPECT_EQ(sum->Get(), 10);
  EXPECT_EQ(list->Get(), std::vector<std::string>{"a"});
  time_.now = 10;
  EXPECT_TRUE(list->Get().empty());
  EXPECT_TRUE(map->IsEmpty());
  EXPECT_EQ(sum->Get(), 10);  // its last write was at 5
  time_.now = 15;
  EXPECT_FALSE(sum->Get().has_value());
  list->Add("b");  // starts a fresh list, not the expired one
  EXPECT_EQ(list->Get(), std::vector<std::string>{"b"});
}

TEST_F(StateTtlTest, IncrementalCleanupShrinksTheState) {
  auto* v = backend_.GetUserState(
      WithTtl(ValueStateDescriptor<std::string>("v"),
              StateTtlConfig::Of(absl::Milliseconds(100)).CleanupIncrementally(1)));
  for (int64_t k = 0; k < 1000; ++k) {
    backend_.SetCurrentKey(k);
    v->Update("payload-" + std::to_string(k));
  }
  EXPECT_EQ(backend_.TotalEntryCount(), 1000u);
  const size_t bytes_before = backend_.TotalSerializedBytes();
  EXPECT_GT(bytes_before, 1000u * 8);
  time_.now = 500;
  // Touch one key 128 times: each access sweeps one key group, so all are swept.
  backend_.SetCurrentKey(0);
  for (int i = 0; i < 128; ++i) v->Value();
  EXPECT_EQ(backend_.TotalEntryCount(), 0u);
  EXPECT_EQ(backend_.TotalSerializedBytes(), 0u);
}

TEST_F(StateTtlTest, TtlOnWindowStateIsRefused) {
  auto d = WithTtl(ValueStateDescriptor<int64_t>("w"), StateTtlConfig::Of(absl::Seconds(1)));
  EXPECT_THROW((backend_.GetState<std::string>(d)), std::logic_error);
  EXPECT_THROW(StateTtlConfig::Of(absl::ZeroDuration()), std::invalid_argument);
}

}  // namespace
}  // namespace sluice
