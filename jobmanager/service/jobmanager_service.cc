#include "service/jobmanager_service.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "sluice/api/job.h"
#include "sluice/jobmanager/grpc_status.h"

namespace sluice::cluster {

JobManagerService::JobManagerService(TaskManagerRegistry* registry, Dispatcher* dispatcher,
                                     BlobServer* blobs, const BlobStore* store,
                                     absl::Duration heartbeat_interval)
    : registry_(registry),
      dispatcher_(dispatcher),
      blobs_(blobs),
      store_(store),
      heartbeat_interval_(heartbeat_interval),
      jobmanager_id_(absl::StrCat("jm-", ::getpid(), "-", absl::ToUnixMillis(absl::Now()))) {}

grpc::Status JobManagerService::RegisterTaskManager(grpc::ServerContext*,
                                                    const RegisterTaskManagerRequest* request,
                                                    RegisterTaskManagerReply* reply) {
  if (request->engine_abi() != EngineAbi()) {
    return ToGrpcStatus(absl::FailedPreconditionError(absl::StrCat(
        "TaskManager '", request->taskmanager_id(), "' runs engine ABI '", request->engine_abi(),
        "', this JobManager '", EngineAbi(), "': run the same Sluice build everywhere")));
  }
  if (request->slots() < 1) {
    return ToGrpcStatus(absl::InvalidArgumentError("a TaskManager needs at least 1 slot"));
  }
  dispatcher_->TaskManagerRegistered(*request, registry_->Register(*request));
  LOG(INFO) << "TaskManager '" << request->taskmanager_id() << "' registered (" << request->host()
            << ", pid " << request->pid() << ", " << request->slots() << " slots)";
  reply->set_jobmanager_id(jobmanager_id_);
  reply->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(heartbeat_interval_));
  return grpc::Status::OK;
}

grpc::Status JobManagerService::Heartbeat(grpc::ServerContext*, const HeartbeatRequest* request,
                                          HeartbeatReply* reply) {
  reply->set_known(registry_->Heartbeat(request->taskmanager_id()));
  return grpc::Status::OK;
}

grpc::Status JobManagerService::SubmitJob(grpc::ServerContext*, const SubmitJobRequest* request,
                                          SubmitJobReply* reply) {
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
  return grpc::Status::OK;
}

grpc::Status JobManagerService::ListJobs(grpc::ServerContext*, const ListJobsRequest*,
                                         ListJobsReply* reply) {
  for (JobStatus& job : dispatcher_->Jobs()) *reply->add_jobs() = std::move(job);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::CancelJob(grpc::ServerContext*, const CancelJobRequest* request,
                                          CancelJobReply* reply) {
  auto status = dispatcher_->Cancel(request->job_id());
  if (!status.ok()) return ToGrpcStatus(status.status());
  *reply->mutable_job() = std::move(*status);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::ReportJobPart(grpc::ServerContext*,
                                              const ReportJobPartRequest* request,
                                              ReportJobPartReply*) {
  dispatcher_->PartEnded(request->report());
  return grpc::Status::OK;
}

grpc::Status JobManagerService::AcknowledgeCheckpoint(grpc::ServerContext*,
                                                      const AcknowledgeCheckpointRequest* request,
                                                      AcknowledgeCheckpointReply*) {
  return ToGrpcStatus(dispatcher_->AcknowledgeCheckpoint(request->ack()));
}

grpc::Status JobManagerService::ReportAwaitingFinalCheckpoint(
    grpc::ServerContext*, const ReportAwaitingFinalCheckpointRequest* request,
    ReportAwaitingFinalCheckpointReply*) {
  dispatcher_->PartAwaitsFinalCheckpoint(request->report());
  return grpc::Status::OK;
}

grpc::Status JobManagerService::TriggerSavepoint(grpc::ServerContext*,
                                                 const TriggerSavepointRequest* request,
                                                 TriggerSavepointReply* reply) {
  auto path = dispatcher_->TriggerSavepoint(*request);
  if (!path.ok()) return ToGrpcStatus(path.status());
  reply->set_path(*path);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::UploadBlob(grpc::ServerContext*,
                                           grpc::ServerReader<UploadBlobRequest>* reader,
                                           UploadBlobReply* reply) {
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

grpc::Status JobManagerService::DownloadBlob(grpc::ServerContext*,
                                             const DownloadBlobRequest* request,
                                             grpc::ServerWriter<DownloadBlobReply>* writer) {
  return ToGrpcStatus(blobs_->Send(
      request->blob().sha256(), [writer](const DownloadBlobReply& c) { return writer->Write(c); }));
}

grpc::Status JobManagerService::GetClusterStatus(grpc::ServerContext*,
                                                 const GetClusterStatusRequest*,
                                                 GetClusterStatusReply* reply) {
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
  return grpc::Status::OK;
}

}  // namespace sluice::cluster
