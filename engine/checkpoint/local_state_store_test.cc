#include "sluice/checkpoint/local_state_store.h"

#include <sys/stat.h>

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;

/// A checkpoint of one operator "source" of two subtasks with operator state "offset-<i>@<id>",
/// written to storage and, like a TaskManager's tasks do, copied into `local` for job "job-1".
CheckpointMetadata WriteWithLocalCopies(CheckpointStorage& storage, LocalStateStore& local,
                                        int64_t id) {
  CheckpointMetadata m;
  m.checkpoint_id = id;
  m.job_name = "job";
  for (int i = 0; i < 2; ++i) {
    OperatorSnapshot snapshot;
    snapshot.operator_state = {absl::StrCat("offset-", i, "@", id)};
    const std::string bytes = SerializeToString(snapshot);
    auto h = storage.WriteState(id, absl::StrCat("source-", i), bytes);
    EXPECT_OK(h);
    DescribeContents(snapshot, &*h);
    local.Put("job-1", id, *h, bytes);
    m.operators["source"].push_back(*h);
  }
  EXPECT_OK(storage.Commit(m));
  return m;
}

std::vector<std::string> Items(const LoadedCheckpoint& loaded) {
  return RedistributeState(loaded.operators.at("source"), 0, 1, 128).operator_state;
}

// A restore on the TaskManager that wrote the snapshot reads its own copies; a damaged copy
// is dropped and checkpoint storage's file read instead.
TEST(LocalStateStoreTest, ARestoreReadsTheLocalCopiesThatVerifyAndStorageForTheRest) {
  testing::TempDir dir;
  auto storage = *CheckpointStorage::Create(dir.Join("storage"), "job");
  auto local = *LocalStateStore::Create(dir.Join("local"));
  WriteWithLocalCopies(*storage, *local, 1);
  LocalCopies reader;
  reader.read = [&](int64_t id, const StateHandle& h) { return local->Read("job-1", id, h); };
  auto loaded = LoadCheckpoint(storage->job_dir(), nullptr, &reader);
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->counts.files_local, 2);
  EXPECT_THAT(Items(*loaded), ElementsAre("offset-0@1", "offset-1@1"));

  const std::string copy = local->root() + "/job-1/chk-1/source-1.state";
  ASSERT_TRUE(std::filesystem::exists(copy));
  testing::DamageFile(copy);
  loaded = LoadCheckpoint(storage->job_dir(), nullptr, &reader);
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->counts.files_local, 1) << "the damaged copy is not used";
  EXPECT_THAT(Items(*loaded), ElementsAre("offset-0@1", "offset-1@1"));
  EXPECT_FALSE(std::filesystem::exists(copy)) << "and is deleted";

  // Another job's copies are not this one's, even for the same checkpoint id.
  EXPECT_EQ(local->Read("job-2", 1, storage->ReadMetadata(1)->operators["source"][0]),
            std::nullopt);
}

// Copies are kept for the newest completed checkpoint and newer ones only.
TEST(LocalStateStoreTest, ACompletedCheckpointRetiresTheCopiesOfOlderOnes) {
  testing::TempDir dir;
  auto storage = *CheckpointStorage::Create(dir.Join("storage"), "job");
  auto local = *LocalStateStore::Create(dir.Join("local"));
  const CheckpointMetadata first = WriteWithLocalCopies(*storage, *local, 1);
  const CheckpointMetadata second = WriteWithLocalCopies(*storage, *local, 2);
  const CheckpointMetadata third = WriteWithLocalCopies(*storage, *local, 3);  // in progress
  local->Completed("job-1", 2);
  EXPECT_EQ(local->Read("job-1", 1, first.operators.at("source")[0]), std::nullopt);
  EXPECT_NE(local->Read("job-1", 2, second.operators.at("source")[0]), std::nullopt);
  EXPECT_NE(local->Read("job-1", 3, third.operators.at("source")[0]), std::nullopt);
  // A snapshot of a checkpoint older than the completed one, finishing late, is not kept.
  local->Put("job-1", 1, first.operators.at("source")[0], "late");
  EXPECT_FALSE(std::filesystem::exists(local->root() + "/job-1/chk-1"));

  local->ForgetAllBut({"job-2"});
  EXPECT_FALSE(std::filesystem::exists(local->root() + "/job-1")) << "job-1 ended";
}

/// The inode of the file at `path` (two hard links share it).
ino_t InodeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

// RocksDB's files of a snapshot: the TaskManager links them into its local store; a restore
// there links its SST files from those copies (no bytes copied) once their checksums verify,
// and falls back to checkpoint storage for a damaged one.
TEST(LocalStateStoreTest, ARestoredDatabaseLinksItsFilesFromTheLocalCopies) {
  testing::TempDir dir;
  auto storage = *CheckpointStorage::Create(dir.Join("storage"), "job");
  auto local = *LocalStateStore::Create(dir.Join("local"));
  const std::string native = dir.Join("db.chk-4");  // a native checkpoint, as RocksDB makes it
  std::filesystem::create_directories(native);
  testing::WriteFile(native + "/000012.sst", std::string(100000, 's'));
  testing::WriteFile(native + "/MANIFEST-000005", "manifest");
  auto stored = storage->StoreNativeCheckpoint(4, "window-0-abc", native, {});
  ASSERT_OK(stored);
  local->PutNative("job-1", 4, native, *stored);
  std::filesystem::remove_all(native);  // as StoreNativeSnapshot does

  std::vector<StoredFile> files = *stored;
  EXPECT_EQ(local->FindNativeCopies("job-1", 4, &files), 2);
  EXPECT_EQ(local->FindNativeCopies("job-1", 3, &*stored), 0) << "another checkpoint's";
  ASSERT_OK(storage->FetchFiles(files, dir.Join("restored")));
  EXPECT_EQ(testing::ReadFile(dir.Join("restored/MANIFEST-000005")), "manifest");
  EXPECT_EQ(testing::ReadFile(dir.Join("restored/000012.sst")), std::string(100000, 's'));
  const std::string sst_copy = files[0].local_path;
  ASSERT_THAT(sst_copy, ::testing::EndsWith("000012.sst"));
  EXPECT_EQ(InodeOf(dir.Join("restored/000012.sst")), InodeOf(sst_copy)) << "linked, not copied";

  testing::DamageFile(sst_copy, 500);
  ASSERT_OK(storage->FetchFiles(files, dir.Join("again")));
  EXPECT_EQ(testing::ReadFile(dir.Join("again/000012.sst")), std::string(100000, 's'));
  EXPECT_FALSE(std::filesystem::exists(sst_copy)) << "the damaged copy is deleted";
}

}  // namespace
}  // namespace sluice
