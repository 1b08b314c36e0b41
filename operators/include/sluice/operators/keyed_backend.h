#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "sluice/function/runtime_context.h"
#include "sluice/state/any_keyed_backend.h"

namespace sluice::internal {

/// Creates the keyed backend the job asked for (TaskInfo::state_backend) for one operator
/// instance, its RocksDB database in TaskInfo::local_state_dir; `owned` keeps it alive.
template <typename K>
AnyKeyedBackend<K> MakeKeyedBackend(const TaskInfo& info, const KeyGroupRange& range,
                                    std::unique_ptr<KeyedStateBackendBase>* owned) {
  if (info.state_backend != StateBackendKind::kRocksDb) {
    auto heap = std::make_unique<HeapKeyedStateBackend<K>>(range, info.max_parallelism);
    AnyKeyedBackend<K> any(heap.get());
    *owned = std::move(heap);
    return any;
  }
  auto store = RocksDbStore::Create(info.local_state_dir);
  if (!store.ok()) throw std::runtime_error(std::string(store.status().message()));
  RocksDbTableContext context{std::shared_ptr<RocksDbStore>(std::move(*store))};
  auto rocks = std::make_unique<RocksDbKeyedStateBackend<K>>(range, info.max_parallelism, context);
  AnyKeyedBackend<K> any(rocks.get());
  *owned = std::move(rocks);
  return any;
}

}  // namespace sluice::internal
