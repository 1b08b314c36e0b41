#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "sluice/state/heap_keyed_state_backend.h"
#include "sluice/state/rocksdb_state_table.h"

namespace sluice {

/// The keyed state backend of one operator instance, heap or RocksDB as the job chose, behind
/// one type: the contexts user functions see (KeyedRuntimeContext, TriggerContext, ...) stay
/// one type whatever the backend. `Visit(f)` calls `f` with the concrete backend; the calls
/// every record makes (current key) branch once on a pointer.
template <typename K>
class AnyKeyedBackend {
 public:
  AnyKeyedBackend() = default;
  explicit AnyKeyedBackend(HeapKeyedStateBackend<K>* heap) : heap_(heap) {}
  explicit AnyKeyedBackend(RocksDbKeyedStateBackend<K>* rocks) : rocks_(rocks) {}

  template <typename F>
  decltype(auto) Visit(F&& f) const {
    if (heap_ != nullptr) return f(*heap_);
    return f(*rocks_);
  }

  KeyedStateBackendBase* base() const {
    return heap_ != nullptr ? static_cast<KeyedStateBackendBase*>(heap_) : rocks_;
  }
  void SetCurrentKey(K key, int key_group) const {
    heap_ ? heap_->SetCurrentKey(std::move(key), key_group)
          : rocks_->SetCurrentKey(std::move(key), key_group);
  }
  void SetCurrentKey(K key) const {
    heap_ ? heap_->SetCurrentKey(std::move(key)) : rocks_->SetCurrentKey(std::move(key));
  }
  const K& CurrentKey() const { return heap_ ? heap_->CurrentKey() : rocks_->CurrentKey(); }
  int CurrentKeyGroup() const {
    return heap_ ? heap_->CurrentKeyGroup() : rocks_->CurrentKeyGroup();
  }
  const KeyGroupRange& key_group_range() const { return base()->key_group_range(); }
  void SetProcessingTimeService(const ProcessingTimeService* pts) const {
    Visit([&](auto& b) { b.SetProcessingTimeService(pts); });
  }
  void SetEventTime(Timestamp t) const { heap_ ? heap_->SetEventTime(t) : rocks_->SetEventTime(t); }

 private:
  HeapKeyedStateBackend<K>* heap_ = nullptr;
  RocksDbKeyedStateBackend<K>* rocks_ = nullptr;
};

/// One state table of an AnyKeyedBackend: the same calls as StateTable, on whichever kind the
/// backend has (for operators that use a table directly on their per-record path).
template <typename K, typename N, typename V>
class AnyStateTable {
 public:
  AnyStateTable() = default;
  AnyStateTable(const AnyKeyedBackend<K>& backend, const std::string& name) {
    backend.Visit([&](auto& b) {
      using Table = std::remove_pointer_t<decltype(b.template GetOrCreateTable<N, V>(name))>;
      Table* t = b.template GetOrCreateTable<N, V>(name);
      if constexpr (std::is_same_v<Table, StateTable<K, N, V>>) {
        heap_ = t;
      } else {
        rocks_ = t;
      }
    });
  }
  V* Find(int kg, const K& key, const N& ns) {
    return heap_ ? heap_->Find(kg, key, ns) : rocks_->Find(kg, key, ns);
  }
  const V* FindForRead(int kg, const K& key, const N& ns) {
    return heap_ ? heap_->FindForRead(kg, key, ns) : rocks_->FindForRead(kg, key, ns);
  }
  void Put(int kg, const K& key, const N& ns, V value) {
    heap_ ? heap_->Put(kg, key, ns, std::move(value)) : rocks_->Put(kg, key, ns, std::move(value));
  }
  void Remove(int kg, const K& key, const N& ns) {
    heap_ ? heap_->Remove(kg, key, ns) : rocks_->Remove(kg, key, ns);
  }

 private:
  StateTable<K, N, V>* heap_ = nullptr;
  RocksDbStateTable<K, N, V>* rocks_ = nullptr;
};

}  // namespace sluice
