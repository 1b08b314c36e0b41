#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/core/key_groups.h"
#include "sluice/function/checkpointed_function.h"
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

/// An operator's snapshot at a barrier while it is being taken: what the synchronous part
/// (on the task thread, before the barrier moves on) already filled in, and the slow rest,
/// which the task runs on its snapshot thread while processing goes on.
struct PendingOperatorSnapshot {
  OperatorSnapshot snapshot;
  /// Completes `snapshot`; empty if the synchronous part did everything.
  std::function<absl::Status(OperatorSnapshot&)> async_part;

  /// Runs the asynchronous part (if any) and returns the finished snapshot.
  absl::StatusOr<OperatorSnapshot> Finish() && {
    if (async_part) {
      absl::Status s = async_part(snapshot);
      if (!s.ok()) return s;
    }
    return std::move(snapshot);
  }
};

/// What an operator instance gets back when it is restored: the key groups of the old
/// snapshots that fall into its range (others are ignored) and its share of operator state.
struct RestoredOperatorState {
  std::map<int, std::string> key_groups;
  /// This subtask's even share of the items of all old subtasks (OperatorStateMode::kEven).
  std::vector<std::string> operator_state;
  /// All items of all old subtasks (OperatorStateMode::kUnion).
  std::vector<std::string> operator_state_union;

  const std::vector<std::string>& Items(OperatorStateMode mode) const {
    return mode == OperatorStateMode::kUnion ? operator_state_union : operator_state;
  }
};

/// The restored state of new subtask `index` of `parallelism` from the snapshots of all old
/// subtasks of the same operator.
RestoredOperatorState RedistributeState(const std::vector<OperatorSnapshot>& old, int index,
                                        int parallelism, int max_parallelism);

namespace internal {

/// Snapshot of a keyed operator: per key group, its state and its timers. The synchronous
/// part freezes the state (copy-on-write) and copies the timers; both are serialized in the
/// asynchronous part.
template <typename Timers>
void SnapshotKeyedOperator(KeyedStateBackendBase& backend, const Timers* timers,
                           int max_parallelism, PendingOperatorSnapshot* out) {
  auto timers_copy = std::make_shared<typename Timers::TimersCopy>();
  if (timers != nullptr) *timers_copy = timers->CopyTimers();
  std::shared_ptr<const KeyedStateSnapshot> frozen = backend.TakeSnapshot();
  out->async_part = [frozen, timers_copy, max_parallelism,
                     range = backend.key_group_range()](OperatorSnapshot& s) {
    const std::map<int, std::string> timer_parts =
        Timers::SerializeByKeyGroup(*timers_copy, max_parallelism);
    for (int kg = range.start; kg <= range.end; ++kg) {
      std::string blob;
      ByteWriter w(&blob);
      w.WriteBytes(frozen->KeyGroup(kg));
      auto it = timer_parts.find(kg);
      w.WriteBytes(it == timer_parts.end() ? std::string() : it->second);
      s.key_groups[kg] = std::move(blob);
    }
    return absl::OkStatus();
  };
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
