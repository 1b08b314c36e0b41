#pragma once

#include <memory>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "sluice/core/key_groups.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/internal/copy_on_write_state_map.h"
#include "sluice/state/state_table.h"

namespace sluice {

struct RocksDbTableContext;

/// What a heap state table needs from its backend: nothing.
struct HeapTableContext {};

/// The entries of one state, one copy-on-write hash map per key group of the owning
/// subtask, so a snapshot can be cut per key group and redistributed on rescale, and taken
/// while processing goes on. Task thread only (its snapshots excepted).
template <typename K, typename N, typename V>
class StateTable final : public StateTableBase {
 public:
  using Key = internal::StateKey<K, N>;
  using Map = internal::CopyOnWriteStateMap<Key, V>;

  StateTable(std::string name, KeyGroupRange range, HeapTableContext* = nullptr)
      : StateTableBase(std::move(name)), range_(range) {
    for (int i = 0; i < range.size(); ++i) maps_.push_back(std::make_unique<Map>());
  }

  /// The entry for reading only (null if absent).
  const V* FindForRead(int key_group, const K& key, const N& ns) const {
    return maps_[key_group - range_.start]->Find(internal::MakeStateKey(key, ns));
  }
  /// The entry for modifying in place (null if absent).
  V* Find(int key_group, const K& key, const N& ns) {
    return MapFor(key_group).FindForWrite(internal::MakeStateKey(key, ns));
  }
  /// Returns the entry, default-constructing it if absent.
  V& GetOrCreate(int key_group, const K& key, const N& ns) {
    return MapFor(key_group).GetOrCreate(internal::MakeStateKey(key, ns));
  }
  void Put(int key_group, const K& key, const N& ns, V value) {
    MapFor(key_group).Put(internal::MakeStateKey(key, ns), std::move(value));
  }
  void Remove(int key_group, const K& key, const N& ns) {
    MapFor(key_group).Remove(internal::MakeStateKey(key, ns));
  }

  size_t EntryCount() const override {
    size_t n = 0;
    for (const auto& m : maps_) n += m->size();
    return n;
  }
  size_t SerializedBytes() const override {
    std::string scratch;
    size_t n = 0;
    for (const auto& m : maps_) {
      m->ForEach([&](const Key& key, const V& value) {
        internal::AddSerializedSize(key, value, scratch, &n);
      });
    }
    return n;
  }
  std::string TypeTag() const override { return StateTypeTag<K, N, V>(); }
  std::string LegacyTypeTag() const override;

  class Snapshot final : public StateTableSnapshot {
   public:
    explicit Snapshot(KeyGroupRange range) : range_(range) {}
    void WriteKeyGroup(int key_group, ByteWriter& out) const override {
      const auto& m = *maps_[key_group - range_.start];
      out.WriteVarint(m.size());
      m.ForEach([&](const Key& key, const V& value) {
        Serializer<Key>::Write(key, out);
        Serializer<V>::Write(value, out);
      });
    }

   private:
    friend class StateTable;
    KeyGroupRange range_;
    std::vector<std::unique_ptr<typename Map::Snapshot>> maps_;
  };
  std::unique_ptr<StateTableSnapshot> TakeSnapshot() override {
    auto s = std::make_unique<Snapshot>(range_);
    for (auto& m : maps_) s->maps_.push_back(m->TakeSnapshot());
    return s;
  }
  bool ReadKeyGroup(int key_group, ByteReader& in) override {
    uint64_t n;
    if (!in.ReadVarint(&n) || !in.CheckCount(n, 1)) return false;
    Map& m = MapFor(key_group);
    for (uint64_t i = 0; i < n; ++i) {
      Key key{};
      V value{};
      if (!Serializer<Key>::Read(in, &key) || !Serializer<V>::Read(in, &value)) return false;
      m.Put(key, std::move(value));
    }
    return true;
  }

  /// Removes the entries of one key group for which `pred(key, value)` holds.
  template <typename Pred>
  size_t EraseIf(int key_group, Pred&& pred) {
    return MapFor(key_group).EraseIf(std::forward<Pred>(pred));
  }
  const KeyGroupRange& key_group_range() const { return range_; }
  /// Calls `f(key, value)` for the entries of one key group (tests, size accounting).
  template <typename F>
  void ForEachInKeyGroup(int key_group, F&& f) const {
    maps_[key_group - range_.start]->ForEach(std::forward<F>(f));
  }

 private:
  Map& MapFor(int key_group) { return *maps_[key_group - range_.start]; }

  KeyGroupRange range_;
  std::vector<std::unique_ptr<Map>> maps_;
};

/// The type tag of Sluice 0.1.0: the typeid name of the heap table's class for the types
/// (which is why StateTable keeps its name and namespace).
template <typename K, typename N, typename V>
std::string LegacyStateTypeTag() {
  return typeid(StateTable<K, N, V>).name();
}

template <typename K, typename N, typename V>
std::string StateTable<K, N, V>::LegacyTypeTag() const {
  return LegacyStateTypeTag<K, N, V>();
}

/// How the heap backend keeps a state: a StateTable (copy-on-write maps per key group).
struct HeapTables {
  using Context = HeapTableContext;
  static void BeginSnapshot(Context&) {}
  static RocksDbTableContext* Database(Context&) { return nullptr; }
  template <typename K, typename N, typename V>
  using Table = StateTable<K, N, V>;
};

}  // namespace sluice
