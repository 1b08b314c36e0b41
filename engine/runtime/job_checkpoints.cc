#include "sluice/internal/runtime/job_checkpoints.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "runtime/checkpoint_coordinator.h"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/core/status_macros.h"

namespace sluice::internal {

std::vector<std::pair<int, int>> SubtasksOf(const JobGraph& graph) {
  std::vector<std::pair<int, int>> out;
  for (size_t v = 0; v < graph.vertices.size(); ++v) {
    for (int s = 0; s < graph.vertices[v].parallelism; ++s) out.push_back({static_cast<int>(v), s});
  }
  return out;
}

int TaskIndexOf(const JobGraph& graph, int vertex, int subtask) {
  int index = subtask;
  for (int v = 0; v < vertex; ++v) index += graph.vertices[v].parallelism;
  return index;
}

namespace {

/// A completed checkpoint's state by operator id, as a savepoint stores it.
absl::StatusOr<std::map<std::string, std::vector<OperatorSnapshot>>> StateByOperatorId(
    const JobGraph& graph, const CompletedCheckpoint& c, const CheckpointStorage* storage) {
  if (c.stored) {
    SLUICE_ASSIGN_OR_RETURN(auto loaded, LoadCheckpoint(storage->CheckpointDir(c.id)));
    return std::move(loaded.operators);
  }
  std::map<std::string, std::vector<OperatorSnapshot>> out;
  for (const auto& [node, snapshots] : c.operators) {
    out[OperatorStateId(graph.stream, node)] = snapshots;
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobCheckpoints>> JobCheckpoints::Create(
    const JobGraph* graph, std::function<void(const CompletedCheckpoint&)> on_complete) {
  const JobConfig& config = graph->stream.config;
  std::unique_ptr<CheckpointStorage> storage;
  if (!config.checkpoint_dir.empty()) {
    SLUICE_ASSIGN_OR_RETURN(auto created,
                            CheckpointStorage::Create(config.checkpoint_dir, config.job_name));
    storage = std::move(created);
  }
  std::unique_ptr<JobCheckpoints> j(new JobCheckpoints(graph, std::move(on_complete)));
  CheckpointCoordinator::Listener listener;
  listener.on_complete = [self = j.get()](const CompletedCheckpoint& c) { self->OnComplete(c); };
  listener.on_abort = [self = j.get()](int64_t id) { self->OnAborted(id); };
  listener.on_too_many_failures = [self = j.get()](const absl::Status& s) {
    self->OnTooManyFailures(s);
  };
  j->coordinator_ = std::make_unique<CheckpointCoordinator>(
      graph, SubtasksOf(*graph), std::move(storage), std::move(listener));
  return j;
}

JobCheckpoints::JobCheckpoints(const JobGraph* graph,
                               std::function<void(const CompletedCheckpoint&)> on_complete)
    : graph_(graph), on_complete_(std::move(on_complete)) {}

JobCheckpoints::~JobCheckpoints() { EndAttempt(); }

void JobCheckpoints::BeginAttempt(CheckpointParticipants* participants) {
  EndAttempt();
  {
    MutexLock lock(&mu_);
    participants_ = participants;
    ++attempt_;
    final_checkpoint_ = 0;
    stop_requested_ = false;
    end_trigger_ = false;
  }
  trigger_ = std::thread([this] { TriggerLoop(); });
}

bool JobCheckpoints::EndAttempt() {
  bool stopped;
  {
    MutexLock lock(&mu_);
    end_trigger_ = true;
    stopped = stop_requested_;
    participants_ = nullptr;
  }
  cv_.SignalAll();  // the trigger thread ends; savepoints waiting on this attempt give up
  if (trigger_.joinable()) trigger_.join();
  coordinator_->AbortPending();
  return stopped;
}

void JobCheckpoints::TriggerLoop() {
  const JobConfig& config = graph_->stream.config;
  const absl::Duration tick = std::min(absl::Milliseconds(10), config.checkpoint_interval);
  absl::Time next_periodic = absl::Now() + config.checkpoint_interval;
  UniqueMutexLock lock(&mu_);
  while (!cv_.WaitFor(&mu_, tick, [&]() SLUICE_REQUIRES(mu_) { return end_trigger_; })) {
    if (participants_ == nullptr || participants_->AnyFinished()) continue;  // ending or failing
    if (stop_requested_) continue;  // the stop's savepoint is the last checkpoint
    const bool take_final = final_checkpoint_ == 0 && participants_->AllAwaitingFinalCheckpoint();
    if (!take_final && absl::Now() < next_periodic) continue;
    lock.Unlock();
    // MaybeStart may abort timed-out checkpoints, whose listeners take the lock.
    const int64_t id = coordinator_->MaybeStart(/*force=*/take_final);
    lock.Lock();
    if (id == 0 || end_trigger_ || participants_ == nullptr) continue;
    if (take_final) {
      final_checkpoint_ = id;
    } else {
      next_periodic = absl::Now() + config.checkpoint_interval;
    }
    participants_->TriggerSources(id, /*final_savepoint=*/false);
  }
}

absl::Status JobCheckpoints::Acknowledge(int64_t id, int task_index, absl::StatusOr<TaskAck> ack) {
  return coordinator_->Acknowledge(id, task_index, std::move(ack));
}

void JobCheckpoints::OnComplete(const CompletedCheckpoint& c) {
  {
    MutexLock lock(&mu_);
    if (!latest_ || c.id > latest_->id) latest_ = c;
    if (auto it = savepoints_.find(c.id); it != savepoints_.end()) it->second = c;
    if (participants_ != nullptr) {
      // The job's final checkpoint: every task may now end.
      const bool release = final_checkpoint_ != 0 && c.id >= final_checkpoint_;
      participants_->NotifyComplete(c.id, release);
    }
  }
  cv_.SignalAll();
  if (on_complete_) on_complete_(c);
}

void JobCheckpoints::OnAborted(int64_t id) {
  {
    MutexLock lock(&mu_);
    savepoints_.erase(id);
    if (participants_ != nullptr) {
      participants_->NotifyAborted(id);
      if (final_checkpoint_ == id) final_checkpoint_ = 0;  // take another
    }
  }
  cv_.SignalAll();
}

void JobCheckpoints::OnTooManyFailures(const absl::Status& why) {
  MutexLock lock(&mu_);
  if (participants_ != nullptr) participants_->Fail(why);
}

absl::StatusOr<std::string> JobCheckpoints::TriggerSavepoint(const std::string& dir, bool stop) {
  if (dir.empty()) return absl::InvalidArgumentError("no savepoint directory given");
  const JobConfig& config = graph_->stream.config;
  UniqueMutexLock lock(&mu_);
  if (participants_ == nullptr) return absl::FailedPreconditionError("the job is not running");
  const int64_t attempt = attempt_;
  const absl::Time deadline = absl::Now() + config.checkpoint_timeout;
  // Stopping: no periodic checkpoint may start (and complete) after the savepoint, or output
  // written after it would be committed and written again on resume.
  if (stop) stop_requested_ = true;
  int64_t id = 0;
  while (true) {
    if (attempt_ != attempt) return absl::AbortedError("the job ended before the savepoint");
    lock.Unlock();
    id = coordinator_->MaybeStart(/*force=*/true);
    lock.Lock();
    if (id != 0) break;
    // Another checkpoint is in flight: wait for it to end.
    if (!cv_.WaitUntil(&mu_, deadline)) {
      if (stop && attempt_ == attempt) stop_requested_ = false;
      return absl::DeadlineExceededError("no savepoint could be started within the timeout");
    }
  }
  if (attempt_ != attempt) {
    coordinator_->Drop(id);  // started after the attempt's pending checkpoints were dropped
    return absl::AbortedError("the job ended before the savepoint");
  }
  savepoints_[id] = std::nullopt;
  participants_->TriggerSources(id, /*final_savepoint=*/stop);
  cv_.Wait(&mu_, [&]() SLUICE_REQUIRES(mu_) {
    return !savepoints_.contains(id) || savepoints_[id].has_value() || attempt_ != attempt;
  });
  std::optional<CompletedCheckpoint> done;
  if (auto it = savepoints_.find(id); it != savepoints_.end()) {
    done = std::move(it->second);
    savepoints_.erase(it);
  }
  if (!done) {
    if (stop && attempt_ == attempt && participants_ != nullptr) {
      // Sources may have stopped emitting: the job cannot go on as it was.
      stop_requested_ = false;
      participants_->Fail(
          absl::AbortedError("stop with savepoint failed: the savepoint was aborted"));
    }
    return absl::AbortedError(
        absl::StrCat("savepoint (checkpoint ", id, ") was aborted: a task failed or declined it"));
  }
  lock.Unlock();

  SLUICE_ASSIGN_OR_RETURN(auto state, StateByOperatorId(*graph_, *done, coordinator_->storage()));
  CheckpointMetadata m;
  m.checkpoint_id = id;
  m.timestamp_ms = absl::ToUnixMillis(absl::Now());
  m.job_name = config.job_name;
  for (size_t n = 0; n < graph_->stream.nodes.size(); ++n) {
    m.max_parallelism[OperatorStateId(graph_->stream, static_cast<int>(n))] =
        graph_->stream.nodes[n].max_parallelism;
  }
  auto path = WriteSavepoint(dir, std::move(m), state);
  if (!path.ok()) return path.status();
  LOG(INFO) << "savepoint of job '" << config.job_name << "' written to " << *path;
  if (stop) {
    lock.Lock();
    if (attempt_ == attempt && participants_ != nullptr) participants_->Stop();
    final_savepoint_ = *path;
  }
  return path;
}

std::optional<CompletedCheckpoint> JobCheckpoints::latest() const {
  MutexLock lock(&mu_);
  return latest_;
}

std::string JobCheckpoints::final_savepoint() const {
  MutexLock lock(&mu_);
  return final_savepoint_;
}

CheckpointStorage* JobCheckpoints::storage() const { return coordinator_->storage(); }

int64_t JobCheckpoints::completed_count() const { return coordinator_->completed_count(); }

int64_t JobCheckpoints::failed_count() const { return coordinator_->failed_count(); }
int JobCheckpoints::in_progress_count() const { return coordinator_->in_progress_count(); }

std::vector<CheckpointStats> JobCheckpoints::stats() const { return coordinator_->stats(); }

}  // namespace sluice::internal
