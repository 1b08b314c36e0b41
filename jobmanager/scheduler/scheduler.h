#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "job/job_master.h"
#include "scheduler/slot_pool.h"

namespace sluice::cluster {

struct SchedulerOptions {
  /// A job that cannot get its slots fails after waiting this long.
  absl::Duration slot_wait = absl::Seconds(30);
  SlotStrategy slot_strategy = SlotStrategy::kSpread;
};

/// Places jobs into the slot pool's slots: a waiting job whose slots are free starts a run
/// there; one that waited longer than the slot wait fails saying how many slots it needs and
/// the cluster has. Not thread-safe: the dispatcher calls it under its lock.
class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions options) : options_(options) {}

  SlotPool& pool() { return pool_; }
  const SlotPool& pool() const { return pool_; }

  /// Tries to place `job` (which waits for slots) at `now`: the deployments of its new run,
  /// or none (it waits on, or failed waiting).
  std::vector<PartCall> Place(JobMaster& job, absl::Time now);
  /// Places the failed regions of `job` (which await their restart): slots of live
  /// TaskManagers in place of the lost ones, the deployments of their next run; or none
  /// (it waits on, or failed waiting: then `cancel` holds the parts still running).
  std::vector<PartCall> PlaceRegions(JobMaster& job, absl::Time now, std::vector<PartCall>* cancel);
  /// Gives the job's slots back once no part of it runs; true if any came free.
  bool ReleaseSlotsOf(JobMaster& job);

 private:
  const SchedulerOptions options_;
  SlotPool pool_;
};

}  // namespace sluice::cluster
