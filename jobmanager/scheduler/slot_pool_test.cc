#include "scheduler/slot_pool.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/slot_allocation.h"
#include "sluice/testing/test_util.h"

namespace sluice::cluster {
namespace {

using ::testing::HasSubstr;

TEST(SlotAllocationTest, SpreadGoesRoundRobinPackFillsOneFirst) {
  const std::vector<FreeSlots> free = {{"a", 2}, {"b", 1}, {"c", 3}};
  auto spread = AllocateSlots(4, free, SlotStrategy::kSpread);
  ASSERT_OK(spread);
  EXPECT_EQ(*spread, (std::vector<std::string>{"a", "b", "c", "a"}));
  auto pack = AllocateSlots(4, free, SlotStrategy::kPack);
  ASSERT_OK(pack);
  EXPECT_EQ(*pack, (std::vector<std::string>{"a", "a", "b", "c"}));
  auto too_many = AllocateSlots(7, free, SlotStrategy::kSpread);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(too_many.status().message()),
              HasSubstr("the job needs 7 slots; the cluster has 6 free (3 TaskManagers)"));
}

// A restart asks for each slot's previous TaskManager (its subtasks' local state is there);
// a slot whose TaskManager is gone or full goes where the strategy says.
TEST(SlotAllocationTest, ARestartGetsEachSlotsPreviousTaskManagerWhereItHasRoom) {
  const std::vector<FreeSlots> free = {{"a", 2}, {"c", 2}, {"d", 2}};
  auto same = AllocateSlots(4, free, SlotStrategy::kSpread, {"c", "a", "d", "a"});
  ASSERT_OK(same);
  EXPECT_EQ(*same, (std::vector<std::string>{"c", "a", "d", "a"}));
  // "b" died; "a" has room for one of its two old slots: slot 1 keeps it, slot 3 and "b"'s
  // slot 0 are spread over what is left, first to the TaskManager holding none of the job's.
  const std::vector<FreeSlots> after_loss = {{"a", 1}, {"c", 2}, {"d", 2}};
  auto moved = AllocateSlots(4, after_loss, SlotStrategy::kSpread, {"b", "a", "c", "a"});
  ASSERT_OK(moved);
  EXPECT_EQ(*moved, (std::vector<std::string>{"d", "a", "c", "c"}));
  auto packed = AllocateSlots(4, after_loss, SlotStrategy::kPack, {"b", "a", "c", "a"});
  ASSERT_OK(packed);
  EXPECT_EQ(*packed, (std::vector<std::string>{"c", "a", "c", "d"}));
}

TEST(SlotPoolTest, ReservedSlotsAreHeldUntilReleased) {
  SlotPool pool;
  pool.Add("a", "host:1", 2, 1);
  pool.Add("b", "host:2", 1, 2);
  EXPECT_EQ(pool.total(), 3);
  auto first = pool.Reserve(2, SlotStrategy::kSpread);
  ASSERT_OK(first);
  EXPECT_EQ(*first, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(pool.free(), 1);
  EXPECT_EQ(pool.Reserve(2, SlotStrategy::kSpread).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(pool.free(), 1) << "a refused reservation holds nothing";
  pool.Release(*first);
  EXPECT_EQ(pool.free(), 3);
  ASSERT_NE(pool.Find("b"), nullptr);
  EXPECT_EQ(pool.Find("b")->address, "host:2");
}

TEST(SlotPoolTest, ATaskManagerThatRegisteredAgainIsNotRemovedByItsOldLoss) {
  SlotPool pool;
  pool.Add("a", "host:1", 2, 1);
  ASSERT_OK(pool.Reserve(2, SlotStrategy::kPack));
  pool.Add("a", "host:9", 3, 7);  // a new process under the same id: none of its slots used
  EXPECT_EQ(pool.free(), 3);
  pool.Release({"a", "a"});  // the old run's slots: nothing to give back on the new one
  EXPECT_EQ(pool.free(), 3);
  pool.Remove("a", 1);  // the loss of the first registration, noticed late
  ASSERT_NE(pool.Find("a"), nullptr);
  EXPECT_EQ(pool.Find("a")->address, "host:9");
  pool.Remove("a", 7);
  EXPECT_EQ(pool.Find("a"), nullptr);
  EXPECT_EQ(pool.total(), 0);
}

}  // namespace
}  // namespace sluice::cluster
