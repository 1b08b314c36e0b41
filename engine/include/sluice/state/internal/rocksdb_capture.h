#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/core/mutex.h"
#include "sluice/state/internal/rocksdb_store.h"

namespace sluice::internal {

/// One snapshot of an operator instance's database. At the barrier each state table hands
/// over its modified cache entries (no copy, no RocksDB call); the snapshot thread then
/// writes them to RocksDB and takes the database's view — a RocksDB snapshot to read key
/// groups from, or RocksDB's own checkpoint (files) — and only then may the tables write to
/// RocksDB again. Until then they read through their batch and let their cache grow, so the
/// view holds exactly the state at the barrier.
class RocksDbCapture {
 public:
  explicit RocksDbCapture(std::shared_ptr<RocksDbStore> store);
  ~RocksDbCapture();  // a capture dropped unread still writes the batches

  /// Task thread, at the barrier (before Run): a table's batch writer.
  void AddBatch(std::function<absl::Status()> write);

  /// Any thread; the first call does the work, later ones return its result. Writes the
  /// batches, then takes the read view, or RocksDB's checkpoint into `native_dir` if given.
  absl::Status Run(const std::string& native_dir) SLUICE_EXCLUDES(mu_);
  /// Task thread: the tables may write to RocksDB again (and must check status()).
  bool done() SLUICE_EXCLUDES(mu_);
  absl::Status Wait() SLUICE_EXCLUDES(mu_);
  /// The read view after Run(""): the state at the barrier.
  const RocksDbStore::Snapshot& view() const { return *view_; }
  RocksDbStore& store() { return *store_; }

 private:
  std::shared_ptr<RocksDbStore> store_;
  std::vector<std::function<absl::Status()>> batches_;  // task thread until Run
  Mutex mu_;
  CondVar done_cv_;
  bool done_ SLUICE_GUARDED_BY(mu_) = false;
  absl::Status status_ SLUICE_GUARDED_BY(mu_);
  std::unique_ptr<RocksDbStore::Snapshot> view_;  // written once by Run, before done_
};

/// What the checkpoints of one database stored, so that the next one references SST files
/// (immutable) instead of copying them again. Only the files of the newest checkpoint known
/// to be complete (or restored from) are referenced: a file that only an aborted or
/// subsumed checkpoint stored may be deleted at any time, while everything the newest
/// complete checkpoint lists stays until a newer one completes — and any file both it and
/// a later checkpoint contain is listed by that newer one too.
class StoredFileLog {
 public:
  explicit StoredFileLog(std::string owner);
  /// Names the database instance in stored file names (unique, so two instances' files
  /// never collide).
  const std::string& owner() const { return owner_; }

  /// The files later checkpoints may reference, by their name in the database.
  std::map<std::string, StoredFile> Reusable() const SLUICE_EXCLUDES(mu_);
  /// Snapshot thread: checkpoint `id` stored `files`.
  void Stored(int64_t id, std::vector<StoredFile> files) SLUICE_EXCLUDES(mu_);
  /// Checkpoint `id` completed: its files become the reusable ones.
  void Completed(int64_t id) SLUICE_EXCLUDES(mu_);
  /// The database was restored from `files`.
  void Restored(const std::vector<StoredFile>& files) SLUICE_EXCLUDES(mu_);

 private:
  void SetReusable(const std::vector<StoredFile>& files) SLUICE_REQUIRES(mu_);

  const std::string owner_;
  mutable Mutex mu_;
  // By checkpoints not yet complete.
  std::map<int64_t, std::vector<StoredFile>> stored_ SLUICE_GUARDED_BY(mu_);
  std::map<std::string, StoredFile> reusable_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::internal
