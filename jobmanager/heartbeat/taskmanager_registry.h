#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/jobmanager_service.pb.h"
#include "sluice/core/mutex.h"

namespace sluice::cluster {

/// The TaskManagers registered with this JobManager, when each was last heard from, and how
/// to end each one's control stream. Thread-safe (gRPC handler threads register, beat and
/// disconnect; the monitor expires).
class TaskManagerRegistry {
 public:
  using Clock = std::function<absl::Time()>;

  struct Entry {
    RegisterTaskManagerRequest registration;
    int64_t registration_number = 0;  // increases with every registration
    absl::Time last_heartbeat;
    std::function<void()> end_stream;  // ends its control stream (unset until it connects)
  };
  struct Lost {
    std::string taskmanager_id;
    int64_t registration_number = 0;
    std::string why;
  };
  struct Registered {
    int64_t registration_number = 0;
    /// The registration it replaces (the TaskManager registered again before its loss was
    /// noticed): lost, as any other, before the new one counts.
    std::optional<Lost> replaced;
  };

  explicit TaskManagerRegistry(absl::Duration heartbeat_timeout, Clock now = &absl::Now);

  /// Registers (or registers again, replacing) a TaskManager.
  Registered Register(const RegisterTaskManagerRequest& registration);
  /// The control stream of a registration opened; `end_stream` ends it (called when the
  /// TaskManager is declared lost or registers again). False if that registration is not
  /// the current one (the TaskManager registers again).
  bool Connect(const std::string& taskmanager_id, int64_t registration_number,
               std::function<void()> end_stream);
  /// Notes a heartbeat; false for a registration that is not the current one.
  bool Heartbeat(const std::string& taskmanager_id, int64_t registration_number);
  /// The control stream of a registration broke: if it is the current one, the TaskManager
  /// is lost now (its process died: the connection was reset or closed).
  std::optional<Lost> Disconnected(const std::string& taskmanager_id, int64_t registration_number);
  /// Removes the TaskManagers silent for longer than the heartbeat timeout (and ends their
  /// control streams).
  std::vector<Lost> RemoveSilent();
  /// The registered TaskManagers, by id.
  std::vector<Entry> Entries() const;
  absl::Time Now() const { return now_(); }
  absl::Duration heartbeat_timeout() const { return heartbeat_timeout_; }

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
