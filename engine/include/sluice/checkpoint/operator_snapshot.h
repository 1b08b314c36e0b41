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
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/state/heap_keyed_state_backend.h"
#include "sluice/state/rocksdb_state_table.h"

namespace sluice {

/// The keyed state of a RocksDB operator instance as RocksDB's own files (an incremental
/// checkpoint: SST files an earlier checkpoint stored are referenced, not copied).
struct NativeKeyedState {
  int32_t key_group_start = 0;
  int32_t key_group_end = -1;
  /// Paths relative to the job's checkpoint directory as stored; absolute once loaded
  /// (ResolveNativePaths).
  std::vector<StoredFile> files;

  KeyGroupRange range() const { return {key_group_start, key_group_end}; }
  bool empty() const { return files.empty(); }
};
SLUICE_SERIALIZABLE(NativeKeyedState, key_group_start, key_group_end, files)

/// What one operator instance contributes to a checkpoint. Keyed state (and timers) per key
/// group in a backend-independent format, so any subtask of any parallelism can take the
/// key groups it owns — or, from RocksDB in a checkpoint, the database's files (`native`),
/// with only timers and not yet registered states per key group. Operator state as a list
/// of items, redistributed evenly. Savepoints always hold the portable format.
struct OperatorSnapshot {
  std::map<int, std::string> key_groups;
  std::vector<std::string> operator_state;
  NativeKeyedState native;

  bool empty() const { return key_groups.empty() && operator_state.empty() && native.empty(); }
};
SLUICE_SERIALIZABLE(OperatorSnapshot, key_groups, operator_state, native)

/// An operator's snapshot at a barrier while it is being taken: what the synchronous part
/// (on the task thread, before the barrier moves on) already filled in, and the slow rest,
/// which the task runs on its snapshot thread while processing goes on.
struct PendingOperatorSnapshot {
  /// Set by the task before SnapshotState: the checkpoint, and the storage its files go to
  /// (null: the snapshot stays in memory, in the portable format).
  int64_t checkpoint_id = 0;
  CheckpointStorage* storage = nullptr;

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
  /// Native snapshots (absolute paths) of old subtasks whose key groups overlap this one's.
  std::vector<NativeKeyedState> native;

  const std::vector<std::string>& Items(OperatorStateMode mode) const {
    return mode == OperatorStateMode::kUnion ? operator_state_union : operator_state;
  }
};

/// The restored state of new subtask `index` of `parallelism` from the snapshots of all old
/// subtasks of the same operator.
RestoredOperatorState RedistributeState(const std::vector<OperatorSnapshot>& old, int index,
                                        int parallelism, int max_parallelism);

namespace internal {

/// Stores the database of a RocksDB backend for checkpoint `id`: runs the snapshot's capture
/// into a native checkpoint next to the database and uploads its files (snapshot thread).
absl::StatusOr<NativeKeyedState> StoreNativeSnapshot(RocksDbCapture& capture, StoredFileLog& log,
                                                     CheckpointStorage& storage, int64_t id,
                                                     const KeyGroupRange& range);

/// The per-key-group blob of a keyed operator: its states, then its timers.
std::string KeyGroupBlob(std::string_view state, std::string_view timers);

/// Snapshot of a keyed operator: the synchronous part freezes the state (copy-on-write, or
/// RocksDB's capture) and copies the timers; the asynchronous part writes per key group the
/// state and the timers — or, for RocksDB in a stored checkpoint, uploads the database's
/// files and writes per key group only the timers and states the database lacks.
template <typename Timers>
void SnapshotKeyedOperator(KeyedStateBackendBase& backend, const Timers* timers,
                           int max_parallelism, PendingOperatorSnapshot* out) {
  auto timers_copy = std::make_shared<typename Timers::TimersCopy>();
  if (timers != nullptr) *timers_copy = timers->CopyTimers();
  std::shared_ptr<const KeyedStateSnapshot> frozen = backend.TakeSnapshot();
  const KeyGroupRange range = backend.key_group_range();
  RocksDbTableContext* db = backend.database();
  const bool native = db != nullptr && db->stored_files != nullptr && out->storage != nullptr;
  out->async_part = [frozen, timers_copy, max_parallelism, range, native,
                     capture = native ? db->capture : nullptr,
                     log = native ? db->stored_files : nullptr, storage = out->storage,
                     id = out->checkpoint_id](OperatorSnapshot& s) -> absl::Status {
    if (native) {
      auto stored = StoreNativeSnapshot(*capture, *log, *storage, id, range);
      if (!stored.ok()) return stored.status();
      s.native = std::move(*stored);
    }
    const std::map<int, std::string> timer_parts =
        Timers::SerializeByKeyGroup(*timers_copy, max_parallelism);
    for (int kg = range.start; kg <= range.end; ++kg) {
      auto it = timer_parts.find(kg);
      s.key_groups[kg] =
          KeyGroupBlob(native ? frozen->UnregisteredKeyGroup(kg) : frozen->KeyGroup(kg),
                       it == timer_parts.end() ? std::string_view() : it->second);
    }
    return absl::OkStatus();
  };
}

/// Checkpoint `id` completed: later incremental checkpoints of the backend's database may
/// reference the files it stored.
inline void NotifyKeyedCheckpointComplete(KeyedStateBackendBase& backend, int64_t id) {
  if (RocksDbTableContext* db = backend.database(); db != nullptr && db->stored_files) {
    db->stored_files->Completed(id);
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
