// Persisted state type tags: named by the serializers (the same with every compiler), and
// snapshots written by Sluice 0.1.0, whose tags were typeid names, still restore on both
// backends (testdata/keyed_state_typeid_tags.hex holds one, as it wrote it).

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "serialization/test_record.pb.h"
#include "sluice/state/heap_keyed_state_backend.h"
#include "sluice/state/rocksdb_state_table.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

struct Reading {
  std::string sensor;
  double value = 0;
  std::vector<int32_t> flags;
};
SLUICE_SERIALIZABLE(Reading, sensor, value, flags);

enum class Level : uint8_t { kLow, kHigh };

TEST(SerializedTypeNameTest, NamesEachFormatIndependentlyOfTheCompiler) {
  EXPECT_EQ(SerializedTypeName<int64_t>(), "i64");
  EXPECT_EQ(SerializedTypeName<uint16_t>(), "u16");
  EXPECT_EQ(SerializedTypeName<bool>(), "bool");
  EXPECT_EQ(SerializedTypeName<double>(), "f64");
  EXPECT_EQ(SerializedTypeName<Level>(), "enum:u8");
  EXPECT_EQ(SerializedTypeName<std::string>(), "string");
  EXPECT_EQ((SerializedTypeName<std::pair<std::string, int32_t>>()), "pair<string,i32>");
  EXPECT_EQ((SerializedTypeName<std::tuple<int8_t, float, std::optional<std::string>>>()),
            "tuple<i8,f32,optional<string>>");
  EXPECT_EQ((SerializedTypeName<std::map<std::string, std::vector<int64_t>>>()),
            "map<string,list<i64>>");
  EXPECT_EQ((SerializedTypeName<absl::flat_hash_map<std::string, std::vector<int64_t>>>()),
            "map<string,list<i64>>");  // the same format as std::map
  EXPECT_EQ(SerializedTypeName<Reading>(), "Reading{sensor:string,value:f64,flags:list<i32>}");
  EXPECT_EQ(SerializedTypeName<sluice_test::TestEvent>(), "proto:sluice_test.TestEvent");
  EXPECT_EQ(SerializedTypeName<TtlValue<Reading>>(),
            "ttl<Reading{sensor:string,value:f64,flags:list<i32>}>");
}

TEST(SerializedTypeNameTest, AStateTagNamesKeyNamespaceAndValue) {
  EXPECT_EQ((StateTypeTag<std::string, VoidNamespace, int64_t>()),
            "key=string;namespace=void;value=i64");
  EXPECT_EQ((StateTypeTag<int64_t, int64_t, std::vector<std::string>>()),
            "key=i64;namespace=i64;value=list<string>");
}

constexpr int kMaxParallelism = 8;
const KeyGroupRange kAll{0, kMaxParallelism - 1};
constexpr int64_t kWindow = 1000;

/// The states the fixture holds: registered by the test that restores them, and by the
/// writer that made the fixture (with Sluice 0.1.0).
template <typename Backend>
struct FixtureStates {
  explicit FixtureStates(Backend& b) {
    count = b.GetState(ValueStateDescriptor<int64_t>("count"));
    words = b.GetListState(ListStateDescriptor<std::string>("words"));
    seen = b.GetMapState(MapStateDescriptor<std::string, int32_t>("seen"));
    per_window = b.template GetState<int64_t>(ValueStateDescriptor<double>("per_window"));
    ValueStateDescriptor<std::pair<int32_t, std::optional<std::string>>> ttl_d("with_ttl");
    ttl_d.EnableTimeToLive(StateTtlConfig::Of(absl::Hours(24 * 365 * 100)));
    with_ttl = b.GetUserState(ttl_d);
  }
  ValueState<int64_t>* count;
  ListState<std::string>* words;
  MapState<std::string, int32_t>* seen;
  internal::ValueStateHandle<Backend, int64_t, double>* per_window;
  ValueState<std::pair<int32_t, std::optional<std::string>>>* with_ttl;
};

/// What the fixture's writer put in, for keys a, b and c.
template <typename Backend>
void ExpectFixtureContents(Backend& b) {
  FixtureStates<Backend> s(b);
  for (std::string key : {"a", "b", "c"}) {
    SCOPED_TRACE(key);
    b.SetCurrentKey(key);
    EXPECT_EQ(s.count->Value(), static_cast<int64_t>(key[0]));
    EXPECT_EQ(s.words->Get(), (std::vector<std::string>{key + "1", key + "2"}));
    EXPECT_EQ(s.seen->Entries(), (std::vector<std::pair<std::string, int32_t>>{{key, 7}}));
    s.per_window->SetCurrentNamespace(kWindow);
    EXPECT_EQ(s.per_window->Value(), 0.5);
    EXPECT_EQ(s.with_ttl->Value(), (std::pair<int32_t, std::optional<std::string>>{3, key}));
  }
  EXPECT_EQ(b.TotalEntryCount(), 15u);
}

/// Key group -> bytes, from the fixture file.
std::map<int, std::string> ReadFixture() {
  std::ifstream in(std::string(SLUICE_ENGINE_TESTDATA) + "/keyed_state_typeid_tags.hex");
  EXPECT_TRUE(in.good());
  std::map<int, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    int kg;
    std::string hex;
    fields >> kg >> hex;
    out[kg] = absl::HexStringToBytes(hex);
  }
  EXPECT_EQ(out.size(), static_cast<size_t>(kMaxParallelism));
  return out;
}

TEST(LegacyTypeTagTest, TheHeapBackendRestoresASnapshotOfSluice010) {
  const auto fixture = ReadFixture();
  for (const auto& [kg, bytes] : fixture) {
    EXPECT_NE(bytes.find("StateTable"), std::string::npos) << "the fixture has typeid tags";
  }
  HeapKeyedStateBackend<std::string> heap(kAll, kMaxParallelism);
  for (const auto& [kg, bytes] : fixture) ASSERT_OK(heap.RestoreKeyGroup(kg, bytes));
  ExpectFixtureContents(heap);

  // Its next snapshot carries the portable tags.
  auto snapshot = heap.TakeSnapshot();
  std::string all;
  for (int kg = 0; kg < kMaxParallelism; ++kg) all += snapshot->KeyGroup(kg);
  EXPECT_EQ(all.find("StateTable"), std::string::npos);
  EXPECT_NE(all.find("key=string;namespace=void;value=i64"), std::string::npos);
}

TEST(LegacyTypeTagTest, ALegacyTagStillRefusesOtherTypes) {
  HeapKeyedStateBackend<std::string> heap(kAll, kMaxParallelism);
  for (const auto& [kg, bytes] : ReadFixture()) ASSERT_OK(heap.RestoreKeyGroup(kg, bytes));
  try {
    heap.GetState(ValueStateDescriptor<int32_t>("count"));  // saved as int64_t
    FAIL() << "state restored with other types";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("state 'count' cannot be restored: it was saved by "
                                         "Sluice 0.1.0 with other types"),
              std::string::npos)
        << e.what();
  }
}

class RocksDbLegacyTagTest : public ::testing::Test {
 protected:
  RocksDbKeyedStateBackend<std::string> Backend(std::shared_ptr<internal::RocksDbStore> store) {
    RocksDbTableContext context;
    context.store = std::move(store);
    return RocksDbKeyedStateBackend<std::string>(kAll, kMaxParallelism, context);
  }
  std::shared_ptr<internal::RocksDbStore> NewStore() {
    auto store = internal::RocksDbStore::Create(dir_.Join("db" + std::to_string(++stores_)));
    EXPECT_OK(store);
    return std::shared_ptr<internal::RocksDbStore>(std::move(*store));
  }
  testing::TempDir dir_;
  int stores_ = 0;
};

TEST_F(RocksDbLegacyTagTest, RestoresASnapshotOfSluice010) {
  auto rocks = Backend(NewStore());
  for (const auto& [kg, bytes] : ReadFixture()) ASSERT_OK(rocks.RestoreKeyGroup(kg, bytes));
  ExpectFixtureContents(rocks);
}

TEST_F(RocksDbLegacyTagTest, ADatabaseThatRecordedTheLegacyTagOpensAndIsRetagged) {
  // As a native checkpoint of Sluice 0.1.0 left it: the typeid tag recorded with the state.
  auto store = NewStore();
  const std::string legacy = LegacyStateTypeTag<std::string, VoidNamespace, int64_t>();
  ASSERT_OK(store->ColumnFamily("count", legacy));
  auto rocks = Backend(store);
  auto* count = rocks.GetState(ValueStateDescriptor<int64_t>("count"));
  rocks.SetCurrentKey("a");
  count->Update(41);
  auto portable = store->PortableKeyGroup(KeyGroupFor(std::string("a"), kMaxParallelism));
  ASSERT_OK(portable);
  EXPECT_NE(portable->find("key=string;namespace=void;value=i64"), std::string::npos);
  EXPECT_EQ(portable->find(legacy), std::string::npos);

  // Other types are still refused, legacy tag or not.
  auto other = NewStore();
  ASSERT_OK(other->ColumnFamily("count", legacy));
  auto wrong = Backend(other);
  EXPECT_THROW(wrong.GetState(ValueStateDescriptor<int32_t>("count")), std::runtime_error);
}

}  // namespace
}  // namespace sluice
