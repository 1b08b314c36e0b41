#include "dispatcher/dispatcher.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/core/status_macros.h"
#include "sluice/jobmanager/checkpoint_ack.h"
#include "sluice/runtime/restore_check.h"

namespace sluice::cluster {

Dispatcher::Dispatcher(BlobStore* blobs, TaskManagerGateway* gateway, DispatcherOptions options,
                       Clock now)
    : blobs_(blobs),
      gateway_(gateway),
      options_(options),
      now_(std::move(now)),
      scheduler_(options.scheduler) {
  if (options_.scheduling_thread) scheduling_thread_ = std::thread([this] { ScheduleLoop(); });
  retire_thread_ = std::thread([this] { RetireLoop(); });
}

Dispatcher::~Dispatcher() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  schedule_cv_.SignalAll();
  if (scheduling_thread_.joinable()) scheduling_thread_.join();
  // Runs end before the jobs go: their sending threads may still call back into this.
  std::vector<std::unique_ptr<RemoteParticipants>> runs;
  {
    MutexLock lock(&mu_);
    for (auto& [id, job] : jobs_) runs.push_back(job->TakeRunForShutdown());
  }
  runs.clear();
  {
    MutexLock lock(&retire_mu_);
    retire_stopping_ = true;
  }
  retire_cv_.SignalAll();
  retire_thread_.join();
}

void Dispatcher::RetireLoop() {
  for (;;) {
    std::vector<std::unique_ptr<RemoteParticipants>> runs;
    {
      MutexLock lock(&retire_mu_);
      retire_cv_.Wait(&retire_mu_, [this]() SLUICE_REQUIRES(retire_mu_) {
        return retire_stopping_ || !to_retire_.empty();
      });
      runs.swap(to_retire_);
      if (runs.empty() && retire_stopping_) return;
    }
    runs.clear();  // joins their sending threads, which may take mu_
  }
}

absl::Status Dispatcher::NoSuchJob(const std::string& job_id) {
  return absl::NotFoundError(absl::StrCat("no job '", job_id, "' (see sluice list)"));
}

absl::Status Dispatcher::Prepare(const JobSubmission& request, SubmittedJob* job,
                                 std::unique_ptr<internal::JobCheckpoints>* checkpoints) {
  if (request.vertex_parallelism().empty()) {
    return absl::InvalidArgumentError("a job without vertices");
  }
  auto path = blobs_->PathOf(request.job_binary().sha256());
  if (!path.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the job binary ", request.job_binary().sha256(),
                     " is not in the blob store: upload it first"));
  }
  auto rebuilt = RebuildSubmittedJob(*path, request, "the JobManager");
  if (!rebuilt.ok()) return rebuilt.status();
  *job = std::move(*rebuilt);
  const JobConfig& config = job->graph->stream.config;
  if (config.chaos_enabled()) {
    return absl::InvalidArgumentError(
        "the chaos option (--chaos-kill-task-every) runs on the mini-cluster only "
        "(sluice run --local); on a cluster, kill a TaskManager");
  }
  if (config.checkpoint_interval > absl::ZeroDuration()) {
    if (!config.checkpoint_dir.starts_with('/')) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoints on a cluster need --checkpoint-dir=DIR, an absolute path ",
                       "the JobManager and every TaskManager can reach (any local directory "
                       "on one machine, a shared mount across machines)",
                       config.checkpoint_dir.empty()
                           ? std::string()
                           : absl::StrCat("; '", config.checkpoint_dir, "' is relative")));
    }
    auto created = internal::JobCheckpoints::Create(job->graph.get());
    if (!created.ok()) return created.status();
    *checkpoints = std::move(*created);
  }
  if (!request.restore_from().empty()) {
    // Checked here, so a bad path fails the submission instead of every TaskManager.
    auto state = LoadStateFor(job->graph->stream, request.restore_from(),
                              request.allow_non_restored_state());
    if (!state.ok()) return state.status();
    absl::Status compatible = CheckStateTypes(job->graph->stream, *state);
    if (!compatible.ok()) {
      return absl::Status(
          compatible.code(),
          absl::StrCat("cannot start from ", request.restore_from(), ": ", compatible.message()));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<JobMaster> Dispatcher::MakeJobMaster(
    const std::string& id, const JobSubmission& request, SubmittedJob job,
    std::unique_ptr<internal::JobCheckpoints> checkpoints) {
  return std::make_unique<JobMaster>(
      id, request, std::move(job), std::move(checkpoints), gateway_,
      [this, id](int64_t attempt, const absl::Status& why) {
        CheckpointsFailedRun(id, attempt, why);
      },
      options_.default_restart_strategy, now_);
}

absl::Status Dispatcher::Recover() {
  JobStore* store = options_.job_store;
  if (store == nullptr) return absl::OkStatus();
  SLUICE_ASSIGN_OR_RETURN(const int64_t next, store->NextJobNumber());
  SLUICE_ASSIGN_OR_RETURN(const std::vector<RecoveredJob> records, store->Load());
  for (const RecoveredJob& record : records) {
    SubmittedJob job;
    std::unique_ptr<internal::JobCheckpoints> checkpoints;
    if (absl::Status s = Prepare(record.submission(), &job, &checkpoints); !s.ok()) {
      LOG(ERROR) << record.job_id() << " ('" << record.submission().job_name()
                 << "') cannot be recovered, dropped: " << s.message();
      if (absl::Status removed = store->Remove(record.job_id()); !removed.ok()) return removed;
      continue;
    }
    MutexLock lock(&mu_);
    auto master =
        MakeJobMaster(record.job_id(), record.submission(), std::move(job), std::move(checkpoints));
    master->Recovered(record.attempt());
    LOG(INFO) << record.job_id() << " ('" << record.submission().job_name() << "') recovered from "
              << store->dir() << ": runs again once it has slots";
    stored_.insert(record.job_id());
    jobs_[record.job_id()] = std::move(master);
  }
  MutexLock lock(&mu_);
  next_job_ = next;
  return absl::OkStatus();
}

void Dispatcher::UpdateJobStore(const std::vector<RecoveredJob>& started,
                                const std::vector<std::string>& ended) {
  JobStore* store = options_.job_store;
  if (store == nullptr) return;
  for (const RecoveredJob& record : started) {
    if (absl::Status s = store->Save(record); !s.ok()) {
      LOG(ERROR) << record.job_id()
                 << ": recording its run in the recovery directory failed: " << s.message();
    }
  }
  for (const std::string& id : ended) {
    if (absl::Status s = store->Remove(id); !s.ok()) {
      LOG(ERROR) << id << ": " << s.message();
    }
  }
}

absl::StatusOr<std::string> Dispatcher::SubmitUploaded(JobSubmission request) {
  SLUICE_ASSIGN_OR_RETURN(const std::string path, blobs_->PathOf(request.job_binary().sha256()));
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot read the size of ", path, ": ", ec.message()));
  request.mutable_job_binary()->set_size(static_cast<int64_t>(size));
  if (absl::Status s = DescribeSubmission(path, &request); !s.ok()) {
    LOG(WARNING) << "job '" << request.job_name() << "' refused: " << s.message();
    return absl::Status(s.code(), absl::StrCat(request.job_name(), ": ", s.message()));
  }
  return Submit(request);
}

absl::Status Dispatcher::Check(const JobSubmission& request) {
  SubmittedJob job;
  std::unique_ptr<internal::JobCheckpoints> checkpoints;
  return Prepare(request, &job, &checkpoints);
}

absl::StatusOr<std::string> Dispatcher::Submit(const JobSubmission& request) {
  SubmittedJob job;
  std::unique_ptr<internal::JobCheckpoints> checkpoints;
  if (absl::Status s = Prepare(request, &job, &checkpoints); !s.ok()) {
    LOG(WARNING) << "job '" << request.job_name() << "' refused: " << s.message();
    return s;
  }
  int64_t number = 0;
  {
    MutexLock lock(&mu_);
    number = next_job_++;
  }
  const std::string id = absl::StrCat("job-", number);
  if (JobStore* store = options_.job_store) {
    // Durable before it is accepted: a JobManager that dies now still runs it when started
    // again, and never gives its id to another job.
    RecoveredJob record;
    record.set_job_id(id);
    *record.mutable_submission() = request;
    absl::Status s = store->SetNextJobNumber(number + 1);
    if (s.ok()) s = store->Save(record);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("the job could not be recorded in the recovery "
                                                 "directory: ",
                                                 s.message()));
    }
  }
  MutexLock lock(&mu_);
  auto master = MakeJobMaster(id, request, std::move(job), std::move(checkpoints));
  LOG(INFO) << id << " ('" << request.job_name() << "') submitted: needs " << master->slots_needed()
            << " slots";
  if (options_.job_store != nullptr) stored_.insert(id);
  jobs_[id] = std::move(master);
  schedule_cv_.SignalAll();
  return id;
}

absl::StatusOr<JobStatus> Dispatcher::Job(const std::string& job_id) const {
  MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return NoSuchJob(job_id);
  return it->second->Status();
}

absl::StatusOr<JobSubmission> Dispatcher::Submission(const std::string& job_id) const {
  MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return NoSuchJob(job_id);
  return it->second->submission();
}

std::vector<JobStatus> Dispatcher::Jobs() const {
  MutexLock lock(&mu_);
  std::vector<JobStatus> jobs;
  for (const auto& [id, job] : jobs_) jobs.push_back(job->Status());
  return jobs;
}

void Dispatcher::RecordTaskMetrics(
    const google::protobuf::RepeatedPtrField<TaskMetricsReport>& tasks) {
  if (tasks.empty()) return;
  MutexLock lock(&mu_);
  for (const TaskMetricsReport& t : tasks) {
    auto it = jobs_.find(t.job_id());
    if (it != jobs_.end()) it->second->RecordTaskMetrics(t);
  }
}

std::vector<std::string> Dispatcher::LiveJobIds() const {
  MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const auto& [id, job] : jobs_) {
    if (job->state() == CREATED || job->state() == RUNNING || job->state() == RESTARTING) {
      ids.push_back(id);
    }
  }
  return ids;
}

absl::StatusOr<JobStatus> Dispatcher::Cancel(const std::string& job_id) {
  std::vector<PartCall> parts;
  JobStatus status;
  {
    MutexLock lock(&mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return NoSuchJob(job_id);
    JobMaster& job = *it->second;
    if (job.state() == CREATED || job.state() == RUNNING || job.state() == RESTARTING) {
      parts = job.End(CANCELED, "canceled by the user");
    }
    status = job.Status();
  }
  Cancel(job_id, parts);
  return status;
}

void Dispatcher::PartEnded(const JobPartReport& report) {
  std::vector<PartCall> others;
  {
    MutexLock lock(&mu_);
    auto it = jobs_.find(report.job_id());
    if (it == jobs_.end()) return;
    JobMaster& job = *it->second;
    for (const TaskMetricsReport& t : report.tasks()) job.RecordTaskMetrics(t);
    others = job.PartEnded(report);  // a part of an earlier run changes nothing
    ReleaseSlotsOf(job);
  }
  Cancel(report.job_id(), others);
}

void Dispatcher::PartRestored(const JobPartReport& report) {
  MutexLock lock(&mu_);
  auto it = jobs_.find(report.job_id());
  if (it == jobs_.end() || !it->second->IsCurrent(report.region(), report.attempt())) return;
  it->second->PartRestored(report.taskmanager_id(), report.region(), report.restore());
}

void Dispatcher::PartAwaitsFinalCheckpoint(const JobPartReport& report) {
  MutexLock lock(&mu_);
  auto it = jobs_.find(report.job_id());
  if (it == jobs_.end() || !it->second->IsCurrent(report.region(), report.attempt())) return;
  it->second->PartAwaitsFinalCheckpoint(report.taskmanager_id(), report.region());
}

absl::Status Dispatcher::AcknowledgeCheckpoint(const CheckpointAck& ack) {
  internal::JobCheckpoints* checkpoints = nullptr;
  {
    MutexLock lock(&mu_);
    auto it = jobs_.find(ack.job_id());
    if (it == jobs_.end()) return absl::OkStatus();
    const JobMaster& job = *it->second;
    if (job.IsStaleTask(ack.task_index(), ack.attempt()) || !job.checkpoints()) {
      return absl::OkStatus();  // of a part not running any more
    }
    checkpoints = job.checkpoints();  // lives as long as the job master: as the dispatcher
  }
  // Outside the lock: the last acknowledgement stores the checkpoint's metadata.
  return checkpoints->Acknowledge(ack.checkpoint_id(), ack.task_index(), DecodeCheckpointAck(ack));
}

absl::StatusOr<std::string> Dispatcher::TriggerSavepoint(const TriggerSavepointRequest& request) {
  internal::JobCheckpoints* checkpoints = nullptr;
  std::string dir = request.dir();
  {
    MutexLock lock(&mu_);
    auto it = jobs_.find(request.job_id());
    if (it == jobs_.end()) return NoSuchJob(request.job_id());
    const JobMaster& job = *it->second;
    if (job.state() != RUNNING) {
      return absl::FailedPreconditionError(absl::StrCat("job ", request.job_id(), " is ",
                                                        JobState_Name(job.state()),
                                                        ": only a running job takes a savepoint"));
    }
    if (!job.checkpoints()) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", request.job_id(),
                       " takes no checkpoints: a savepoint needs a checkpoint interval "
                       "(--checkpoint-interval)"));
    }
    if (dir.empty()) dir = job.config().savepoint_dir;
    if (dir.empty()) {
      return absl::InvalidArgumentError(
          "no savepoint directory: give one, or start the job with --savepoint-dir=DIR");
    }
    checkpoints = job.checkpoints();
  }
  auto path = checkpoints->TriggerSavepoint(dir, request.stop());
  if (!path.ok()) {
    return absl::Status(path.status().code(),
                        absl::StrCat(request.job_id(), ": ", path.status().message()));
  }
  return path;
}

void Dispatcher::TaskManagerRegistered(const RegisterTaskManagerRequest& registration,
                                       int64_t registration_number) {
  {
    MutexLock lock(&mu_);
    scheduler_.pool().Add(registration.taskmanager_id(), registration.address(),
                          registration.slots(), registration_number);
  }
  schedule_cv_.SignalAll();  // waiting jobs may fit now
}

void Dispatcher::TaskManagerLost(const std::string& taskmanager_id, int64_t registration_number,
                                 const std::string& why) {
  std::vector<std::pair<std::string, std::vector<PartCall>>> to_cancel;
  {
    MutexLock lock(&mu_);
    scheduler_.pool().Remove(taskmanager_id, registration_number);
    for (auto& [id, job] : jobs_) {
      std::vector<PartCall> parts = job->TaskManagerLost(taskmanager_id, why);
      ReleaseSlotsOf(*job);
      if (!parts.empty()) to_cancel.emplace_back(id, std::move(parts));
    }
  }
  for (const auto& [id, parts] : to_cancel) Cancel(id, parts);
}

std::optional<int> Dispatcher::FreeSlotsOf(const std::string& taskmanager_id) const {
  MutexLock lock(&mu_);
  const SlotPool::TaskManagerSlots* tm = scheduler_.pool().Find(taskmanager_id);
  if (tm == nullptr) return std::nullopt;
  return tm->slots - tm->used;
}

void Dispatcher::CheckpointsFailedRun(const std::string& job_id, int64_t attempt,
                                      const absl::Status& why) {
  std::vector<PartCall> parts;
  {
    MutexLock lock(&mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end() || it->second->attempt() != attempt) return;
    parts = it->second->FailRun(std::string(why.message()));
  }
  Cancel(job_id, parts);
}

void Dispatcher::ReleaseSlotsOf(JobMaster& job) {
  if (scheduler_.ReleaseSlotsOf(job)) schedule_cv_.SignalAll();
}

void Dispatcher::Cancel(const std::string& job_id, const std::vector<PartCall>& parts) {
  for (const PartCall& part : parts) {
    CancelJobPartRequest request;
    request.set_job_id(job_id);
    request.set_region(part.region);
    request.set_attempt(part.attempt);
    absl::Status s = gateway_->Cancel(part.address, request);
    if (!s.ok()) {
      LOG(WARNING) << job_id << ": canceling the part on '" << part.taskmanager_id
                   << "' failed: " << s.message();
    }
  }
}

void Dispatcher::Deploy(const std::string& job_id, const std::vector<PartCall>& calls) {
  for (size_t i = 0; i < calls.size(); ++i) {
    const PartCall& call = calls[i];
    absl::Status s = gateway_->Deploy(call.address, call.deploy);
    if (s.ok()) continue;
    const std::string why = absl::StrCat("deploying to TaskManager '", call.taskmanager_id, "' at ",
                                         call.address, " failed: ", s.message());
    LOG(WARNING) << job_id << ": " << why;
    std::vector<PartCall> others;
    {
      MutexLock lock(&mu_);
      JobMaster& job = *jobs_.at(job_id);
      others = job.DeployFailed(
          call, std::vector<PartCall>(calls.begin() + static_cast<long>(i) + 1, calls.end()), why);
      ReleaseSlotsOf(job);
    }
    Cancel(job_id, others);
    return;
  }
  // Every part is deployed: checkpoints of this run may start.
  MutexLock lock(&mu_);
  jobs_.at(job_id)->RunDeployed(calls.front().deploy.attempt());
}

void Dispatcher::SchedulePass() {
  std::vector<std::pair<std::string, std::vector<PartCall>>> deployments;
  std::vector<std::unique_ptr<RemoteParticipants>> retired;
  std::vector<RecoveredJob> started;
  std::vector<std::string> ended;
  std::map<std::string, std::vector<PartCall>> to_cancel;  // of jobs that failed waiting
  {
    MutexLock lock(&mu_);
    const absl::Time now = now_();
    for (auto& [id, job] : jobs_) {
      for (auto& run : job->TakeEndedRuns()) retired.push_back(std::move(run));
      if (job->ended() && stored_.erase(id) > 0) ended.push_back(id);
      std::vector<PartCall> calls;
      if (job->RegionsAwaitRestart()) {
        calls = scheduler_.PlaceRegions(*job, now, &to_cancel[id]);
        ReleaseSlotsOf(*job);
      } else if (job->WaitsForSlots()) {
        calls = scheduler_.Place(*job, now);
      }
      if (calls.empty()) continue;
      if (stored_.contains(id)) {
        RecoveredJob& record = started.emplace_back();
        record.set_job_id(id);
        *record.mutable_submission() = job->submission();
        record.set_attempt(job->attempt());
      }
      deployments.emplace_back(id, std::move(calls));
    }
  }
  // Recorded before the run is deployed: a JobManager started again numbers its runs after.
  UpdateJobStore(started, ended);
  if (!retired.empty()) {
    {
      MutexLock lock(&retire_mu_);
      for (auto& run : retired) to_retire_.push_back(std::move(run));
    }
    retire_cv_.SignalAll();
  }
  for (const auto& [id, parts] : to_cancel) Cancel(id, parts);
  for (const auto& [id, calls] : deployments) Deploy(id, calls);
}

void Dispatcher::ScheduleLoop() {
  while (true) {
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
      // Until slots come free, a restart delay ends, or the period passed.
      absl::Time wake = now_() + options_.scheduling_period;
      for (const auto& [id, job] : jobs_) {
        if (auto due = job->restart_due()) wake = std::min(wake, *due);
      }
      schedule_cv_.WaitFor(&mu_, std::max(wake - now_(), absl::Milliseconds(1)));
      if (stopping_) return;
    }
    SchedulePass();  // takes mu_ itself
  }
}

}  // namespace sluice::cluster
