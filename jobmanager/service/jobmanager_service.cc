#include "jobmanager/service/jobmanager_service.h"

#include <unistd.h>

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "jobmanager/job/checkpoint_ack.h"
#include "jobmanager/job/submitted_job.h"
#include "sluice/api/job.h"
#include "sluice/checkpoint/checkpoint_loader.h"

namespace sluice::cluster {

namespace {

constexpr size_t kChunkBytes = 1 << 20;

/// A client of the TaskManager at `address` (deployments and cancellations are rare).
std::unique_ptr<TaskManagerService::Stub> StubOf(const std::string& address) {
  return TaskManagerService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace

JobManagerService::JobManagerService(BlobStore* blobs, JobManagerOptions options)
    : blobs_(blobs),
      options_(options),
      jobmanager_id_(absl::StrCat("jm-", ::getpid(), "-", absl::ToUnixMillis(absl::Now()))) {
  watcher_ = std::thread([this] { WatchHeartbeats(); });
  scheduler_ = std::thread([this] { Schedule(); });
}

JobManagerService::~JobManagerService() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  schedule_cv_.notify_all();
  watcher_.join();
  scheduler_.join();
  // Runs end before the jobs go: their sending threads may still call back into this.
  std::vector<std::unique_ptr<RemoteParticipants>> runs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, job] : jobs_) {
      if (job.checkpoints) job.checkpoints->EndAttempt();
      if (job.run) runs.push_back(std::move(job.run));
    }
  }
  runs.clear();
}

grpc::Status JobManagerService::RegisterTaskManager(grpc::ServerContext*,
                                                    const RegisterTaskManagerRequest* request,
                                                    RegisterTaskManagerResponse* response) {
  if (request->engine_abi() != EngineAbi()) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("TaskManager '", request->taskmanager_id(), "' runs engine ABI '",
                     request->engine_abi(), "', this JobManager '", EngineAbi(),
                     "': run the same Sluice build everywhere"));
  }
  if (request->slots() < 1) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a TaskManager needs at least 1 slot");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    taskmanagers_[request->taskmanager_id()] = TaskManagerEntry{*request, absl::Now(), 0};
  }
  schedule_cv_.notify_all();  // waiting jobs may fit now
  LOG(INFO) << "TaskManager '" << request->taskmanager_id() << "' registered (" << request->host()
            << ", pid " << request->pid() << ", " << request->slots() << " slots)";
  response->set_jobmanager_id(jobmanager_id_);
  response->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
  return grpc::Status::OK;
}

grpc::Status JobManagerService::Heartbeat(grpc::ServerContext*, const HeartbeatRequest* request,
                                          HeartbeatResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = taskmanagers_.find(request->taskmanager_id());
  response->set_known(it != taskmanagers_.end());
  if (it != taskmanagers_.end()) it->second.last_heartbeat = absl::Now();
  return grpc::Status::OK;
}

void JobManagerService::WatchHeartbeats() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(
                                absl::ToInt64Milliseconds(options_.heartbeat_interval) / 2 + 1));
    const absl::Time now = absl::Now();
    std::vector<std::pair<std::string, std::vector<PartCall>>> to_cancel;
    for (auto it = taskmanagers_.begin(); it != taskmanagers_.end();) {
      if (now - it->second.last_heartbeat > options_.heartbeat_timeout) {
        const std::string lost = it->first;
        const std::string why =
            absl::StrCat("TaskManager '", lost, "' was lost (no heartbeat for ",
                         absl::FormatDuration(now - it->second.last_heartbeat), ")");
        LOG(WARNING) << why;
        it = taskmanagers_.erase(it);
        for (auto& [id, job] : jobs_) {
          if (!job.parts_running.erase(lost)) continue;
          to_cancel.emplace_back(id, FailRun(job, why));
          FreeSlotsIfDone(job);
        }
      } else {
        ++it;
      }
    }
    if (!to_cancel.empty()) {
      lock.unlock();
      for (const auto& [id, parts] : to_cancel) CancelParts(id, parts);
      lock.lock();
    }
  }
}

void JobManagerService::SetState(JobEntry& job, JobState state, const std::string& detail) {
  job.status.set_state(state);
  StateChange* change = job.status.add_history();
  change->set_state(state);
  change->set_at_ms(absl::ToUnixMillis(absl::Now()));
  change->set_detail(detail);
}

JobStatus JobManagerService::StatusOf(const JobEntry& job) const {
  JobStatus s = job.status;
  s.set_submitted_ms(absl::ToUnixMillis(job.submitted));
  const absl::Time end = job.ended == absl::InfiniteFuture() ? absl::Now() : job.ended;
  s.set_duration_ms(absl::ToInt64Milliseconds(end - job.submitted));
  if (job.checkpoints) {
    s.set_completed_checkpoints(job.checkpoints->completed_count());
    s.set_final_savepoint(job.checkpoints->final_savepoint());
  }
  return s;
}

grpc::Status JobManagerService::SubmitJob(grpc::ServerContext*, const SubmitJobRequest* request,
                                          SubmitJobResponse* response) {
  if (request->vertex_parallelism().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a job without vertices");
  }
  if (!blobs_->PathOf(request->job_binary().sha256()).ok()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("the job binary ", request->job_binary().sha256(),
                                     " is not in the blob store: upload it first"));
  }
  JobEntry prepared;
  if (absl::Status s = Prepare(*request, &prepared); !s.ok()) {
    LOG(WARNING) << "job '" << request->job_name() << "' refused: " << s.message();
    return ToGrpc(s);
  }
  int needed = 0;
  for (int p : request->vertex_parallelism()) needed = std::max(needed, p);
  std::lock_guard<std::mutex> lock(mu_);
  const std::string id = absl::StrCat("job-", next_job_++);
  JobEntry& job = jobs_[id];
  job = std::move(prepared);
  job.request = *request;
  job.submitted = absl::Now();
  job.waiting_since = job.submitted;
  job.status.set_job_id(id);
  job.status.set_job_name(request->job_name());
  SetState(job, CREATED, "");
  job.status.set_slots_needed(needed);
  LOG(INFO) << id << " ('" << request->job_name() << "') submitted: needs " << needed << " slots";
  response->set_job_id(id);
  schedule_cv_.notify_all();
  return grpc::Status::OK;
}

absl::Status JobManagerService::Prepare(const SubmitJobRequest& request, JobEntry* job) {
  auto path = blobs_->PathOf(request.job_binary().sha256());
  if (!path.ok()) return path.status();
  auto rebuilt = RebuildSubmittedJob(*path, request, "the JobManager");
  if (!rebuilt.ok()) return rebuilt.status();
  job->library = std::move(rebuilt->library);
  job->graph = std::move(rebuilt->graph);
  const JobConfig& config = job->graph->stream.config;
  if ((config.chaos_kill_every > absl::ZeroDuration() || config.chaos_kill_every_records > 0) &&
      config.chaos_max_failures > 0) {
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
    auto checkpoints = JobCheckpoints::Create(job->graph.get());
    if (!checkpoints.ok()) return checkpoints.status();
    job->checkpoints = std::move(*checkpoints);
  }
  if (!request.restore_from().empty()) {
    // Checked here, so a bad path fails the submission instead of every TaskManager.
    auto state = LoadStateFor(job->graph->stream, request.restore_from(),
                              request.allow_non_restored_state());
    if (!state.ok()) return state.status();
  }
  return absl::OkStatus();
}

std::string JobManagerService::RestorePath(const JobEntry& job, bool* allow_non_restored) const {
  if (job.checkpoints && job.checkpoints->latest()) {
    // The newest checkpoint whose files all verify (falling back past a damaged one).
    auto valid = job.checkpoints->storage()->LatestValid();
    if (valid.ok() && valid->has_value()) {
      *allow_non_restored = false;
      return job.checkpoints->storage()->CheckpointDir((*valid)->checkpoint_id);
    }
    LOG(WARNING) << job.status.job_id() << ": no valid checkpoint to restore from"
                 << (valid.ok() ? std::string() : absl::StrCat(": ", valid.status().message()));
  }
  *allow_non_restored = job.request.allow_non_restored_state();
  return job.request.restore_from();
}

std::vector<JobManagerService::PartCall> JobManagerService::PartsOf(const JobEntry& job) const {
  std::vector<PartCall> parts;
  for (const std::string& tm : job.parts_running) {
    auto it = taskmanagers_.find(tm);
    if (it != taskmanagers_.end()) parts.push_back({tm, it->second.registration.address(), {}});
  }
  return parts;
}

std::vector<JobManagerService::PartCall> JobManagerService::FailRun(JobEntry& job,
                                                                    const std::string& why) {
  if (job.status.state() != RUNNING) return {};
  if (job.run) job.run->MarkEnded();
  const JobConfig& config = job.graph->stream.config;
  if (job.status.restarts() >= config.restart_attempts) return EndJob(job, FAILED, why);
  SetState(job, RESTARTING, why);
  job.status.set_restarts(job.status.restarts() + 1);
  job.status.set_restart_cause(why);
  job.restart_at = absl::Now() + config.restart_delay;
  LOG(WARNING) << job.status.job_id() << " restarts (attempt " << job.status.restarts() << " of "
               << config.restart_attempts << ") once its parts ended, after: " << why;
  return PartsOf(job);
}

std::vector<JobManagerService::PartCall> JobManagerService::PartEnded(
    JobEntry& job, const std::string& taskmanager_id, JobState state, const std::string& failure) {
  job.parts_running.erase(taskmanager_id);
  if (job.run) job.run->MarkEnded();
  std::vector<PartCall> others;
  if (job.status.state() == RUNNING) {
    const bool failed = state == FAILED || state == CANCELED;
    const std::string why = absl::StrCat("on TaskManager '", taskmanager_id,
                                         "': ", failure.empty() ? "canceled" : failure);
    if (failed && job.run && job.run->stopping()) {
      // The stop's savepoint is written: a part that ends on a broken channel meanwhile
      // changes nothing.
      LOG(INFO) << job.status.job_id() << ": while stopping, " << why;
    } else if (failed) {
      others = FailRun(job, why);
    }
    if (job.status.state() == RUNNING && job.parts_running.empty()) EndJob(job, FINISHED, "");
  }
  FreeSlotsIfDone(job);
  return others;
}

std::unique_ptr<RemoteParticipants> JobManagerService::RetireRun(JobEntry& job) {
  if (!job.run || !job.parts_running.empty() || job.status.state() == RUNNING) return nullptr;
  if (job.checkpoints) job.checkpoints->EndAttempt();
  return std::move(job.run);
}

void JobManagerService::CheckpointsFailedRun(const std::string& job_id, int64_t attempt,
                                             const absl::Status& why) {
  std::vector<PartCall> parts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end() || it->second.attempt != attempt) return;
    parts = FailRun(it->second, std::string(why.message()));
  }
  CancelParts(job_id, parts);
}

void JobManagerService::Schedule() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    schedule_cv_.wait_for(lock, std::chrono::milliseconds(200));
    std::vector<std::pair<std::string, std::vector<PartCall>>> deployments;
    std::vector<std::unique_ptr<RemoteParticipants>> retired;
    const absl::Time now = absl::Now();
    for (auto& [id, job] : jobs_) {
      if (auto run = RetireRun(job)) retired.push_back(std::move(run));
      if (job.status.state() == RESTARTING && job.parts_running.empty() && !job.run &&
          now >= job.restart_at) {
        SetState(job, CREATED, "");
        job.waiting_since = now;
      }
      if (job.status.state() != CREATED) continue;
      std::vector<PartCall> calls = TryPlace(job);
      if (!calls.empty()) deployments.emplace_back(id, std::move(calls));
    }
    if (deployments.empty() && retired.empty()) continue;
    lock.unlock();
    retired.clear();  // joins their sending threads, which may take mu_
    for (const auto& [id, calls] : deployments) {
      bool deployed = true;
      for (const PartCall& call : calls) {
        auto stub = StubOf(call.address);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        DeployJobResponse response;
        grpc::Status s = stub->DeployJob(&ctx, call.deploy, &response);
        if (s.ok()) continue;
        const std::string why = absl::StrCat("deploying to TaskManager '", call.taskmanager_id,
                                             "' at ", call.address, " failed: ", s.error_message());
        LOG(WARNING) << id << ": " << why;
        std::vector<PartCall> others;
        {
          std::lock_guard<std::mutex> relock(mu_);
          JobEntry& job = jobs_[id];
          job.parts_running.erase(call.taskmanager_id);
          if (job.attempt == call.deploy.attempt()) others = FailRun(job, why);
          FreeSlotsIfDone(job);
        }
        CancelParts(id, others);
        deployed = false;
        break;
      }
      if (!deployed) continue;
      // Every part is deployed: checkpoints of this run may start (a command that arrives
      // before a part's subtasks run is held there).
      std::lock_guard<std::mutex> relock(mu_);
      JobEntry& job = jobs_[id];
      if (job.checkpoints && job.run && job.status.state() == RUNNING &&
          job.attempt == calls.front().deploy.attempt()) {
        job.checkpoints->BeginAttempt(job.run.get());
      }
    }
    lock.lock();
  }
}

std::vector<JobManagerService::PartCall> JobManagerService::TryPlace(JobEntry& job) {
  std::vector<FreeSlots> free;
  for (const auto& [id, tm] : taskmanagers_) {
    free.push_back({id, tm.registration.slots() - tm.used_slots});
  }
  auto slots = AllocateSlots(job.status.slots_needed(), free, options_.slot_strategy);
  if (!slots.ok()) {
    if (absl::Now() - job.waiting_since >= options_.slot_wait) {
      int total = 0;
      for (const auto& [id, tm] : taskmanagers_) total += tm.registration.slots();
      EndJob(
          job, FAILED,
          absl::StrCat("not enough slots: the job needs ", job.status.slots_needed(),
                       " (its highest parallelism); the cluster has ", total, " slots in ",
                       taskmanagers_.size(), " TaskManagers, ",
                       slots.status().message().substr(slots.status().message().find("has ") + 4),
                       " — waited ", absl::FormatDuration(options_.slot_wait)));
    }
    return {};
  }
  job.slot_owners = *slots;
  // The job's TaskManagers in the order of their first slot; placement indexes them.
  std::vector<std::string> members;
  std::map<std::string, int> index;
  for (const std::string& owner : job.slot_owners) {
    if (index.try_emplace(owner, static_cast<int>(members.size())).second) {
      members.push_back(owner);
    }
    taskmanagers_[owner].used_slots++;
  }
  DeployJobRequest deploy;
  deploy.set_job_id(job.status.job_id());
  *deploy.mutable_job() = job.request;
  deploy.set_attempt(++job.attempt);
  bool allow_non_restored = false;
  deploy.set_restore_path(RestorePath(job, &allow_non_restored));
  deploy.set_allow_non_restored_state(allow_non_restored);
  job.status.set_restored_from(deploy.restore_path());
  job.status.clear_taskmanagers();
  for (int p : job.request.vertex_parallelism()) {
    for (int s = 0; s < p; ++s) deploy.add_placement(index[job.slot_owners[s]]);
  }
  for (const std::string& m : members) {
    deploy.add_exchange_addresses(taskmanagers_[m].registration.address());
  }
  std::vector<PartCall> calls;
  std::vector<RemoteParticipants::Member> run_members;
  for (size_t i = 0; i < members.size(); ++i) {
    PartCall call{members[i], taskmanagers_[members[i]].registration.address(), deploy};
    call.deploy.set_self(static_cast<int>(i));
    run_members.push_back({call.taskmanager_id, call.address});
    calls.push_back(std::move(call));
    job.parts_running.insert(members[i]);
    job.status.add_taskmanagers(members[i]);
  }
  job.run = std::make_unique<RemoteParticipants>(
      job.status.job_id(), job.attempt, std::move(run_members),
      [this, id = job.status.job_id(), attempt = job.attempt](const absl::Status& why) {
        CheckpointsFailedRun(id, attempt, why);
      });
  SetState(job, RUNNING,
           job.status.restored_from().empty()
               ? std::string()
               : absl::StrCat("restored from ", job.status.restored_from()));
  LOG(INFO) << job.status.job_id() << ": running on " << members.size() << " TaskManagers";
  return calls;
}

std::vector<JobManagerService::PartCall> JobManagerService::EndJob(JobEntry& job, JobState state,
                                                                   const std::string& failure) {
  SetState(job, state, failure);
  job.status.set_failure(failure);
  job.ended = absl::Now();
  LOG(INFO) << job.status.job_id() << " " << JobState_Name(state)
            << (failure.empty() ? "" : ": " + failure);
  if (job.run) job.run->MarkEnded();
  return PartsOf(job);
}

void JobManagerService::FreeSlotsIfDone(JobEntry& job) {
  if (!job.parts_running.empty() || job.slot_owners.empty()) return;
  for (const std::string& owner : job.slot_owners) {
    auto it = taskmanagers_.find(owner);
    if (it != taskmanagers_.end()) it->second.used_slots--;
  }
  job.slot_owners.clear();
  schedule_cv_.notify_all();
}

void JobManagerService::CancelParts(const std::string& job_id, const std::vector<PartCall>& parts) {
  for (const PartCall& part : parts) {
    auto stub = StubOf(part.address);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    CancelJobPartRequest request;
    request.set_job_id(job_id);
    CancelJobPartResponse response;
    grpc::Status s = stub->CancelJob(&ctx, request, &response);
    if (!s.ok()) {
      LOG(WARNING) << job_id << ": canceling the part on '" << part.taskmanager_id
                   << "' failed: " << s.error_message();
    }
  }
}

grpc::Status JobManagerService::GetJob(grpc::ServerContext*, const JobRequest* request,
                                       JobStatus* response) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(request->job_id());
  if (it == jobs_.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no job '", request->job_id(), "' (see sluice list)"));
  }
  *response = StatusOf(it->second);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::ListJobs(grpc::ServerContext*, const ListJobsRequest*,
                                         ListJobsResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, job] : jobs_) *response->add_jobs() = StatusOf(job);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::CancelJob(grpc::ServerContext*, const JobRequest* request,
                                          JobStatus* response) {
  std::vector<PartCall> parts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(request->job_id());
    if (it == jobs_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no job '", request->job_id(), "' (see sluice list)"));
    }
    JobEntry& job = it->second;
    const JobState state = job.status.state();
    if (state == CREATED || state == RUNNING || state == RESTARTING) {
      parts = EndJob(job, CANCELED, "canceled by the user");
    }
    *response = StatusOf(job);
  }
  CancelParts(request->job_id(), parts);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::ReportJobPart(grpc::ServerContext*, const JobPartReport* request,
                                              JobPartAck*) {
  std::vector<PartCall> others;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(request->job_id());
    if (it == jobs_.end()) return grpc::Status::OK;
    JobEntry& job = it->second;
    if (request->attempt() != job.attempt) return grpc::Status::OK;  // an earlier run's
    others = PartEnded(job, request->taskmanager_id(), request->state(), request->failure());
  }
  CancelParts(request->job_id(), others);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::AcknowledgeCheckpoint(grpc::ServerContext*,
                                                      const CheckpointAck* request,
                                                      CheckpointAckResponse*) {
  JobCheckpoints* checkpoints = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(request->job_id());
    if (it == jobs_.end()) return grpc::Status::OK;
    const JobEntry& job = it->second;
    if (job.attempt != request->attempt() || !job.checkpoints) return grpc::Status::OK;
    checkpoints = job.checkpoints.get();  // lives as long as the job's entry
  }
  // Outside the lock: the last acknowledgement stores the checkpoint's metadata.
  return ToGrpc(checkpoints->Acknowledge(request->checkpoint_id(), request->task_index(),
                                         DecodeCheckpointAck(*request)));
}

grpc::Status JobManagerService::ReportAwaitingFinalCheckpoint(grpc::ServerContext*,
                                                              const JobPartReport* request,
                                                              JobPartAck*) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(request->job_id());
  if (it == jobs_.end() || it->second.attempt != request->attempt() || !it->second.run) {
    return grpc::Status::OK;
  }
  it->second.run->MarkAwaitingFinal(request->taskmanager_id());
  return grpc::Status::OK;
}

grpc::Status JobManagerService::TriggerSavepoint(grpc::ServerContext*,
                                                 const SavepointRequest* request,
                                                 SavepointResponse* response) {
  JobCheckpoints* checkpoints = nullptr;
  std::string dir = request->dir();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(request->job_id());
    if (it == jobs_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no job '", request->job_id(), "' (see sluice list)"));
    }
    const JobEntry& job = it->second;
    if (job.status.state() != RUNNING) {
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("job ", request->job_id(), " is ", JobState_Name(job.status.state()),
                       ": only a running job takes a savepoint"));
    }
    if (!job.checkpoints) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("job ", request->job_id(),
                                       " takes no checkpoints: a savepoint needs a checkpoint "
                                       "interval (--checkpoint-interval)"));
    }
    if (dir.empty()) dir = job.graph->stream.config.savepoint_dir;
    if (dir.empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "no savepoint directory: give one, or start the job with "
                          "--savepoint-dir=DIR");
    }
    checkpoints = job.checkpoints.get();
  }
  auto path = checkpoints->TriggerSavepoint(dir, request->stop());
  if (!path.ok()) {
    return ToGrpc(absl::Status(path.status().code(),
                               absl::StrCat(request->job_id(), ": ", path.status().message())));
  }
  response->set_path(*path);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::UploadBlob(grpc::ServerContext*,
                                           grpc::ServerReader<BlobChunk>* reader,
                                           BlobRef* response) {
  absl::StatusOr<BlobId> id = ReceiveBlob(reader);
  if (!id.ok()) {
    // Logged after the partial file is gone (it belongs to the upload, deleted with it).
    LOG(WARNING) << "blob upload refused: " << id.status().message();
    return ToGrpc(id.status());
  }
  LOG(INFO) << "stored blob " << id->sha256 << " (" << id->size << " bytes)";
  response->set_sha256(id->sha256);
  response->set_size(id->size);
  return grpc::Status::OK;
}

absl::StatusOr<BlobId> JobManagerService::ReceiveBlob(grpc::ServerReader<BlobChunk>* reader) {
  BlobChunk chunk;
  if (!reader->Read(&chunk)) return absl::InvalidArgumentError("an upload without any chunk");
  auto upload = blobs_->BeginUpload(BlobId{chunk.sha256(), chunk.size()});
  if (!upload.ok()) return upload.status();
  do {
    if (absl::Status s = (*upload)->Write(chunk.data()); !s.ok()) return s;
  } while (reader->Read(&chunk));
  // The stream ended: complete, or the client went away midway (then Commit refuses and the
  // partial file is deleted with the upload).
  return (*upload)->Commit();
}

grpc::Status JobManagerService::DownloadBlob(grpc::ServerContext*, const BlobRef* request,
                                             grpc::ServerWriter<BlobChunk>* writer) {
  auto path = blobs_->PathOf(request->sha256());
  if (!path.ok()) return ToGrpc(path.status());
  std::ifstream in(*path, std::ios::binary);
  std::vector<char> buffer(kChunkBytes);
  BlobChunk chunk;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    chunk.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
    if (chunk.data().empty()) break;
    if (!writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the receiver went away");
    }
  }
  return grpc::Status::OK;
}

grpc::Status JobManagerService::GetClusterStatus(grpc::ServerContext*, const ClusterStatusRequest*,
                                                 ClusterStatus* response) {
  std::lock_guard<std::mutex> lock(mu_);
  response->set_jobmanager_id(jobmanager_id_);
  const absl::Time now = absl::Now();
  int total = 0, free = 0;
  for (const auto& [id, tm] : taskmanagers_) {
    TaskManagerStatus* s = response->add_taskmanagers();
    s->set_taskmanager_id(id);
    s->set_host(tm.registration.host());
    s->set_pid(tm.registration.pid());
    s->set_slots(tm.registration.slots());
    s->set_free_slots(tm.registration.slots() - tm.used_slots);
    s->set_last_heartbeat_ms_ago(absl::ToInt64Milliseconds(now - tm.last_heartbeat));
    total += tm.registration.slots();
    free += tm.registration.slots() - tm.used_slots;
  }
  for (const auto& [id, job] : jobs_) *response->add_jobs() = StatusOf(job);
  response->set_total_slots(total);
  response->set_free_slots(free);
  response->set_blob_dir(blobs_->dir());
  response->set_blobs(blobs_->Count());
  return grpc::Status::OK;
}

}  // namespace sluice::cluster
