#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/state/internal/rocksdb_store.h"
#include "sluice/state/rocksdb_state_table.h"

namespace sluice {

// Restoring keyed state that a RocksDB backend checkpointed as its own files.

/// Makes the paths of a loaded snapshot's native files absolute; `job_dir` is the job's
/// checkpoint directory (the stored paths are relative to it).
void ResolveNativePaths(const std::string& job_dir, OperatorSnapshot* snapshot);

/// Turns native snapshots into per-key-group state: each database is copied into
/// `scratch_dir` (empty: a new one in the system's temporary directory; removed afterwards),
/// opened, and its key groups within `range` merged into
/// `key_groups` with what is there already (timers, states not registered when it was
/// taken). For restores that cannot take a database as it is (another parallelism, the heap
/// backend) and for savepoints, which are portable.
absl::Status MaterializeNativeState(const std::vector<NativeKeyedState>& native,
                                    const KeyGroupRange& range, std::string scratch_dir,
                                    std::map<int, std::string>* key_groups);

/// The database of a restored RocksDB operator instance, in `dir`: a copy of its old one if a
/// single native snapshot covers exactly `range` (same parallelism: nothing to split; its
/// files then count as stored for the next incremental checkpoint), else a new one, with the
/// native snapshots turned into per-key-group state in `state`. Consumes `state->native`.
absl::StatusOr<std::unique_ptr<internal::RocksDbStore>> OpenRestoredDatabase(
    const std::string& dir, const KeyGroupRange& range, RestoredOperatorState* state,
    internal::StoredFileLog* log);

}  // namespace sluice
