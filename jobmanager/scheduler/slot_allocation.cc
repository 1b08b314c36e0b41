#include "scheduler/slot_allocation.h"

#include "absl/strings/str_cat.h"

namespace sluice::cluster {

absl::StatusOr<std::vector<std::string>> AllocateSlots(int needed,
                                                       const std::vector<FreeSlots>& free,
                                                       SlotStrategy strategy,
                                                       const std::vector<std::string>& preferred) {
  int available = 0;
  for (const FreeSlots& f : free) available += f.free;
  if (available < needed) {
    return absl::ResourceExhaustedError(absl::StrCat("the job needs ", needed,
                                                     " slots; the cluster has ", available,
                                                     " free (", free.size(), " TaskManagers)"));
  }
  std::vector<std::string> slots(static_cast<size_t>(needed));
  std::vector<int> left;
  for (const FreeSlots& f : free) left.push_back(f.free);
  std::vector<int> taken(free.size(), 0);  // of this job's slots, per TaskManager
  int assigned = 0;
  for (size_t s = 0; s < slots.size() && s < preferred.size(); ++s) {
    for (size_t t = 0; t < free.size(); ++t) {
      if (free[t].taskmanager_id == preferred[s] && left[t] > 0) {
        slots[s] = preferred[s];
        --left[t];
        ++taken[t];
        ++assigned;
        break;
      }
    }
  }
  // The TaskManager of each slot still open, in the strategy's order: pack fills one after the
  // other; spread takes the one holding fewest of the job's slots (round robin when none does).
  std::vector<std::string> order;
  while (assigned + static_cast<int>(order.size()) < needed) {
    size_t pick = free.size();
    for (size_t t = 0; t < free.size(); ++t) {
      if (left[t] == 0) continue;
      if (strategy == SlotStrategy::kPack) {
        pick = t;
        break;
      }
      if (pick == free.size() || taken[t] < taken[pick]) pick = t;
    }
    order.push_back(free[pick].taskmanager_id);
    --left[pick];
    ++taken[pick];
  }
  size_t next = 0;
  for (std::string& slot : slots) {
    if (slot.empty()) slot = order[next++];
  }
  return slots;
}

}  // namespace sluice::cluster
