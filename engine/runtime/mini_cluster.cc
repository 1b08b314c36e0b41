#include "sluice/runtime/mini_cluster.h"

#include <algorithm>
#include <optional>
#include <random>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "runtime/channel_wiring.h"
#include "runtime/chaos_monkey.h"
#include "runtime/checkpoint_coordinator.h"
#include "runtime/task.h"
#include "sluice/checkpoint/checkpoint_loader.h"

namespace sluice {

int64_t JobResult::CounterTotal(const std::string& counter) const {
  int64_t total = 0;
  const std::string suffix = "." + counter;
  for (const auto& t : tasks) {
    for (const auto& [name, value] : t.counters) {
      if (name.ends_with(suffix)) total += value;
    }
  }
  return total;
}

int64_t JobResult::MaxQueuedRecords() const {
  int64_t m = 0;
  for (const auto& t : tasks) m = std::max(m, t.max_queued_records);
  return m;
}

/// The tasks of one run of the job, as the checkpoint callbacks reach them.
struct MiniCluster::Attempt {
  std::vector<std::unique_ptr<internal::Task>> tasks;
  std::function<void()> cancel_all;
  // Guarded by MiniCluster::mu_.
  int64_t final_checkpoint = 0;  // started once every task waits for it
  absl::Status failure;          // a failure not raised by a task (checkpoint failures)
  bool stop_requested = false;

  void TriggerSources(int64_t id) {
    for (auto& t : tasks) {
      if (t->is_source()) t->TriggerCheckpoint(id);
    }
  }
};

MiniCluster::MiniCluster(MiniClusterOptions options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = std::make_shared<SystemClock>();
}

MiniCluster::~MiniCluster() = default;

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

/// A completed checkpoint's state by operator id, as a savepoint stores it.
absl::StatusOr<std::map<std::string, std::vector<OperatorSnapshot>>> StateByOperatorId(
    const JobGraph& graph, const CompletedCheckpoint& c, const CheckpointStorage* storage) {
  if (c.stored) {
    auto loaded = LoadCheckpoint(storage->CheckpointDir(c.id));
    if (!loaded.ok()) return loaded.status();
    return std::move(loaded->operators);
  }
  std::map<std::string, std::vector<OperatorSnapshot>> out;
  for (const auto& [node, snapshots] : c.operators) {
    out[OperatorStateId(graph.stream, node)] = snapshots;
  }
  return out;
}

}  // namespace

bool MiniCluster::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return attempt_ != nullptr;
}

void MiniCluster::OnCheckpointComplete(const CompletedCheckpoint& c) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!latest_ || c.id > latest_->id) latest_ = c;
    if (auto it = savepoint_outcomes_.find(c.id); it != savepoint_outcomes_.end()) {
      it->second = true;
      savepoint_checkpoints_[c.id] = c;
    }
    if (attempt_ != nullptr) {
      for (auto& t : attempt_->tasks) t->NotifyCheckpointComplete(c.id);
      // The job's final checkpoint: every task may now end.
      if (attempt_->final_checkpoint != 0 && c.id >= attempt_->final_checkpoint) {
        for (auto& t : attempt_->tasks) t->Release();
      }
    }
  }
  checkpoint_cv_.notify_all();
  if (options_.on_checkpoint_complete) options_.on_checkpoint_complete(c);
}

void MiniCluster::OnCheckpointAborted(int64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = savepoint_outcomes_.find(id); it != savepoint_outcomes_.end()) {
      savepoint_outcomes_.erase(it);
    }
    if (attempt_ != nullptr) {
      for (auto& t : attempt_->tasks) t->NotifyCheckpointAborted(id);
      if (attempt_->final_checkpoint == id) attempt_->final_checkpoint = 0;  // take another
    }
  }
  checkpoint_cv_.notify_all();
}

void MiniCluster::FailAttempt(const absl::Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (attempt_ == nullptr) return;
  if (attempt_->failure.ok()) attempt_->failure = why;
  attempt_->cancel_all();
}

absl::StatusOr<std::string> MiniCluster::TriggerSavepoint(const std::string& dir, bool stop) {
  if (dir.empty()) return absl::InvalidArgumentError("no savepoint directory given");
  std::unique_lock<std::mutex> lock(mu_);
  if (attempt_ == nullptr || coordinator_ == nullptr) {
    return absl::FailedPreconditionError(
        "no job with checkpoints enabled is running: a savepoint needs a checkpoint interval");
  }
  const absl::Duration timeout = coordinator_->config().checkpoint_timeout;
  const absl::Time deadline = absl::Now() + timeout;
  // Stopping: no periodic checkpoint may start (and complete) after the savepoint, or output
  // written after it would be committed and written again on resume.
  if (stop) attempt_->stop_requested = true;
  int64_t id = 0;
  while (id == 0) {
    if (attempt_ == nullptr) return absl::AbortedError("the job ended before the savepoint");
    id = coordinator_->MaybeStart(/*force=*/true);
    if (id != 0) break;
    // Another checkpoint is in flight: wait for it to end.
    if (checkpoint_cv_.wait_until(lock, absl::ToChronoTime(deadline)) == std::cv_status::timeout) {
      return absl::DeadlineExceededError("no savepoint could be started within the timeout");
    }
  }
  savepoint_outcomes_[id] = false;
  Attempt* attempt = attempt_;
  for (auto& t : attempt->tasks) {
    if (!t->is_source()) continue;
    stop ? t->TriggerFinalSavepoint(id) : t->TriggerCheckpoint(id);
  }
  checkpoint_cv_.wait(lock, [&] {
    return !savepoint_outcomes_.contains(id) || savepoint_outcomes_[id] || attempt_ != attempt;
  });
  const bool done = savepoint_outcomes_.contains(id) && savepoint_outcomes_[id];
  savepoint_outcomes_.erase(id);
  if (!done) {
    if (stop && attempt_ == attempt) {
      // Sources may have stopped emitting: the job cannot go on as it was.
      attempt->stop_requested = false;
      if (attempt->failure.ok()) {
        attempt->failure =
            absl::AbortedError("stop with savepoint failed: the savepoint was aborted");
      }
      attempt->cancel_all();
    }
    return absl::AbortedError(
        absl::StrCat("savepoint (checkpoint ", id, ") was aborted: a task failed or declined it"));
  }
  CompletedCheckpoint c = std::move(savepoint_checkpoints_[id]);
  savepoint_checkpoints_.erase(id);
  lock.unlock();

  const JobGraph& graph = coordinator_->graph();
  auto state = StateByOperatorId(graph, c, coordinator_->storage());
  if (!state.ok()) return state.status();
  CheckpointMetadata m;
  m.checkpoint_id = id;
  m.timestamp_ms = absl::ToUnixMillis(absl::Now());
  m.job_name = graph.stream.config.job_name;
  for (size_t n = 0; n < graph.stream.nodes.size(); ++n) {
    m.max_parallelism[OperatorStateId(graph.stream, static_cast<int>(n))] =
        graph.stream.nodes[n].max_parallelism;
  }
  auto path = WriteSavepoint(dir, std::move(m), *state);
  if (!path.ok()) return path.status();
  LOG(INFO) << "savepoint of job '" << graph.stream.config.job_name << "' written to " << *path;
  if (stop) {
    lock.lock();
    if (attempt_ == attempt) {
      attempt->stop_requested = true;
      for (auto& t : attempt->tasks) t->Stop();
    }
    stop_savepoint_ = *path;
  }
  return path;
}

absl::Status MiniCluster::RunAttempt(const JobGraph& graph,
                                     const std::map<int, std::vector<OperatorSnapshot>>* restore,
                                     JobResult* result) {
  const JobConfig& config = graph.stream.config;
  internal::Wiring wiring = internal::WireChannels(graph);
  internal::CheckpointCoordinator* coordinator = coordinator_.get();

  Attempt attempt;
  std::vector<InputGate*> task_gates;
  for (size_t v = 0; v < graph.vertices.size(); ++v) {
    for (int s = 0; s < graph.vertices[v].parallelism; ++s) {
      InputGate* gate = wiring.gates[v].empty() ? nullptr : wiring.gates[v][s].get();
      internal::TaskCheckpointing cp;
      cp.task_index = static_cast<int>(attempt.tasks.size());
      if (coordinator != nullptr) {
        cp.ack = [coordinator](int64_t id, int task, absl::StatusOr<internal::TaskAck> ack) {
          coordinator->Acknowledge(id, task, std::move(ack));
        };
        cp.storage = coordinator->storage();
      }
      cp.restored = RestoredStateFor(graph, static_cast<int>(v), s, restore);
      cp.job_restored = restore != nullptr;
      cp.chaos = chaos_.get();
      attempt.tasks.push_back(std::make_unique<internal::Task>(&graph, static_cast<int>(v), s, gate,
                                                               std::move(wiring.outputs[v][s]),
                                                               options_.clock, std::move(cp)));
      task_gates.push_back(gate);
    }
  }
  attempt.cancel_all = [&attempt, &wiring]() {
    for (auto& t : attempt.tasks) t->Cancel();
    for (auto& per_vertex : wiring.gates) {
      for (auto& g : per_vertex) {
        if (g) g->Cancel();
      }
    }
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    attempt_ = &attempt;
  }
  if (chaos_) {
    std::vector<bool> has_inputs;
    for (InputGate* gate : task_gates) has_inputs.push_back(gate != nullptr);
    chaos_->BeginAttempt(std::move(has_inputs));
  }

  std::mutex failure_mu;
  absl::Status first_failure;  // guarded by failure_mu
  std::vector<std::thread> threads;
  threads.reserve(attempt.tasks.size());
  for (auto& task : attempt.tasks) {
    threads.emplace_back([&, t = task.get()]() {
      absl::Status s = t->Run();
      if (s.ok()) return;
      if (absl::IsCancelled(s)) {
        // A stopped job: the first task to stop unblocks the others.
        if (t->stopped()) attempt.cancel_all();
        return;
      }
      bool first = false;
      {
        std::lock_guard<std::mutex> lock(failure_mu);
        if (first_failure.ok()) {
          first_failure = s;
          first = true;
        }
      }
      if (first) {
        LOG(ERROR) << "job '" << config.job_name << "' failed: " << s.message();
        attempt.cancel_all();
      }
    });
  }
  // The checkpoint trigger: periodic checkpoints at the sources, and the final one once
  // every task's input has ended.
  std::mutex trigger_mu;
  std::condition_variable trigger_cv;
  bool stop_trigger = false;
  std::thread trigger;
  if (coordinator != nullptr) {
    trigger = std::thread([&] {
      std::unique_lock<std::mutex> lock(trigger_mu);
      absl::Time next_periodic = absl::Now() + config.checkpoint_interval;
      const auto tick = std::min(std::chrono::milliseconds(10),
                                 absl::ToChronoMilliseconds(config.checkpoint_interval));
      while (!trigger_cv.wait_for(lock, tick, [&] { return stop_trigger; })) {
        bool any_finished = false;
        bool all_waiting = true;
        for (const auto& t : attempt.tasks) {
          any_finished |= t->finished();
          all_waiting &= t->awaiting_final_checkpoint();
        }
        if (any_finished) continue;  // the job is ending (or failing)
        bool take_final;
        {
          std::lock_guard<std::mutex> guard(mu_);
          if (attempt.stop_requested) continue;  // the stop's savepoint is the last checkpoint
          take_final = all_waiting && attempt.final_checkpoint == 0;
        }
        if (!take_final && absl::Now() < next_periodic) continue;
        const int64_t id = coordinator->MaybeStart(/*force=*/take_final);
        if (id == 0) continue;
        if (take_final) {
          std::lock_guard<std::mutex> guard(mu_);
          attempt.final_checkpoint = id;
        } else {
          next_periodic = absl::Now() + config.checkpoint_interval;
        }
        attempt.TriggerSources(id);
      }
    });
  }
  for (auto& th : threads) th.join();
  if (trigger.joinable()) {
    {
      std::lock_guard<std::mutex> lock(trigger_mu);
      stop_trigger = true;
    }
    trigger_cv.notify_all();
    trigger.join();
  }
  if (chaos_) chaos_->EndAttempt();
  absl::Status failure;
  bool stopped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    attempt_ = nullptr;
    failure = attempt.failure;
    stopped = attempt.stop_requested;
  }
  checkpoint_cv_.notify_all();  // savepoints waiting on this attempt give up
  {
    std::lock_guard<std::mutex> lock(failure_mu);
    if (!first_failure.ok()) return first_failure;
  }
  if (!failure.ok()) return failure;
  result->stopped = stopped;
  result->tasks.clear();
  for (size_t i = 0; i < attempt.tasks.size(); ++i) {
    result->tasks.push_back(internal::StatsOf(*attempt.tasks[i], task_gates[i]));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::map<int, std::vector<OperatorSnapshot>>>>
MiniCluster::RestoreState(const JobGraph& graph) {
  using State = std::map<int, std::vector<OperatorSnapshot>>;
  std::optional<CompletedCheckpoint> latest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    latest = latest_;
  }
  const JobConfig& config = graph.stream.config;
  if (latest && !latest->stored) return std::optional<State>(std::move(latest->operators));
  std::string path;
  bool allow_non_restored = config.allow_non_restored_state;
  if (latest) {
    // The job directory: its newest valid checkpoint (falling back past a damaged one).
    path = coordinator_->storage()->job_dir();
    allow_non_restored = false;
  } else if (!config.restore_from.empty()) {
    path = config.restore_from;
  } else {
    return std::optional<State>();
  }
  auto loaded = LoadCheckpoint(path);
  if (!loaded.ok()) {
    return absl::Status(
        loaded.status().code(),
        absl::StrCat("cannot restore job '", config.job_name, "': ", loaded.status().message()));
  }
  LOG(INFO) << "job '" << config.job_name << "' restores from " << loaded->dir;
  auto matched = MatchToGraph(*loaded, graph.stream, allow_non_restored);
  if (!matched.ok()) return matched.status();
  return std::optional<State>(std::move(*matched));
}

absl::StatusOr<JobResult> MiniCluster::Execute(const JobGraph& graph) {
  const absl::Time start = absl::Now();
  const JobConfig& config = graph.stream.config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    latest_.reset();
    stop_savepoint_.clear();
  }
  coordinator_.reset();
  if (config.checkpoint_interval > absl::ZeroDuration()) {
    std::unique_ptr<CheckpointStorage> storage;
    if (!config.checkpoint_dir.empty()) {
      auto created = CheckpointStorage::Create(config.checkpoint_dir, config.job_name);
      if (!created.ok()) return created.status();
      storage = std::move(*created);
    }
    std::vector<std::pair<int, int>> task_ids;
    for (size_t v = 0; v < graph.vertices.size(); ++v) {
      for (int s = 0; s < graph.vertices[v].parallelism; ++s) {
        task_ids.push_back({static_cast<int>(v), s});
      }
    }
    internal::CheckpointCoordinator::Listener listener;
    listener.on_complete = [this](const CompletedCheckpoint& c) { OnCheckpointComplete(c); };
    listener.on_abort = [this](int64_t id) { OnCheckpointAborted(id); };
    listener.on_too_many_failures = [this](const absl::Status& s) { FailAttempt(s); };
    coordinator_ = std::make_unique<internal::CheckpointCoordinator>(
        &graph, std::move(task_ids), std::move(storage), std::move(listener));
  }
  int restart_attempts = config.restart_attempts;
  chaos_.reset();
  if (config.chaos_kill_every > absl::ZeroDuration() && config.chaos_max_failures > 0) {
    const uint64_t seed = config.chaos_seed != 0 ? config.chaos_seed : std::random_device{}();
    chaos_ = std::make_unique<internal::ChaosMonkey>(config.chaos_kill_every,
                                                     config.chaos_max_failures, seed);
    restart_attempts = std::max(restart_attempts, config.chaos_max_failures);
    LOG(INFO) << "chaos: up to " << config.chaos_max_failures
              << " simulated crashes, about one every "
              << absl::FormatDuration(config.chaos_kill_every) << " (seed " << seed << ")";
  }

  JobResult result;
  for (int attempt = 0;; ++attempt) {
    auto restore = RestoreState(graph);
    if (!restore.ok()) return restore.status();
    absl::Status status = RunAttempt(graph, *restore ? &**restore : nullptr, &result);
    if (status.ok()) break;
    if (coordinator_) coordinator_->AbortPending();
    if (attempt >= restart_attempts) return status;
    int64_t latest_id = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (latest_) latest_id = latest_->id;
    }
    LOG(WARNING) << "job '" << config.job_name << "' restarts (attempt " << attempt + 1 << " of "
                 << restart_attempts << ") from "
                 << (latest_id != 0                ? absl::StrCat("checkpoint ", latest_id)
                     : config.restore_from.empty() ? std::string("the beginning")
                                                   : absl::StrCat("'", config.restore_from, "'"))
                 << " after: " << status.message();
    result.restarts++;
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(config.restart_delay));
  }
  result.duration = absl::Now() - start;
  if (coordinator_) {
    result.completed_checkpoints = coordinator_->completed_count();
    result.checkpoints = coordinator_->stats();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    result.final_savepoint = stop_savepoint_;
  }
  return result;
}

}  // namespace sluice
