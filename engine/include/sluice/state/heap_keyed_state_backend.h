#pragma once

#include "sluice/state/heap_state_table.h"
#include "sluice/state/keyed_state_backend.h"

namespace sluice {

/// Keyed state on the heap.
template <typename K>
using HeapKeyedStateBackend = KeyedStateBackendImpl<K, HeapTables>;

}  // namespace sluice
