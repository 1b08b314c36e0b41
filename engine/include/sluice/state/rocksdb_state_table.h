#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "sluice/core/key_groups.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/heap_keyed_state_backend.h"
#include "sluice/state/rocksdb_store.h"

namespace sluice {

/// What a RocksDB state table needs from its backend: the operator instance's database, and
/// how many entries a table keeps deserialized in memory.
struct RocksDbTableContext {
  std::shared_ptr<RocksDbStore> store;
  size_t cache_entries = 100'000;
};

/// The entries of one state in a column family of RocksDB, behind a write-back cache of
/// deserialized entries. The cache is what makes RocksDB usable from a record-at-a-time
/// operator (a RocksDB access costs microseconds): entries are read once, modified in place
/// (Find() returns a pointer, as the heap table does), and written back in one batch when
/// the cache is full or a snapshot is taken. Same interface as StateTable; task thread only.
///
/// Snapshot: the synchronous part moves the modified entries aside (no copy, no RocksDB
/// call); the snapshot writes them to RocksDB from the snapshot thread, then reads the key
/// groups under a RocksDB snapshot. While that batch is being written the task reads through
/// it and writes nothing to RocksDB itself, so the database holds exactly the state at the
/// barrier when the RocksDB snapshot is taken.
template <typename K, typename N, typename V>
class RocksDbStateTable final : public StateTableBase {
 public:
  using Key = internal::StateKey<K, N>;

  RocksDbStateTable(std::string name, KeyGroupRange range, RocksDbTableContext* context)
      : StateTableBase(name),
        range_(range),
        store_(context->store),
        limit_(context->cache_entries) {
    auto cf = store_->ColumnFamily(name);
    if (!cf.ok()) throw std::runtime_error(std::string(cf.status().message()));
    cf_ = *cf;
  }
  ~RocksDbStateTable() override { WaitForFlush(); }

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
  size_t SerializedBytes() const override {
    size_t n = 0;
    std::string scratch;
    const_cast<RocksDbStateTable*>(this)->ForEachEntry([&](const Key& key, const V& value) {
      internal::AddSerializedSize(key, value, scratch, &n);
    });
    return n;
  }
  std::string TypeTag() const override { return StateTypeTag<K, N, V>(); }

  std::unique_ptr<StateTableSnapshot> TakeSnapshot() override {
    WaitForFlush();  // a previous snapshot's batch, if it is still being written
    auto flush = std::make_shared<Flush>();
    flush->store = store_;
    flush->cf = cf_;
    flush->entries.swap(cache_);  // O(1): the snapshot thread encodes the modified ones
    flushing_ = flush;
    return std::make_unique<Snapshot>(std::move(flush), range_);
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

  /// The cache as it was at a snapshot, on its way to RocksDB: the snapshot thread writes
  /// its modified entries (once); until then the task reads through it.
  struct Flush {
    std::shared_ptr<RocksDbStore> store;
    int cf = 0;
    absl::flat_hash_map<Key, Entry> entries;  // read-only once made
    std::mutex mu;
    std::condition_variable cv;
    bool written = false;  // guarded by mu
    absl::Status status;   // guarded by mu

    absl::Status WriteOnce() {
      std::lock_guard<std::mutex> lock(mu);
      if (written) return status;
      for (const auto& [key, e] : entries) {
        if (!e.dirty) continue;
        const std::string k = EncodeKey(e.key_group, key);
        status = e.present ? store->Put(cf, k, Encode(e.value)) : store->Delete(cf, k);
        if (!status.ok()) break;
      }
      written = true;
      cv.notify_all();
      return status;
    }
    void Wait() {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return written; });
    }
    const Entry* Find(const Key& key) const {
      auto it = entries.find(key);
      return it == entries.end() ? nullptr : &it->second;
    }
  };

  class Snapshot final : public StateTableSnapshot {
   public:
    Snapshot(std::shared_ptr<Flush> flush, KeyGroupRange range)
        : flush_(std::move(flush)), range_(range) {}
    // A snapshot dropped unread still hands its batch to RocksDB: the table relies on it.
    ~Snapshot() override { (void)flush_->WriteOnce(); }
    void WriteKeyGroup(int key_group, ByteWriter& out) const override {
      std::call_once(once_, [&] {
        Check(flush_->WriteOnce());
        view_ = flush_->store->TakeSnapshot();
      });
      std::vector<std::pair<std::string, std::string>> entries;
      Check(view_->ForEachInKeyGroup(
          flush_->cf, key_group, [&](std::string_view k, std::string_view v) {
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

   private:
    std::shared_ptr<Flush> flush_;
    KeyGroupRange range_;
    mutable std::once_flag once_;
    mutable std::unique_ptr<RocksDbStore::Snapshot> view_;
  };

  static void Check(const absl::Status& s) {
    if (!s.ok()) throw std::runtime_error(std::string(s.message()));
  }
  static std::string EncodeKey(int key_group, const Key& key) {
    std::string out = RocksDbStore::KeyGroupPrefix(key_group);
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

  /// Drops the flushing batch once the snapshot wrote it (from then on RocksDB has it).
  void WaitForFlush() {
    if (!flushing_) return;
    flushing_->Wait();
    Check(flushing_->status);
    flushing_.reset();
  }
  bool FlushDone() {
    if (!flushing_) return true;
    {
      std::lock_guard<std::mutex> lock(flushing_->mu);
      if (!flushing_->written) return false;
      Check(flushing_->status);
    }
    flushing_.reset();  // after the lock: this may free the mutex
    return true;
  }

  /// Writes every modified entry to RocksDB and empties the cache (it is full).
  void WriteBack() {
    if (!FlushDone()) WaitForFlush();
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
    if (flushing_ && !FlushDone()) {
      if (const Entry* pending = flushing_->Find(key)) {
        e.value = pending->value;  // clean here: the snapshot writes it
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
    // While a snapshot's batch is being written the task must not write to RocksDB: the
    // cache grows past its limit until then.
    if (cache_.size() >= limit_ && FlushDone()) WriteBack();
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
  std::shared_ptr<RocksDbStore> store_;
  size_t limit_;
  int cf_ = 0;
  absl::flat_hash_map<Key, Entry> cache_;
  std::shared_ptr<Flush> flushing_;  // the batch a snapshot is writing, until done
};

/// How the RocksDB backend keeps a state.
struct RocksDbTables {
  using Context = RocksDbTableContext;
  template <typename K, typename N, typename V>
  using Table = RocksDbStateTable<K, N, V>;
};

/// Keyed state in RocksDB (one database per operator instance, given in the context).
template <typename K>
using RocksDbKeyedStateBackend = KeyedStateBackendImpl<K, RocksDbTables>;

}  // namespace sluice
