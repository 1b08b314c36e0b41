#include "job/job_master.h"

#include <algorithm>
#include <limits>

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
  region_of_task_ = PipelinedRegions(*job_.graph);
  regions_ = region_of_task_.empty()
                 ? 1
                 : *std::max_element(region_of_task_.begin(), region_of_task_.end()) + 1;
  region_attempt_.assign(regions_, 0);
  status_.set_regions(regions_);
}

JobMaster::~JobMaster() {
  if (checkpoints_) checkpoints_->EndAttempt();
  run_.reset();
  replaced_runs_.clear();
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
    s.set_failed_checkpoints(checkpoints_->failed_count());
    s.set_checkpoints_in_progress(checkpoints_->in_progress_count());
    s.set_final_savepoint(checkpoints_->final_savepoint());
    if (const CheckpointStorage* storage = checkpoints_->storage()) {
      s.set_checkpoint_dir(storage->job_dir());
    }
    const std::vector<CheckpointStats> stats = checkpoints_->stats();
    constexpr size_t kShown = 100;
    for (size_t i = stats.size() > kShown ? stats.size() - kShown : 0; i < stats.size(); ++i) {
      CheckpointRecord* r = s.add_checkpoint_history();
      r->set_id(stats[i].id);
      r->set_failed(stats[i].failed);
      r->set_duration_ms(absl::ToInt64Milliseconds(stats[i].duration));
      r->set_max_sync_ms(absl::ToInt64Milliseconds(stats[i].max_sync_duration));
      r->set_max_async_ms(absl::ToInt64Milliseconds(stats[i].max_async_duration));
      r->set_state_bytes(static_cast<int64_t>(stats[i].state_bytes));
    }
  }
  for (const JobVertex& v : job_.graph->vertices) {
    JobVertexInfo* vertex = s.add_vertices();
    vertex->set_name(v.name);
    vertex->set_parallelism(v.parallelism);
    AddVertexMetrics(v.id, v.parallelism, vertex);
    for (const JobEdge& e : job_.graph->edges) {
      if (e.target_vertex != v.id) continue;
      const StreamEdge& edge = job_.graph->stream.edges[e.stream_edge];
      VertexInput* input = vertex->add_inputs();
      input->set_vertex(e.source_vertex);
      input->set_partitioning(PartitionKindName(edge.partition));
      input->set_side_output(edge.side_output);
    }
  }
  for (const auto& [part, address] : parts_running_) {
    RunningPart* running = s.add_running_parts();
    running->set_taskmanager_id(part.taskmanager_id);
    running->set_region(part.region);
    running->set_attempt(region_attempt_[part.region]);
  }
  return s;
}

void JobMaster::RecordTaskMetrics(const TaskMetricsReport& report) {
  if (report.vertex() < 0 || report.vertex() >= static_cast<int>(job_.graph->vertices.size()) ||
      report.subtask() < 0 ||
      report.subtask() >= job_.graph->vertices[report.vertex()].parallelism) {
    return;  // not a subtask of this job's graph
  }
  task_metrics_[{report.vertex(), report.subtask()}] = report;
}

void JobMaster::AddVertexMetrics(int vertex, int parallelism, JobVertexInfo* info) const {
  // Watermarks: the least over the subtasks; a subtask without one (0) or not reporting
  // leaves the vertex without one (0).
  int64_t input_watermark = std::numeric_limits<int64_t>::max();
  int64_t output_watermark = std::numeric_limits<int64_t>::max();
  for (int subtask = 0; subtask < parallelism; ++subtask) {
    auto it = task_metrics_.find({vertex, subtask});
    if (it == task_metrics_.end()) continue;
    const TaskMetricsReport& r = it->second;
    info->set_subtasks_reporting(info->subtasks_reporting() + 1);
    info->set_records_in(info->records_in() + r.records_in());
    info->set_records_sent(info->records_sent() + r.records_sent());
    info->set_records_in_per_second(info->records_in_per_second() + r.records_in_per_second());
    info->set_records_sent_per_second(info->records_sent_per_second() +
                                      r.records_sent_per_second());
    info->set_busy_max(std::max(info->busy_max(), r.busy()));
    info->set_backpressured_max(std::max(info->backpressured_max(), r.backpressured()));
    input_watermark = std::min(input_watermark, r.input_watermark_ms());
    output_watermark = std::min(output_watermark, r.output_watermark_ms());
    for (const StateSizeReport& state : r.states()) {
      StateSizeReport* sum = nullptr;
      for (StateSizeReport& s : *info->mutable_states()) {
        if (s.operator_id() == state.operator_id() && s.state() == state.state()) sum = &s;
      }
      if (sum == nullptr) {
        sum = info->add_states();
        sum->set_operator_id(state.operator_id());
        sum->set_state(state.state());
      }
      sum->set_entries(sum->entries() + state.entries());
      sum->set_bytes(sum->bytes() + state.bytes());
    }
  }
  if (info->subtasks_reporting() == parallelism) {
    info->set_input_watermark_ms(input_watermark);
    info->set_output_watermark_ms(output_watermark);
  }
}

std::optional<absl::Time> JobMaster::restart_due() const {
  if (state() == RESTARTING) return restart_at_;
  if (!regions_restarting_.empty()) return region_restart_at_;
  return std::nullopt;
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

std::vector<PartCall> JobMaster::DeployRegions(
    const std::set<int>& regions,
    const std::function<std::string(const std::string&)>& address_of) {
  // The TaskManagers of the held slots in the order of their first slot; placement
  // indexes them.
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
  deploy.set_attempt(attempt_);
  bool allow_non_restored = false;
  deploy.set_restore_path(RestorePath(&allow_non_restored));
  deploy.set_allow_non_restored_state(allow_non_restored);
  status_.set_restored_from(deploy.restore_path());
  for (const std::string& m : members) deploy.add_exchange_addresses(address_of(m));
  // Slot s holds subtask s of every vertex. A part runs its region's subtasks on its
  // TaskManager; its placement says where each subtask of the region runs, and -1 for the
  // subtasks of other regions.
  const int tasks = static_cast<int>(region_of_task_.size());
  std::map<int, std::vector<int>> placement;  // region -> location of each task
  std::map<PartId, PartCall> calls;
  int task = 0;
  for (int p : request_.vertex_parallelism()) {
    for (int s = 0; s < p; ++s, ++task) {
      const int region = region_of_task_[task];
      if (!regions.contains(region)) continue;
      const std::string& owner = slot_owners_[s];
      auto [where, fresh] = placement.try_emplace(region, std::vector<int>(tasks, -1));
      where->second[task] = index[owner];
      auto [it, added] = calls.try_emplace(PartId{owner, region});
      if (added) {
        it->second = {owner, address_of(owner), deploy, region, attempt_};
        it->second.deploy.set_self(index[owner]);
        it->second.deploy.set_region(region);
      }
    }
  }
  for (auto& [part, call] : calls) {
    for (int location : placement[part.region]) call.deploy.add_placement(location);
  }
  std::vector<PartCall> out;
  for (auto& [part, call] : calls) {
    parts_running_[part] = call.address;
    out.push_back(std::move(call));
  }
  status_.clear_taskmanagers();
  for (const std::string& m : members) status_.add_taskmanagers(m);
  status_.set_run_first_record_ms(0);
  status_.clear_restores();
  return out;
}

void JobMaster::NewParticipants() {
  std::vector<RemoteParticipants::Member> members;
  for (const auto& [part, address] : parts_running_) {
    members.push_back({part.taskmanager_id, address, part.region, region_attempt_[part.region]});
  }
  run_ = std::make_unique<RemoteParticipants>(id(), std::move(members), gateway_,
                                              [this, attempt = attempt_](const absl::Status& why) {
                                                on_checkpoints_failed_run_(attempt, why);
                                              });
  for (const PartId& part : awaiting_final_)
    run_->MarkAwaitingFinal(part.taskmanager_id, part.region);
}

std::vector<PartCall> JobMaster::StartRun(
    const std::vector<std::string>& slot_owners,
    const std::function<std::string(const std::string&)>& address_of) {
  slot_owners_ = slot_owners;
  last_slot_owners_ = slot_owners;
  ++attempt_;
  region_attempt_.assign(regions_, attempt_);
  regions_restarting_.clear();
  awaiting_final_.clear();
  std::set<int> all;
  for (int r = 0; r < regions_; ++r) all.insert(r);
  std::vector<PartCall> calls = DeployRegions(all, address_of);
  NewParticipants();
  SetState(RUNNING, status_.restored_from().empty()
                        ? std::string()
                        : absl::StrCat("restored from ", status_.restored_from()));
  LOG(INFO) << id() << ": running on " << status_.taskmanagers_size() << " TaskManagers ("
            << calls.size() << " parts, " << regions_ << " pipelined regions)";
  return calls;
}

bool JobMaster::RegionsAwaitRestart() {
  if (state() != RUNNING || regions_restarting_.empty() || now_() < region_restart_at_) {
    return false;
  }
  for (const auto& [part, address] : parts_running_) {
    if (regions_restarting_.contains(part.region)) return false;  // not ended yet
  }
  if (!regions_waiting_) {
    regions_waiting_ = true;
    waiting_since_ = now_();
  }
  return true;
}

int JobMaster::lost_slots() const {
  return static_cast<int>(std::count(slot_owners_.begin(), slot_owners_.end(), std::string()));
}

std::vector<PartCall> JobMaster::RestartRegions(
    const std::vector<std::string>& replacements,
    const std::function<std::string(const std::string&)>& address_of) {
  size_t next = 0;
  for (std::string& owner : slot_owners_) {
    if (owner.empty() && next < replacements.size()) owner = replacements[next++];
  }
  last_slot_owners_ = slot_owners_;
  ++attempt_;
  for (int r : regions_restarting_) region_attempt_[r] = attempt_;
  const std::set<int> regions = std::exchange(regions_restarting_, {});
  regions_waiting_ = false;
  std::vector<PartCall> calls = DeployRegions(regions, address_of);
  NewParticipants();
  SetState(RUNNING, absl::StrCat("region failover: ", regions.size(), " of ", regions_,
                                 " pipelined regions started again",
                                 status_.restored_from().empty()
                                     ? std::string()
                                     : absl::StrCat(" from ", status_.restored_from())));
  LOG(INFO) << id() << ": " << regions.size() << " of " << regions_
            << " pipelined regions run again (run " << attempt_ << ", " << calls.size()
            << " parts); the others ran on";
  return calls;
}

bool JobMaster::IsCurrent(int region, int64_t attempt) const {
  return region >= 0 && region < static_cast<int>(region_attempt_.size()) &&
         region_attempt_[region] == attempt;
}

bool JobMaster::IsStaleTask(int task_index, int64_t attempt) const {
  return task_index >= 0 && task_index < static_cast<int>(region_of_task_.size()) &&
         !IsCurrent(region_of_task_[task_index], attempt);
}

void JobMaster::RunDeployed(int64_t attempt) {
  // A command that arrives before a part's subtasks run is held there.
  if (checkpoints_ && run_ && state() == RUNNING && attempt_ == attempt &&
      regions_restarting_.empty()) {
    checkpoints_->BeginAttempt(run_.get());
  }
}

std::vector<PartCall> JobMaster::DeployFailed(const PartCall& failed,
                                              const std::vector<PartCall>& not_sent,
                                              const std::string& why) {
  if (!IsCurrent(failed.region, failed.attempt)) return {};
  std::set<int> regions{failed.region};
  parts_running_.erase({failed.taskmanager_id, failed.region});
  for (const PartCall& call : not_sent) {
    // Never deployed: nothing will report its end.
    if (parts_running_.erase({call.taskmanager_id, call.region})) regions.insert(call.region);
  }
  return FailRun(why, failed.taskmanager_id, regions);
}

std::vector<PartCall> JobMaster::RunningParts(const std::set<int>& regions) const {
  std::vector<PartCall> parts;
  for (const auto& [part, address] : parts_running_) {
    if (!regions.empty() && !regions.contains(part.region)) continue;
    parts.push_back({part.taskmanager_id, address, {}, part.region, region_attempt_[part.region]});
  }
  return parts;
}

std::vector<PartCall> JobMaster::FailRun(const std::string& why, const std::string& taskmanager_id,
                                         const std::set<int>& regions) {
  if (state() != RUNNING) return {};
  std::set<int> failing = regions_restarting_;
  failing.insert(regions.begin(), regions.end());
  const bool whole_job = regions.empty() || static_cast<int>(failing.size()) == regions_;
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
  status_.set_restarts(restart_strategy_.restarts());
  status_.set_restart_cause(why);
  if (whole_job) {
    regions_restarting_.clear();
    regions_waiting_ = false;
    SetState(RESTARTING, why);
    restart_at_ = now_() + *delay;
    LOG(WARNING) << id() << " restarts (restart " << restart_strategy_.restarts() << ", "
                 << restart_strategy_.config().ToString() << ") in " << absl::FormatDuration(*delay)
                 << " once its parts ended, after: " << why;
    return RunningParts();
  }
  // Region failover: the other regions run on. The checkpoints in flight cannot complete
  // without the failed regions; the next ones start once they run again.
  if (checkpoints_) checkpoints_->EndAttempt();
  if (run_) replaced_runs_.push_back(std::move(run_));
  std::set<int> newly;
  for (int r : regions) {
    if (regions_restarting_.insert(r).second) newly.insert(r);
  }
  regions_waiting_ = false;
  region_restart_at_ = now_() + *delay;
  status_.set_region_restarts(status_.region_restarts() + 1);
  SetState(RUNNING, absl::StrCat("region failover: ", regions_restarting_.size(), " of ", regions_,
                                 " pipelined regions restart after: ", why));
  LOG(WARNING) << id() << ": " << regions_restarting_.size() << " of " << regions_
               << " pipelined regions restart (restart " << restart_strategy_.restarts() << ", "
               << restart_strategy_.config().ToString() << ") in " << absl::FormatDuration(*delay)
               << " once their parts ended, after: " << why;
  return RunningParts(newly);
}

std::vector<PartCall> JobMaster::End(JobState state, const std::string& failure) {
  SetState(state, failure);
  status_.set_failure(failure);
  ended_ = now_();
  regions_restarting_.clear();
  LOG(INFO) << id() << " " << JobState_Name(state) << (failure.empty() ? "" : ": " + failure);
  if (run_) run_->Abandon();
  return RunningParts();
}

std::vector<PartCall> JobMaster::PartEnded(const JobPartReport& report) {
  const PartId part{report.taskmanager_id(), report.region()};
  if (!IsCurrent(part.region, report.attempt()) || !parts_running_.erase(part)) return {};
  awaiting_final_.erase(part);
  const int64_t first_record_ms = report.first_record_ms();
  if (first_record_ms > 0 && report.attempt() == attempt_ &&
      (status_.run_first_record_ms() == 0 || first_record_ms < status_.run_first_record_ms())) {
    status_.set_run_first_record_ms(first_record_ms);
  }
  if (run_) run_->MarkEnded();
  std::vector<PartCall> others;
  if (this->state() != RUNNING) return others;
  const bool failed = report.state() == FAILED || report.state() == CANCELED;
  const std::string why =
      absl::StrCat("on TaskManager '", part.taskmanager_id,
                   "': ", report.failure().empty() ? "canceled" : report.failure());
  if (regions_restarting_.contains(part.region)) {
    // Its region failed already: this is the part canceled for the restart.
  } else if (failed && run_ && run_->stopping()) {
    // The stop's savepoint is written: a part that ends on a broken channel meanwhile
    // changes nothing.
    LOG(INFO) << id() << ": while stopping, " << why;
  } else if (failed) {
    others = FailRun(why, part.taskmanager_id, {part.region});
  }
  if (this->state() == RUNNING && parts_running_.empty() && regions_restarting_.empty()) {
    End(FINISHED, "");
  }
  return others;
}

std::vector<PartCall> JobMaster::TaskManagerLost(const std::string& taskmanager_id,
                                                 const std::string& why) {
  // Its slots are gone with it: a restart takes others.
  for (std::string& owner : slot_owners_) {
    if (owner == taskmanager_id) owner.clear();
  }
  std::set<int> regions;
  for (auto it = parts_running_.begin(); it != parts_running_.end();) {
    if (it->first.taskmanager_id == taskmanager_id) {
      regions.insert(it->first.region);
      awaiting_final_.erase(it->first);
      it = parts_running_.erase(it);
    } else {
      ++it;
    }
  }
  if (regions.empty()) return {};
  return FailRun(why, taskmanager_id, regions);
}

void JobMaster::PartRestored(const std::string& taskmanager_id, int region,
                             const PartRestore& restore) {
  TaskManagerRestore* entry = status_.add_restores();
  entry->set_taskmanager_id(taskmanager_id);
  entry->set_region(region);
  *entry->mutable_restore() = restore;
}

void JobMaster::PartAwaitsFinalCheckpoint(const std::string& taskmanager_id, int region) {
  if (!parts_running_.contains({taskmanager_id, region})) return;
  awaiting_final_.insert({taskmanager_id, region});
  if (run_) run_->MarkAwaitingFinal(taskmanager_id, region);
}

std::vector<std::unique_ptr<RemoteParticipants>> JobMaster::TakeEndedRuns() {
  std::vector<std::unique_ptr<RemoteParticipants>> runs = std::move(replaced_runs_);
  replaced_runs_.clear();
  if (run_ && parts_running_.empty() && state() != RUNNING) {
    if (checkpoints_) checkpoints_->EndAttempt();
    runs.push_back(std::move(run_));
  }
  return runs;
}

std::unique_ptr<RemoteParticipants> JobMaster::TakeRunForShutdown() {
  if (checkpoints_) checkpoints_->EndAttempt();
  return std::move(run_);
}

std::vector<std::string> JobMaster::TakeReleasableSlots() {
  // A region waiting to restart keeps its slots.
  if (!parts_running_.empty() || !regions_restarting_.empty()) return {};
  return std::exchange(slot_owners_, {});
}

}  // namespace sluice::cluster
