#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "sluice/core/format.h"
#include "sluice/core/key_groups.h"
#include "sluice/core/mutex.h"
#include "sluice/core/status_macros.h"
#include "sluice/serialization/bytes.h"
#include "sluice/state/descriptors.h"
#include "sluice/state/internal/state_handles.h"
#include "sluice/state/state.h"
#include "sluice/state/state_migration.h"
#include "sluice/state/state_table.h"
#include "sluice/state/state_ttl.h"
#include "sluice/state/void_namespace.h"
#include "sluice/timer/timer_service.h"

namespace sluice {

/// The size of one keyed state, as metrics show it.
struct KeyedStateSize {
  std::string name;
  size_t entries = 0;
  size_t bytes = 0;
  bool ttl = false;  // its entries expire (a TTL was configured)
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
  /// Completes `sizes` (each state's entries at the snapshot) once the calls above are done:
  /// its store's estimates (StateTableSnapshot::StoredSize), or else the bytes of its
  /// entries they wrote.
  virtual void CompleteSizes(std::vector<KeyedStateSize>* sizes) const = 0;
};

struct RocksDbTableContext;

/// Untyped base of a keyed state backend, for the runtime.
class KeyedStateBackendBase {
 public:
  virtual ~KeyedStateBackendBase() = default;
  virtual size_t TotalEntryCount() const = 0;
  virtual size_t TotalSerializedBytes() const = 0;
  /// Each state's entries, cheaply (StateTableBase::ApproximateEntryCount); bytes come
  /// with a snapshot (KeyedStateSnapshot::CompleteSizes).
  virtual std::vector<KeyedStateSize> ApproximateSizes() const = 0;
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
  /// The event time of what the operator processes now (the clock of event-time TTL): set
  /// by the operator per record and timer.
  void SetEventTime(Timestamp t) { event_time_ = t; }
  Timestamp EventTime() const { return event_time_; }

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

  std::vector<KeyedStateSize> ApproximateSizes() const override {
    std::vector<KeyedStateSize> out;
    for (const auto& [name, e] : tables_) {
      // A state with a TTL stores its values wrapped: "...;value=ttl<...>".
      out.push_back({name, e.table->ApproximateEntryCount(), 0,
                     e.table->TypeTag().find(";value=ttl<") != std::string::npos});
    }
    return out;
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
    void CompleteSizes(std::vector<KeyedStateSize>* sizes) const override {
      for (KeyedStateSize& size : *sizes) {
        auto t = std::find_if(tables.begin(), tables.end(),
                              [&](const Table& t) { return t.name == size.name; });
        if (t == tables.end()) continue;
        if (std::optional<StateTableSnapshot::Size> stored = t->entries->StoredSize()) {
          size.entries = stored->entries;
          size.bytes = stored->bytes;
          continue;
        }
        MutexLock lock(&mu_);
        auto written = written_.find(size.name);
        size.bytes = written == written_.end() ? 0 : written->second;
      }
    }

   private:
    std::string Write(int key_group, bool with_tables) const {
      std::string out;
      ByteWriter w(&out);
      size_t count = with_tables ? tables.size() : 0;
      for (const auto& [name, parts] : unregistered) count += parts.contains(key_group);
      w.WriteVarint(count);
      std::string body;
      std::vector<std::pair<const std::string*, size_t>> written;
      for (const Table& t : tables) {
        if (!with_tables) break;
        body.clear();
        ByteWriter bw(&body);
        t.entries->WriteKeyGroup(key_group, bw);
        w.WriteBytes(t.name);
        w.WriteBytes(t.type_tag);
        w.WriteBytes(body);
        written.emplace_back(&t.name, body.size());
      }
      for (const auto& [name, parts] : unregistered) {
        auto it = parts.find(key_group);
        if (it == parts.end()) continue;
        w.WriteBytes(name);
        w.WriteBytes(it->second.first);
        w.WriteBytes(it->second.second);
        written.emplace_back(&name, it->second.second.size());
      }
      MutexLock lock(&mu_);
      for (const auto& [name, bytes] : written) written_[*name] += bytes;
      return out;
    }

    mutable Mutex mu_;
    mutable std::map<std::string, size_t> written_ SLUICE_GUARDED_BY(mu_);
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
  /// Reads restored entries into `table`; entries its previous version wrote with other
  /// types migrate to its own (StateMigration), or the restore fails saying why.
  static absl::Status ReadInto(StateTableBase* table, int key_group, std::string_view tag,
                               std::string_view body) {
    std::string migrated;
    if (!table->StoresTypesTagged(tag)) {
      auto migration = StateMigration::Plan(tag, table->TypeTag());
      if (!migration.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "state '", table->name(), "' cannot be restored: ", migration.status().message()));
      }
      auto entries = migration->Entries(body, absl::ToUnixMillis(absl::Now()));
      if (!entries.ok()) {
        return absl::DataLossError(absl::StrCat("state '", table->name(), "' in key group ",
                                                key_group,
                                                " is corrupt: ", entries.status().message()));
      }
      migrated = std::move(*entries);
      body = migrated;
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
  Timestamp event_time_ = kMinWatermark;
  typename Tables::Context context_;
  K current_key_{};
  int current_key_group_ = -1;
  std::map<std::string, Entry> tables_;
  PendingRestore pending_restore_;
  std::map<std::pair<std::string, std::type_index>, std::shared_ptr<void>> handles_;
};

}  // namespace sluice
