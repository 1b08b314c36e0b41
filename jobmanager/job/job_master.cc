#include "job/job_master.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace sluice::cluster {

JobMaster::JobMaster(std::string id, JobSubmission request, SubmittedJob job,
                     std::unique_ptr<internal::JobCheckpoints> checkpoints,
                     TaskManagerGateway* gateway, RunFailedCallback on_checkpoints_failed_run,
                     const std::optional<RestartStrategyConfig>& default_restart_strategy,
                     Clock now)
    : request_(std::move(request)),
      now_(std::move(now)),
      gateway_(gateway),
      on_checkpoints_failed_run_(std::move(on_checkpoints_failed_run)),
      job_(std::move(job)),
      restart_strategy_(
          RestartStrategy::Of(job_.graph->stream.config, default_restart_strategy, now_)),
      checkpoints_(std::move(checkpoints)) {
  submitted_ = now_();
  waiting_since_ = submitted_;
  status_.set_job_id(std::move(id));
  status_.set_job_name(request_.job_name());
  status_.set_restart_strategy(restart_strategy_.config().ToString());
  SetState(CREATED, "");
  int needed = 0;
  for (int p : request_.vertex_parallelism()) needed = std::max(needed, p);
  status_.set_slots_needed(needed);
}

JobMaster::~JobMaster() {
  if (checkpoints_) checkpoints_->EndAttempt();
  run_.reset();
}

const JobConfig& JobMaster::config() const { return job_.graph->stream.config; }

void JobMaster::SetState(JobState state, const std::string& detail) {
  status_.set_state(state);
  StateChange* change = status_.add_history();
  change->set_state(state);
  change->set_at_ms(absl::ToUnixMillis(now_()));
  change->set_detail(detail);
}

JobStatus JobMaster::Status() const {
  JobStatus s = status_;
  s.set_submitted_ms(absl::ToUnixMillis(submitted_));
  const absl::Time end = ended_ == absl::InfiniteFuture() ? now_() : ended_;
  s.set_duration_ms(absl::ToInt64Milliseconds(end - submitted_));
  if (checkpoints_) {
    s.set_completed_checkpoints(checkpoints_->completed_count());
    s.set_final_savepoint(checkpoints_->final_savepoint());
  }
  return s;
}

void JobMaster::Recovered(int64_t last_attempt) {
  attempt_ = last_attempt;
  recovered_ = true;
  SetState(CREATED, absl::StrCat("recovered by a JobManager started again (its run ", last_attempt,
                                 " was lost with the one before)"));
}

bool JobMaster::WaitsForSlots() {
  if (state() == RESTARTING && parts_running_.empty() && !run_ && now_() >= restart_at_) {
    SetState(CREATED, "");
    waiting_since_ = now_();
  }
  return state() == CREATED;
}

std::string JobMaster::RestorePath(bool* allow_non_restored) const {
  if (checkpoints_ && (checkpoints_->latest() || recovered_)) {
    // The newest completed checkpoint (a directory listing; its state files are read and
    // verified by the TaskManagers that restore it, not here under the dispatcher's lock).
    // A damaged one fails the run naming the file rather than an older one being taken:
    // sinks may have committed its output.
    const std::vector<int64_t> ids = checkpoints_->storage()->CompletedIds();
    if (!ids.empty()) {
      *allow_non_restored = false;
      return checkpoints_->storage()->CheckpointDir(ids.front());
    }
    LOG(WARNING) << id() << ": no completed checkpoint in " << checkpoints_->storage()->job_dir()
                 << " to restore from";
  }
  *allow_non_restored = request_.allow_non_restored_state();
  return request_.restore_from();
}

std::vector<PartCall> JobMaster::StartRun(
    const std::vector<std::string>& slot_owners,
    const std::function<std::string(const std::string&)>& address_of) {
  slot_owners_ = slot_owners;
  last_slot_owners_ = slot_owners;
  // The run's TaskManagers in the order of their first slot; placement indexes them.
  std::vector<std::string> members;
  std::map<std::string, int> index;
  for (const std::string& owner : slot_owners_) {
    if (index.try_emplace(owner, static_cast<int>(members.size())).second) {
      members.push_back(owner);
    }
  }
  DeployJobRequest deploy;
  deploy.set_job_id(id());
  *deploy.mutable_job() = request_;
  deploy.set_attempt(++attempt_);
  bool allow_non_restored = false;
  deploy.set_restore_path(RestorePath(&allow_non_restored));
  deploy.set_allow_non_restored_state(allow_non_restored);
  status_.set_restored_from(deploy.restore_path());
  status_.set_run_first_record_ms(0);
  status_.clear_taskmanagers();
  status_.clear_restores();
  for (int p : request_.vertex_parallelism()) {
    for (int s = 0; s < p; ++s) deploy.add_placement(index[slot_owners_[s]]);
  }
  for (const std::string& m : members) deploy.add_exchange_addresses(address_of(m));
  std::vector<PartCall> calls;
  std::vector<RemoteParticipants::Member> run_members;
  for (size_t i = 0; i < members.size(); ++i) {
    PartCall call{members[i], address_of(members[i]), deploy};
    call.deploy.set_self(static_cast<int>(i));
    run_members.push_back({call.taskmanager_id, call.address});
    parts_running_[members[i]] = call.address;
    status_.add_taskmanagers(members[i]);
    calls.push_back(std::move(call));
  }
  run_ = std::make_unique<RemoteParticipants>(id(), attempt_, std::move(run_members), gateway_,
                                              [this, attempt = attempt_](const absl::Status& why) {
                                                on_checkpoints_failed_run_(attempt, why);
                                              });
  SetState(RUNNING, status_.restored_from().empty()
                        ? std::string()
                        : absl::StrCat("restored from ", status_.restored_from()));
  LOG(INFO) << id() << ": running on " << members.size() << " TaskManagers";
  return calls;
}

void JobMaster::RunDeployed(int64_t attempt) {
  // A command that arrives before a part's subtasks run is held there.
  if (checkpoints_ && run_ && state() == RUNNING && attempt_ == attempt) {
    checkpoints_->BeginAttempt(run_.get());
  }
}

std::vector<PartCall> JobMaster::DeployFailed(const std::string& taskmanager_id, int64_t attempt,
                                              const std::string& why) {
  parts_running_.erase(taskmanager_id);
  return attempt_ == attempt ? FailRun(why, taskmanager_id) : std::vector<PartCall>{};
}

std::vector<PartCall> JobMaster::RunningParts() const {
  std::vector<PartCall> parts;
  for (const auto& [taskmanager, address] : parts_running_) {
    parts.push_back({taskmanager, address, {}});
  }
  return parts;
}

std::vector<PartCall> JobMaster::FailRun(const std::string& why,
                                         const std::string& taskmanager_id) {
  if (state() != RUNNING) return {};
  if (run_) run_->Abandon();
  const std::optional<absl::Duration> delay = restart_strategy_.OnFailure(why, taskmanager_id);
  status_.clear_failures();  // the strategy's history is the job's
  for (const RestartStrategy::Failure& f : restart_strategy_.failures()) {
    JobFailure* failure = status_.add_failures();
    failure->set_at_ms(absl::ToUnixMillis(f.at));
    failure->set_taskmanager_id(f.where);
    failure->set_message(f.why);
  }
  if (!delay) return End(FAILED, restart_strategy_.FailureMessage(why));
  SetState(RESTARTING, why);
  status_.set_restarts(restart_strategy_.restarts());
  status_.set_restart_cause(why);
  restart_at_ = now_() + *delay;
  LOG(WARNING) << id() << " restarts (restart " << restart_strategy_.restarts() << ", "
               << restart_strategy_.config().ToString() << ") in " << absl::FormatDuration(*delay)
               << " once its parts ended, after: " << why;
  return RunningParts();
}

std::vector<PartCall> JobMaster::End(JobState state, const std::string& failure) {
  SetState(state, failure);
  status_.set_failure(failure);
  ended_ = now_();
  LOG(INFO) << id() << " " << JobState_Name(state) << (failure.empty() ? "" : ": " + failure);
  if (run_) run_->Abandon();
  return RunningParts();
}

std::vector<PartCall> JobMaster::PartEnded(const std::string& taskmanager_id, JobState state,
                                           const std::string& failure, int64_t first_record_ms) {
  parts_running_.erase(taskmanager_id);
  if (first_record_ms > 0 &&
      (status_.run_first_record_ms() == 0 || first_record_ms < status_.run_first_record_ms())) {
    status_.set_run_first_record_ms(first_record_ms);
  }
  if (run_) run_->MarkEnded();
  std::vector<PartCall> others;
  if (this->state() != RUNNING) return others;
  const bool failed = state == FAILED || state == CANCELED;
  const std::string why = absl::StrCat("on TaskManager '", taskmanager_id,
                                       "': ", failure.empty() ? "canceled" : failure);
  if (failed && run_ && run_->stopping()) {
    // The stop's savepoint is written: a part that ends on a broken channel meanwhile
    // changes nothing.
    LOG(INFO) << id() << ": while stopping, " << why;
  } else if (failed) {
    others = FailRun(why, taskmanager_id);
  }
  if (this->state() == RUNNING && parts_running_.empty()) End(FINISHED, "");
  return others;
}

std::vector<PartCall> JobMaster::TaskManagerLost(const std::string& taskmanager_id,
                                                 const std::string& why) {
  if (!parts_running_.erase(taskmanager_id)) return {};
  return FailRun(why, taskmanager_id);
}

void JobMaster::PartRestored(const std::string& taskmanager_id, const PartRestore& restore) {
  TaskManagerRestore* entry = status_.add_restores();
  entry->set_taskmanager_id(taskmanager_id);
  *entry->mutable_restore() = restore;
}

void JobMaster::PartAwaitsFinalCheckpoint(const std::string& taskmanager_id) {
  if (run_) run_->MarkAwaitingFinal(taskmanager_id);
}

std::unique_ptr<RemoteParticipants> JobMaster::RetireRun() {
  if (!run_ || !parts_running_.empty() || state() == RUNNING) return nullptr;
  if (checkpoints_) checkpoints_->EndAttempt();
  return std::move(run_);
}

std::unique_ptr<RemoteParticipants> JobMaster::TakeRunForShutdown() {
  if (checkpoints_) checkpoints_->EndAttempt();
  return std::move(run_);
}

std::vector<std::string> JobMaster::TakeReleasableSlots() {
  if (!parts_running_.empty()) return {};
  return std::exchange(slot_owners_, {});
}

}  // namespace sluice::cluster
