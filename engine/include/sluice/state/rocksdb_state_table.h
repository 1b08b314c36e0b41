#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/core/key_groups.h"
#include "sluice/core/status_macros.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/heap_state_table.h"
#include "sluice/state/internal/rocksdb_capture.h"
#include "sluice/state/internal/rocksdb_store.h"
#include "sluice/state/keyed_state_backend.h"

namespace sluice {

/// What a RocksDB state table needs from its backend: the operator instance's database, how
/// many entries a table keeps deserialized in memory, and the snapshot being taken.
struct RocksDbTableContext {
  std::shared_ptr<internal::RocksDbStore> store;
  size_t cache_entries = 100'000;
  /// The newest snapshot's capture (set by the backend before the tables' TakeSnapshot).
  std::shared_ptr<internal::RocksDbCapture> capture;
  /// For incremental checkpoints of the database; null: checkpoints use the portable format.
  std::shared_ptr<internal::StoredFileLog> stored_files;

  /// The tables may write to RocksDB (no snapshot is waiting for its view).
  bool writable() const { return !capture || capture->done(); }
};

/// The entries of one state in a column family of RocksDB, behind a write-back cache of
/// deserialized entries. The cache is what makes RocksDB usable from a record-at-a-time
/// operator (a RocksDB access costs microseconds): entries are read once, modified in place
/// (Find() returns a pointer, as the heap table does), and written back in one batch when
/// the cache is full or a snapshot is taken. Same interface as StateTable; task thread only.
/// A snapshot hands the whole cache to the backend's RocksDbCapture in O(1).
template <typename K, typename N, typename V>
class RocksDbStateTable final : public StateTableBase {
 public:
  using Key = internal::StateKey<K, N>;

  RocksDbStateTable(std::string name, KeyGroupRange range, RocksDbTableContext* context)
      : StateTableBase(name),
        range_(range),
        context_(context),
        store_(context->store),
        limit_(context->cache_entries) {
    auto cf = store_->ColumnFamily(name, StateTypeTag<K, N, V>(), LegacyStateTypeTag<K, N, V>());
    if (!cf.ok()) throw std::runtime_error(std::string(cf.status().message()));
    cf_ = *cf;
  }
  ~RocksDbStateTable() override {
    if (flushing_) (void)flushing_->capture->Wait();
  }

  const V* FindForRead(int key_group, const K& key, const N& ns) {
    Entry* e = Load(key_group, internal::MakeStateKey(key, ns));
    return e->present ? &e->value : nullptr;
  }
  V* Find(int key_group, const K& key, const N& ns) {
    Entry* e = Load(key_group, internal::MakeStateKey(key, ns));
    if (!e->present) return nullptr;
    e->dirty = true;
    return &e->value;
  }
  V& GetOrCreate(int key_group, const K& key, const N& ns) {
    Entry* e = Load(key_group, internal::MakeStateKey(key, ns));
    if (!e->present) {
      e->value = V{};
      e->present = true;
    }
    e->dirty = true;
    return e->value;
  }
  void Put(int key_group, const K& key, const N& ns, V value) {
    Entry& e = Slot(key_group, internal::MakeStateKey(key, ns));
    e.value = std::move(value);
    e.present = true;
    e.dirty = true;
  }
  void Remove(int key_group, const K& key, const N& ns) {
    Entry& e = Slot(key_group, internal::MakeStateKey(key, ns));
    e.value = V{};
    e.present = false;
    e.dirty = true;
  }

  size_t EntryCount() const override {
    size_t n = 0;
    const_cast<RocksDbStateTable*>(this)->ForEachEntry([&](const Key&, const V&) { ++n; });
    return n;
  }
  size_t ApproximateEntryCount() const override { return store_->EstimatedEntries(cf_); }
  size_t SerializedBytes() const override {
    size_t n = 0;
    std::string scratch;
    const_cast<RocksDbStateTable*>(this)->ForEachEntry([&](const Key& key, const V& value) {
      internal::AddSerializedSize(key, value, scratch, &n);
    });
    return n;
  }
  std::string TypeTag() const override { return StateTypeTag<K, N, V>(); }
  std::string LegacyTypeTag() const override { return LegacyStateTypeTag<K, N, V>(); }

  /// Part of the backend's snapshot: the context holds its capture (BeginSnapshot).
  std::unique_ptr<StateTableSnapshot> TakeSnapshot() override {
    if (flushing_) Check(flushing_->capture->Wait());  // the previous snapshot's
    auto flush = std::make_shared<Flush>();
    flush->capture = context_->capture;
    flush->entries.swap(cache_);  // O(1): the snapshot thread encodes the modified ones
    flush->capture->AddBatch(
        [flush = flush.get(), store = store_, cf = cf_] { return flush->Write(*store, cf); });
    flushing_ = flush;
    return std::make_unique<Snapshot>(std::move(flush), store_, cf_);
  }

  /// Restores straight into RocksDB (a restored state may be far larger than memory).
  bool ReadKeyGroup(int key_group, ByteReader& in) override {
    WriteBack();
    uint64_t n;
    if (!in.ReadVarint(&n) || !in.CheckCount(n, 1)) return false;
    for (uint64_t i = 0; i < n; ++i) {
      Key key{};
      V value{};
      if (!Serializer<Key>::Read(in, &key) || !Serializer<V>::Read(in, &value)) return false;
      Check(store_->Put(cf_, EncodeKey(key_group, key), Encode(value)));
    }
    return true;
  }

  /// Removes the entries of one key group for which `pred(key, value)` holds.
  template <typename Pred>
  size_t EraseIf(int key_group, Pred&& pred) {
    std::vector<Key> doomed;
    ForEachInKeyGroup(key_group, [&](const Key& key, const V& value) {
      if (pred(key, value)) doomed.push_back(key);
    });
    for (const Key& key : doomed) {
      Entry& e = Slot(key_group, key);
      e.value = V{};
      e.present = false;
      e.dirty = true;
    }
    return doomed.size();
  }
  const KeyGroupRange& key_group_range() const { return range_; }
  /// Calls `f(key, value)` for the current entries of one key group.
  template <typename F>
  void ForEachInKeyGroup(int key_group, F&& f) {
    WriteBack();  // RocksDB then holds everything
    Check(store_->ForEachInKeyGroup(cf_, key_group, [&](std::string_view k, std::string_view v) {
      Key key{};
      V value{};
      if (DecodeEntry(k, v, &key, &value)) f(key, value);
    }));
  }

 private:
  struct Entry {
    V value{};
    int key_group = 0;
    bool present = false;  // false: absent (or removed)
    bool dirty = false;    // differs from RocksDB
  };

  /// The cache as it was at a snapshot, on its way to RocksDB: the capture writes its
  /// modified entries (once); until the capture is done the task reads through it.
  struct Flush {
    std::shared_ptr<internal::RocksDbCapture> capture;
    absl::flat_hash_map<Key, Entry> entries;  // read-only once made

    absl::Status Write(internal::RocksDbStore& store, int cf) const {
      for (const auto& [key, e] : entries) {
        if (!e.dirty) continue;
        const std::string k = EncodeKey(e.key_group, key);
        SLUICE_RETURN_IF_ERROR(e.present ? store.Put(cf, k, Encode(e.value)) : store.Delete(cf, k));
      }
      return absl::OkStatus();
    }
    const Entry* Find(const Key& key) const {
      auto it = entries.find(key);
      return it == entries.end() ? nullptr : &it->second;
    }
  };

  /// Reads key groups from the capture's view: the state at the barrier. Keeps the batch
  /// alive until the capture wrote it.
  class Snapshot final : public StateTableSnapshot {
   public:
    Snapshot(std::shared_ptr<Flush> flush, std::shared_ptr<internal::RocksDbStore> store, int cf)
        : flush_(std::move(flush)), store_(std::move(store)), cf_(cf) {}
    // Dropped unread, it still completes the capture: the tables wait for it.
    ~Snapshot() override { (void)flush_->capture->Run(""); }
    void WriteKeyGroup(int key_group, ByteWriter& out) const override {
      Check(flush_->capture->Run(""));
      std::vector<std::pair<std::string, std::string>> entries;
      Check(flush_->capture->view().ForEachInKeyGroup(
          cf_, key_group, [&](std::string_view k, std::string_view v) {
            entries.emplace_back(std::string(k.substr(2)), std::string(v));
          }));
      // The backend-independent format: count, then each serialized key and value (the
      // database holds exactly those bytes after the key-group prefix).
      out.WriteVarint(entries.size());
      for (const auto& [k, v] : entries) {
        out.Append(k);
        out.Append(v);
      }
    }
    std::optional<Size> StoredSize() const override {
      Check(flush_->capture->Run(""));
      return Size{store_->EstimatedEntries(cf_), store_->EstimatedBytes(cf_)};
    }

   private:
    std::shared_ptr<Flush> flush_;
    std::shared_ptr<internal::RocksDbStore> store_;
    int cf_;
  };

  static void Check(const absl::Status& s) {
    if (!s.ok()) throw std::runtime_error(std::string(s.message()));
  }
  static std::string EncodeKey(int key_group, const Key& key) {
    std::string out = internal::RocksDbStore::KeyGroupPrefix(key_group);
    ByteWriter w(&out);
    Serializer<Key>::Write(key, w);
    return out;
  }
  static std::string Encode(const V& value) {
    std::string out;
    ByteWriter w(&out);
    Serializer<V>::Write(value, w);
    return out;
  }
  static bool DecodeEntry(std::string_view k, std::string_view v, Key* key, V* value) {
    ByteReader kr(k.substr(2));
    ByteReader vr(v);
    return Serializer<Key>::Read(kr, key) && kr.AtEnd() && Serializer<V>::Read(vr, value) &&
           vr.AtEnd();
  }

  /// True once no snapshot waits for its view (RocksDB then has this table's batch): the
  /// table may write to RocksDB again.
  bool Writable() {
    if (flushing_) {
      if (!flushing_->capture->done()) return false;
      Check(flushing_->capture->Wait());
      flushing_.reset();
    }
    // A table registered after the barrier has no batch in that snapshot, but must not
    // write either.
    return context_->writable();
  }
  void WaitUntilWritable() {
    if (flushing_) Check(flushing_->capture->Wait());
    flushing_.reset();
    if (context_->capture) Check(context_->capture->Wait());
  }

  /// Writes every modified entry to RocksDB and empties the cache (it is full).
  void WriteBack() {
    if (!Writable()) WaitUntilWritable();
    for (auto& [key, e] : cache_) {
      if (!e.dirty) continue;
      const std::string k = EncodeKey(e.key_group, key);
      Check(e.present ? store_->Put(cf_, k, Encode(e.value)) : store_->Delete(cf_, k));
    }
    cache_.clear();
  }

  /// The cache entry of `key`, loaded from the batch being flushed or from RocksDB.
  Entry* Load(int key_group, const Key& key) {
    auto it = cache_.find(key);
    if (it != cache_.end()) return &it->second;
    Entry& e = Slot(key_group, key);
    if (!Writable() && flushing_) {
      // RocksDB may not have the batch yet: the batch is the truth.
      if (const Entry* pending = flushing_->Find(key)) {
        e.value = pending->value;  // clean here: the capture writes it
        e.present = pending->present;
        return &e;
      }
    }
    const std::string k = EncodeKey(key_group, key);
    std::string bytes;
    auto found = store_->Get(cf_, k, &bytes);
    Check(found.status());
    if (*found) {
      ByteReader r(bytes);
      if (!Serializer<V>::Read(r, &e.value)) {
        throw std::runtime_error("state '" + name() + "' holds an entry that does not deserialize");
      }
      e.present = true;
    }
    return &e;
  }

  /// The cache slot of `key` (absent and clean when new), after making room.
  Entry& Slot(int key_group, const Key& key) {
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    // While a snapshot waits for its view the task must not write to RocksDB: the cache
    // grows past its limit until then.
    if (cache_.size() >= limit_ && Writable()) WriteBack();
    Entry& e = cache_[key];
    e.key_group = key_group;
    return e;
  }

  /// Every current entry (cache over RocksDB), for size accounting.
  template <typename F>
  void ForEachEntry(F&& f) {
    for (int kg = range_.start; kg <= range_.end; ++kg) ForEachInKeyGroup(kg, f);
  }

  KeyGroupRange range_;
  RocksDbTableContext* context_;
  std::shared_ptr<internal::RocksDbStore> store_;
  size_t limit_;
  int cf_ = 0;
  absl::flat_hash_map<Key, Entry> cache_;
  std::shared_ptr<Flush> flushing_;  // this table's batch in a running capture
};

/// How the RocksDB backend keeps a state.
struct RocksDbTables {
  using Context = RocksDbTableContext;
  /// Every snapshot of the backend gets a capture its tables hand their batches to.
  static void BeginSnapshot(Context& context) {
    if (context.capture) (void)context.capture->Wait();  // the previous one (tables check it)
    context.capture = std::make_shared<internal::RocksDbCapture>(context.store);
  }
  static RocksDbTableContext* Database(Context& context) { return &context; }
  template <typename K, typename N, typename V>
  using Table = RocksDbStateTable<K, N, V>;
};

/// Keyed state in RocksDB (one database per operator instance, given in the context).
template <typename K>
using RocksDbKeyedStateBackend = KeyedStateBackendImpl<K, RocksDbTables>;

}  // namespace sluice
