#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/jobmanager_service.pb.h"
#include "sluice/core/mutex.h"

namespace sluice::cluster {

/// The TaskManagers registered with this JobManager and when each was last heard from.
/// Thread-safe (gRPC handler threads register and beat, the monitor expires).
class TaskManagerRegistry {
 public:
  using Clock = std::function<absl::Time()>;

  struct Entry {
    RegisterTaskManagerRequest registration;
    int64_t registration_number = 0;  // increases with every registration
    absl::Time last_heartbeat;
  };
  struct Lost {
    std::string taskmanager_id;
    int64_t registration_number = 0;
    std::string why;
  };

  explicit TaskManagerRegistry(absl::Duration heartbeat_timeout, Clock now = &absl::Now);

  /// Registers (or registers again, replacing) a TaskManager; returns its registration number.
  int64_t Register(const RegisterTaskManagerRequest& registration);
  /// Notes a heartbeat; false for a TaskManager that is not registered (it registers again).
  bool Heartbeat(const std::string& taskmanager_id);
  /// Removes the TaskManagers silent for longer than the heartbeat timeout.
  std::vector<Lost> RemoveSilent();
  /// The registered TaskManagers, by id.
  std::vector<Entry> Entries() const;
  absl::Time Now() const { return now_(); }

 private:
  const absl::Duration heartbeat_timeout_;
  const Clock now_;
  mutable Mutex mu_;
  std::map<std::string, Entry> entries_ SLUICE_GUARDED_BY(mu_);
  int64_t registrations_ SLUICE_GUARDED_BY(mu_) = 0;
};

/// Declares TaskManagers lost that have been silent for the heartbeat timeout: a thread that
/// checks the registry twice per heartbeat interval and hands each lost one to `on_lost`.
class HeartbeatMonitor {
 public:
  HeartbeatMonitor(TaskManagerRegistry* registry, absl::Duration heartbeat_interval,
                   std::function<void(const TaskManagerRegistry::Lost&)> on_lost);
  ~HeartbeatMonitor();  // stops the thread

 private:
  void Watch();

  TaskManagerRegistry* const registry_;
  const absl::Duration check_every_;
  const std::function<void(const TaskManagerRegistry::Lost&)> on_lost_;
  Mutex mu_;
  CondVar cv_;
  bool stopping_ SLUICE_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sluice::cluster
