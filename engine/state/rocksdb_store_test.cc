#include "sluice/state/internal/rocksdb_store.h"

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/testing/test_util.h"

namespace sluice::internal {
namespace {

std::string Key(int key_group, const std::string& rest) {
  return RocksDbStore::KeyGroupPrefix(key_group) + rest;
}

std::map<std::string, std::string> KeyGroupContents(RocksDbStore& s, int cf, int key_group) {
  std::map<std::string, std::string> out;
  EXPECT_OK(s.ForEachInKeyGroup(cf, key_group, [&](std::string_view k, std::string_view v) {
    out[std::string(k)] = std::string(v);
  }));
  return out;
}

TEST(RocksDbStoreTest, StatesAreColumnFamiliesAndKeyGroupsAreRanges) {
  testing::TempDir dir;
  auto store = RocksDbStore::Create(dir.Join("db"));
  ASSERT_OK(store);
  auto counts = (*store)->ColumnFamily("counts");
  auto sums = (*store)->ColumnFamily("sums");
  ASSERT_OK(counts);
  ASSERT_OK(sums);
  EXPECT_NE(*counts, *sums);
  EXPECT_EQ(*(*store)->ColumnFamily("counts"), *counts) << "asking again gives the same family";
  ASSERT_OK((*store)->Put(*counts, Key(1, "a"), "1"));
  ASSERT_OK((*store)->Put(*counts, Key(1, "b"), "2"));
  ASSERT_OK((*store)->Put(*counts, Key(2, "a"), "3"));
  ASSERT_OK((*store)->Put(*counts, Key(255, "x"), "4"));
  ASSERT_OK((*store)->Put(*counts, Key(256, "y"), "5"));  // the prefix's high byte counts
  ASSERT_OK((*store)->Put(*sums, Key(1, "a"), "other state"));
  std::string v;
  ASSERT_TRUE(*(*store)->Get(*counts, Key(1, "a"), &v));
  EXPECT_EQ(v, "1");
  ASSERT_OK((*store)->Delete(*counts, Key(1, "a")));
  EXPECT_FALSE(*(*store)->Get(*counts, Key(1, "a"), &v));
  EXPECT_EQ(KeyGroupContents(**store, *counts, 1),
            (std::map<std::string, std::string>{{Key(1, "b"), "2"}}));
  EXPECT_EQ(KeyGroupContents(**store, *counts, 255).size(), 1u);
  EXPECT_EQ(KeyGroupContents(**store, *counts, 256).size(), 1u);
  EXPECT_EQ(KeyGroupContents(**store, *sums, 1).size(), 1u);
  const std::string path = (*store)->dir();
  store->reset();
  EXPECT_FALSE(std::filesystem::exists(path)) << "a closed store leaves nothing behind";
}

TEST(RocksDbStoreTest, SnapshotIsAConsistentViewWhileWritesGoOn) {
  testing::TempDir dir;
  auto store = *RocksDbStore::Create(dir.Join("db"));
  const int cf = *store->ColumnFamily("s");
  for (int i = 0; i < 1000; ++i) ASSERT_OK(store->Put(cf, Key(i % 4, std::to_string(i)), "old"));
  auto snapshot = store->TakeSnapshot();
  std::map<std::string, std::string> seen;
  std::thread reader([&] {
    for (int kg = 0; kg < 4; ++kg) {
      EXPECT_OK(snapshot->ForEachInKeyGroup(cf, kg, [&](std::string_view k, std::string_view v) {
        seen[std::string(k)] = std::string(v);
      }));
    }
  });
  for (int i = 0; i < 1000; ++i) ASSERT_OK(store->Put(cf, Key(i % 4, std::to_string(i)), "new"));
  for (int i = 1000; i < 1500; ++i) ASSERT_OK(store->Put(cf, Key(i % 4, std::to_string(i)), "x"));
  reader.join();
  ASSERT_EQ(seen.size(), 1000u);
  for (const auto& [k, v] : seen) EXPECT_EQ(v, "old");
}

std::set<std::string> SharedFiles(const std::vector<StoredFile>& files) {
  std::set<std::string> out;
  for (const auto& f : files) {
    if (f.path.rfind("shared/", 0) == 0) out.insert(f.path);
  }
  return out;
}

TEST(RocksDbStoreTest, IncrementalCheckpointUploadsOnlyNewSstFilesAndRestores) {
  testing::TempDir dir;
  auto storage = *CheckpointStorage::Create(dir.Join("checkpoints"), "job");
  auto store = *RocksDbStore::Create(dir.Join("db"));
  const int cf = *store->ColumnFamily("s");
  for (int i = 0; i < 5000; ++i) ASSERT_OK(store->Put(cf, Key(i % 8, std::to_string(i)), "v1"));
  ASSERT_OK(store->Flush());

  ASSERT_OK(store->CreateNativeCheckpoint(dir.Join("native-1")));
  auto first = storage->StoreNativeCheckpoint(1, "op-0", dir.Join("native-1"), {});
  ASSERT_OK(first);
  const auto shared_1 = SharedFiles(*first);
  ASSERT_FALSE(shared_1.empty());

  // A small change: one more SST file, and some writes only in the memtable (the
  // checkpoint carries them in the write-ahead log).
  for (int i = 0; i < 100; ++i) ASSERT_OK(store->Put(cf, Key(1, "new" + std::to_string(i)), "v2"));
  ASSERT_OK(store->Flush());
  ASSERT_OK(store->Put(cf, Key(3, "unflushed"), "in the log"));
  ASSERT_OK(store->Delete(cf, Key(0, "0")));
  ASSERT_OK(store->CreateNativeCheckpoint(dir.Join("native-2")));
  std::map<std::string, StoredFile> stored_before;
  for (const auto& f : *first) stored_before[f.name] = f;
  const auto before =
      std::filesystem::last_write_time(dir.Join("checkpoints/job/") + *shared_1.begin());
  auto second = storage->StoreNativeCheckpoint(2, "op-0", dir.Join("native-2"), stored_before);
  ASSERT_OK(second);
  const auto shared_2 = SharedFiles(*second);
  std::set<std::string> uploaded;
  for (const auto& p : shared_2) {
    if (!shared_1.contains(p)) uploaded.insert(p);
  }
  EXPECT_EQ(uploaded.size(), 1u) << "only the new SST file is uploaded";
  for (const auto& p : shared_1) EXPECT_TRUE(shared_2.contains(p)) << p << " is referenced";
  EXPECT_EQ(std::filesystem::last_write_time(dir.Join("checkpoints/job/") + *shared_1.begin()),
            before)
      << "a referenced file is not written again";

  // Restore checkpoint 2 into a new database and read everything back.
  ASSERT_OK(storage->FetchFiles(*second, dir.Join("restored")));
  auto restored = RocksDbStore::OpenExisting(dir.Join("restored"));
  ASSERT_OK(restored);
  const int rcf = *(*restored)->ColumnFamily("s");
  std::string v;
  EXPECT_TRUE(*(*restored)->Get(rcf, Key(3, "unflushed"), &v));
  EXPECT_EQ(v, "in the log");
  EXPECT_FALSE(*(*restored)->Get(rcf, Key(0, "0"), &v)) << "the delete is restored too";
  EXPECT_TRUE(*(*restored)->Get(rcf, Key(1, "new7"), &v));
  size_t entries = 0;
  for (int kg = 0; kg < 8; ++kg) entries += KeyGroupContents(**restored, rcf, kg).size();
  EXPECT_EQ(entries, 5000u + 100u + 1u - 1u);

  // A damaged shared file is detected on fetch.
  std::filesystem::resize_file(dir.Join("checkpoints/job/") + *shared_1.begin(), 10);
  auto damaged = storage->FetchFiles(*second, dir.Join("restored-again"));
  ASSERT_FALSE(damaged.ok());
  EXPECT_THAT(std::string(damaged.message()), ::testing::HasSubstr("is damaged"));
}

TEST(RocksDbStoreTest, RetentionDeletesSharedFilesNoKeptCheckpointLists) {
  testing::TempDir dir;
  auto storage = *CheckpointStorage::Create(dir.path(), "job");
  auto write_shared = [&](const std::string& name) {
    testing::WriteFile(storage->job_dir() + "/shared/" + name, name);
  };
  auto commit = [&](int64_t id, std::vector<std::string> shared) {
    CheckpointMetadata m;
    m.checkpoint_id = id;
    m.shared_files = std::move(shared);
    ASSERT_OK(storage->Commit(m));
  };
  write_shared("a.sst");
  write_shared("b.sst");
  commit(1, {"shared/a.sst"});
  commit(2, {"shared/a.sst", "shared/b.sst"});
  commit(3, {"shared/b.sst"});  // a compaction replaced a.sst
  ASSERT_OK(storage->Retain(2));
  EXPECT_TRUE(std::filesystem::exists(storage->job_dir() + "/shared/a.sst")) << "2 still lists it";
  ASSERT_OK(storage->Retain(1));
  EXPECT_FALSE(std::filesystem::exists(storage->job_dir() + "/shared/a.sst"));
  EXPECT_TRUE(std::filesystem::exists(storage->job_dir() + "/shared/b.sst"));
  // A file written after the oldest running checkpoint started is kept: it may be its own.
  write_shared("c.sst");
  ASSERT_OK(storage->Retain(1, absl::Now() - absl::Hours(1)));
  EXPECT_TRUE(std::filesystem::exists(storage->job_dir() + "/shared/c.sst"));
  ASSERT_OK(storage->Retain(1));
  EXPECT_FALSE(std::filesystem::exists(storage->job_dir() + "/shared/c.sst"));
}

}  // namespace
}  // namespace sluice::internal
