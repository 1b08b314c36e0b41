// Incremental RocksDB checkpoints through the operator snapshot path: the database's own
// files are stored, SST files an earlier completed checkpoint stored are referenced instead
// of copied, and the files restore — as the database itself, split into key groups
// (rescaling), or into the heap backend.

#include "sluice/checkpoint/native_keyed_state.h"

#include <sys/stat.h>

#include <filesystem>
#include <random>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/state/rocksdb_state_table.h"
#include "sluice/testing/test_util.h"
#include "sluice/timer/internal_timer_service.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using Timers = InternalTimerService<int64_t, VoidNamespace>;

constexpr int kMaxParallelism = 16;
const KeyGroupRange kAll{0, kMaxParallelism - 1};

class NativeSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto storage = CheckpointStorage::Create(dir_.Join("checkpoints"), "job");
    ASSERT_OK(storage);
    storage_ = std::move(*storage);
  }

  std::unique_ptr<RocksDbKeyedStateBackend<int64_t>> NewBackend(
      const KeyGroupRange& range, RestoredOperatorState* restored = nullptr) {
    auto log = std::make_shared<internal::StoredFileLog>("op-" + std::to_string(++instances_));
    auto store = OpenRestoredDatabase(dir_.Join("db-" + std::to_string(instances_)), range,
                                      restored, log.get());
    EXPECT_OK(store);
    RocksDbTableContext context;
    context.store = std::shared_ptr<internal::RocksDbStore>(std::move(*store));
    context.cache_entries = 1000;
    context.stored_files = std::move(log);
    return std::make_unique<RocksDbKeyedStateBackend<int64_t>>(range, kMaxParallelism, context);
  }

  /// Both parts of a checkpoint's snapshot, as a task takes it.
  OperatorSnapshot Checkpoint(KeyedStateBackendBase& backend, int64_t id) {
    PendingOperatorSnapshot pending;
    pending.checkpoint_id = id;
    pending.storage = storage_.get();
    internal::SnapshotKeyedOperator<Timers>(backend, nullptr, kMaxParallelism, &pending);
    auto snapshot = std::move(pending).Finish();
    EXPECT_OK(snapshot);
    return std::move(*snapshot);
  }

  /// The snapshot as a restore sees it (paths resolved against the job directory).
  OperatorSnapshot Loaded(OperatorSnapshot s) {
    ResolveNativePaths(storage_->job_dir(), &s);
    return s;
  }

  static std::set<std::string> SharedPaths(const OperatorSnapshot& s) {
    std::set<std::string> out;
    for (const StoredFile& f : s.native.files) {
      if (f.path.starts_with("shared/")) out.insert(f.path);
    }
    return out;
  }

  static void Fill(RocksDbKeyedStateBackend<int64_t>& backend, int64_t keys, int64_t factor) {
    auto* sum = backend.GetState(ValueStateDescriptor<int64_t>("sum"));
    for (int64_t k = 0; k < keys; ++k) {
      backend.SetCurrentKey(k);
      sum->Update(k * factor);
    }
  }

  /// Stored shared file -> its inode: a copy (written anew and renamed) gets a new one.
  std::map<std::string, ino_t> Inodes(const OperatorSnapshot& s) {
    std::map<std::string, ino_t> out;
    for (const std::string& path : SharedPaths(s)) {
      struct stat st {};
      EXPECT_EQ(::stat((storage_->job_dir() + "/" + path).c_str(), &st), 0) << path;
      out[path] = st.st_ino;
    }
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<CheckpointStorage> storage_;
  int instances_ = 0;
};

template <typename Backend>
std::map<int64_t, int64_t> SumsOf(Backend& backend, int64_t keys) {
  auto* sum = backend.GetState(ValueStateDescriptor<int64_t>("sum"));
  std::map<int64_t, int64_t> out;
  for (int64_t k = 0; k < keys; ++k) {
    const int kg = KeyGroupFor(k, kMaxParallelism);
    if (!backend.key_group_range().Contains(kg)) continue;
    backend.SetCurrentKey(k);
    if (auto v = sum->Value()) out[k] = *v;
  }
  return out;
}

std::map<int64_t, int64_t> Expected(int64_t keys, int64_t factor, const KeyGroupRange& range) {
  std::map<int64_t, int64_t> out;
  for (int64_t k = 0; k < keys; ++k) {
    if (range.Contains(KeyGroupFor(k, kMaxParallelism))) out[k] = k * factor;
  }
  return out;
}

TEST_F(NativeSnapshotTest, ASecondCheckpointReferencesTheSstFilesOfTheFirst) {
  auto backend = NewBackend(kAll);
  Fill(*backend, 20'000, 1);  // far beyond the cache: most is written to RocksDB
  ASSERT_OK(backend->database()->store->Flush());

  const OperatorSnapshot first = Checkpoint(*backend, 1);
  ASSERT_FALSE(SharedPaths(first).empty()) << "the flushed data is in SST files";
  const auto stored_first = Inodes(first);
  internal::NotifyKeyedCheckpointComplete(*backend, 1);

  // A small change: it lives in the write-ahead log, not in a new SST file.
  auto* sum = backend->GetState(ValueStateDescriptor<int64_t>("sum"));
  backend->SetCurrentKey(7);
  sum->Update(-7);
  const OperatorSnapshot second = Checkpoint(*backend, 2);
  EXPECT_EQ(Inodes(second), stored_first) << "the same files, none copied again";
  for (const StoredFile& f : second.native.files) {
    if (!f.path.starts_with("shared/")) {
      EXPECT_THAT(f.path, ::testing::StartsWith("chk-2/")) << "the small rest is per checkpoint";
    }
  }

  // Restored as the database itself: the state of checkpoint 2.
  RestoredOperatorState restored = RedistributeState({Loaded(second)}, 0, 1, kMaxParallelism);
  auto again = NewBackend(kAll, &restored);
  EXPECT_TRUE(restored.native.empty()) << "taken as the database";
  auto expected = Expected(20'000, 1, kAll);
  expected[7] = -7;
  EXPECT_EQ(SumsOf(*again, 20'000), expected);

  // Its files count as stored: its first checkpoint references them (it may add an SST
  // file of its own: RocksDB writes the replayed log out when it opens a database).
  const auto third = Inodes(Checkpoint(*again, 3));
  for (const auto& [path, inode] : stored_first) {
    ASSERT_TRUE(third.contains(path));
    EXPECT_EQ(third.at(path), inode) << path << " was copied again";
  }
}

TEST_F(NativeSnapshotTest, OnlyACompletedCheckpointsFilesAreReferenced) {
  auto backend = NewBackend(kAll);
  Fill(*backend, 5'000, 1);
  ASSERT_OK(backend->database()->store->Flush());
  const auto first = Inodes(Checkpoint(*backend, 1));
  // Checkpoint 1 never completes (it may be discarded with its files): 2 copies its own.
  const auto second = Inodes(Checkpoint(*backend, 2));
  ASSERT_FALSE(second.empty());
  for (const auto& [path, inode] : second) {
    if (first.contains(path)) {
      EXPECT_NE(first.at(path), inode) << path << " was referenced";
    }
  }
}

TEST_F(NativeSnapshotTest, RescaledAndHeapRestoresReadTheKeyGroupsOutOfTheFiles) {
  auto backend = NewBackend(kAll);
  Fill(*backend, 3'000, 3);
  const OperatorSnapshot snapshot = Loaded(Checkpoint(*backend, 1));

  // Two subtasks now: each takes its key groups out of the one database.
  for (int index = 0; index < 2; ++index) {
    RestoredOperatorState restored = RedistributeState({snapshot}, index, 2, kMaxParallelism);
    const KeyGroupRange range = KeyGroupRangeForOperator(index, 2, kMaxParallelism);
    auto part = NewBackend(range, &restored);
    EXPECT_TRUE(restored.native.empty());
    for (const auto& [kg, blob] : restored.key_groups) {
      ByteReader r(blob);
      std::string_view state, timers;
      ASSERT_TRUE(r.ReadBytes(&state) && r.ReadBytes(&timers));
      ASSERT_OK(part->RestoreKeyGroup(kg, state));
    }
    EXPECT_EQ(SumsOf(*part, 3'000), Expected(3'000, 3, range));
  }

  // The heap backend, via the same per-key-group path.
  RestoredOperatorState restored = RedistributeState({snapshot}, 0, 1, kMaxParallelism);
  ASSERT_OK(
      MaterializeNativeState(restored.native, kAll, dir_.Join("scratch"), &restored.key_groups));
  EXPECT_FALSE(std::filesystem::exists(dir_.Join("scratch")));
  HeapKeyedStateBackend<int64_t> heap(kAll, kMaxParallelism);
  for (const auto& [kg, blob] : restored.key_groups) {
    ByteReader r(blob);
    std::string_view state, timers;
    ASSERT_TRUE(r.ReadBytes(&state) && r.ReadBytes(&timers));
    ASSERT_OK(heap.RestoreKeyGroup(kg, state));
  }
  EXPECT_EQ(SumsOf(heap, 3'000), Expected(3'000, 3, kAll));
}

/// Puts `keys` keys into two states: "large", a string of `bytes` random letters each, and
/// "small", one int64 each.
template <typename Backend>
void FillTwoStates(Backend& backend, int64_t keys, size_t bytes) {
  auto* large = backend.GetState(ValueStateDescriptor<std::string>("large"));
  auto* small = backend.GetState(ValueStateDescriptor<int64_t>("small"));
  std::mt19937_64 random(7);
  for (int64_t k = 0; k < keys; ++k) {
    backend.SetCurrentKey(k);
    std::string value(bytes, ' ');
    for (char& c : value) c = static_cast<char>('a' + random() % 26);
    large->Update(value);
    small->Update(k);
  }
}

std::map<std::string, KeyedStateSize> SizesByName(const OperatorSnapshot& s) {
  std::map<std::string, KeyedStateSize> out;
  for (const KeyedStateSize& size : s.state_sizes) out[size.name] = size;
  return out;
}

TEST_F(NativeSnapshotTest, EachStatesSizeComesWithItsSnapshotForMetrics) {
  constexpr int64_t kKeys = 500;
  constexpr size_t kValueBytes = 1000;
  // On the heap: the bytes the snapshot serialized per state, which is each entry's key,
  // value and a few bytes of framing — and what walking every entry counts.
  HeapKeyedStateBackend<int64_t> heap(kAll, kMaxParallelism);
  FillTwoStates(heap, kKeys, kValueBytes);
  const size_t walked = heap.TotalSerializedBytes();
  auto heap_sizes = SizesByName(Checkpoint(heap, 1));
  ASSERT_EQ(heap_sizes.size(), 2u);
  EXPECT_EQ(heap_sizes["large"].entries, kKeys);
  EXPECT_EQ(heap_sizes["small"].entries, kKeys);
  EXPECT_GE(heap_sizes["large"].bytes, kKeys * kValueBytes);
  EXPECT_LE(heap_sizes["large"].bytes, kKeys * (kValueBytes + 32));
  EXPECT_GE(heap_sizes["small"].bytes, kKeys * 2);
  EXPECT_LE(heap_sizes["small"].bytes, kKeys * 32);
  // The walk counts entries; the snapshot also each key group's count (a byte here).
  EXPECT_EQ(heap_sizes["large"].bytes + heap_sizes["small"].bytes, walked + 2 * kMaxParallelism);

  // In RocksDB: its estimate once the snapshot reached it, of the order of the incompressible
  // values (what memtables hold RocksDB estimates from samples: within a factor of two here).
  auto rocksdb = NewBackend(kAll);
  FillTwoStates(*rocksdb, kKeys, kValueBytes);
  auto rocksdb_sizes = SizesByName(Checkpoint(*rocksdb, 1));
  ASSERT_EQ(rocksdb_sizes.size(), 2u);
  EXPECT_GE(rocksdb_sizes["large"].bytes, kKeys * kValueBytes / 2);
  EXPECT_LT(rocksdb_sizes["small"].bytes, rocksdb_sizes["large"].bytes);
  EXPECT_LE(rocksdb_sizes["large"].bytes, 2 * kKeys * kValueBytes);
  // Its estimate of the keys, taken once the snapshot's entries reached it (the write-back
  // cache held them all before).
  EXPECT_GE(rocksdb_sizes["large"].entries, kKeys / 2);
  EXPECT_LE(rocksdb_sizes["large"].entries, kKeys * 2);
}

TEST_F(NativeSnapshotTest, ARestoredDatabaseRefusesAStateWithOtherTypes) {
  auto backend = NewBackend(kAll);
  Fill(*backend, 100, 1);
  RestoredOperatorState restored =
      RedistributeState({Loaded(Checkpoint(*backend, 1))}, 0, 1, kMaxParallelism);
  auto again = NewBackend(kAll, &restored);
  try {
    again->GetState(ValueStateDescriptor<std::string>("sum"));
    FAIL() << "registered with other types";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("state 'sum' cannot be restored: the value was i64 and is now string"));
  }
}

TEST_F(NativeSnapshotTest, ADamagedStoredFileIsAClearError) {
  auto backend = NewBackend(kAll);
  Fill(*backend, 2'000, 1);
  ASSERT_OK(backend->database()->store->Flush());
  const OperatorSnapshot stored = Checkpoint(*backend, 1);
  ASSERT_FALSE(SharedPaths(stored).empty());
  const std::string victim = *SharedPaths(stored).begin();
  const OperatorSnapshot snapshot = Loaded(stored);
  testing::WriteFile(storage_->job_dir() + "/" + victim, "garbage");
  RestoredOperatorState restored = RedistributeState({snapshot}, 0, 1, kMaxParallelism);
  auto store = OpenRestoredDatabase(dir_.Join("damaged"), kAll, &restored, nullptr);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("is damaged"));
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: the model of what
/// RocksDB's crc32c file checksum is.
uint32_t ModelCrc32c(std::string_view bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

TEST(ModelCrc32cTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(ModelCrc32c("123456789"), 0xE3069283u);  // RFC 3720, B.4
}

TEST_F(NativeSnapshotTest, StoredFilesCarryTheirCrc32c) {
  auto backend = NewBackend(kAll);
  Fill(*backend, 20'000, 1);
  ASSERT_OK(backend->database()->store->Flush());
  const OperatorSnapshot snapshot = Checkpoint(*backend, 1);
  ASSERT_FALSE(SharedPaths(snapshot).empty());
  for (const StoredFile& f : snapshot.native.files) {
    const std::string bytes = testing::ReadFile(storage_->job_dir() + "/" + f.path);
    EXPECT_EQ(f.size, bytes.size()) << f.path;
    EXPECT_EQ(f.checksum, ModelCrc32c(bytes)) << f.path;
  }
  // The kind of checksum travels with the snapshot.
  auto read = DeserializeFromString<OperatorSnapshot>(SerializeToString(snapshot));
  ASSERT_OK(read);
  EXPECT_EQ(read->native.checksum, FileChecksum::kCrc32c);
}

TEST_F(NativeSnapshotTest, ASameSizeCorruptionIsFoundAndNotRestored) {
  auto backend = NewBackend(kAll);
  Fill(*backend, 2'000, 1);
  ASSERT_OK(backend->database()->store->Flush());
  const OperatorSnapshot stored = Checkpoint(*backend, 1);
  ASSERT_FALSE(SharedPaths(stored).empty());
  const std::string victim = storage_->job_dir() + "/" + *SharedPaths(stored).begin();
  std::string bytes = testing::ReadFile(victim);
  bytes[bytes.size() / 2] ^= 0x10;  // one bit, the size unchanged
  testing::WriteFile(victim, bytes);
  RestoredOperatorState restored = RedistributeState({Loaded(stored)}, 0, 1, kMaxParallelism);
  auto store = OpenRestoredDatabase(dir_.Join("damaged"), kAll, &restored, nullptr);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr("crc32c mismatch"));
  EXPECT_THAT(store.status().message(), HasSubstr(victim));
}

TEST_F(NativeSnapshotTest, ASnapshotWithWholeFileHashesOfVersion010StillRestores) {
  auto backend = NewBackend(kAll);
  Fill(*backend, 20'000, 2);
  ASSERT_OK(backend->database()->store->Flush());
  OperatorSnapshot old = Checkpoint(*backend, 1);
  internal::NotifyKeyedCheckpointComplete(*backend, 1);
  // As 0.1.0 wrote it: each file's whole-file hash, and no checksum kind at the end.
  for (StoredFile& f : old.native.files) {
    f.checksum = internal::Checksum(testing::ReadFile(storage_->job_dir() + "/" + f.path));
  }
  std::string bytes = SerializeToString(old);
  // The last fields came after 0.1.0: the checksum kind (one byte) and the broadcast states
  // (an empty map: one byte).
  bytes.resize(bytes.size() - 2);
  auto read = DeserializeFromString<OperatorSnapshot>(bytes);
  ASSERT_OK(read);
  ASSERT_EQ(read->native.checksum, FileChecksum::kWholeFileHash);

  RestoredOperatorState restored = RedistributeState({Loaded(*read)}, 0, 1, kMaxParallelism);
  auto again = NewBackend(kAll, &restored);
  EXPECT_EQ(SumsOf(*again, 20'000), Expected(20'000, 2, kAll));

  // Its next checkpoint stores every file anew, with crc32c, rather than mix kinds.
  const auto before = Inodes(old);
  const OperatorSnapshot next = Checkpoint(*again, 2);
  EXPECT_EQ(next.native.checksum, FileChecksum::kCrc32c);
  for (const auto& [path, inode] : Inodes(next)) {
    if (before.contains(path)) {
      EXPECT_NE(before.at(path), inode) << path << " was referenced";
    }
  }
  for (const StoredFile& f : next.native.files) {
    EXPECT_EQ(f.checksum, ModelCrc32c(testing::ReadFile(storage_->job_dir() + "/" + f.path)));
  }
}

}  // namespace
}  // namespace sluice
