#pragma once

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeindex>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "sluice/core/format.h"
#include "sluice/core/key_groups.h"
#include "sluice/core/status_macros.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/copy_on_write_state_map.h"
#include "sluice/state/descriptors.h"
#include "sluice/state/state.h"
#include "sluice/state/state_ttl.h"
#include "sluice/state/void_namespace.h"
#include "sluice/timer/timer_service.h"

namespace sluice {

namespace internal {

/// The key of a state entry: just K for plain keyed state, (K, N) when namespaced.
template <typename K, typename N>
using StateKey = std::conditional_t<std::is_same_v<N, VoidNamespace>, K, std::pair<K, N>>;

template <typename K, typename N>
StateKey<K, N> MakeStateKey(const K& key, const N& ns) {
  if constexpr (std::is_same_v<N, VoidNamespace>) {
    return key;
  } else {
    return {key, ns};
  }
}

/// Adds what one entry takes serialized to `*total` (`scratch` is reused between calls).
template <typename Key, typename V>
void AddSerializedSize(const Key& key, const V& value, std::string& scratch, size_t* total) {
  scratch.clear();
  ByteWriter w(&scratch);
  Serializer<Key>::Write(key, w);
  Serializer<V>::Write(value, w);
  *total += scratch.size();
}

}  // namespace internal

/// A frozen view of one state table, taken on the task thread and serialized on another.
class StateTableSnapshot {
 public:
  virtual ~StateTableSnapshot() = default;
  /// Appends the entries of one key group as they were when the snapshot was taken.
  virtual void WriteKeyGroup(int key_group, ByteWriter& out) const = 0;
};

/// Untyped view of a state table, for size accounting and snapshots.
class StateTableBase {
 public:
  explicit StateTableBase(std::string name) : name_(std::move(name)) {}
  virtual ~StateTableBase() = default;
  const std::string& name() const { return name_; }
  virtual size_t EntryCount() const = 0;
  /// What the entries take serialized (keys, namespaces and values): the size a snapshot of
  /// this state would have. Walks every entry.
  virtual size_t SerializedBytes() const = 0;
  /// Names the stored types, so a restore can refuse state written with other types.
  virtual std::string TypeTag() const = 0;
  /// Freezes the current entries (cheap: see CopyOnWriteStateMap).
  virtual std::unique_ptr<StateTableSnapshot> TakeSnapshot() = 0;
  /// Adds the entries of one key group written by WriteKeyGroup; false if corrupt.
  virtual bool ReadKeyGroup(int key_group, ByteReader& in) = 0;

 private:
  std::string name_;
};

template <typename K, typename N, typename V>
class StateTable;

/// Names the stored types of a state, the same for every backend, so a restore can refuse
/// state written with other types (and either backend restores the other's snapshots).
template <typename K, typename N, typename V>
std::string StateTypeTag() {
  return typeid(StateTable<K, N, V>).name();
}

/// What a heap state table needs from its backend: nothing.
struct HeapTableContext {};

/// The entries of one state, one copy-on-write hash map per key group of the owning
/// subtask, so a snapshot can be cut per key group and redistributed on rescale, and taken
/// while processing goes on. Task thread only (its snapshots excepted).
template <typename K, typename N, typename V>
class StateTable final : public StateTableBase {
 public:
  using Key = internal::StateKey<K, N>;
  using Map = CopyOnWriteStateMap<Key, V>;

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

/// A frozen view of a keyed state backend; it must not outlive the backend.
class KeyedStateSnapshot {
 public:
  virtual ~KeyedStateSnapshot() = default;
  /// Every state's entries of one key group: a backend-independent format (state name, type
  /// tag, entries) that any backend can restore, at any parallelism. Any one thread.
  virtual std::string KeyGroup(int key_group) const = 0;
  /// The same for only the states restored but not registered since: a backend keeps them
  /// serialized in memory, so a native (RocksDB) checkpoint of its database lacks them.
  virtual std::string UnregisteredKeyGroup(int key_group) const = 0;
};

struct RocksDbTableContext;

/// Untyped base of a keyed state backend, for the runtime.
class KeyedStateBackendBase {
 public:
  virtual ~KeyedStateBackendBase() = default;
  virtual size_t TotalEntryCount() const = 0;
  virtual size_t TotalSerializedBytes() const = 0;
  virtual const KeyGroupRange& key_group_range() const = 0;

  /// Freezes every state (task thread, between records; cheap). The snapshot is then
  /// serialized off the task thread while processing goes on.
  virtual std::unique_ptr<KeyedStateSnapshot> TakeSnapshot() = 0;
  /// Restores one key group written by SnapshotKeyGroup. States not registered yet are kept
  /// serialized and loaded when the operator registers them (in Open()).
  virtual absl::Status RestoreKeyGroup(int key_group, std::string_view bytes) = 0;
  /// The database behind the state (RocksDB), whose own files checkpoints can store
  /// incrementally; null for state on the heap.
  virtual RocksDbTableContext* database() { return nullptr; }
};

template <typename K, typename Tables>
class KeyedStateBackendImpl;

namespace internal {

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
      e->last_access = backend_->Now();
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
      e->last_access = backend_->Now();
      return e->value;
    } else {
      return table_->GetOrCreate(backend_->CurrentKeyGroup(), backend_->CurrentKey(), namespace_);
    }
  }
  void Put(V v) const {
    if constexpr (kTtl) {
      MaybeSweep();
      table_->Put(backend_->CurrentKeyGroup(), backend_->CurrentKey(), namespace_,
                  Stored{std::move(v), backend_->Now()});
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
  bool Expired(const TtlValue<V>& e) const {
    return backend_->Now() - e.last_access >= ttl_.ttl_ms;
  }
  /// Incremental cleanup: every `cleanup_every` accesses, one key group loses its expired
  /// entries, round robin.
  void MaybeSweep() const {
    if constexpr (kTtl) {
      if (++accesses_ % ttl_.cleanup_every != 0) return;
      const KeyGroupRange& range = table_->key_group_range();
      if (range.size() == 0) return;
      const int kg = range.start + sweep_next_;
      sweep_next_ = (sweep_next_ + 1) % range.size();
      const Timestamp now = backend_->Now();
      const int64_t ttl = ttl_.ttl_ms;
      table_->EraseIf(
          kg, [&](const auto&, const TtlValue<V>& e) { return now - e.last_access >= ttl; });
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

}  // namespace internal

/// How the heap backend keeps a state: a StateTable (copy-on-write maps per key group).
struct HeapTables {
  using Context = HeapTableContext;
  static void BeginSnapshot(Context&) {}
  static RocksDbTableContext* Database(Context&) { return nullptr; }
  template <typename K, typename N, typename V>
  using Table = StateTable<K, N, V>;
};

/// A keyed state backend: one table per registered state, of the kind `Tables` says (on the
/// heap, or in RocksDB), and the current key. Owned by one keyed operator; used only on its
/// task's thread. The operator sets the current key before it calls user code; state
/// handles read it from here.
template <typename K, typename Tables>
class KeyedStateBackendImpl final : public KeyedStateBackendBase {
 public:
  using KeyType = K;
  template <typename N, typename V>
  using Table = typename Tables::template Table<K, N, V>;

  KeyedStateBackendImpl(KeyGroupRange range, int max_parallelism,
                        typename Tables::Context context = {})
      : range_(range), max_parallelism_(max_parallelism), context_(std::move(context)) {}

  /// Sets the key that state accesses and timers refer to. Fails (throws, which fails the
  /// task) if the key belongs to another subtask: a key selector that is not deterministic.
  void SetCurrentKey(K key, int key_group) {
    if (!range_.Contains(key_group)) [[unlikely]] {
      throw std::runtime_error(absl::StrCat(
          "key '", ToString(key), "' is in key group ", key_group,
          " which this subtask does not own (its range is ", range_.start, "-", range_.end,
          "): the key selector must return the same key for the same record every time"));
    }
    current_key_ = std::move(key);
    current_key_group_ = key_group;
  }
  void SetCurrentKey(K key) {
    int kg = KeyGroupFor(key, max_parallelism_);
    SetCurrentKey(std::move(key), kg);
  }
  const K& CurrentKey() const { return current_key_; }
  int CurrentKeyGroup() const { return current_key_group_; }
  const KeyGroupRange& key_group_range() const override { return range_; }
  int max_parallelism() const { return max_parallelism_; }

  /// Returns the table for `name`, creating it on first use; a second registration of the
  /// same name with other types is a user error and throws.
  template <typename N, typename V>
  Table<N, V>* GetOrCreateTable(const std::string& name) {
    auto it = tables_.find(name);
    if (it == tables_.end()) {
      auto table = std::make_unique<Table<N, V>>(name, range_, &context_);
      auto* raw = table.get();
      tables_.emplace(name, Entry{std::type_index(typeid(Table<N, V>)), std::move(table)});
      ApplyPendingRestore(name, raw);
      return raw;
    }
    if (it->second.type != std::type_index(typeid(Table<N, V>))) {
      throw std::logic_error(
          absl::StrCat("state '", name, "' was registered twice with different types"));
    }
    return static_cast<Table<N, V>*>(it->second.table.get());
  }

  /// Returns the handle for a descriptor, creating state and handle on first use. The
  /// handle is owned by the backend; N is the namespace type (VoidNamespace for plain state).
  /// These are the engine's own (window, trigger) states: TTL is refused here.
  template <typename N = VoidNamespace, typename V>
  internal::ValueStateHandle<KeyedStateBackendImpl, N, V>* GetState(
      const ValueStateDescriptor<V>& d) {
    RefuseTtl<N>(d);
    return MakeHandle<internal::ValueStateHandle<KeyedStateBackendImpl, N, V>>(
        d.name(), GetOrCreateTable<N, V>(d.name()));
  }
  template <typename N = VoidNamespace, typename V>
  internal::ListStateHandle<KeyedStateBackendImpl, N, V>* GetListState(
      const ListStateDescriptor<V>& d) {
    RefuseTtl<N>(d);
    return MakeHandle<internal::ListStateHandle<KeyedStateBackendImpl, N, V>>(
        d.name(), GetOrCreateTable<N, std::vector<V>>(d.name()));
  }
  template <typename N = VoidNamespace, typename UK, typename UV>
  internal::MapStateHandle<KeyedStateBackendImpl, N, UK, UV>* GetMapState(
      const MapStateDescriptor<UK, UV>& d) {
    RefuseTtl<N>(d);
    return MakeHandle<internal::MapStateHandle<KeyedStateBackendImpl, N, UK, UV>>(
        d.name(), GetOrCreateTable<N, absl::flat_hash_map<UK, UV>>(d.name()));
  }
  template <typename N = VoidNamespace, typename V>
  internal::ReducingStateHandle<KeyedStateBackendImpl, N, V>* GetReducingState(
      const ReducingStateDescriptor<V>& d) {
    RefuseTtl<N>(d);
    return MakeHandle<internal::ReducingStateHandle<KeyedStateBackendImpl, N, V>>(
        d.name(), GetOrCreateTable<N, V>(d.name()), d.reduce());
  }
  template <typename N = VoidNamespace, typename In, typename Acc, typename Out>
  internal::AggregatingStateHandle<KeyedStateBackendImpl, N, In, Acc, Out>* GetAggregatingState(
      const AggregatingStateDescriptor<In, Acc, Out>& d) {
    RefuseTtl<N>(d);
    auto fn = std::make_shared<AggregatingStateDescriptor<In, Acc, Out>>(d);
    return MakeHandle<internal::AggregatingStateHandle<KeyedStateBackendImpl, N, In, Acc, Out>>(
        d.name(), GetOrCreateTable<N, Acc>(d.name()), &fn->function(), fn);
  }

  // The state of user functions (KeyedRuntimeContext): with TTL when the descriptor has one.

  template <typename V>
  ValueState<V>* GetUserState(const ValueStateDescriptor<V>& d) {
    if (!d.ttl()) return GetState(d);
    return MakeHandle<internal::ValueStateHandle<KeyedStateBackendImpl, VoidNamespace, V, true>>(
        d.name(), GetOrCreateTable<VoidNamespace, TtlValue<V>>(d.name()), *d.ttl());
  }
  template <typename V>
  ListState<V>* GetUserListState(const ListStateDescriptor<V>& d) {
    if (!d.ttl()) return GetListState(d);
    return MakeHandle<internal::ListStateHandle<KeyedStateBackendImpl, VoidNamespace, V, true>>(
        d.name(), GetOrCreateTable<VoidNamespace, TtlValue<std::vector<V>>>(d.name()), *d.ttl());
  }
  template <typename UK, typename UV>
  MapState<UK, UV>* GetUserMapState(const MapStateDescriptor<UK, UV>& d) {
    if (!d.ttl()) return GetMapState(d);
    return MakeHandle<internal::MapStateHandle<KeyedStateBackendImpl, VoidNamespace, UK, UV, true>>(
        d.name(), GetOrCreateTable<VoidNamespace, TtlValue<absl::flat_hash_map<UK, UV>>>(d.name()),
        *d.ttl());
  }
  template <typename V>
  ReducingState<V>* GetUserReducingState(const ReducingStateDescriptor<V>& d) {
    if (!d.ttl()) return GetReducingState(d);
    return MakeHandle<internal::ReducingStateHandle<KeyedStateBackendImpl, VoidNamespace, V, true>>(
        d.name(), GetOrCreateTable<VoidNamespace, TtlValue<V>>(d.name()), d.reduce(), *d.ttl());
  }
  template <typename In, typename Acc, typename Out>
  AggregatingState<In, Out>* GetUserAggregatingState(
      const AggregatingStateDescriptor<In, Acc, Out>& d) {
    if (!d.ttl()) return GetAggregatingState(d);
    auto fn = std::make_shared<AggregatingStateDescriptor<In, Acc, Out>>(d);
    return MakeHandle<
        internal::AggregatingStateHandle<KeyedStateBackendImpl, VoidNamespace, In, Acc, Out, true>>(
        d.name(), GetOrCreateTable<VoidNamespace, TtlValue<Acc>>(d.name()), &fn->function(), fn,
        *d.ttl());
  }

  /// Processing time for TTL; set by the operator that owns the backend.
  void SetProcessingTimeService(const ProcessingTimeService* pts) { processing_time_ = pts; }
  Timestamp Now() const { return processing_time_ ? processing_time_->CurrentProcessingTime() : 0; }

  std::unique_ptr<KeyedStateSnapshot> TakeSnapshot() override {
    Tables::BeginSnapshot(context_);
    auto s = std::make_unique<Snapshot>();
    for (auto& [name, e] : tables_) {
      s->tables.push_back({name, e.table->TypeTag(), e.table->TakeSnapshot()});
    }
    // States restored but not registered again keep their data (an operator may register
    // a state lazily): they go into the snapshot unchanged.
    s->unregistered = pending_restore_;
    return s;
  }

  absl::Status RestoreKeyGroup(int key_group, std::string_view bytes) override {
    if (!range_.Contains(key_group)) return absl::OkStatus();  // another subtask's share
    ByteReader r(bytes);
    uint64_t count;
    if (!r.ReadVarint(&count)) return Corrupt(key_group, "state count");
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view name, tag, body;
      if (!r.ReadBytes(&name) || !r.ReadBytes(&tag) || !r.ReadBytes(&body)) {
        return Corrupt(key_group, "state header");
      }
      std::string state_name(name);
      auto it = tables_.find(state_name);
      if (it == tables_.end()) {
        pending_restore_[state_name][key_group] = {std::string(tag), std::string(body)};
        continue;
      }
      SLUICE_RETURN_IF_ERROR(ReadInto(it->second.table.get(), key_group, tag, body));
    }
    return absl::OkStatus();
  }

  RocksDbTableContext* database() override { return Tables::Database(context_); }

  size_t TotalSerializedBytes() const override {
    size_t n = 0;
    for (const auto& [name, e] : tables_) n += e.table->SerializedBytes();
    return n;
  }

  size_t TotalEntryCount() const override {
    size_t n = 0;
    for (const auto& [name, e] : tables_) n += e.table->EntryCount();
    return n;
  }

 private:
  struct Entry {
    std::type_index type;
    std::unique_ptr<StateTableBase> table;
  };
  // Restored data of states not registered yet: name -> key group -> (type tag, entries).
  using PendingRestore = std::map<std::string, std::map<int, std::pair<std::string, std::string>>>;

  class Snapshot final : public KeyedStateSnapshot {
   public:
    struct Table {
      std::string name;
      std::string type_tag;
      std::unique_ptr<StateTableSnapshot> entries;
    };
    std::vector<Table> tables;
    PendingRestore unregistered;

    std::string KeyGroup(int key_group) const override { return Write(key_group, true); }
    std::string UnregisteredKeyGroup(int key_group) const override {
      return Write(key_group, false);
    }

   private:
    std::string Write(int key_group, bool with_tables) const {
      std::string out;
      ByteWriter w(&out);
      size_t count = with_tables ? tables.size() : 0;
      for (const auto& [name, parts] : unregistered) count += parts.contains(key_group);
      w.WriteVarint(count);
      std::string body;
      for (const Table& t : tables) {
        if (!with_tables) break;
        body.clear();
        ByteWriter bw(&body);
        t.entries->WriteKeyGroup(key_group, bw);
        w.WriteBytes(t.name);
        w.WriteBytes(t.type_tag);
        w.WriteBytes(body);
      }
      for (const auto& [name, parts] : unregistered) {
        auto it = parts.find(key_group);
        if (it == parts.end()) continue;
        w.WriteBytes(name);
        w.WriteBytes(it->second.first);
        w.WriteBytes(it->second.second);
      }
      return out;
    }
  };

  template <typename Handle, typename Table, typename... Extra>
  Handle* MakeHandle(const std::string& name, Table* table, Extra&&... extra) {
    // One handle per (state, handle type): asking twice returns the same handle.
    auto key = std::make_pair(name, std::type_index(typeid(Handle)));
    auto it = handles_.find(key);
    if (it != handles_.end()) return static_cast<Handle*>(it->second.get());
    auto handle = std::make_shared<Handle>(this, table, std::forward<Extra>(extra)...);
    Handle* raw = handle.get();
    handles_.emplace(key, std::move(handle));
    return raw;
  }

  static absl::Status Corrupt(int key_group, const char* what) {
    return absl::DataLossError(
        absl::StrCat("keyed state snapshot of key group ", key_group, " is corrupt (", what, ")"));
  }
  static absl::Status ReadInto(StateTableBase* table, int key_group, std::string_view tag,
                               std::string_view body) {
    if (tag != table->TypeTag()) {
      return absl::FailedPreconditionError(
          absl::StrCat("state '", table->name(),
                       "' was saved with other key, namespace or value "
                       "types than it has now; it cannot be restored"));
    }
    ByteReader r(body);
    if (!table->ReadKeyGroup(key_group, r) || !r.AtEnd()) {
      return absl::DataLossError(
          absl::StrCat("state '", table->name(), "' in key group ", key_group, " is corrupt"));
    }
    return absl::OkStatus();
  }
  /// Loads restored data kept for a state that has just been registered.
  void ApplyPendingRestore(const std::string& name, StateTableBase* table) {
    auto it = pending_restore_.find(name);
    if (it == pending_restore_.end()) return;
    for (const auto& [kg, part] : it->second) {
      absl::Status s = ReadInto(table, kg, part.first, part.second);
      if (!s.ok()) throw std::runtime_error(std::string(s.message()));
    }
    pending_restore_.erase(it);
  }

  template <typename N>
  static void RefuseTtl(const StateDescriptorBase& d) {
    if (d.ttl() && !std::is_same_v<N, VoidNamespace>) {
      throw std::logic_error(absl::StrCat("state '", d.name(),
                                          "': TTL applies to keyed state of process functions, "
                                          "not to window or trigger state"));
    }
  }

  KeyGroupRange range_;
  int max_parallelism_;
  const ProcessingTimeService* processing_time_ = nullptr;
  typename Tables::Context context_;
  K current_key_{};
  int current_key_group_ = -1;
  std::map<std::string, Entry> tables_;
  PendingRestore pending_restore_;
  std::map<std::pair<std::string, std::type_index>, std::shared_ptr<void>> handles_;
};

/// Keyed state on the heap.
template <typename K>
using HeapKeyedStateBackend = KeyedStateBackendImpl<K, HeapTables>;

}  // namespace sluice
