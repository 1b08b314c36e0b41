#include "scheduler/slot_allocation.h"

#include "absl/strings/str_cat.h"

namespace sluice::cluster {

absl::StatusOr<std::vector<std::string>> AllocateSlots(int needed,
                                                       const std::vector<FreeSlots>& free,
                                                       SlotStrategy strategy) {
  int available = 0;
  for (const FreeSlots& f : free) available += f.free;
  if (available < needed) {
    return absl::ResourceExhaustedError(absl::StrCat("the job needs ", needed,
                                                     " slots; the cluster has ", available,
                                                     " free (", free.size(), " TaskManagers)"));
  }
  std::vector<std::string> slots;
  std::vector<int> left;
  for (const FreeSlots& f : free) left.push_back(f.free);
  if (strategy == SlotStrategy::kPack) {
    for (size_t t = 0; t < free.size() && static_cast<int>(slots.size()) < needed; ++t) {
      while (left[t] > 0 && static_cast<int>(slots.size()) < needed) {
        slots.push_back(free[t].taskmanager_id);
        --left[t];
      }
    }
    return slots;
  }
  while (static_cast<int>(slots.size()) < needed) {
    for (size_t t = 0; t < free.size() && static_cast<int>(slots.size()) < needed; ++t) {
      if (left[t] == 0) continue;
      slots.push_back(free[t].taskmanager_id);
      --left[t];
    }
  }
  return slots;
}

}  // namespace sluice::cluster
