#include "sluice/runtime/mini_cluster.h"

#include <algorithm>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glog/logging.h"
#include "runtime/chaos_monkey.h"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/core/status_macros.h"
#include "sluice/internal/runtime/job_checkpoints.h"
#include "sluice/internal/runtime/local_subtasks.h"
#include "sluice/runtime/restart_strategy.h"
#include "sluice/runtime/restore_check.h"

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

std::string JobResult::DescribeTasks() const {
  size_t width = 4;
  for (const auto& t : tasks) width = std::max(width, t.name.size());
  const int name_width = static_cast<int>(width);
  std::string out = absl::StrFormat("%-*s %12s %12s %6s %15s %6s\n", name_width, "task",
                                    "records in", "records sent", "busy", "back-pressured", "idle");
  for (const auto& t : tasks) {
    const double total = absl::ToDoubleSeconds(t.busy + t.backpressured + t.idle);
    auto percent = [&](absl::Duration d) {
      return total > 0 ? absl::StrFormat("%.0f%%", 100 * absl::ToDoubleSeconds(d) / total)
                       : std::string("-");
    };
    absl::StrAppendFormat(&out, "%-*s %12d %12d %6s %15s %6s\n", name_width, t.name, t.records_in,
                          t.records_sent, percent(t.busy), percent(t.backpressured),
                          percent(t.idle));
  }
  return out;
}

MiniCluster::MiniCluster(MiniClusterOptions options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = std::make_shared<SystemClock>();
}

MiniCluster::~MiniCluster() = default;

bool MiniCluster::running() const {
  MutexLock lock(&mu_);
  return running_;
}

absl::StatusOr<std::string> MiniCluster::TriggerSavepoint(const std::string& dir, bool stop) {
  if (dir.empty()) return absl::InvalidArgumentError("no savepoint directory given");
  internal::JobCheckpoints* checkpoints;
  {
    MutexLock lock(&mu_);
    checkpoints = running_ ? checkpoints_.get() : nullptr;
  }
  if (checkpoints == nullptr) {
    return absl::FailedPreconditionError(
        "no job with checkpoints enabled is running: a savepoint needs a checkpoint interval");
  }
  return checkpoints->TriggerSavepoint(dir, stop);
}

absl::Status MiniCluster::RunAttempt(const JobGraph& graph,
                                     const std::map<int, std::vector<OperatorSnapshot>>* restore,
                                     JobResult* result) {
  internal::SubtaskCheckpointing cp;
  internal::JobCheckpoints* checkpoints = checkpoints_.get();
  if (checkpoints != nullptr) {
    cp.ack = [checkpoints](int64_t id, int task, absl::StatusOr<internal::TaskAck> ack) {
      (void)checkpoints->Acknowledge(id, task, std::move(ack));  // its own tasks' indexes
    };
    cp.storage = checkpoints->storage();
  }
  cp.restore = restore;
  cp.chaos = chaos_.get();
  internal::LocalSubtasks subtasks(&graph, internal::Placement{}, /*remote=*/nullptr,
                                   options_.clock, std::move(cp));
  if (checkpoints != nullptr) checkpoints->BeginAttempt(&subtasks);
  {
    MutexLock lock(&mu_);
    running_ = true;
  }
  absl::Status status = subtasks.Run();
  {
    MutexLock lock(&mu_);
    running_ = false;
  }
  const bool stopped = checkpoints != nullptr && checkpoints->EndAttempt();
  if (!status.ok()) return status;
  result->stopped = stopped;
  result->tasks = subtasks.Stats();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::map<int, std::vector<OperatorSnapshot>>>>
MiniCluster::RestoreState(const JobGraph& graph) {
  using State = std::map<int, std::vector<OperatorSnapshot>>;
  std::optional<CompletedCheckpoint> latest;
  if (checkpoints_) latest = checkpoints_->latest();
  const JobConfig& config = graph.stream.config;
  if (latest && !latest->stored) return std::optional<State>(std::move(latest->operators));
  std::string path;
  bool allow_non_restored = config.allow_non_restored_state;
  if (latest) {
    // The job directory: its newest valid checkpoint (falling back past a damaged one).
    path = checkpoints_->storage()->job_dir();
    allow_non_restored = false;
  } else if (!config.restore_from.empty()) {
    path = config.restore_from;
  } else {
    return std::optional<State>();
  }
  SLUICE_ASSIGN_OR_RETURN(auto state, LoadStateFor(graph.stream, path, allow_non_restored));
  if (!latest) {
    // A savepoint of another version of the job: refused before anything runs if it cannot
    // be read.
    absl::Status compatible = CheckStateTypes(graph.stream, state);
    if (!compatible.ok()) {
      return absl::Status(compatible.code(),
                          absl::StrCat("cannot start from ", path, ": ", compatible.message()));
    }
  }
  return std::optional<State>(std::move(state));
}

absl::StatusOr<JobResult> MiniCluster::Execute(const JobGraph& graph) {
  const absl::Time start = absl::Now();
  const JobConfig& config = graph.stream.config;
  std::unique_ptr<internal::JobCheckpoints> checkpoints;
  if (config.checkpoint_interval > absl::ZeroDuration()) {
    SLUICE_ASSIGN_OR_RETURN(
        auto created, internal::JobCheckpoints::Create(&graph, options_.on_checkpoint_complete));
    checkpoints = std::move(created);
  }
  {
    MutexLock lock(&mu_);
    checkpoints_ = std::move(checkpoints);
  }
  RestartStrategy restarts = RestartStrategy::Of(config);
  chaos_.reset();
  if (config.chaos_enabled()) {
    internal::ChaosOptions chaos;
    chaos.every = config.chaos_kill_every;
    chaos.every_records = config.chaos_kill_every_records;
    chaos.max_failures = config.chaos_max_failures;
    chaos.seed = config.chaos_seed
                     ? *config.chaos_seed
                     : (uint64_t{std::random_device{}()} << 32) | std::random_device{}();
    chaos_ = std::make_unique<internal::ChaosMonkey>(chaos);
    LOG(INFO) << "chaos: up to " << config.chaos_max_failures << " simulated crashes, about one "
              << (chaos.every_records > 0
                      ? absl::StrCat("per attempt after ", chaos.every_records, " records")
                      : absl::StrCat("every ", absl::FormatDuration(chaos.every)))
              << " (seed " << chaos.seed << "; --chaos-seed=" << chaos.seed << " repeats it)";
  }

  JobResult result;
  for (;;) {
    SLUICE_ASSIGN_OR_RETURN(auto restore, RestoreState(graph));
    absl::Status status = RunAttempt(graph, restore ? &*restore : nullptr, &result);
    if (status.ok()) break;
    const std::optional<absl::Duration> delay = restarts.OnFailure(std::string(status.message()));
    if (!delay) {
      return absl::Status(status.code(), restarts.FailureMessage(std::string(status.message())));
    }
    const std::optional<CompletedCheckpoint> latest =
        checkpoints_ ? checkpoints_->latest() : std::nullopt;
    LOG(WARNING) << "job '" << config.job_name << "' restarts (restart " << restarts.restarts()
                 << ", " << restarts.config().ToString() << ") in " << absl::FormatDuration(*delay)
                 << " from "
                 << (latest                        ? absl::StrCat("checkpoint ", latest->id)
                     : config.restore_from.empty() ? std::string("the beginning")
                                                   : absl::StrCat("'", config.restore_from, "'"))
                 << " after: " << status.message();
    result.restarts++;
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(*delay));
  }
  result.duration = absl::Now() - start;
  if (checkpoints_) {
    result.completed_checkpoints = checkpoints_->completed_count();
    result.checkpoints = checkpoints_->stats();
    result.final_savepoint = checkpoints_->final_savepoint();
  }
  return result;
}

}  // namespace sluice
