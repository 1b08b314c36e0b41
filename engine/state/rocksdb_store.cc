#include "sluice/state/internal/rocksdb_store.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "sluice/core/status_macros.h"
#include "sluice/serialization/bytes.h"
#include "sluice/state/state_migration.h"

namespace sluice::internal {
namespace {

constexpr char kTypeTagPrefix[] = "state-type:";

absl::Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat("RocksDB: ", what, ": ", s.ToString());
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(message);
  if (s.IsCorruption()) return absl::DataLossError(message);
  return absl::InternalError(message);
}

rocksdb::Options BaseOptions() {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  // State of one operator instance on a 2-core machine: modest buffers, background work on
  // one thread.
  o.write_buffer_size = 32 << 20;
  o.max_background_jobs = 2;
  o.IncreaseParallelism(1);
  return o;
}

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

absl::Status ScanKeyGroup(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                          const rocksdb::Snapshot* snapshot, int key_group,
                          const std::function<void(std::string_view, std::string_view)>& f) {
  const std::string prefix = RocksDbStore::KeyGroupPrefix(key_group);
  const std::string end = RocksDbStore::KeyGroupPrefix(key_group + 1);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
  for (it->Seek(prefix); it->Valid(); it->Next()) f(ToView(it->key()), ToView(it->value()));
  return FromRocks(it->status(), "scanning key group " + std::to_string(key_group));
}

}  // namespace

struct RocksDbStore::Impl {
  std::string dir;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // [0] is RocksDB's default family
  std::vector<std::string> names;                     // of handles[1..]
  rocksdb::WriteOptions write;

  ~Impl() {
    for (auto* h : handles) {
      if (db) (void)db->DestroyColumnFamilyHandle(h);
    }
    handles.clear();
    if (db) (void)db->Close();
    db.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

RocksDbStore::RocksDbStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RocksDbStore::~RocksDbStore() = default;

absl::StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Create(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("RocksDB directory '", dir, "' exists already"));
  }
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
  return OpenExisting(dir);
}

absl::StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::OpenExisting(const std::string& dir) {
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->write.sync = false;  // checkpoints make state durable, not the database
  const rocksdb::Options options = BaseOptions();
  std::vector<std::string> families;
  if (std::filesystem::exists(std::filesystem::path(dir) / "CURRENT")) {
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, dir, &families);
    if (!s.ok()) return FromRocks(s, "listing the column families in '" + dir + "'");
  }
  if (families.empty()) families.push_back(rocksdb::kDefaultColumnFamilyName);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : families) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions(options));
  }
  rocksdb::DB* db = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(rocksdb::DBOptions(options), dir, descriptors, &impl->handles, &db);
  if (!s.ok()) return FromRocks(s, "opening '" + dir + "'");
  impl->db.reset(db);
  for (size_t i = 0; i < impl->handles.size(); ++i) {
    if (impl->handles[i]->GetName() == rocksdb::kDefaultColumnFamilyName && i != 0) {
      std::swap(impl->handles[i], impl->handles[0]);
    }
  }
  for (size_t i = 1; i < impl->handles.size(); ++i) {
    impl->names.push_back(impl->handles[i]->GetName());
  }
  return std::unique_ptr<RocksDbStore>(new RocksDbStore(std::move(impl)));
}

const std::string& RocksDbStore::dir() const { return impl_->dir; }

absl::StatusOr<int> RocksDbStore::ColumnFamily(const std::string& state_name,
                                               const std::string& type_tag,
                                               const std::string& legacy_type_tag) {
  if (!type_tag.empty()) {
    // The tag lives in RocksDB's default family, which holds no state.
    const std::string tag_key = kTypeTagPrefix + state_name;
    std::string recorded;
    rocksdb::Status s =
        impl_->db->Get(rocksdb::ReadOptions(), impl_->handles[0], tag_key, &recorded);
    const bool legacy = s.ok() && !legacy_type_tag.empty() && recorded == legacy_type_tag;
    if (s.ok() && recorded != type_tag && !legacy) {
      SLUICE_RETURN_IF_ERROR(MigrateColumnFamily(state_name, recorded, type_tag));
    }
    if (s.IsNotFound() || legacy) {
      s = impl_->db->Put(impl_->write, impl_->handles[0], tag_key, type_tag);
    }
    if (!s.ok()) return FromRocks(s, "recording the types of state '" + state_name + "'");
  }
  for (size_t i = 0; i < impl_->names.size(); ++i) {
    if (impl_->names[i] == state_name) return static_cast<int>(i);
  }
  rocksdb::ColumnFamilyHandle* h = nullptr;
  rocksdb::Status s =
      impl_->db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(BaseOptions()), state_name, &h);
  if (!s.ok()) return FromRocks(s, "creating the column family of state '" + state_name + "'");
  impl_->handles.push_back(h);
  impl_->names.push_back(state_name);
  return static_cast<int>(impl_->names.size() - 1);
}

absl::Status RocksDbStore::MigrateColumnFamily(const std::string& state_name,
                                               const std::string& from_tag,
                                               const std::string& to_tag) {
  auto migration = StateMigration::Plan(from_tag, to_tag);
  if (!migration.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state '", state_name, "' cannot be restored: ", migration.status().message()));
  }
  size_t cf = 0;
  while (cf < impl_->names.size() && impl_->names[cf] != state_name) ++cf;
  const std::string tag_key = kTypeTagPrefix + state_name;
  rocksdb::WriteBatch batch;
  if (cf < impl_->names.size()) {
    rocksdb::ColumnFamilyHandle* handle = impl_->handles[cf + 1];
    const int64_t now = absl::ToUnixMillis(absl::Now());
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), handle));
    std::string value;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!migration->Value(ToView(it->value()), &value, now)) {
        return absl::DataLossError(
            absl::StrCat("state '", state_name, "': a stored value does not read as its old type"));
      }
      batch.Put(handle, it->key(), value);
    }
    SLUICE_RETURN_IF_ERROR(FromRocks(it->status(), "migrating state '" + state_name + "'"));
  }
  // The entries and the record of their types change together.
  batch.Put(impl_->handles[0], tag_key, to_tag);
  return FromRocks(impl_->db->Write(impl_->write, &batch), "migrating state '" + state_name + "'");
}

std::vector<std::string> RocksDbStore::ColumnFamilyNames() const { return impl_->names; }

std::string RocksDbStore::KeyGroupPrefix(int key_group) {
  return std::string{static_cast<char>((key_group >> 8) & 0xff),
                     static_cast<char>(key_group & 0xff)};
}

absl::StatusOr<std::string> RocksDbStore::PortableKeyGroup(int key_group) {
  std::string out;
  ByteWriter w(&out);
  w.WriteVarint(impl_->names.size());
  std::string body;
  for (size_t cf = 0; cf < impl_->names.size(); ++cf) {
    const std::string& name = impl_->names[cf];
    std::string tag;
    rocksdb::Status s =
        impl_->db->Get(rocksdb::ReadOptions(), impl_->handles[0], kTypeTagPrefix + name, &tag);
    if (!s.ok()) return FromRocks(s, "reading the types of state '" + name + "'");
    // As a RocksDB state table writes a key group: count, then the stored key (without
    // the key-group prefix) and value bytes.
    std::string entries;
    uint64_t count = 0;
    SLUICE_RETURN_IF_ERROR(ForEachInKeyGroup(static_cast<int>(cf), key_group,
                                             [&](std::string_view k, std::string_view v) {
                                               entries.append(k.substr(2));
                                               entries.append(v);
                                               ++count;
                                             }));
    body.clear();
    ByteWriter bw(&body);
    bw.WriteVarint(count);
    bw.Append(entries);
    w.WriteBytes(name);
    w.WriteBytes(tag);
    w.WriteBytes(body);
  }
  return out;
}

absl::Status RocksDbStore::Put(int cf, std::string_view key, std::string_view value) {
  return FromRocks(
      impl_->db->Put(impl_->write, impl_->handles[cf + 1], ToSlice(key), ToSlice(value)), "put");
}

absl::StatusOr<bool> RocksDbStore::Get(int cf, std::string_view key, std::string* value) {
  rocksdb::Status s =
      impl_->db->Get(rocksdb::ReadOptions(), impl_->handles[cf + 1], ToSlice(key), value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, "get");
  return true;
}

absl::Status RocksDbStore::Delete(int cf, std::string_view key) {
  return FromRocks(impl_->db->Delete(impl_->write, impl_->handles[cf + 1], ToSlice(key)), "delete");
}

size_t RocksDbStore::EstimatedEntries(int cf) const {
  uint64_t keys = 0;
  if (!impl_->db->GetIntProperty(impl_->handles[cf + 1], "rocksdb.estimate-num-keys", &keys)) {
    return 0;
  }
  return static_cast<size_t>(keys);
}

size_t RocksDbStore::EstimatedBytes(int cf) const {
  // Every key of the column family (they start with their key group's two bytes): the
  // bytes of its entries in files and in memtables (not the memtables' allocated arenas).
  const std::string end(3, '\xff');
  const rocksdb::Range all("", end);
  rocksdb::SizeApproximationOptions options;
  options.include_memtables = true;
  options.include_files = true;
  uint64_t bytes = 0;
  if (!impl_->db->GetApproximateSizes(options, impl_->handles[cf + 1], &all, 1, &bytes).ok()) {
    return 0;
  }
  return static_cast<size_t>(bytes);
}

absl::Status RocksDbStore::ForEachInKeyGroup(
    int cf, int key_group, const std::function<void(std::string_view, std::string_view)>& f) {
  return ScanKeyGroup(impl_->db.get(), impl_->handles[cf + 1], nullptr, key_group, f);
}

struct RocksDbStore::Snapshot::Impl {
  rocksdb::DB* db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  const rocksdb::Snapshot* snapshot;
  ~Impl() { db->ReleaseSnapshot(snapshot); }
};

RocksDbStore::Snapshot::Snapshot(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RocksDbStore::Snapshot::~Snapshot() = default;

absl::Status RocksDbStore::Snapshot::ForEachInKeyGroup(
    int cf, int key_group, const std::function<void(std::string_view, std::string_view)>& f) const {
  return ScanKeyGroup(impl_->db, impl_->handles[cf + 1], impl_->snapshot, key_group, f);
}

std::unique_ptr<RocksDbStore::Snapshot> RocksDbStore::TakeSnapshot() {
  auto impl = std::make_unique<Snapshot::Impl>();
  impl->db = impl_->db.get();
  impl->handles = impl_->handles;
  impl->snapshot = impl_->db->GetSnapshot();
  return std::unique_ptr<Snapshot>(new Snapshot(std::move(impl)));
}

absl::Status RocksDbStore::CreateNativeCheckpoint(const std::string& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(impl_->db.get(), &raw);
  if (!s.ok()) return FromRocks(s, "preparing a checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // Up to kFlushAboveLogBytes of write-ahead log, the memtables' content comes along as the
  // log (copied, not flushed: a cheap synchronous phase). Beyond it they are flushed into SST
  // files first, which later checkpoints share instead of copying the log again each time.
  constexpr uint64_t kFlushAboveLogBytes = 1 << 20;
  return FromRocks(checkpoint->CreateCheckpoint(dir, kFlushAboveLogBytes),
                   "checkpoint into '" + dir + "'");
}

absl::Status RocksDbStore::Flush() {
  rocksdb::FlushOptions options;
  options.wait = true;
  return FromRocks(impl_->db->Flush(options, impl_->handles), "flush");
}

}  // namespace sluice::internal
