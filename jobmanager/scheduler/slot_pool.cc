#include "scheduler/slot_pool.h"

#include "sluice/core/status_macros.h"

namespace sluice::cluster {

void SlotPool::Add(const std::string& taskmanager_id, const std::string& address, int slots,
                   int64_t registration) {
  taskmanagers_[taskmanager_id] = TaskManagerSlots{address, slots, 0, registration};
}

void SlotPool::Remove(const std::string& taskmanager_id, int64_t registration) {
  auto it = taskmanagers_.find(taskmanager_id);
  if (it != taskmanagers_.end() && it->second.registration == registration) {
    taskmanagers_.erase(it);
  }
}

absl::StatusOr<std::vector<std::string>> SlotPool::Reserve(
    int needed, SlotStrategy strategy, const std::vector<std::string>& preferred) {
  std::vector<FreeSlots> free;
  for (const auto& [id, tm] : taskmanagers_) free.push_back({id, tm.slots - tm.used});
  SLUICE_ASSIGN_OR_RETURN(auto owners, AllocateSlots(needed, free, strategy, preferred));
  for (const std::string& owner : owners) taskmanagers_[owner].used++;
  return owners;
}

void SlotPool::Release(const std::vector<std::string>& owners) {
  for (const std::string& owner : owners) {
    auto it = taskmanagers_.find(owner);
    // A TaskManager that registered again meanwhile started with none used.
    if (it != taskmanagers_.end() && it->second.used > 0) it->second.used--;
  }
}

const SlotPool::TaskManagerSlots* SlotPool::Find(const std::string& taskmanager_id) const {
  auto it = taskmanagers_.find(taskmanager_id);
  return it == taskmanagers_.end() ? nullptr : &it->second;
}

int SlotPool::total() const {
  int total = 0;
  for (const auto& [id, tm] : taskmanagers_) total += tm.slots;
  return total;
}

int SlotPool::free() const {
  int free = 0;
  for (const auto& [id, tm] : taskmanagers_) free += tm.slots - tm.used;
  return free;
}

}  // namespace sluice::cluster
