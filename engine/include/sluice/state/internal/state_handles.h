#pragma once

#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "sluice/state/descriptors.h"
#include "sluice/state/state.h"
#include "sluice/state/state_ttl.h"

// The state handles a keyed state backend gives out (ValueState, ListState, ... over one of
// its tables). Internal: user code sees only the interfaces in sluice/state/state.h.

namespace sluice::internal {

/// Common part of every state handle (ValueState, ListState, ...): the table and where the current
/// key lives. With kTtl the table stores TtlValue<V> and this class applies the TTL rules, so every
/// kind of state gets TTL from the same few lines. Backend is a KeyedStateBackendImpl; its tables
/// (heap or RocksDB) have the same interface.
template <typename Backend, typename N, typename V, bool kTtl>
class StateAccess {
 public:
  using Stored = std::conditional_t<kTtl, TtlValue<V>, V>;
  using Table = typename Backend::template Table<N, Stored>;

  StateAccess(Backend* backend, Table* table, StateTtlConfig ttl = {})
      : backend_(backend), table_(table), ttl_(ttl) {}
  void SetCurrentNamespace(N ns) { namespace_ = std::move(ns); }
  const N& current_namespace() const { return namespace_; }

 protected:
  /// The value for reading (null if absent or expired).
  const V* FindRead() const {
    if constexpr (kTtl) {
      if (ttl_.update_type == StateTtlConfig::UpdateType::kOnReadAndWrite) return FindWrite();
      MaybeSweep();
      const Stored* e =
          table_->FindForRead(backend_->CurrentKeyGroup(), backend_->CurrentKey(), namespace_);
      if (e == nullptr) return nullptr;
      if (Expired(*e)) {
        Remove();  // cleanup on access
        return nullptr;
      }
      return &e->value;
    } else {
      return table_->FindForRead(backend_->CurrentKeyGroup(), backend_->CurrentKey(), namespace_);
    }
  }
  /// The value for modifying in place (null if absent or expired); counts as a write.
  V* FindWrite() const {
    if constexpr (kTtl) {
      MaybeSweep();
      Stored* e = FindStored();
      if (e == nullptr) return nullptr;
      if (Expired(*e)) {
        Remove();
        return nullptr;
      }
      e->last_access = Now();
      return &e->value;
    } else {
      return FindStored();
    }
  }
  /// The value, default-constructed if absent or expired; counts as a write.
  V& GetOrCreate() const {
    if constexpr (kTtl) {
      Stored* e = FindStored();
      if (e == nullptr) {
        e = &table_->GetOrCreate(backend_->CurrentKeyGroup(), backend_->CurrentKey(), namespace_);
      } else if (Expired(*e)) {
        e->value = V{};
      }
      e->last_access = Now();
      return e->value;
    } else {
      return table_->GetOrCreate(backend_->CurrentKeyGroup(), backend_->CurrentKey(), namespace_);
    }
  }
  void Put(V v) const {
    if constexpr (kTtl) {
      MaybeSweep();
      table_->Put(backend_->CurrentKeyGroup(), backend_->CurrentKey(), namespace_,
                  Stored{std::move(v), Now()});
    } else {
      table_->Put(backend_->CurrentKeyGroup(), backend_->CurrentKey(), namespace_, std::move(v));
    }
  }
  void Remove() const {
    table_->Remove(backend_->CurrentKeyGroup(), backend_->CurrentKey(), namespace_);
  }

  Backend* backend_;
  Table* table_;
  StateTtlConfig ttl_;
  N namespace_{};

 private:
  Stored* FindStored() const {
    return table_->Find(backend_->CurrentKeyGroup(), backend_->CurrentKey(), namespace_);
  }
  /// The TTL's clock: processing time, or the event time the operator processes.
  Timestamp Now() const { return ttl_.event_time ? backend_->EventTime() : backend_->Now(); }
  bool Expired(const TtlValue<V>& e) const { return TtlElapsed(Now(), e.last_access, ttl_.ttl_ms); }
  /// Incremental cleanup: every `cleanup_every` accesses, one key group loses its expired
  /// entries, round robin.
  void MaybeSweep() const {
    if constexpr (kTtl) {
      if (++accesses_ % ttl_.cleanup_every != 0) return;
      const KeyGroupRange& range = table_->key_group_range();
      if (range.size() == 0) return;
      const int kg = range.start + sweep_next_;
      sweep_next_ = (sweep_next_ + 1) % range.size();
      const Timestamp now = Now();
      const int64_t ttl = ttl_.ttl_ms;
      table_->EraseIf(kg, [&](const auto&, const TtlValue<V>& e) {
        return TtlElapsed(now, e.last_access, ttl);
      });
    }
  }
  mutable int64_t accesses_ = 0;
  mutable int sweep_next_ = 0;
};

template <typename Backend, typename N, typename V, bool kTtl = false>
class ValueStateHandle final : public ValueState<V>, public StateAccess<Backend, N, V, kTtl> {
 public:
  using StateAccess<Backend, N, V, kTtl>::StateAccess;
  std::optional<V> Value() const override {
    const V* v = this->FindRead();
    return v ? std::optional<V>(*v) : std::nullopt;
  }
  void Update(V value) override { this->Put(std::move(value)); }
  void Clear() override { this->Remove(); }
};

template <typename Backend, typename N, typename V, bool kTtl = false>
class ListStateHandle final : public ListState<V>,
                              public StateAccess<Backend, N, std::vector<V>, kTtl> {
 public:
  using StateAccess<Backend, N, std::vector<V>, kTtl>::StateAccess;
  std::vector<V> Get() const override {
    auto* v = this->FindRead();
    return v ? *v : std::vector<V>{};
  }
  void Add(V value) override { this->GetOrCreate().push_back(std::move(value)); }
  void AddAll(std::vector<V> values) override {
    if (values.empty()) return;
    auto& list = this->GetOrCreate();
    for (auto& v : values) list.push_back(std::move(v));
  }
  void Update(std::vector<V> values) override {
    if (values.empty()) {
      this->Remove();
    } else {
      this->Put(std::move(values));
    }
  }
  void Clear() override { this->Remove(); }
};

template <typename Backend, typename N, typename UK, typename UV, bool kTtl = false>
class MapStateHandle final : public MapState<UK, UV>,
                             public StateAccess<Backend, N, absl::flat_hash_map<UK, UV>, kTtl> {
  using Base = StateAccess<Backend, N, absl::flat_hash_map<UK, UV>, kTtl>;

 public:
  using Base::StateAccess;
  std::optional<UV> Get(const UK& key) const override {
    auto* m = this->FindRead();
    if (m == nullptr) return std::nullopt;
    auto it = m->find(key);
    return it == m->end() ? std::nullopt : std::optional<UV>(it->second);
  }
  void Put(UK key, UV value) override {
    this->GetOrCreate().insert_or_assign(std::move(key), std::move(value));
  }
  void Remove(const UK& key) override {
    auto* m = this->FindWrite();
    if (m == nullptr) return;
    m->erase(key);
    if (m->empty()) Base::Remove();
  }
  bool Contains(const UK& key) const override {
    auto* m = this->FindRead();
    return m != nullptr && m->contains(key);
  }
  std::vector<std::pair<UK, UV>> Entries() const override {
    auto* m = this->FindRead();
    if (m == nullptr) return {};
    return std::vector<std::pair<UK, UV>>(m->begin(), m->end());
  }
  bool IsEmpty() const override {
    auto* m = this->FindRead();
    return m == nullptr || m->empty();
  }
  void Clear() override { Base::Remove(); }
};

template <typename Backend, typename N, typename V, bool kTtl = false>
class ReducingStateHandle final : public ReducingState<V>, public StateAccess<Backend, N, V, kTtl> {
 public:
  ReducingStateHandle(Backend* backend, typename StateAccess<Backend, N, V, kTtl>::Table* table,
                      typename ReducingStateDescriptor<V>::ReduceFn reduce, StateTtlConfig ttl = {})
      : StateAccess<Backend, N, V, kTtl>(backend, table, ttl), reduce_(std::move(reduce)) {}
  std::optional<V> Get() const override {
    const V* v = this->FindRead();
    return v ? std::optional<V>(*v) : std::nullopt;
  }
  void Add(V value) override {
    V* v = this->FindWrite();
    if (v == nullptr) {
      this->Put(std::move(value));
    } else {
      *v = reduce_(*v, value);
    }
  }
  void Clear() override { this->Remove(); }

 private:
  typename ReducingStateDescriptor<V>::ReduceFn reduce_;
};

template <typename Backend, typename N, typename In, typename Acc, typename Out, bool kTtl = false>
class AggregatingStateHandle final : public AggregatingState<In, Out>,
                                     public StateAccess<Backend, N, Acc, kTtl> {
 public:
  AggregatingStateHandle(Backend* backend,
                         typename StateAccess<Backend, N, Acc, kTtl>::Table* table,
                         const AggregateFunction<In, Acc, Out>* fn,
                         std::shared_ptr<const void> keep_alive, StateTtlConfig ttl = {})
      : StateAccess<Backend, N, Acc, kTtl>(backend, table, ttl),
        fn_(fn),
        keep_alive_(std::move(keep_alive)) {}
  std::optional<Out> Get() const override {
    const Acc* acc = this->FindRead();
    return acc ? std::optional<Out>(fn_->GetResult(*acc)) : std::nullopt;
  }
  void Add(const In& value) override {
    Acc* acc = this->FindWrite();
    if (acc == nullptr) {
      Acc fresh = fn_->CreateAccumulator();
      fn_->Add(value, fresh);
      this->Put(std::move(fresh));
    } else {
      fn_->Add(value, *acc);
    }
  }
  void Clear() override { this->Remove(); }

 private:
  const AggregateFunction<In, Acc, Out>* fn_;
  std::shared_ptr<const void> keep_alive_;
};

}  // namespace sluice::internal
