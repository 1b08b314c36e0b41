#include "runtime/checkpoint_coordinator.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace sluice::internal {

CheckpointCoordinator::CheckpointCoordinator(
    const JobGraph* graph, std::vector<std::pair<int, int>> tasks,
    std::unique_ptr<CheckpointStorage> storage,
    std::function<void(const CompletedCheckpoint&)> on_complete)
    : graph_(graph),
      tasks_(std::move(tasks)),
      storage_(std::move(storage)),
      on_complete_(std::move(on_complete)) {}

int64_t CheckpointCoordinator::MaybeStart(absl::Duration timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = absl::Now();
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now - it->second.started < timeout) return 0;  // still running
    LOG(WARNING) << "checkpoint " << it->first << " timed out after "
                 << absl::FormatDuration(timeout) << " and is aborted";
    it = pending_.erase(it);
  }
  const int64_t id = next_id_++;
  pending_[id].started = now;
  return id;
}

std::string CheckpointCoordinator::OperatorId(int node) const {
  const StreamNode& n = graph_->stream.nodes[node];
  return n.uid.empty() ? absl::StrCat("node-", node) : n.uid;
}

void CheckpointCoordinator::Acknowledge(int64_t id, int task_index, TaskSnapshot snapshot) {
  CompletedCheckpoint done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // aborted meanwhile
    Pending& p = it->second;
    const int subtask = tasks_[task_index].second;
    for (auto& [node, s] : snapshot) {
      auto& per_subtask = p.operators[node];
      per_subtask.resize(graph_->stream.nodes[node].parallelism);
      per_subtask[subtask] = std::move(s);
    }
    p.acked.insert(task_index);
    if (p.acked.size() < tasks_.size()) return;
    done.id = id;
    done.operators = std::move(p.operators);
    // Complete: older pending checkpoints can no longer complete usefully.
    pending_.erase(pending_.begin(), std::next(it));
  }
  absl::Status stored = Store(id, done);
  std::lock_guard<std::mutex> lock(mu_);
  if (!stored.ok()) {
    LOG(WARNING) << "checkpoint " << id << " could not be stored: " << stored.message();
    last_error_ = stored;
    return;
  }
  ++completed_;
  if (on_complete_) on_complete_(done);
}

absl::Status CheckpointCoordinator::Store(int64_t id, const CompletedCheckpoint& checkpoint) {
  if (!storage_) return absl::OkStatus();
  CheckpointMetadata m;
  m.checkpoint_id = id;
  m.timestamp_ms = absl::ToUnixMillis(absl::Now());
  m.job_name = graph_->stream.config.job_name;
  for (const auto& [node, subtasks] : checkpoint.operators) {
    const std::string op = OperatorId(node);
    m.max_parallelism[op] = graph_->stream.nodes[node].max_parallelism;
    auto& handles = m.operators[op];
    for (size_t i = 0; i < subtasks.size(); ++i) {
      auto h = storage_->WriteState(id, absl::StrCat(op, "-", i), SerializeToString(subtasks[i]));
      if (!h.ok()) {
        (void)storage_->Discard(id);
        return h.status();
      }
      handles.push_back(*h);
    }
  }
  if (absl::Status s = storage_->Commit(m); !s.ok()) {
    (void)storage_->Discard(id);
    return s;
  }
  return storage_->Retain(graph_->stream.config.checkpoints_retained);
}

void CheckpointCoordinator::AbortPending() {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.clear();
}

int64_t CheckpointCoordinator::completed_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return completed_;
}

absl::Status CheckpointCoordinator::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

}  // namespace sluice::internal
