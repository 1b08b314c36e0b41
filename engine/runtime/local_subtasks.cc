#include "sluice/internal/runtime/local_subtasks.h"

#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "runtime/channel_wiring.h"
#include "runtime/chaos_monkey.h"
#include "runtime/task.h"

namespace sluice::internal {

namespace {

/// The restored state of each operator of task (vertex, subtask).
std::map<int, RestoredOperatorState> RestoredStateFor(
    const JobGraph& graph, int vertex, int subtask,
    const std::map<int, std::vector<OperatorSnapshot>>* restore) {
  std::map<int, RestoredOperatorState> out;
  if (restore == nullptr) return out;
  for (int node : graph.vertices[vertex].nodes) {
    auto it = restore->find(node);
    if (it == restore->end()) continue;
    const StreamNode& n = graph.stream.nodes[node];
    out[node] = RedistributeState(it->second, subtask, n.parallelism, n.max_parallelism);
  }
  return out;
}

}  // namespace

LocalSubtasks::LocalSubtasks(const JobGraph* graph, Placement placement, RemoteChannels* remote,
                             std::shared_ptr<const Clock> clock, SubtaskCheckpointing checkpointing,
                             MetricLabels run_labels)
    : graph_(graph),
      remote_(remote),
      chaos_(checkpointing.chaos),
      restored_(checkpointing.restore != nullptr),
      wiring_(std::make_unique<Wiring>(WireChannels(*graph, placement, remote))) {
  for (size_t v = 0; v < graph->vertices.size(); ++v) {
    for (int s = 0; s < graph->vertices[v].parallelism; ++s) {
      if (!placement.IsLocal(static_cast<int>(v), s)) continue;
      InputGate* gate = wiring_->gates[v].empty() ? nullptr : wiring_->gates[v][s].get();
      TaskCheckpointing cp;
      cp.task_index = TaskIndexOf(*graph, static_cast<int>(v), s);
      cp.ack = checkpointing.ack;
      cp.storage = checkpointing.storage;
      cp.keep_local_copy = checkpointing.keep_local_copy;
      cp.keep_native_copy = checkpointing.keep_native_copy;
      cp.restored = RestoredStateFor(*graph, static_cast<int>(v), s, checkpointing.restore);
      cp.job_restored = checkpointing.restore != nullptr;
      cp.chaos = checkpointing.chaos;
      tasks_.push_back(std::make_unique<Task>(graph, static_cast<int>(v), s, gate,
                                              std::move(wiring_->outputs[v][s]), clock,
                                              std::move(cp), run_labels));
      task_gates_.push_back(gate);
    }
  }
}

LocalSubtasks::~LocalSubtasks() = default;

void LocalSubtasks::CancelTasks() {
  for (auto& t : tasks_) t->Cancel();
  for (InputGate* g : task_gates_) {
    if (g != nullptr) g->Cancel();
  }
}

void LocalSubtasks::Cancel() {
  {
    MutexLock lock(&mu_);
    canceled_ = true;
  }
  CancelTasks();
}

void LocalSubtasks::Fail(const absl::Status& why) {
  {
    MutexLock lock(&mu_);
    if (failure_.ok()) failure_ = why;
  }
  CancelTasks();
}

absl::Status LocalSubtasks::Run() {
  if (chaos_ != nullptr) {
    std::vector<ChaosMonkey::Target> targets;
    for (size_t i = 0; i < tasks_.size(); ++i) {
      targets.push_back({tasks_[i]->name(), task_gates_[i] != nullptr});
    }
    chaos_->BeginAttempt(std::move(targets), restored_);
  }
  std::vector<std::thread> threads;
  threads.reserve(tasks_.size());
  for (auto& task : tasks_) {
    threads.emplace_back([&, t = task.get()] {
      absl::Status s = t->Run();
      if (s.ok()) return;
      if (absl::IsCancelled(s)) {
        UniqueMutexLock lock(&mu_);
        if (t->stopped()) {
          // Stopped with a savepoint: the first task to stop unblocks the others.
          stopped_ = true;
          lock.Unlock();
          CancelTasks();
          return;
        }
        if (canceled_ || stopped_ || !failure_.ok()) return;  // we canceled it
        // A writer found its channel gone: a connection to another process broke.
        const absl::Status why = remote_ != nullptr ? remote_->status() : absl::OkStatus();
        s = absl::UnavailableError(
            absl::StrCat(t->name(), ": a channel to another TaskManager failed",
                         why.ok() ? std::string() : absl::StrCat(": ", why.message())));
      }
      {
        MutexLock lock(&mu_);
        if (!failure_.ok()) return;
        failure_ = s;
      }
      LOG(ERROR) << "job '" << graph_->stream.config.job_name << "' failed: " << s.message();
      CancelTasks();
    });
  }
  for (auto& t : threads) t.join();
  if (chaos_ != nullptr) chaos_->EndAttempt();
  MutexLock lock(&mu_);
  if (!failure_.ok()) return failure_;
  if (canceled_ && !stopped_) return absl::CancelledError("the job's subtasks here were canceled");
  return absl::OkStatus();
}

std::optional<absl::Time> LocalSubtasks::FirstRecordAt() const {
  std::optional<absl::Time> first;
  for (const auto& task : tasks_) {
    const std::optional<absl::Time> at = task->first_record_at();
    if (at && (!first || *at < *first)) first = at;
  }
  return first;
}

std::vector<TaskMetricsSnapshot> LocalSubtasks::MetricsNow(absl::Time now) const {
  std::vector<TaskMetricsSnapshot> out;
  for (const auto& task : tasks_) {
    TaskMetricsSnapshot s = task->metrics().Snapshot(now);
    s.vertex = task->vertex();
    s.subtask = task->subtask();
    out.push_back(s);
  }
  return out;
}

bool LocalSubtasks::stopped() const {
  MutexLock lock(&mu_);
  return stopped_;
}

void LocalSubtasks::TriggerSources(int64_t id, bool final_savepoint) {
  for (auto& t : tasks_) {
    if (!t->is_source()) continue;
    final_savepoint ? t->TriggerFinalSavepoint(id) : t->TriggerCheckpoint(id);
  }
}

void LocalSubtasks::NotifyComplete(int64_t id, bool release) {
  for (auto& t : tasks_) {
    t->NotifyCheckpointComplete(id);
    if (release) t->Release();
  }
}

void LocalSubtasks::NotifyAborted(int64_t id) {
  for (auto& t : tasks_) t->NotifyCheckpointAborted(id);
}

void LocalSubtasks::Stop() {
  {
    MutexLock lock(&mu_);
    stopped_ = true;
  }
  for (auto& t : tasks_) t->Stop();
}

bool LocalSubtasks::AllAwaitingFinalCheckpoint() {
  for (const auto& t : tasks_) {
    if (!t->awaiting_final_checkpoint()) return false;
  }
  return true;
}

bool LocalSubtasks::AnyFinished() {
  for (const auto& t : tasks_) {
    if (t->finished()) return true;
  }
  return false;
}

std::vector<TaskStats> LocalSubtasks::Stats() const {
  std::vector<TaskStats> out;
  for (size_t i = 0; i < tasks_.size(); ++i) {
    out.push_back(StatsOf(*tasks_[i], task_gates_[i]));
  }
  return out;
}

const std::vector<int>& LocalSubtasks::inbound_channels() const {
  return wiring_->inbound_channels;
}

}  // namespace sluice::internal
