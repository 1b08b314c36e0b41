#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice::cluster {

/// How a job's slots are chosen among the TaskManagers.
enum class SlotStrategy {
  kSpread,  // round robin over TaskManagers with free slots: subtasks spread out
  kPack,    // fill one TaskManager before the next: fewer processes, less network
};

struct FreeSlots {
  std::string taskmanager_id;
  int free = 0;
};

/// Picks `needed` slots (slot sharing as in Flink: slot i holds subtask i of every vertex,
/// so a job needs as many slots as its highest parallelism) and returns the TaskManager of
/// each. Slot i goes to `preferred[i]` (the TaskManager it had in the job's previous run,
/// which keeps its subtasks' local state) where that one has a free slot; the others as
/// `strategy` says. RESOURCE_EXHAUSTED, saying how many are needed and free, if there are too
/// few.
absl::StatusOr<std::vector<std::string>> AllocateSlots(
    int needed, const std::vector<FreeSlots>& free, SlotStrategy strategy,
    const std::vector<std::string>& preferred = {});

}  // namespace sluice::cluster
