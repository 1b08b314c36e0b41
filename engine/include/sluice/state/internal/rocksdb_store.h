#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sluice::internal {

/// The RocksDB database of one keyed operator instance: a column family per state, every key
/// prefixed by its key group (2 bytes, big-endian), so a key group is one contiguous key
/// range (cut out for snapshots per key group and on rescale). Byte-level; the typed state
/// backend serializes. RocksDB's headers stay in the .cc: jobs never see them.
///
/// Durability comes from checkpoints, not from the database: writes skip fsync, and a store
/// deletes its directory when it closes.
class RocksDbStore {
 public:
  /// Opens a new, empty database in `dir` (which must not exist yet).
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> Create(const std::string& dir);
  /// Opens the database whose files (a native checkpoint) were copied into `dir`.
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> OpenExisting(const std::string& dir);
  ~RocksDbStore();
  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  const std::string& dir() const;
  /// The column family of a state, created on first use. A `type_tag` (StateTypeTag) is
  /// recorded in the database with it, so a database restored from its own files refuses a
  /// state registered with other types (FAILED_PRECONDITION) and can be read back without
  /// the types (PortableKeyGroup). A database that recorded other types has its entries
  /// migrated to `type_tag` (StateMigration), or the error says why they cannot be. A database
  /// that recorded `legacy_type_tag` (the tag of Sluice 0.1.0 for the same types) is accepted
  /// and its record rewritten.
  absl::StatusOr<int> ColumnFamily(const std::string& state_name, const std::string& type_tag = "",
                                   const std::string& legacy_type_tag = "");
  /// The states in the database, by column family index.
  std::vector<std::string> ColumnFamilyNames() const;

  /// The 2-byte prefix of every key of `key_group`.
  static std::string KeyGroupPrefix(int key_group);

  absl::Status Put(int cf, std::string_view key, std::string_view value);
  /// False if absent.
  absl::StatusOr<bool> Get(int cf, std::string_view key, std::string* value);
  absl::Status Delete(int cf, std::string_view key);
  /// RocksDB's estimate of the keys in a column family (cheap: no scan).
  size_t EstimatedEntries(int cf) const;
  /// RocksDB's estimate of a column family's bytes, in files and memtables (cheap: no scan).
  size_t EstimatedBytes(int cf) const;
  /// Calls `f(key, value)` for the current entries of one key group (keys with prefix).
  absl::Status ForEachInKeyGroup(int cf, int key_group,
                                 const std::function<void(std::string_view, std::string_view)>& f);

  /// Every state's entries of one key group in the backend-independent format that
  /// KeyedStateSnapshot::KeyGroup writes (state name, type tag, entries), so a database
  /// restored from a native checkpoint can be split by key groups (rescaling) or loaded into
  /// the heap backend.
  absl::StatusOr<std::string> PortableKeyGroup(int key_group);

  /// A consistent read view of the whole database at the time it was taken (a RocksDB
  /// snapshot: taking it costs nanoseconds). Readable from another thread while the owner
  /// writes; must not outlive the store.
  class Snapshot {
   public:
    ~Snapshot();
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;
    absl::Status ForEachInKeyGroup(
        int cf, int key_group,
        const std::function<void(std::string_view, std::string_view)>& f) const;

   private:
    friend class RocksDbStore;
    struct Impl;
    explicit Snapshot(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
  };
  std::unique_ptr<Snapshot> TakeSnapshot();

  /// RocksDB's own checkpoint of the current state into `dir` (which must not exist): hard
  /// links to the immutable SST files plus copies of the small rest. The write-ahead log is
  /// taken instead of flushing the memtable, so this stays in the millisecond range however
  /// much is buffered in memory.
  absl::Status CreateNativeCheckpoint(const std::string& dir);
  /// Writes the memtable out as an SST file now (RocksDB does it by itself when it is full).
  absl::Status Flush();

 private:
  struct Impl;
  explicit RocksDbStore(std::unique_ptr<Impl> impl);
  absl::Status MigrateColumnFamily(const std::string& state_name, const std::string& from_tag,
                                   const std::string& to_tag);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::internal
