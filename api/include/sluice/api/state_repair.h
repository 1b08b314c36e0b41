#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "sluice/api/job.h"
#include "sluice/checkpoint/savepoint_rewrite.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/state_table.h"
#include "sluice/state/state_ttl.h"
#include "sluice/state/void_namespace.h"

// State repairs: `sluice savepoint rewrite PATH OUT --with=REPAIR.so` passes every entry of
// the keyed states a repair library names through its C++ functions. One source file:
//
//   void Repair(sluice::StateRepairs& r) {
//     r.ForEachEntry<std::string, Profile>("profiles", "profile",
//         [](const std::string& user, Profile& p) {
//           if (p.visits == 0) return sluice::EntryRepair::kDrop;
//           p.tags.clear();
//           return sluice::EntryRepair::kChange;
//         });
//   }
//   SLUICE_STATE_REPAIR(Repair)
//
// built as a shared library against sluice::api (sluice_add_state_repair in CMake).

namespace sluice {

/// The repairs a library declares.
class StateRepairs {
 public:
  /// Calls `fn(key, value)` for every entry of keyed state `state` of the operator with uid
  /// `uid`, whose key type is K and value type V as the job declared them: V for a
  /// ValueState<V> (also reducing and aggregating state: their accumulator),
  /// std::vector<T> for a ListState<T>, absl::flat_hash_map<UK, UV> for a MapState<UK, UV>.
  /// It returns kKeep, kChange (it changed `value`) or kDrop. A state with a TTL is read
  /// the same (its entries keep their last access).
  template <typename K, typename V>
  void ForEachEntry(const std::string& uid, const std::string& state,
                    std::function<EntryRepair(const K&, V&)> fn) {
    StateRepairSpec spec;
    spec.uid = uid;
    spec.state = state;
    spec.type_tag = StateTypeTag<K, VoidNamespace, V>();
    spec.ttl_type_tag = StateTypeTag<K, VoidNamespace, TtlValue<V>>();
    auto shared = std::make_shared<std::function<EntryRepair(const K&, V&)>>(std::move(fn));
    spec.plain = [shared](std::string_view key, std::string* value) {
      return Apply<K, V>(*shared, key, value);
    };
    spec.with_ttl = [shared](std::string_view key,
                             std::string* value) -> absl::StatusOr<EntryRepair> {
      return Apply<K, TtlValue<V>>(
          [&](const K& k, TtlValue<V>& v) { return (*shared)(k, v.value); }, key, value);
    };
    specs_.push_back(std::move(spec));
  }

  const std::vector<StateRepairSpec>& specs() const { return specs_; }

 private:
  template <typename K, typename V, typename F>
  static absl::StatusOr<EntryRepair> Apply(const F& fn, std::string_view key_bytes,
                                           std::string* value_bytes) {
    auto key = DeserializeFromString<K>(key_bytes, "the key");
    if (!key.ok()) return key.status();
    auto value = DeserializeFromString<V>(*value_bytes, "the value");
    if (!value.ok()) return value.status();
    const EntryRepair action = fn(*key, *value);
    if (action == EntryRepair::kChange) *value_bytes = SerializeToString(*value);
    return action;
  }

  std::vector<StateRepairSpec> specs_;
};

/// A repair library loaded with dlopen (ABI checked as a job binary's).
class StateRepairLibrary {
 public:
  static absl::StatusOr<std::unique_ptr<StateRepairLibrary>> Load(const std::string& path);
  ~StateRepairLibrary();
  /// The repairs it declares.
  StateRepairs Repairs() const;

 private:
  using BuildFn = void (*)(StateRepairs*);
  StateRepairLibrary(void* handle, BuildFn build) : handle_(handle), build_(build) {}
  void* handle_;
  BuildFn build_;
};

}  // namespace sluice

/// Declares a repair library's function: `void build_fn(sluice::StateRepairs&)`.
#define SLUICE_STATE_REPAIR(build_fn)                                             \
  SLUICE_JOB_EXPORT_ const char* sluice_state_repair_abi;                         \
  SLUICE_JOB_EXPORT_ void sluice_state_repair_build(::sluice::StateRepairs* out); \
  const char* sluice_state_repair_abi = SLUICE_ENGINE_ABI;                        \
  void sluice_state_repair_build(::sluice::StateRepairs* out) { build_fn(*out); }
