#pragma once

namespace sluice {

/// Where keyed state lives while the job runs.
enum class StateBackendKind {
  kHeap,     // hash maps on the heap, copy-on-write snapshots
  kRocksDb,  // RocksDB on local disk behind a write-back cache
};

}  // namespace sluice
