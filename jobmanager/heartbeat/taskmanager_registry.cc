#include "heartbeat/taskmanager_registry.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace sluice::cluster {

TaskManagerRegistry::TaskManagerRegistry(absl::Duration heartbeat_timeout, Clock now)
    : heartbeat_timeout_(heartbeat_timeout), now_(std::move(now)) {}

int64_t TaskManagerRegistry::Register(const RegisterTaskManagerRequest& registration) {
  MutexLock lock(&mu_);
  const int64_t number = ++registrations_;
  entries_[registration.taskmanager_id()] = Entry{registration, number, now_()};
  return number;
}

bool TaskManagerRegistry::Heartbeat(const std::string& taskmanager_id) {
  MutexLock lock(&mu_);
  auto it = entries_.find(taskmanager_id);
  if (it == entries_.end()) return false;
  it->second.last_heartbeat = now_();
  return true;
}

std::vector<TaskManagerRegistry::Lost> TaskManagerRegistry::RemoveSilent() {
  MutexLock lock(&mu_);
  const absl::Time now = now_();
  std::vector<Lost> lost;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const absl::Duration silent = now - it->second.last_heartbeat;
    if (silent <= heartbeat_timeout_) {
      ++it;
      continue;
    }
    lost.push_back({it->first, it->second.registration_number,
                    absl::StrCat("TaskManager '", it->first, "' was lost (no heartbeat for ",
                                 absl::FormatDuration(silent), ")")});
    it = entries_.erase(it);
  }
  return lost;
}

std::vector<TaskManagerRegistry::Entry> TaskManagerRegistry::Entries() const {
  MutexLock lock(&mu_);
  std::vector<Entry> entries;
  for (const auto& [id, entry] : entries_) entries.push_back(entry);
  return entries;
}

HeartbeatMonitor::HeartbeatMonitor(TaskManagerRegistry* registry, absl::Duration heartbeat_interval,
                                   std::function<void(const TaskManagerRegistry::Lost&)> on_lost)
    : registry_(registry),
      check_every_(heartbeat_interval / 2 + absl::Milliseconds(1)),
      on_lost_(std::move(on_lost)) {
  thread_ = std::thread([this] { Watch(); });
}

HeartbeatMonitor::~HeartbeatMonitor() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  thread_.join();
}

void HeartbeatMonitor::Watch() {
  while (true) {
    {
      MutexLock lock(&mu_);
      if (cv_.WaitFor(&mu_, check_every_, [this]() SLUICE_REQUIRES(mu_) { return stopping_; }))
        return;
    }
    for (const TaskManagerRegistry::Lost& lost : registry_->RemoveSilent()) {
      LOG(WARNING) << lost.why;
      on_lost_(lost);
    }
  }
}

}  // namespace sluice::cluster
