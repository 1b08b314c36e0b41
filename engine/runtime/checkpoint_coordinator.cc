#include "runtime/checkpoint_coordinator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace sluice::internal {

CheckpointCoordinator::CheckpointCoordinator(const JobGraph* graph,
                                             std::vector<std::pair<int, int>> tasks,
                                             std::unique_ptr<CheckpointStorage> storage,
                                             Listener listener, std::shared_ptr<const Clock> clock)
    : graph_(graph),
      config_(graph->stream.config),
      tasks_(std::move(tasks)),
      storage_(std::move(storage)),
      listener_(std::move(listener)),
      clock_(clock ? std::move(clock) : std::make_shared<SystemClock>()) {
  // Ids continue after those already in the directory (a job restored from one of its own
  // checkpoints, or run again): a new checkpoint never overwrites an old one.
  if (storage_) {
    std::vector<int64_t> ids = storage_->CompletedIds();
    if (!ids.empty()) next_id_ = ids.front() + 1;
  }
}

int64_t CheckpointCoordinator::MaybeStart(bool force) {
  std::vector<int64_t> expired;
  absl::Status too_many;
  int64_t id = 0;
  {
    MutexLock lock(&mu_);
    const absl::Time now = Now();
    for (const auto& [pid, p] : pending_) {
      // One being stored is complete everywhere: only its files are being written.
      if (!p.storing && now - p.started >= config_.checkpoint_timeout) expired.push_back(pid);
    }
    for (int64_t pid : expired) {
      pending_.erase(pid);
      last_ended_ = now;
      absl::Status why = absl::DeadlineExceededError(
          absl::StrCat("checkpoint ", pid, " timed out after ",
                       absl::FormatDuration(config_.checkpoint_timeout)));
      LOG(WARNING) << why.message() << " and is aborted";
      if (too_many.ok()) too_many = CountFailure(pid, why);
    }
    const bool allowed =
        static_cast<int>(pending_.size()) < std::max(1, config_.checkpoint_max_concurrent) &&
        (force || now - last_ended_ >= config_.checkpoint_min_pause);
    if (allowed) {
      id = next_id_++;
      pending_[id].started = now;
    }
  }
  for (int64_t pid : expired) {
    if (listener_.on_abort) listener_.on_abort(pid);
  }
  if (!too_many.ok() && listener_.on_too_many_failures) listener_.on_too_many_failures(too_many);
  return id;
}

absl::Status CheckpointCoordinator::CountFailure(int64_t id, const absl::Status& why) {
  last_error_ = why;
  CheckpointStats failed;
  failed.id = id;
  failed.failed = true;
  ++failed_;
  Record(failed);
  ++consecutive_failures_;
  if (config_.checkpoint_tolerable_failures >= 0 &&
      consecutive_failures_ > config_.checkpoint_tolerable_failures) {
    consecutive_failures_ = 0;
    return absl::AbortedError(
        absl::StrCat("checkpoints failed ", config_.checkpoint_tolerable_failures + 1,
                     " times in a row (tolerable: ", config_.checkpoint_tolerable_failures,
                     "); the last failure: ", why.message()));
  }
  return absl::OkStatus();
}

absl::Status CheckpointCoordinator::Acknowledge(int64_t id, int task_index,
                                                absl::StatusOr<TaskAck> ack) {
  if (task_index < 0 || task_index >= static_cast<int>(tasks_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("an acknowledgement of checkpoint ", id,
                                                   " by task ", task_index, ", but the job has ",
                                                   tasks_.size(), " tasks"));
  }
  if (!ack.ok()) {
    LOG(WARNING) << "checkpoint " << id << " declined: " << ack.status().message();
    Abort(id, ack.status());
    return absl::OkStatus();
  }
  Pending done;
  {
    MutexLock lock(&mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return absl::OkStatus();  // aborted meanwhile
    Pending& p = it->second;
    // A task acknowledges once; a second one (a retried RPC, a stale attempt) must not
    // count again, least of all while the checkpoint is being stored from the first ones.
    if (p.storing || p.acked.contains(task_index)) return absl::OkStatus();
    const int subtask = tasks_[task_index].second;
    for (auto& [node, s] : ack->snapshots) {
      auto& per_subtask = p.operators[node];
      per_subtask.resize(graph_->stream.nodes[node].parallelism);
      per_subtask[subtask] = std::move(s);
    }
    for (auto& [node, h] : ack->handles) {
      auto& per_subtask = p.handles[node];
      per_subtask.resize(graph_->stream.nodes[node].parallelism);
      per_subtask[subtask] = std::move(h);
    }
    p.shared_files.insert(p.shared_files.end(), ack->shared_files.begin(), ack->shared_files.end());
    p.max_sync = std::max(p.max_sync, ack->sync_duration);
    p.max_sync_cpu = std::max(p.max_sync_cpu, ack->sync_cpu);
    p.max_async = std::max(p.max_async, ack->async_duration);
    p.acked.insert(task_index);
    if (p.acked.size() < tasks_.size()) return absl::OkStatus();
    // It stays pending while it is stored, so no newer checkpoint starts meanwhile (with
    // one at a time, the next one then sees the retained set after this one's cleanup).
    p.storing = true;
    done.started = p.started;
    done.operators = std::move(p.operators);
    done.handles = std::move(p.handles);
    done.shared_files = std::move(p.shared_files);
    done.max_sync = p.max_sync;
    done.max_sync_cpu = p.max_sync_cpu;
    done.max_async = p.max_async;
  }
  absl::Status stored = Store(id, done);
  if (!stored.ok()) {
    LOG(WARNING) << "checkpoint " << id << " could not be stored: " << stored.message();
    Abort(id, stored);
    return absl::OkStatus();
  }
  CompletedCheckpoint completed;
  completed.id = id;
  completed.operators = std::move(done.operators);
  completed.stored = storage_ != nullptr;
  std::vector<int64_t> subsumed;
  {
    MutexLock lock(&mu_);
    if (pending_.erase(id) == 0) {
      // The job restarted while the metadata was written: the new run did not restore this
      // checkpoint and may already have discarded what it covers, so it must not count.
      if (storage_) (void)storage_->Discard(id);
      return absl::OkStatus();
    }
    ++completed_;
    consecutive_failures_ = 0;
    last_ended_ = Now();
    CheckpointStats stats;
    stats.id = id;
    stats.duration = last_ended_ - done.started;
    stats.max_sync_duration = done.max_sync;
    stats.max_sync_cpu = done.max_sync_cpu;
    stats.max_async_duration = done.max_async;
    for (const auto& [node, handles] : done.handles) {
      for (const StateHandle& h : handles) stats.state_bytes += h.size;
    }
    Record(stats);
    // Older pending checkpoints are subsumed: this one is newer and complete.
    for (auto it = pending_.begin(); it != pending_.end() && it->first < id;) {
      if (it->second.storing) {
        ++it;
        continue;
      }
      subsumed.push_back(it->first);
      it = pending_.erase(it);
    }
  }
  for (int64_t old : subsumed) {
    if (listener_.on_abort) listener_.on_abort(old);
  }
  if (listener_.on_complete) listener_.on_complete(completed);
  return absl::OkStatus();
}

void CheckpointCoordinator::Abort(int64_t id, const absl::Status& why) {
  absl::Status too_many;
  {
    MutexLock lock(&mu_);
    if (pending_.erase(id) == 0) return;
    last_ended_ = Now();
    too_many = CountFailure(id, why);
  }
  if (storage_) (void)storage_->Discard(id);
  if (listener_.on_abort) listener_.on_abort(id);
  if (!too_many.ok() && listener_.on_too_many_failures) listener_.on_too_many_failures(too_many);
}

absl::Status CheckpointCoordinator::Store(int64_t id, const Pending& p) {
  if (!storage_) return absl::OkStatus();
  CheckpointMetadata m;
  m.checkpoint_id = id;
  m.timestamp_ms = absl::ToUnixMillis(Now());
  m.job_name = config_.job_name;
  for (const auto& [node, handles] : p.handles) {
    const std::string op = OperatorStateId(graph_->stream, node);
    m.max_parallelism[op] = graph_->stream.nodes[node].max_parallelism;
    m.operators[op] = handles;
  }
  m.shared_files = p.shared_files;
  std::sort(m.shared_files.begin(), m.shared_files.end());
  m.shared_files.erase(std::unique(m.shared_files.begin(), m.shared_files.end()),
                       m.shared_files.end());
  if (absl::Status s = storage_->Commit(m); !s.ok()) return s;
  // Shared files written since the oldest other running checkpoint started may be its own.
  absl::Time in_flight_since = absl::InfiniteFuture();
  {
    MutexLock lock(&mu_);
    for (const auto& [pid, pending] : pending_) {
      if (pid != id) in_flight_since = std::min(in_flight_since, pending.started);
    }
  }
  return storage_->Retain(config_.checkpoints_retained, in_flight_since);
}

void CheckpointCoordinator::AbortPending() {
  std::vector<int64_t> ids;
  {
    MutexLock lock(&mu_);
    for (const auto& [id, p] : pending_) ids.push_back(id);
    pending_.clear();
  }
  for (int64_t id : ids) {
    if (storage_) (void)storage_->Discard(id);
  }
}

void CheckpointCoordinator::Drop(int64_t id) {
  bool dropped;
  {
    MutexLock lock(&mu_);
    dropped = pending_.erase(id) > 0;
  }
  if (dropped && storage_) (void)storage_->Discard(id);
}

int CheckpointCoordinator::in_progress_count() const {
  MutexLock lock(&mu_);
  return static_cast<int>(pending_.size());
}

int64_t CheckpointCoordinator::completed_count() const {
  MutexLock lock(&mu_);
  return completed_;
}

absl::Status CheckpointCoordinator::last_error() const {
  MutexLock lock(&mu_);
  return last_error_;
}

int64_t CheckpointCoordinator::failed_count() const {
  MutexLock lock(&mu_);
  return failed_;
}

void CheckpointCoordinator::Record(const CheckpointStats& stats) {
  stats_.push_back(stats);
  if (stats_.size() > kCheckpointStatsKept) stats_.pop_front();
}

std::vector<CheckpointStats> CheckpointCoordinator::stats() const {
  MutexLock lock(&mu_);
  return {stats_.begin(), stats_.end()};
}

}  // namespace sluice::internal
