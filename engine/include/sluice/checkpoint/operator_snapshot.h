#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/core/key_groups.h"
#include "sluice/core/status_macros.h"
#include "sluice/function/checkpointed_function.h"
#include "sluice/internal/network/status_watermark_valve.h"
#include "sluice/serialization/serializer.h"
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
  /// What the files' checksums are (serialized with the OperatorSnapshot, after the rest).
  FileChecksum checksum = FileChecksum::kCrc32c;

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
  /// Of a task's chain head: its input channels at the barrier (their watermarks and idle
  /// status), so the restored task combines watermarks as the failure-free run did.
  std::optional<internal::StatusWatermarkValve::State> input_channels;
  /// Its keyed states' sizes at the barrier, for metrics (not stored).
  std::vector<KeyedStateSize> state_sizes;
  /// Broadcast state by name (`type tag \0 serialized map`): the same in every subtask, so a
  /// restore at any parallelism gives each new subtask one old subtask's copy.
  std::map<std::string, std::string> broadcast_states;

  bool empty() const {
    return key_groups.empty() && operator_state.empty() && native.empty() && !input_channels &&
           broadcast_states.empty();
  }
};

/// Fields in order; `input_channels`, the native files' checksum kind and the broadcast
/// states came later, so a snapshot that ends before them (written by an older version)
/// reads without them — and its native files have 0.1.0's whole-file hashes.
template <>
struct Serializer<OperatorSnapshot> {
  static void Write(const OperatorSnapshot& v, ByteWriter& w) {
    Serializer<std::map<int, std::string>>::Write(v.key_groups, w);
    Serializer<std::vector<std::string>>::Write(v.operator_state, w);
    Serializer<NativeKeyedState>::Write(v.native, w);
    Serializer<std::optional<internal::StatusWatermarkValve::State>>::Write(v.input_channels, w);
    Serializer<FileChecksum>::Write(v.native.checksum, w);
    Serializer<std::map<std::string, std::string>>::Write(v.broadcast_states, w);
  }
  static bool Read(ByteReader& r, OperatorSnapshot* out) {
    if (!Serializer<std::map<int, std::string>>::Read(r, &out->key_groups) ||
        !Serializer<std::vector<std::string>>::Read(r, &out->operator_state) ||
        !Serializer<NativeKeyedState>::Read(r, &out->native)) {
      return false;
    }
    out->native.checksum = FileChecksum::kWholeFileHash;
    if (r.AtEnd()) return true;
    if (!Serializer<std::optional<internal::StatusWatermarkValve::State>>::Read(
            r, &out->input_channels)) {
      return false;
    }
    if (r.AtEnd()) return true;
    if (!Serializer<FileChecksum>::Read(r, &out->native.checksum)) return false;
    if (r.AtEnd()) return true;
    return Serializer<std::map<std::string, std::string>>::Read(r, &out->broadcast_states);
  }
};

/// An operator's snapshot at a barrier while it is being taken: what the synchronous part
/// (on the task thread, before the barrier moves on) already filled in, and the slow rest,
/// which the task runs on its snapshot thread while processing goes on.
struct PendingOperatorSnapshot {
  /// Set by the task before SnapshotState: the checkpoint, and the storage its files go to
  /// (null: the snapshot stays in memory, in the portable format).
  int64_t checkpoint_id = 0;
  CheckpointStorage* storage = nullptr;
  /// Also keeps the RocksDB files stored (the native checkpoint directory they came from, and
  /// how storage stored them) where a restore on this TaskManager finds them; none: no copies.
  std::function<void(const std::string& dir, const std::vector<StoredFile>& stored)>
      keep_native_copy;
  /// The task's cancellation: the slow part gives up once it is set (null: never).
  const std::atomic<bool>* canceled = nullptr;

  OperatorSnapshot snapshot;
  /// Completes `snapshot`; empty if the synchronous part did everything.
  std::function<absl::Status(OperatorSnapshot&)> async_part;

  /// Runs the asynchronous part (if any) and returns the finished snapshot.
  absl::StatusOr<OperatorSnapshot> Finish() && {
    if (async_part) {
      SLUICE_RETURN_IF_ERROR(async_part(snapshot));
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
  /// This subtask's own input channels at the barrier, when the operator runs at the
  /// parallelism it was snapshotted at (see OperatorSnapshot::input_channels).
  std::optional<internal::StatusWatermarkValve::State> input_channels;
  /// The broadcast states of one old subtask (this index modulo the old parallelism).
  std::map<std::string, std::string> broadcast_states;

  const std::vector<std::string>& Items(OperatorStateMode mode) const {
    return mode == OperatorStateMode::kUnion ? operator_state_union : operator_state;
  }
};

/// The restored state of new subtask `index` of `parallelism` from the snapshots of all old
/// subtasks of the same operator.
RestoredOperatorState RedistributeState(const std::vector<OperatorSnapshot>& old, int index,
                                        int parallelism, int max_parallelism);

/// Records in `handle` what `snapshot`, the file it refers to, holds (see StateHandle).
void DescribeContents(const OperatorSnapshot& snapshot, StateHandle* handle);

/// Whether RedistributeState for new subtask `index` of `parallelism` takes anything from the
/// file of old subtask `old_index` of `old_parallelism` that `handle` describes: operator
/// state, key groups in its range, or (at the same parallelism) its own input channels.
bool ContributesTo(const StateHandle& handle, int old_index, int old_parallelism, int index,
                   int parallelism, int max_parallelism);

namespace internal {

/// Stores the database of a RocksDB backend for checkpoint `id`: runs the snapshot's capture
/// into a native checkpoint next to the database and uploads its files (snapshot thread).
absl::StatusOr<NativeKeyedState> StoreNativeSnapshot(
    internal::RocksDbCapture& capture, internal::StoredFileLog& log, CheckpointStorage& storage,
    int64_t id, const KeyGroupRange& range,
    const std::function<void(const std::string&, const std::vector<StoredFile>&)>& keep_copy =
        nullptr,
    const std::atomic<bool>* canceled = nullptr);

/// The per-key-group blob of a keyed operator: its states, its timers, and the operator's
/// event-time watermark at the barrier (so a restore decides lateness and fires timers as
/// the failure-free run did; on rescale the lowest of the merged subtasks' watermarks).
std::string KeyGroupBlob(std::string_view state, std::string_view timers, Timestamp watermark);
/// The parts of a KeyGroupBlob (views into it); `watermark` is absent in blobs written before
/// it was kept.
struct KeyGroupParts {
  std::string_view state;
  std::string_view timers;
  std::optional<Timestamp> watermark;
};
absl::StatusOr<KeyGroupParts> ParseKeyGroupBlob(std::string_view blob, int key_group);

/// Snapshot of a keyed operator: the synchronous part freezes the state (copy-on-write, or
/// RocksDB's capture) and copies the timers; the asynchronous part writes per key group the
/// state and the timers — or, for RocksDB in a stored checkpoint, uploads the database's
/// files and writes per key group only the timers and states the database lacks.
template <typename Timers>
void SnapshotKeyedOperator(KeyedStateBackendBase& backend, const Timers* timers,
                           int max_parallelism, PendingOperatorSnapshot* out) {
  auto timers_copy = std::make_shared<typename Timers::TimersCopy>();
  Timestamp watermark = kMinWatermark;
  if (timers != nullptr) {
    *timers_copy = timers->CopyTimers();
    watermark = timers->CurrentWatermark();
  }
  std::shared_ptr<const KeyedStateSnapshot> frozen = backend.TakeSnapshot();
  out->snapshot.state_sizes = backend.ApproximateSizes();
  const KeyGroupRange range = backend.key_group_range();
  RocksDbTableContext* db = backend.database();
  const bool native = db != nullptr && db->stored_files != nullptr && out->storage != nullptr;
  out->async_part = [frozen, timers_copy, watermark, max_parallelism, range, native,
                     capture = native ? db->capture : nullptr,
                     log = native ? db->stored_files : nullptr, storage = out->storage,
                     keep_copy = out->keep_native_copy, canceled = out->canceled,
                     id = out->checkpoint_id](OperatorSnapshot& s) -> absl::Status {
    if (native) {
      auto stored = StoreNativeSnapshot(*capture, *log, *storage, id, range, keep_copy, canceled);
      if (!stored.ok()) return stored.status();
      s.native = std::move(*stored);
    }
    const std::map<int, std::string> timer_parts =
        Timers::SerializeByKeyGroup(*timers_copy, max_parallelism);
    for (int kg = range.start; kg <= range.end; ++kg) {
      auto it = timer_parts.find(kg);
      s.key_groups[kg] =
          KeyGroupBlob(native ? frozen->UnregisteredKeyGroup(kg) : frozen->KeyGroup(kg),
                       it == timer_parts.end() ? std::string_view() : it->second, watermark);
    }
    frozen->CompleteSizes(&s.state_sizes);
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
  // The lowest watermark of the key groups taken over: a subtask made of several old ones
  // must not count a record late that one of them would still have taken.
  std::optional<Timestamp> watermark;
  for (const auto& [kg, blob] : state.key_groups) {
    if (!backend.key_group_range().Contains(kg)) continue;
    SLUICE_ASSIGN_OR_RETURN(KeyGroupParts parts, ParseKeyGroupBlob(blob, kg));
    watermark =
        std::min(watermark.value_or(kMaxWatermark), parts.watermark.value_or(kMinWatermark));
    SLUICE_RETURN_IF_ERROR(backend.RestoreKeyGroup(kg, parts.state));
    if (timers != nullptr && !parts.timers.empty()) {
      SLUICE_RETURN_IF_ERROR(timers->RestoreKeyGroup(parts.timers));
    }
  }
  if (timers != nullptr && watermark) timers->RestoreWatermark(*watermark);
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace sluice
