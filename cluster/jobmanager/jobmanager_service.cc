#include "cluster/jobmanager/jobmanager_service.h"

#include <unistd.h>

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "sluice/api/job.h"

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
          if (job.status.state() == RUNNING) to_cancel.emplace_back(id, EndJob(job, FAILED, why));
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

JobStatus JobManagerService::StatusOf(const JobEntry& job) const {
  JobStatus s = job.status;
  s.set_submitted_ms(absl::ToUnixMillis(job.submitted));
  const absl::Time end = job.ended == absl::InfiniteFuture() ? absl::Now() : job.ended;
  s.set_duration_ms(absl::ToInt64Milliseconds(end - job.submitted));
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
  int needed = 0;
  for (int p : request->vertex_parallelism()) needed = std::max(needed, p);
  std::lock_guard<std::mutex> lock(mu_);
  const std::string id = absl::StrCat("job-", next_job_++);
  JobEntry& job = jobs_[id];
  job.request = *request;
  job.submitted = absl::Now();
  job.status.set_job_id(id);
  job.status.set_job_name(request->job_name());
  job.status.set_state(CREATED);
  job.status.set_slots_needed(needed);
  LOG(INFO) << id << " ('" << request->job_name() << "') submitted: needs " << needed << " slots";
  response->set_job_id(id);
  schedule_cv_.notify_all();
  return grpc::Status::OK;
}

void JobManagerService::Schedule() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    schedule_cv_.wait_for(lock, std::chrono::milliseconds(200));
    std::vector<std::pair<std::string, std::vector<PartCall>>> deployments;
    for (auto& [id, job] : jobs_) {
      if (job.status.state() != CREATED) continue;
      std::vector<PartCall> calls = TryPlace(job);
      if (!calls.empty()) deployments.emplace_back(id, std::move(calls));
    }
    if (deployments.empty()) continue;
    lock.unlock();
    for (const auto& [id, calls] : deployments) {
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
          if (job.status.state() == RUNNING) others = EndJob(job, FAILED, why);
          FreeSlotsIfDone(job);
        }
        CancelParts(id, others);
        break;
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
    if (absl::Now() - job.submitted >= options_.slot_wait) {
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
  for (int p : job.request.vertex_parallelism()) {
    for (int s = 0; s < p; ++s) deploy.add_placement(index[job.slot_owners[s]]);
  }
  for (const std::string& m : members) {
    deploy.add_exchange_addresses(taskmanagers_[m].registration.address());
  }
  std::vector<PartCall> calls;
  for (size_t i = 0; i < members.size(); ++i) {
    PartCall call{members[i], taskmanagers_[members[i]].registration.address(), deploy};
    call.deploy.set_self(static_cast<int>(i));
    calls.push_back(std::move(call));
    job.parts_running.insert(members[i]);
    job.status.add_taskmanagers(members[i]);
  }
  job.status.set_state(RUNNING);
  LOG(INFO) << job.status.job_id() << ": running on " << members.size() << " TaskManagers";
  return calls;
}

std::vector<JobManagerService::PartCall> JobManagerService::EndJob(JobEntry& job, JobState state,
                                                                   const std::string& failure) {
  job.status.set_state(state);
  job.status.set_failure(failure);
  job.ended = absl::Now();
  LOG(INFO) << job.status.job_id() << " " << JobState_Name(state)
            << (failure.empty() ? "" : ": " + failure);
  std::vector<PartCall> others;
  for (const std::string& tm : job.parts_running) {
    auto it = taskmanagers_.find(tm);
    if (it != taskmanagers_.end()) others.push_back({tm, it->second.registration.address(), {}});
  }
  return others;
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
    if (state == CREATED || state == RUNNING) {
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
    job.parts_running.erase(request->taskmanager_id());
    if (job.status.state() == RUNNING) {
      if (request->state() == FAILED || request->state() == CANCELED) {
        others = EndJob(job, FAILED,
                        absl::StrCat("on TaskManager '", request->taskmanager_id(), "': ",
                                     request->failure().empty() ? "canceled" : request->failure()));
      } else if (job.parts_running.empty()) {
        EndJob(job, FINISHED, "");
      }
    }
    FreeSlotsIfDone(job);
  }
  CancelParts(request->job_id(), others);
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
