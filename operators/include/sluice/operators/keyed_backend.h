#pragma once

#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sluice/checkpoint/native_keyed_state.h"
#include "sluice/function/runtime_context.h"
#include "sluice/operator/stream_operator.h"
#include "sluice/state/any_keyed_backend.h"

namespace sluice::internal {

/// Creates the keyed backend the job asked for (TaskInfo::state_backend) for one operator
/// instance, its RocksDB database in TaskInfo::local_state_dir; `owned` keeps it alive.
/// Restored state that is RocksDB's own files is taken here: as the database itself when it
/// fits (same backend and key groups), else turned into per-key-group state in `restored`
/// for RestoreKeyedOperator.
template <typename K>
AnyKeyedBackend<K> MakeKeyedBackend(const TaskInfo& info, const KeyGroupRange& range,
                                    std::optional<RestoredOperatorState>* restored,
                                    std::unique_ptr<KeyedStateBackendBase>* owned) {
  RestoredOperatorState* state = restored != nullptr && *restored ? &**restored : nullptr;
  if (info.state_backend != StateBackendKind::kRocksDb) {
    if (state != nullptr && !state->native.empty()) {
      ThrowIfError(MaterializeNativeState(state->native, range, info.local_state_dir + ".restore",
                                          &state->key_groups));
      state->native.clear();
    }
    auto heap = std::make_unique<HeapKeyedStateBackend<K>>(range, info.max_parallelism);
    AnyKeyedBackend<K> any(heap.get());
    *owned = std::move(heap);
    return any;
  }
  // Names this database instance in stored file names: unique, so no two instances' files
  // (two attempts, two subtasks) ever share a name.
  std::random_device random;
  const uint64_t instance = (uint64_t{random()} << 32) | random();
  auto log = std::make_shared<StoredFileLog>(
      absl::StrCat(internal::SafeFileName(info.operator_name), "-", info.subtask_index, "-",
                   absl::StrFormat("%016x", instance)));
  auto store = OpenRestoredDatabase(info.local_state_dir, range, state, log.get());
  ThrowIfError(store.status());
  RocksDbTableContext context;
  context.store = std::shared_ptr<RocksDbStore>(std::move(*store));
  context.stored_files = std::move(log);
  auto rocks = std::make_unique<RocksDbKeyedStateBackend<K>>(range, info.max_parallelism, context);
  AnyKeyedBackend<K> any(rocks.get());
  *owned = std::move(rocks);
  return any;
}

}  // namespace sluice::internal
