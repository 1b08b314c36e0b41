#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sluice/core/key_groups.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/heap_keyed_state_backend.h"

namespace sluice {

/// What one operator instance contributes to a checkpoint, in a backend-independent format:
/// keyed state (and timers) per key group, so any subtask of any parallelism can take the
/// key groups it owns; and operator state as a list of items, redistributed evenly.
struct OperatorSnapshot {
  std::map<int, std::string> key_groups;
  std::vector<std::string> operator_state;

  bool empty() const { return key_groups.empty() && operator_state.empty(); }
};
SLUICE_SERIALIZABLE(OperatorSnapshot, key_groups, operator_state)

/// What an operator instance gets back when it is restored: the key groups of the old
/// snapshots that fall into its range (others are ignored) and its share of operator state.
struct RestoredOperatorState {
  std::map<int, std::string> key_groups;
  std::vector<std::string> operator_state;
};

/// How list-shaped operator state is handed out on restore.
enum class OperatorStateMode {
  kEven,   // the items of all old subtasks, split evenly (round robin) over the new ones
  kUnion,  // every new subtask gets all items
};

/// The restored state of new subtask `index` of `parallelism` from the snapshots of all old
/// subtasks of the same operator.
RestoredOperatorState RedistributeState(const std::vector<OperatorSnapshot>& old, int index,
                                        int parallelism, int max_parallelism,
                                        OperatorStateMode mode = OperatorStateMode::kEven);

namespace internal {

/// Snapshot of a keyed operator: per key group, its state and its timers.
template <typename Timers>
void SnapshotKeyedOperator(const KeyedStateBackendBase& backend, const Timers* timers,
                           int max_parallelism, OperatorSnapshot* out) {
  std::map<int, std::string> timer_parts;
  if (timers != nullptr) timer_parts = timers->SnapshotByKeyGroup(max_parallelism);
  const KeyGroupRange& range = backend.key_group_range();
  for (int kg = range.start; kg <= range.end; ++kg) {
    std::string blob;
    ByteWriter w(&blob);
    w.WriteBytes(backend.SnapshotKeyGroup(kg));
    auto it = timer_parts.find(kg);
    w.WriteBytes(it == timer_parts.end() ? std::string() : it->second);
    out->key_groups[kg] = std::move(blob);
  }
}

/// Restores what SnapshotKeyedOperator wrote, for the key groups this instance owns.
template <typename Timers>
absl::Status RestoreKeyedOperator(KeyedStateBackendBase& backend, Timers* timers,
                                  const RestoredOperatorState& state) {
  for (const auto& [kg, blob] : state.key_groups) {
    if (!backend.key_group_range().Contains(kg)) continue;
    ByteReader r(blob);
    std::string_view state_part, timer_part;
    if (!r.ReadBytes(&state_part) || !r.ReadBytes(&timer_part) || !r.AtEnd()) {
      return absl::DataLossError(absl::StrCat("snapshot of key group ", kg, " is corrupt"));
    }
    SLUICE_RETURN_IF_ERROR(backend.RestoreKeyGroup(kg, state_part));
    if (timers != nullptr && !timer_part.empty()) {
      SLUICE_RETURN_IF_ERROR(timers->RestoreKeyGroup(timer_part));
    }
  }
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace sluice
