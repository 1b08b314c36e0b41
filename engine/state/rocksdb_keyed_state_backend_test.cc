// The RocksDB keyed state backend: every state kind through its write-back cache (kept tiny
// here so entries go back and forth to RocksDB), snapshots that hold exactly the state at the
// moment they were taken while writes go on, and snapshots that the heap backend restores
// (and the other way round): the format is the same.

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sluice/state/heap_keyed_state_backend.h"
#include "sluice/state/rocksdb_state_table.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

constexpr int kMaxParallelism = 128;
const KeyGroupRange kAll{0, kMaxParallelism - 1};

class RocksDbBackendTest : public ::testing::Test {
 protected:
  std::unique_ptr<RocksDbKeyedStateBackend<int64_t>> NewBackend(size_t cache_entries = 8) {
    auto store = internal::RocksDbStore::Create(dir_.Join("db-" + std::to_string(++databases_)));
    EXPECT_OK(store);
    RocksDbTableContext context;
    context.store = std::shared_ptr<internal::RocksDbStore>(std::move(*store));
    context.cache_entries = cache_entries;
    return std::make_unique<RocksDbKeyedStateBackend<int64_t>>(kAll, kMaxParallelism, context);
  }
  testing::TempDir dir_;
  int databases_ = 0;
};

TEST_F(RocksDbBackendTest, EveryStateKindThroughASmallCache) {
  auto backend = NewBackend();
  auto* count = backend->GetState(ValueStateDescriptor<int64_t>("count"));
  auto* list = backend->GetListState(ListStateDescriptor<std::string>("list"));
  auto* map = backend->GetMapState(MapStateDescriptor<std::string, int>("map"));
  auto* max = backend->GetReducingState(ReducingStateDescriptor<int>(
      "max", [](const int& a, const int& b) { return std::max(a, b); }));
  for (int round = 0; round < 3; ++round) {
    for (int64_t k = 0; k < 200; ++k) {  // far more keys than the cache holds
      backend->SetCurrentKey(k);
      count->Update(count->ValueOr(0) + k);
      list->Add(std::to_string(round));
      map->Put("r" + std::to_string(round), static_cast<int>(k));
      max->Add(static_cast<int>(k * round));
    }
  }
  for (int64_t k = 0; k < 200; ++k) {
    backend->SetCurrentKey(k);
    EXPECT_EQ(count->Value(), 3 * k);
    EXPECT_EQ(list->Get(), (std::vector<std::string>{"0", "1", "2"}));
    EXPECT_EQ(map->Get("r1"), static_cast<int>(k));
    EXPECT_EQ(max->Get(), static_cast<int>(2 * k));
  }
  backend->SetCurrentKey(7);
  count->Clear();
  list->Update({});
  map->Remove("r0");
  EXPECT_FALSE(count->Value().has_value());
  EXPECT_TRUE(list->Get().empty());
  EXPECT_FALSE(map->Contains("r0"));
  EXPECT_TRUE(map->Contains("r2"));
  // Entries: 199 counts, 199 lists, 200 maps, 200 maxima.
  EXPECT_EQ(backend->TotalEntryCount(), 199u + 199u + 200u + 200u);
}

std::map<int, std::string> SnapshotAll(KeyedStateBackendBase& backend) {
  auto snapshot = backend.TakeSnapshot();
  std::map<int, std::string> out;
  for (int kg = kAll.start; kg <= kAll.end; ++kg) out[kg] = snapshot->KeyGroup(kg);
  return out;
}

/// The values of "sum" for keys [0, n) in a snapshot, read back through a heap backend. (The
/// bytes of two backends' snapshots differ in entry order, not in content.)
std::map<int64_t, int64_t> SumsIn(const std::map<int, std::string>& snapshot, int64_t n) {
  HeapKeyedStateBackend<int64_t> heap(kAll, kMaxParallelism);
  for (const auto& [kg, bytes] : snapshot) EXPECT_OK(heap.RestoreKeyGroup(kg, bytes));
  auto* sum = heap.GetState(ValueStateDescriptor<int64_t>("sum"));
  std::map<int64_t, int64_t> out;
  for (int64_t k = 0; k < n; ++k) {
    heap.SetCurrentKey(k);
    if (auto v = sum->Value()) out[k] = *v;
  }
  return out;
}

TEST_F(RocksDbBackendTest, SnapshotHoldsTheStateAtItsTimeWhileWritesGoOn) {
  auto backend = NewBackend(16);
  auto* sum = backend->GetState(ValueStateDescriptor<int64_t>("sum"));
  for (int64_t k = 0; k < 500; ++k) {
    backend->SetCurrentKey(k);
    sum->Update(k);
  }
  std::map<int64_t, int64_t> expected;
  for (int64_t k = 0; k < 500; ++k) expected[k] = k;

  auto snapshot = backend->TakeSnapshot();
  std::map<int, std::string> seen;
  std::thread reader([&] {
    for (int kg = kAll.start; kg <= kAll.end; ++kg) seen[kg] = snapshot->KeyGroup(kg);
  });
  for (int64_t k = 0; k < 1000; ++k) {  // updates and new keys, with evictions
    backend->SetCurrentKey(k);
    sum->Update(-k);
  }
  reader.join();
  EXPECT_EQ(SumsIn(seen, 1000), expected) << "exactly the state when it was taken";
  snapshot.reset();
  backend->SetCurrentKey(3);
  EXPECT_EQ(sum->Value(), -3);
}

TEST_F(RocksDbBackendTest, EachBackendRestoresTheOthersSnapshot) {
  HeapKeyedStateBackend<int64_t> heap(kAll, kMaxParallelism);
  auto* words = heap.GetListState(ListStateDescriptor<std::string>("words"));
  for (int64_t k = 0; k < 300; ++k) {
    heap.SetCurrentKey(k);
    words->Add("w" + std::to_string(k));
    words->Add("again");
  }
  const auto from_heap = SnapshotAll(heap);

  auto rocks = NewBackend();
  for (const auto& [kg, bytes] : from_heap) ASSERT_OK(rocks->RestoreKeyGroup(kg, bytes));
  auto* restored = rocks->GetListState(ListStateDescriptor<std::string>("words"));
  for (int64_t k = 0; k < 300; ++k) {
    rocks->SetCurrentKey(k);
    ASSERT_EQ(restored->Get(), (std::vector<std::string>{"w" + std::to_string(k), "again"}));
  }
  const auto from_rocks = SnapshotAll(*rocks);
  HeapKeyedStateBackend<int64_t> heap_again(kAll, kMaxParallelism);
  for (const auto& [kg, bytes] : from_rocks) ASSERT_OK(heap_again.RestoreKeyGroup(kg, bytes));
  auto* again = heap_again.GetListState(ListStateDescriptor<std::string>("words"));
  for (int64_t k = 0; k < 300; ++k) {
    heap_again.SetCurrentKey(k);
    ASSERT_EQ(again->Get(), (std::vector<std::string>{"w" + std::to_string(k), "again"}));
  }
  EXPECT_EQ(heap_again.TotalEntryCount(), 300u);
}

}  // namespace
}  // namespace sluice
