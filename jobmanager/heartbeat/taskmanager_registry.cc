#include "heartbeat/taskmanager_registry.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace sluice::cluster {

TaskManagerRegistry::TaskManagerRegistry(absl::Duration heartbeat_timeout, Clock now)
    : heartbeat_timeout_(heartbeat_timeout), now_(std::move(now)) {}

TaskManagerRegistry::Registered TaskManagerRegistry::Register(
    const RegisterTaskManagerRequest& registration) {
  std::function<void()> end_old_stream;
  Registered registered;
  {
    MutexLock lock(&mu_);
    registered.registration_number = ++registrations_;
    Entry& entry = entries_[registration.taskmanager_id()];
    if (entry.registration_number != 0) {
      registered.replaced = Lost{registration.taskmanager_id(), entry.registration_number,
                                 absl::StrCat("TaskManager '", registration.taskmanager_id(),
                                              "' registered again (it restarted, or lost its "
                                              "connection to the JobManager)")};
      end_old_stream = std::move(entry.end_stream);
    }
    entry = Entry{registration, registered.registration_number, now_(), nullptr};
  }
  if (end_old_stream) end_old_stream();
  return registered;
}

bool TaskManagerRegistry::Connect(const std::string& taskmanager_id, int64_t registration_number,
                                  std::function<void()> end_stream) {
  std::function<void()> end_old_stream;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(taskmanager_id);
    if (it == entries_.end() || it->second.registration_number != registration_number) {
      return false;
    }
    end_old_stream = std::exchange(it->second.end_stream, std::move(end_stream));
    it->second.last_heartbeat = now_();
  }
  if (end_old_stream) end_old_stream();  // a second stream of one registration: the newest wins
  return true;
}

bool TaskManagerRegistry::Heartbeat(const std::string& taskmanager_id,
                                    int64_t registration_number) {
  MutexLock lock(&mu_);
  auto it = entries_.find(taskmanager_id);
  if (it == entries_.end() || it->second.registration_number != registration_number) return false;
  it->second.last_heartbeat = now_();
  return true;
}

std::optional<TaskManagerRegistry::Lost> TaskManagerRegistry::Disconnected(
    const std::string& taskmanager_id, int64_t registration_number) {
  MutexLock lock(&mu_);
  auto it = entries_.find(taskmanager_id);
  if (it == entries_.end() || it->second.registration_number != registration_number) {
    return std::nullopt;  // lost already, or registered again
  }
  entries_.erase(it);
  return Lost{taskmanager_id, registration_number,
              absl::StrCat("TaskManager '", taskmanager_id,
                           "' was lost (its control stream broke: the process ended or its "
                           "connection failed)")};
}

std::vector<TaskManagerRegistry::Lost> TaskManagerRegistry::RemoveSilent() {
  std::vector<Lost> lost;
  std::vector<std::function<void()>> end_streams;
  {
    MutexLock lock(&mu_);
    const absl::Time now = now_();
    for (auto it = entries_.begin(); it != entries_.end();) {
      const absl::Duration silent = now - it->second.last_heartbeat;
      if (silent <= heartbeat_timeout_) {
        ++it;
        continue;
      }
      lost.push_back({it->first, it->second.registration_number,
                      absl::StrCat("TaskManager '", it->first, "' was lost (no heartbeat for ",
                                   absl::FormatDuration(silent), ")")});
      if (it->second.end_stream) end_streams.push_back(std::move(it->second.end_stream));
      it = entries_.erase(it);
    }
  }
  for (auto& end : end_streams) end();
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
