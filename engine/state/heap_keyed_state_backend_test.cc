#include "sluice/state/heap_keyed_state_backend.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

class HeapStateTest : public ::testing::Test {
 protected:
  HeapKeyedStateBackend<std::string> backend_{KeyGroupRange{0, 127}, 128};
};

TEST_F(HeapStateTest, ValueStateIsPerKey) {
  ValueState<int64_t>* count = backend_.GetState(ValueStateDescriptor<int64_t>("count"));
  backend_.SetCurrentKey("a");
  EXPECT_FALSE(count->Value().has_value());
  count->Update(1);
  backend_.SetCurrentKey("b");
  EXPECT_EQ(count->ValueOr(0), 0);
  count->Update(5);
  backend_.SetCurrentKey("a");
  EXPECT_EQ(count->Value(), 1);
  count->Clear();
  EXPECT_FALSE(count->Value().has_value());
  backend_.SetCurrentKey("b");
  EXPECT_EQ(count->Value(), 5);
}

TEST_F(HeapStateTest, ListState) {
  ListState<std::string>* list = backend_.GetListState(ListStateDescriptor<std::string>("l"));
  backend_.SetCurrentKey("k");
  EXPECT_TRUE(list->Get().empty());
  list->Add("x");
  list->AddAll({"y", "z"});
  EXPECT_EQ(list->Get(), (std::vector<std::string>{"x", "y", "z"}));
  list->Update({"only"});
  EXPECT_EQ(list->Get(), std::vector<std::string>{"only"});
  list->Update({});
  EXPECT_TRUE(list->Get().empty());
  EXPECT_EQ(backend_.TotalEntryCount(), 0u);  // an empty list holds no entry
}

TEST_F(HeapStateTest, MapState) {
  MapState<std::string, int>* map = backend_.GetMapState(MapStateDescriptor<std::string, int>("m"));
  backend_.SetCurrentKey("k");
  EXPECT_TRUE(map->IsEmpty());
  map->Put("a", 1);
  map->Put("b", 2);
  map->Put("a", 3);
  EXPECT_EQ(map->Get("a"), 3);
  EXPECT_FALSE(map->Get("c").has_value());
  EXPECT_TRUE(map->Contains("b"));
  auto entries = map->Entries();
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::pair<std::string, int>>{{"a", 3}, {"b", 2}}));
  map->Remove("a");
  map->Remove("b");
  EXPECT_TRUE(map->IsEmpty());
  EXPECT_EQ(backend_.TotalEntryCount(), 0u);
}

TEST_F(HeapStateTest, ReducingState) {
  ReducingState<int>* max = backend_.GetReducingState(ReducingStateDescriptor<int>(
      "max", [](const int& a, const int& b) { return std::max(a, b); }));
  backend_.SetCurrentKey("k");
  EXPECT_FALSE(max->Get().has_value());
  for (int v : {3, 9, 4}) max->Add(v);
  EXPECT_EQ(max->Get(), 9);
}

class AverageAggregate final : public AggregateFunction<int, std::pair<int64_t, int64_t>, double> {
 public:
  std::pair<int64_t, int64_t> CreateAccumulator() const override { return {0, 0}; }
  void Add(const int& v, std::pair<int64_t, int64_t>& acc) const override {
    acc.first += v;
    acc.second++;
  }
  double GetResult(const std::pair<int64_t, int64_t>& acc) const override {
    return static_cast<double>(acc.first) / static_cast<double>(acc.second);
  }
  std::pair<int64_t, int64_t> Merge(std::pair<int64_t, int64_t> a,
                                    const std::pair<int64_t, int64_t>& b) const override {
    return {a.first + b.first, a.second + b.second};
  }
};

TEST_F(HeapStateTest, AggregatingState) {
  AggregatingState<int, double>* avg = backend_.GetAggregatingState(
      AggregatingStateDescriptor<int, std::pair<int64_t, int64_t>, double>("avg",
                                                                           AverageAggregate{}));
  backend_.SetCurrentKey("k");
  EXPECT_FALSE(avg->Get().has_value());
  avg->Add(1);
  avg->Add(2);
  EXPECT_DOUBLE_EQ(*avg->Get(), 1.5);
  avg->Clear();
  EXPECT_FALSE(avg->Get().has_value());
}

TEST_F(HeapStateTest, SameDescriptorGivesSameHandleAndTypeClashThrows) {
  auto* a = backend_.GetState(ValueStateDescriptor<int64_t>("s"));
  auto* b = backend_.GetState(ValueStateDescriptor<int64_t>("s"));
  EXPECT_EQ(a, b);
  EXPECT_THROW(backend_.GetState(ValueStateDescriptor<std::string>("s")), std::logic_error);
}

TEST(HeapStateOwnershipTest, KeyOfAnotherSubtaskIsRejectedWithItsKeyGroup) {
  HeapKeyedStateBackend<int64_t> backend(KeyGroupRange{0, 63}, 128);
  int64_t foreign = 0;
  while (KeyGroupFor(foreign, 128) < 64) ++foreign;
  try {
    backend.SetCurrentKey(foreign);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not own"), std::string::npos) << e.what();
  }
}

TEST(HeapStateKeyGroupTest, EntriesAreStoredPerKeyGroup) {
  HeapKeyedStateBackend<int64_t> backend(KeyGroupRange{0, 127}, 128);
  auto* table = backend.GetOrCreateTable<VoidNamespace, int>("t");
  auto* state = backend.GetState(ValueStateDescriptor<int>("t"));
  for (int64_t k = 0; k < 1000; ++k) {
    backend.SetCurrentKey(k);
    state->Update(static_cast<int>(k));
  }
  size_t total = 0;
  for (int kg = 0; kg < 128; ++kg) {
    table->ForEachInKeyGroup(kg, [&](int key, int value) {
      EXPECT_EQ(KeyGroupFor(key, 128), kg);
      EXPECT_EQ(value, key);
      ++total;
    });
  }
  EXPECT_EQ(total, 1000u);
}

}  // namespace
}  // namespace sluice
