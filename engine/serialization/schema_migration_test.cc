#include "sluice/serialization/schema_migration.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serialization/test_record.pb.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/heap_keyed_state_backend.h"
#include "sluice/state/rocksdb_state_table.h"
#include "sluice/state/state_migration.h"
#include "sluice/state/state_table.h"
#include "sluice/state/state_ttl.h"
#include "sluice/state/void_namespace.h"
#include "sluice/testing/test_util.h"

// Two versions of a job's state types, as a job's old and new builds declare them.
namespace migration_v1 {
struct Address {
  std::string city;
  int32_t zip = 0;
};
SLUICE_SERIALIZABLE(Address, city, zip)

struct Profile {
  std::string name;
  int64_t visits = 0;
  std::string obsolete;
  Address address;
  std::vector<Address> history;
};
SLUICE_SERIALIZABLE(Profile, name, visits, obsolete, address, history)

struct Retyped {
  int64_t visits = 0;
};
SLUICE_SERIALIZABLE(Retyped, visits)
}  // namespace migration_v1

namespace migration_v2 {
struct Address {
  int32_t zip = 0;  // reordered
  std::string city;
  std::optional<std::string> country;  // added
};
SLUICE_SERIALIZABLE(Address, zip, city, country)

struct Profile {
  int64_t visits = 0;  // reordered
  std::string name;
  double score = 0;  // added
  std::vector<std::string> tags;
  Address address;  // evolved
  std::vector<Address> history;
  // `obsolete` removed
};
SLUICE_SERIALIZABLE(Profile, visits, name, score, tags, address, history)

struct Retyped {
  std::string visits;  // was i64
};
SLUICE_SERIALIZABLE(Retyped, visits)
}  // namespace migration_v2

// A type with its own serializer whose format changed: version 2 added a label.
namespace versioned_v1 {
struct Geo {
  double lat = 0, lon = 0;
};
}  // namespace versioned_v1
namespace versioned_v2 {
struct Geo {
  double lat = 0, lon = 0;
  std::string label;
};
}  // namespace versioned_v2

template <>
struct sluice::Serializer<versioned_v1::Geo> : sluice::VersionedSerializer<versioned_v1::Geo> {
  static constexpr int kVersion = 1;
  static constexpr const char* kName = "Geo";
  static void WriteCurrent(const versioned_v1::Geo& g, ByteWriter& w) {
    w.WriteRaw(g.lat);
    w.WriteRaw(g.lon);
  }
  static bool ReadVersion(int, ByteReader& r, versioned_v1::Geo* g) {
    return r.ReadRaw(&g->lat) && r.ReadRaw(&g->lon);
  }
};
template <>
struct sluice::Serializer<versioned_v2::Geo> : sluice::VersionedSerializer<versioned_v2::Geo> {
  static constexpr int kVersion = 2;
  static constexpr const char* kName = "Geo";
  static void WriteCurrent(const versioned_v2::Geo& g, ByteWriter& w) {
    w.WriteRaw(g.lat);
    w.WriteRaw(g.lon);
    w.WriteBytes(g.label);
  }
  static bool ReadVersion(int version, ByteReader& r, versioned_v2::Geo* g) {
    std::string_view label;
    if (!r.ReadRaw(&g->lat) || !r.ReadRaw(&g->lon)) return false;
    if (version == 1) return true;  // no label yet
    if (!r.ReadBytes(&label)) return false;
    g->label = std::string(label);
    return true;
  }
};

namespace sluice {
namespace {

using ::testing::HasSubstr;

TypeSchema Schema(const std::string& name) {
  auto s = TypeSchema::Parse(name);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : TypeSchema();
}

template <typename From, typename To>
absl::StatusOr<SchemaMigration> PlanFor() {
  return SchemaMigration::Plan(Schema(SerializedTypeName<From>()),
                               Schema(SerializedTypeName<To>()));
}

/// `value` as From, migrated and read back as To.
template <typename From, typename To>
To Migrated(const From& value, int64_t now = 0) {
  auto plan = PlanFor<From, To>();
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok()) return To{};
  const std::string bytes = SerializeToString(value);
  ByteReader in(bytes);
  std::string out;
  ByteWriter w(&out);
  EXPECT_TRUE(plan->Transcode(in, w, now));
  EXPECT_TRUE(in.AtEnd());
  auto read = DeserializeFromString<To>(out);
  EXPECT_TRUE(read.ok()) << read.status();
  return read.ok() ? *read : To{};
}

migration_v1::Profile OldProfile() {
  migration_v1::Profile p;
  p.name = "ada";
  p.visits = 42;
  p.obsolete = "dropped on the way";
  p.address = {"Paris", 75001};
  p.history = {{"Lyon", 69001}, {"Nice", 6000}};
  return p;
}

TEST(SchemaMigrationTest, FieldsMatchByNameAddedOnesDefaultRemovedOnesDrop) {
  const migration_v2::Profile p =
      Migrated<migration_v1::Profile, migration_v2::Profile>(OldProfile());
  migration_v2::Profile expected;
  expected.visits = 42;
  expected.name = "ada";
  expected.score = 0;
  expected.tags = {};
  expected.address = {75001, "Paris", std::nullopt};
  expected.history = {{69001, "Lyon", std::nullopt}, {6000, "Nice", std::nullopt}};
  EXPECT_EQ(p, expected);
}

TEST(SchemaMigrationTest, EvolvesStructsInsideContainers) {
  std::map<std::string, migration_v1::Address> old = {{"home", {"Oslo", 150}}};
  auto migrated = Migrated<std::map<std::string, migration_v1::Address>,
                           std::map<std::string, migration_v2::Address>>(old);
  EXPECT_EQ(migrated,
            (std::map<std::string, migration_v2::Address>{{"home", {150, "Oslo", std::nullopt}}}));
  std::optional<migration_v1::Address> some = migration_v1::Address{"Rome", 118};
  EXPECT_EQ(
      (Migrated<std::optional<migration_v1::Address>, std::optional<migration_v2::Address>>(some)),
      (std::optional<migration_v2::Address>(migration_v2::Address{118, "Rome", {}})));
  EXPECT_EQ((Migrated<std::optional<migration_v1::Address>, std::optional<migration_v2::Address>>(
                std::nullopt)),
            std::nullopt);
}

TEST(SchemaMigrationTest, ATtlAddedStampsTheRestoreTimeAndARemovedOneIsDropped) {
  const auto added = Migrated<int64_t, TtlValue<int64_t>>(7, /*now=*/123'456);
  EXPECT_EQ(added.value, 7);
  EXPECT_EQ(added.last_access, 123'456);
  TtlValue<migration_v1::Address> old{{"Bern", 3000}, 99};
  const auto dropped = Migrated<TtlValue<migration_v1::Address>, migration_v2::Address>(old);
  EXPECT_EQ(dropped, (migration_v2::Address{3000, "Bern", {}}));
}

TEST(SchemaMigrationTest, ATypeChangeIsRefusedNamingTheFieldAndBothTypes) {
  auto plan = PlanFor<migration_v1::Retyped, migration_v2::Retyped>();
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(plan.status().message(), HasSubstr("field 'visits' was i64 and is now string"));

  auto nested =
      SchemaMigration::Plan(Schema("P{address:A{zip:i32}}"), Schema("P{address:A{zip:i64}}"));
  ASSERT_FALSE(nested.ok());
  EXPECT_THAT(nested.status().message(), HasSubstr("field 'address.zip' was i32 and is now i64"));

  auto map_key = PlanFor<std::map<std::string, int32_t>, std::map<int64_t, int32_t>>();
  ASSERT_FALSE(map_key.ok());
  EXPECT_THAT(map_key.status().message(), HasSubstr("{key}' was string and is now i64"));

  auto top = PlanFor<int32_t, int64_t>();
  ASSERT_FALSE(top.ok());
  EXPECT_THAT(top.status().message(), HasSubstr("the value was i32 and is now i64"));
}

TEST(SchemaMigrationTest, DefaultsAreWhatTheSerializersWriteForDefaultValues) {
  EXPECT_EQ(*DefaultValueBytes(Schema(SerializedTypeName<migration_v2::Profile>())),
            SerializeToString(migration_v2::Profile{}));
  EXPECT_EQ(*DefaultValueBytes(Schema(SerializedTypeName<TtlValue<std::vector<double>>>())),
            SerializeToString(TtlValue<std::vector<double>>{}));
  EXPECT_FALSE(DefaultValueBytes(Schema("custom")).ok());
}

TEST(SchemaMigrationTest, AnAddedFieldWithACustomSerializerIsRefused) {
  auto plan = SchemaMigration::Plan(Schema("P{a:i32}"), Schema("P{a:i32,b:custom}"));
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("field 'b' was added"));
}

TEST(StateMigrationTest, RewritesEveryEntryOfAKeyGroupAndRefusesAKeyChange) {
  // Entries as a state table writes them: count, then key and value of each.
  std::string body;
  ByteWriter w(&body);
  w.WriteVarint(2);
  Serializer<std::string>::Write("k1", w);
  Serializer<migration_v1::Profile>::Write(OldProfile(), w);
  Serializer<std::string>::Write("k2", w);
  Serializer<migration_v1::Profile>::Write(migration_v1::Profile{}, w);
  const std::string from = StateTypeTag<std::string, VoidNamespace, migration_v1::Profile>();
  const std::string to = StateTypeTag<std::string, VoidNamespace, migration_v2::Profile>();
  auto plan = StateMigration::Plan(from, to);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto entries = plan->Entries(body, 0);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ByteReader in(*entries);
  uint64_t n = 0;
  ASSERT_TRUE(in.ReadVarint(&n));
  ASSERT_EQ(n, 2u);
  std::string key;
  migration_v2::Profile value;
  ASSERT_TRUE(Serializer<std::string>::Read(in, &key) &&
              Serializer<migration_v2::Profile>::Read(in, &value));
  EXPECT_EQ(key, "k1");
  EXPECT_EQ(value.visits, 42);
  EXPECT_EQ(value.address.city, "Paris");
  ASSERT_TRUE(Serializer<std::string>::Read(in, &key) &&
              Serializer<migration_v2::Profile>::Read(in, &value));
  EXPECT_EQ(key, "k2");
  EXPECT_TRUE(in.AtEnd());

  auto rekeyed =
      StateMigration::Plan(from, StateTypeTag<int64_t, VoidNamespace, migration_v1::Profile>());
  ASSERT_FALSE(rekeyed.ok());
  EXPECT_THAT(rekeyed.status().message(), HasSubstr("key type was string and is now i64"));
  EXPECT_FALSE(plan->Entries(body.substr(0, body.size() - 1), 0).ok());
}

TEST(VersionedSerializerTest, ANewerVersionReadsWhatAnOlderOneWrote) {
  EXPECT_EQ(SerializedTypeName<versioned_v1::Geo>(), "versioned:Geo");
  EXPECT_EQ(SerializedTypeName<versioned_v2::Geo>(), "versioned:Geo");
  const std::string old_bytes = SerializeToString(versioned_v1::Geo{48.85, 2.35});
  auto read = DeserializeFromString<versioned_v2::Geo>(old_bytes);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->lat, 48.85);
  EXPECT_EQ(read->lon, 2.35);
  EXPECT_EQ(read->label, "");
  // A version the reader does not know (a newer job's state in an older one) is refused.
  EXPECT_FALSE(
      DeserializeFromString<versioned_v1::Geo>(SerializeToString(versioned_v2::Geo{1, 2, "x"}))
          .ok());
  // Tools walk it without the type.
  ByteReader in(old_bytes);
  std::string shown;
  ASSERT_TRUE(Schema("versioned:Geo").Render(in, &shown));
  EXPECT_EQ(shown, "\"<versioned:Geo v1, 16 bytes>\"");
  EXPECT_TRUE(in.AtEnd());
  // Inside a struct that changed around it, it is copied as it is.
  auto plan = SchemaMigration::Plan(Schema("P{at:versioned:Geo,n:i32}"),
                                    Schema("P{n:i32,at:versioned:Geo}"));
  EXPECT_TRUE(plan.ok()) << plan.status();
}

constexpr int kMaxParallelism = 16;
constexpr KeyGroupRange kAll{0, kMaxParallelism - 1};

/// Every key group of a heap backend holding the old version's profiles of `users`.
std::map<int, std::string> OldSnapshot(const std::vector<std::string>& users) {
  HeapKeyedStateBackend<std::string> old(kAll, kMaxParallelism);
  auto* profile = old.GetState(ValueStateDescriptor<migration_v1::Profile>("profile"));
  for (size_t i = 0; i < users.size(); ++i) {
    old.SetCurrentKey(users[i]);
    migration_v1::Profile p = OldProfile();
    p.visits = static_cast<int64_t>(i);
    profile->Update(p);
  }
  auto snapshot = old.TakeSnapshot();
  std::map<int, std::string> out;
  for (int kg = 0; kg < kMaxParallelism; ++kg) out[kg] = snapshot->KeyGroup(kg);
  return out;
}

template <typename Backend>
void ExpectNewProfiles(Backend& backend, const std::vector<std::string>& users) {
  auto* profile = backend.GetState(ValueStateDescriptor<migration_v2::Profile>("profile"));
  for (size_t i = 0; i < users.size(); ++i) {
    backend.SetCurrentKey(users[i]);
    migration_v2::Profile p = profile->Value().value_or(migration_v2::Profile{});
    EXPECT_TRUE(profile->Value().has_value()) << users[i];
    EXPECT_EQ(p.visits, static_cast<int64_t>(i));
    EXPECT_EQ(p.name, "ada");
    EXPECT_EQ(p.address.city, "Paris");
    EXPECT_EQ(p.history.size(), 2u);
  }
}

TEST(StateEvolutionTest, TheHeapBackendRestoresTheOldVersionsSnapshotIntoTheNewStruct) {
  const std::vector<std::string> users = {"u1", "u2", "u3", "u4", "u5"};
  HeapKeyedStateBackend<std::string> heap(kAll, kMaxParallelism);
  for (const auto& [kg, bytes] : OldSnapshot(users)) ASSERT_OK(heap.RestoreKeyGroup(kg, bytes));
  ExpectNewProfiles(heap, users);
  // Its next snapshot is in the new format.
  auto snapshot = heap.TakeSnapshot();
  std::string all;
  for (int kg = 0; kg < kMaxParallelism; ++kg) all += snapshot->KeyGroup(kg);
  EXPECT_NE(all.find(SerializedTypeName<migration_v2::Profile>()), std::string::npos);
  EXPECT_EQ(all.find("obsolete"), std::string::npos);
}

TEST(StateEvolutionTest, AnIncompatibleChangeFailsTheRestoreNamingStateFieldAndTypes) {
  HeapKeyedStateBackend<std::string> old(kAll, kMaxParallelism);
  old.SetCurrentKey("u");
  old.GetState(ValueStateDescriptor<migration_v1::Retyped>("counts"))->Update({3});
  auto snapshot = old.TakeSnapshot();
  HeapKeyedStateBackend<std::string> heap(kAll, kMaxParallelism);
  for (int kg = 0; kg < kMaxParallelism; ++kg)
    ASSERT_OK(heap.RestoreKeyGroup(kg, snapshot->KeyGroup(kg)));
  try {
    heap.GetState(ValueStateDescriptor<migration_v2::Retyped>("counts"));
    FAIL() << "restored a field whose type changed";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("state 'counts' cannot be restored: field 'visits' was i64 "
                                    "and is now string"));
  }
}

TEST(StateEvolutionTest, AVersionedSerializersOldValuesRestoreOnTheHeap) {
  HeapKeyedStateBackend<std::string> old(kAll, kMaxParallelism);
  old.SetCurrentKey("paris");
  old.GetState(ValueStateDescriptor<versioned_v1::Geo>("where"))->Update({48.85, 2.35});
  auto snapshot = old.TakeSnapshot();
  HeapKeyedStateBackend<std::string> heap(kAll, kMaxParallelism);
  for (int kg = 0; kg < kMaxParallelism; ++kg) {
    ASSERT_OK(heap.RestoreKeyGroup(kg, snapshot->KeyGroup(kg)));
  }
  auto* where = heap.GetState(ValueStateDescriptor<versioned_v2::Geo>("where"));
  heap.SetCurrentKey("paris");
  ASSERT_TRUE(where->Value().has_value());
  EXPECT_EQ(where->Value()->lat, 48.85);
  EXPECT_EQ(where->Value()->label, "");
}

// Protobuf state evolves by protobuf's rules: a field the reader does not know is kept as an
// unknown field, one the writer did not know reads as its default.
TEST(StateEvolutionTest, ProtobufStateFollowsProtobufsRules) {
  sluice_test::TestEvent e;
  e.set_user("ada");
  e.add_labels("x");
  std::string newer;  // as a newer version of the message with a field 9 writes it
  ASSERT_TRUE(e.SerializeToString(&newer));
  newer.push_back(static_cast<char>(9 << 3));  // field 9, varint
  newer.push_back(static_cast<char>(5));
  // Entries of a state "events": one, key "k".
  std::string body;
  ByteWriter w(&body);
  w.WriteVarint(1);
  Serializer<std::string>::Write("k", w);
  w.WriteBytes(newer);
  std::string part;
  ByteWriter pw(&part);
  pw.WriteVarint(1);
  pw.WriteBytes("events");
  pw.WriteBytes(StateTypeTag<std::string, VoidNamespace, sluice_test::TestEvent>());
  pw.WriteBytes(body);
  HeapKeyedStateBackend<std::string> heap(kAll, kMaxParallelism);
  ASSERT_OK(heap.RestoreKeyGroup(KeyGroupFor(std::string("k"), kMaxParallelism), part));
  auto* events = heap.GetState(ValueStateDescriptor<sluice_test::TestEvent>("events"));
  heap.SetCurrentKey("k");
  ASSERT_TRUE(events->Value().has_value());
  EXPECT_EQ(events->Value()->user(), "ada");
  EXPECT_EQ(events->Value()->amount(), 0) << "unknown to the writer: the default";
  std::string again;
  ASSERT_TRUE(events->Value()->SerializeToString(&again));
  EXPECT_EQ(again, newer) << "the unknown field 9 is kept";
}

class RocksDbStateEvolutionTest : public ::testing::Test {
 protected:
  std::shared_ptr<internal::RocksDbStore> NewStore() {
    auto store = internal::RocksDbStore::Create(dir_.Join("db" + std::to_string(++stores_)));
    EXPECT_OK(store);
    return std::shared_ptr<internal::RocksDbStore>(std::move(*store));
  }
  static RocksDbKeyedStateBackend<std::string> Backend(std::shared_ptr<internal::RocksDbStore> s) {
    RocksDbTableContext context;
    context.store = std::move(s);
    return RocksDbKeyedStateBackend<std::string>(kAll, kMaxParallelism, context);
  }
  testing::TempDir dir_;
  int stores_ = 0;
};

TEST_F(RocksDbStateEvolutionTest, RestoresTheOldVersionsPortableSnapshot) {
  const std::vector<std::string> users = {"a", "b", "c"};
  auto rocks = Backend(NewStore());
  for (const auto& [kg, bytes] : OldSnapshot(users)) ASSERT_OK(rocks.RestoreKeyGroup(kg, bytes));
  ExpectNewProfiles(rocks, users);
}

TEST_F(RocksDbStateEvolutionTest, MigratesADatabaseItsOldVersionWrote) {
  // As a native (incremental) checkpoint of the old version leaves it: its entries in
  // RocksDB, with the old types recorded.
  const std::vector<std::string> users = {"a", "b", "c", "d"};
  auto store = NewStore();
  auto cf = store->ColumnFamily("profile",
                                StateTypeTag<std::string, VoidNamespace, migration_v1::Profile>());
  ASSERT_OK(cf);
  for (size_t i = 0; i < users.size(); ++i) {
    migration_v1::Profile p = OldProfile();
    p.visits = static_cast<int64_t>(i);
    const int kg = KeyGroupFor(users[i], kMaxParallelism);
    ASSERT_OK(store->Put(*cf,
                         internal::RocksDbStore::KeyGroupPrefix(kg) + SerializeToString(users[i]),
                         SerializeToString(p)));
  }
  auto rocks = Backend(store);
  ExpectNewProfiles(rocks, users);
  auto portable = store->PortableKeyGroup(KeyGroupFor(std::string("a"), kMaxParallelism));
  ASSERT_OK(portable);
  EXPECT_NE(portable->find(SerializedTypeName<migration_v2::Profile>()), std::string::npos);

  // A versioned serializer's old values in the database are read as they are loaded.
  auto geo_store = NewStore();
  auto geo_cf = geo_store->ColumnFamily(
      "where", StateTypeTag<std::string, VoidNamespace, versioned_v1::Geo>());
  ASSERT_OK(geo_cf);
  const int kg = KeyGroupFor(std::string("paris"), kMaxParallelism);
  ASSERT_OK(geo_store->Put(
      *geo_cf, internal::RocksDbStore::KeyGroupPrefix(kg) + SerializeToString(std::string("paris")),
      SerializeToString(versioned_v1::Geo{48.85, 2.35})));
  auto geo = Backend(geo_store);
  auto* where = geo.GetState(ValueStateDescriptor<versioned_v2::Geo>("where"));
  geo.SetCurrentKey("paris");
  ASSERT_TRUE(where->Value().has_value());
  EXPECT_EQ(where->Value()->lon, 2.35);

  // A type change is refused, and the database keeps its old types.
  auto other = NewStore();
  ASSERT_OK(other->ColumnFamily("counts",
                                StateTypeTag<std::string, VoidNamespace, migration_v1::Retyped>()));
  auto wrong = Backend(other);
  try {
    wrong.GetState(ValueStateDescriptor<migration_v2::Retyped>("counts"));
    FAIL() << "restored a field whose type changed";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("field 'visits' was i64 and is now string"));
  }
}

}  // namespace
}  // namespace sluice
