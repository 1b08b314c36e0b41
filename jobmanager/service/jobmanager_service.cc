#include "service/jobmanager_service.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "sluice/api/job.h"
#include "sluice/core/mutex.h"
#include "sluice/jobmanager/grpc_status.h"

namespace sluice::cluster {

JobManagerService::JobManagerService(TaskManagerRegistry* registry, Dispatcher* dispatcher,
                                     BlobServer* blobs, const BlobStore* store,
                                     absl::Duration heartbeat_interval,
                                     std::function<void(const TaskManagerRegistry::Lost&)> on_lost,
                                     Credentials credentials)
    : registry_(registry),
      dispatcher_(dispatcher),
      blobs_(blobs),
      store_(store),
      heartbeat_interval_(heartbeat_interval),
      on_lost_(std::move(on_lost)),
      jobmanager_id_(absl::StrCat("jm-", ::getpid(), "-", absl::ToUnixMillis(absl::Now()))),
      credentials_(std::move(credentials)) {}

grpc::Status JobManagerService::RegisterTaskManager(grpc::ServerContext* ctx,
                                                    const RegisterTaskManagerRequest* request,
                                                    RegisterTaskManagerReply* reply) {
  if (grpc::Status denied = credentials_.Check(*ctx, "registering a TaskManager"); !denied.ok())
    return denied;
  if (request->engine_abi() != EngineAbi()) {
    return ToGrpcStatus(absl::FailedPreconditionError(absl::StrCat(
        "TaskManager '", request->taskmanager_id(), "' runs engine ABI '", request->engine_abi(),
        "', this JobManager '", EngineAbi(), "': run the same Sluice build everywhere")));
  }
  if (request->slots() < 1) {
    return ToGrpcStatus(absl::InvalidArgumentError("a TaskManager needs at least 1 slot"));
  }
  const TaskManagerRegistry::Registered registered = registry_->Register(*request);
  if (registered.replaced) {
    LOG(WARNING) << registered.replaced->why;
    on_lost_(*registered.replaced);  // its runs fail before the new registration counts
  }
  dispatcher_->TaskManagerRegistered(*request, registered.registration_number);
  LOG(INFO) << "TaskManager '" << request->taskmanager_id() << "' registered (" << request->host()
            << ", pid " << request->pid() << ", " << request->slots() << " slots)";
  reply->set_jobmanager_id(jobmanager_id_);
  reply->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(heartbeat_interval_));
  reply->set_heartbeat_timeout_ms(absl::ToInt64Milliseconds(registry_->heartbeat_timeout()));
  reply->set_registration_number(registered.registration_number);
  return grpc::Status::OK;
}

namespace {

/// Lets the registry end a control stream from another thread for as long as its handler
/// runs (the handler's context dies with it).
class StreamEnder {
 public:
  explicit StreamEnder(grpc::ServerContext* ctx) : ctx_(ctx) {}
  void End() {
    MutexLock lock(&mu_);
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  void HandlerDone() {
    MutexLock lock(&mu_);
    ctx_ = nullptr;
  }

 private:
  Mutex mu_;
  grpc::ServerContext* ctx_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace

grpc::Status JobManagerService::Heartbeats(
    grpc::ServerContext* ctx, grpc::ServerReaderWriter<HeartbeatReply, HeartbeatRequest>* stream) {
  if (grpc::Status denied = credentials_.Check(*ctx, "a control stream"); !denied.ok())
    return denied;
  HeartbeatRequest beat;
  if (!stream->Read(&beat)) return grpc::Status::OK;
  const std::string id = beat.taskmanager_id();
  const int64_t registration = beat.registration_number();
  auto ender = std::make_shared<StreamEnder>(ctx);
  HeartbeatReply reply;
  auto answer = [&](bool known) {
    reply.set_known(known);
    reply.clear_live_jobs();
    for (std::string& job : dispatcher_->LiveJobIds()) reply.add_live_jobs(std::move(job));
  };
  answer(registry_->Connect(id, registration, [ender] { ender->End(); }));
  dispatcher_->RecordTaskMetrics(beat.tasks());
  // Each heartbeat is answered; the loop ends when the stream does (or the registration is
  // no longer the current one, which the answer tells the TaskManager).
  while (reply.known() && stream->Write(reply) && stream->Read(&beat)) {
    answer(registry_->Heartbeat(id, registration));
    if (reply.known()) dispatcher_->RecordTaskMetrics(beat.tasks());
  }
  if (!reply.known()) stream->Write(reply);
  ender->HandlerDone();
  if (shutting_down_.load()) return grpc::Status::OK;
  // The TaskManager's process died (the connection was reset or closed) or its connection
  // failed: lost at once, if this registration was still the current one.
  if (auto lost = registry_->Disconnected(id, registration)) {
    LOG(WARNING) << lost->why;
    on_lost_(*lost);
  }
  return grpc::Status::OK;
}

grpc::Status JobManagerService::SubmitJob(grpc::ServerContext* ctx, const SubmitJobRequest* request,
                                          SubmitJobReply* reply) {
  if (grpc::Status denied = credentials_.Check(*ctx, "a submission"); !denied.ok()) return denied;
  if (request->dry_run()) return ToGrpcStatus(dispatcher_->Check(request->job()));
  auto id = dispatcher_->Submit(request->job());
  if (!id.ok()) return ToGrpcStatus(id.status());
  reply->set_job_id(*id);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::GetJob(grpc::ServerContext*, const GetJobRequest* request,
                                       GetJobReply* reply) {
  auto status = dispatcher_->Job(request->job_id());
  if (!status.ok()) return ToGrpcStatus(status.status());
  *reply->mutable_job() = std::move(*status);
  if (auto submission = dispatcher_->Submission(request->job_id()); submission.ok()) {
    *reply->mutable_submission() = std::move(*submission);
  }
  return grpc::Status::OK;
}

grpc::Status JobManagerService::ListJobs(grpc::ServerContext*, const ListJobsRequest*,
                                         ListJobsReply* reply) {
  for (JobStatus& job : dispatcher_->Jobs()) *reply->add_jobs() = std::move(job);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::CancelJob(grpc::ServerContext* ctx, const CancelJobRequest* request,
                                          CancelJobReply* reply) {
  if (grpc::Status denied = credentials_.Check(*ctx, "a cancellation"); !denied.ok()) return denied;
  auto status = dispatcher_->Cancel(request->job_id());
  if (!status.ok()) return ToGrpcStatus(status.status());
  *reply->mutable_job() = std::move(*status);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::ReportJobPart(grpc::ServerContext* ctx,
                                              const ReportJobPartRequest* request,
                                              ReportJobPartReply*) {
  if (grpc::Status denied = credentials_.Check(*ctx, "a report"); !denied.ok()) return denied;
  dispatcher_->PartEnded(request->report());
  return grpc::Status::OK;
}

grpc::Status JobManagerService::AcknowledgeCheckpoint(grpc::ServerContext* ctx,
                                                      const AcknowledgeCheckpointRequest* request,
                                                      AcknowledgeCheckpointReply*) {
  if (grpc::Status denied = credentials_.Check(*ctx, "an acknowledgement"); !denied.ok())
    return denied;
  return ToGrpcStatus(dispatcher_->AcknowledgeCheckpoint(request->ack()));
}

grpc::Status JobManagerService::ReportPartRestored(grpc::ServerContext* ctx,
                                                   const ReportPartRestoredRequest* request,
                                                   ReportPartRestoredReply*) {
  if (grpc::Status denied = credentials_.Check(*ctx, "a report"); !denied.ok()) return denied;
  dispatcher_->PartRestored(request->report());
  return grpc::Status::OK;
}

grpc::Status JobManagerService::ReportAwaitingFinalCheckpoint(
    grpc::ServerContext* ctx, const ReportAwaitingFinalCheckpointRequest* request,
    ReportAwaitingFinalCheckpointReply*) {
  if (grpc::Status denied = credentials_.Check(*ctx, "a report"); !denied.ok()) return denied;
  dispatcher_->PartAwaitsFinalCheckpoint(request->report());
  return grpc::Status::OK;
}

grpc::Status JobManagerService::TriggerSavepoint(grpc::ServerContext* ctx,
                                                 const TriggerSavepointRequest* request,
                                                 TriggerSavepointReply* reply) {
  if (grpc::Status denied = credentials_.Check(*ctx, "a savepoint"); !denied.ok()) return denied;
  auto path = dispatcher_->TriggerSavepoint(*request);
  if (!path.ok()) return ToGrpcStatus(path.status());
  reply->set_path(*path);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::UploadBlob(grpc::ServerContext* ctx,
                                           grpc::ServerReader<UploadBlobRequest>* reader,
                                           UploadBlobReply* reply) {
  if (grpc::Status denied = credentials_.Check(*ctx, "an upload"); !denied.ok()) return denied;
  auto id = blobs_->Receive([reader](UploadBlobRequest* chunk) { return reader->Read(chunk); });
  if (!id.ok()) {
    // Logged after the partial file is gone (it belongs to the upload, deleted with it).
    LOG(WARNING) << "blob upload refused: " << id.status().message();
    return ToGrpcStatus(id.status());
  }
  LOG(INFO) << "stored blob " << id->sha256 << " (" << id->size << " bytes)";
  reply->mutable_blob()->set_sha256(id->sha256);
  reply->mutable_blob()->set_size(id->size);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::DownloadBlob(grpc::ServerContext* ctx,
                                             const DownloadBlobRequest* request,
                                             grpc::ServerWriter<DownloadBlobReply>* writer) {
  if (grpc::Status denied = credentials_.Check(*ctx, "a download"); !denied.ok()) return denied;
  return ToGrpcStatus(blobs_->Send(
      request->blob().sha256(), [writer](const DownloadBlobReply& c) { return writer->Write(c); }));
}

grpc::Status JobManagerService::GetClusterStatus(grpc::ServerContext*,
                                                 const GetClusterStatusRequest*,
                                                 GetClusterStatusReply* reply) {
  *reply = ClusterStatus();
  return grpc::Status::OK;
}

GetClusterStatusReply JobManagerService::ClusterStatus() const {
  GetClusterStatusReply status;
  GetClusterStatusReply* reply = &status;
  reply->set_jobmanager_id(jobmanager_id_);
  const absl::Time now = registry_->Now();
  int total = 0, free = 0;
  for (const TaskManagerRegistry::Entry& tm : registry_->Entries()) {
    const std::string& id = tm.registration.taskmanager_id();
    // Registered a moment ago, its slots may not be in the pool yet: all free then.
    const int slots = tm.registration.slots();
    const int free_slots = dispatcher_->FreeSlotsOf(id).value_or(slots);
    TaskManagerStatus* s = reply->add_taskmanagers();
    s->set_taskmanager_id(id);
    s->set_host(tm.registration.host());
    s->set_pid(tm.registration.pid());
    s->set_slots(slots);
    s->set_free_slots(free_slots);
    s->set_last_heartbeat_ms_ago(absl::ToInt64Milliseconds(now - tm.last_heartbeat));
    total += slots;
    free += free_slots;
  }
  for (JobStatus& job : dispatcher_->Jobs()) *reply->add_jobs() = std::move(job);
  reply->set_total_slots(total);
  reply->set_free_slots(free);
  reply->set_blob_dir(store_->dir());
  reply->set_blobs(store_->Count());
  return status;
}

}  // namespace sluice::cluster
