#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "scheduler/slot_allocation.h"

namespace sluice::cluster {

/// The slots the registered TaskManagers offer and which of them jobs hold. Not
/// thread-safe: the dispatcher calls it under its lock.
class SlotPool {
 public:
  struct TaskManagerSlots {
    std::string address;
    int slots = 0;
    int used = 0;
    int64_t registration = 0;  // which registration of the TaskManager offered them
  };

  /// A TaskManager offers `slots` (again: a new registration starts with none used).
  void Add(const std::string& taskmanager_id, const std::string& address, int slots,
           int64_t registration);
  /// The TaskManager's `registration` is gone (a newer registration stays).
  void Remove(const std::string& taskmanager_id, int64_t registration);
  /// Reserves `needed` slots (see AllocateSlots) and returns the TaskManager of each;
  /// RESOURCE_EXHAUSTED naming the numbers when there are too few.
  absl::StatusOr<std::vector<std::string>> Reserve(int needed, SlotStrategy strategy,
                                                   const std::vector<std::string>& preferred = {});
  /// Gives reserved slots back (those of TaskManagers that left are gone with them).
  void Release(const std::vector<std::string>& owners);

  const TaskManagerSlots* Find(const std::string& taskmanager_id) const;
  int total() const;
  int free() const;
  int taskmanagers() const { return static_cast<int>(taskmanagers_.size()); }

 private:
  std::map<std::string, TaskManagerSlots> taskmanagers_;
};

}  // namespace sluice::cluster
