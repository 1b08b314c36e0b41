#include "scheduler/scheduler.h"

#include "absl/strings/str_cat.h"

namespace sluice::cluster {

namespace {

std::function<std::string(const std::string&)> AddressIn(const SlotPool& pool) {
  return [&pool](const std::string& taskmanager_id) {
    const SlotPool::TaskManagerSlots* tm = pool.Find(taskmanager_id);
    return tm == nullptr ? std::string() : tm->address;
  };
}

}  // namespace

std::vector<PartCall> Scheduler::PlaceRegions(JobMaster& job, absl::Time now,
                                              std::vector<PartCall>* cancel) {
  std::vector<std::string> replacements;
  if (const int lost = job.lost_slots(); lost > 0) {
    auto slots = pool_.Reserve(lost, options_.slot_strategy);
    if (!slots.ok()) {
      if (now - job.waiting_since() >= options_.slot_wait) {
        *cancel = job.End(
            FAILED, absl::StrCat("not enough slots to restart the failed regions: ", "they need ",
                                 lost, " in place of lost ones; ", slots.status().message(),
                                 " — waited ", absl::FormatDuration(options_.slot_wait)));
      }
      return {};
    }
    replacements = *std::move(slots);
  }
  return job.RestartRegions(replacements, AddressIn(pool_));
}

std::vector<PartCall> Scheduler::Place(JobMaster& job, absl::Time now) {
  auto slots = pool_.Reserve(job.slots_needed(), options_.slot_strategy, job.last_slot_owners());
  if (!slots.ok()) {
    if (now - job.waiting_since() >= options_.slot_wait) {
      const std::string detail(slots.status().message());
      job.End(FAILED, absl::StrCat("not enough slots: the job needs ", job.slots_needed(),
                                   " (its highest parallelism); the cluster has ", pool_.total(),
                                   " slots in ", pool_.taskmanagers(), " TaskManagers, ",
                                   detail.substr(detail.find("has ") + 4), " — waited ",
                                   absl::FormatDuration(options_.slot_wait)));
    }
    return {};
  }
  return job.StartRun(*slots, AddressIn(pool_));
}

bool Scheduler::ReleaseSlotsOf(JobMaster& job) {
  const std::vector<std::string> owners = job.TakeReleasableSlots();
  pool_.Release(owners);
  return !owners.empty();
}

}  // namespace sluice::cluster
