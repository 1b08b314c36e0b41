#include "jobmanager/service/jobmanager_service.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "jobmanager/client/grpc_status.h"
#include "sluice/api/job.h"

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
                                                    RegisterTaskManagerResponse* response) {
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
  response->set_jobmanager_id(jobmanager_id_);
  response->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(heartbeat_interval_));
  return grpc::Status::OK;
}

grpc::Status JobManagerService::Heartbeat(grpc::ServerContext*, const HeartbeatRequest* request,
                                          HeartbeatResponse* response) {
  response->set_known(registry_->Heartbeat(request->taskmanager_id()));
  return grpc::Status::OK;
}

grpc::Status JobManagerService::SubmitJob(grpc::ServerContext*, const SubmitJobRequest* request,
                                          SubmitJobResponse* response) {
  auto id = dispatcher_->Submit(*request);
  if (!id.ok()) return ToGrpcStatus(id.status());
  response->set_job_id(*id);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::GetJob(grpc::ServerContext*, const JobRequest* request,
                                       JobStatus* response) {
  auto status = dispatcher_->Job(request->job_id());
  if (!status.ok()) return ToGrpcStatus(status.status());
  *response = std::move(*status);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::ListJobs(grpc::ServerContext*, const ListJobsRequest*,
                                         ListJobsResponse* response) {
  for (JobStatus& job : dispatcher_->Jobs()) *response->add_jobs() = std::move(job);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::CancelJob(grpc::ServerContext*, const JobRequest* request,
                                          JobStatus* response) {
  auto status = dispatcher_->Cancel(request->job_id());
  if (!status.ok()) return ToGrpcStatus(status.status());
  *response = std::move(*status);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::ReportJobPart(grpc::ServerContext*, const JobPartReport* request,
                                              JobPartAck*) {
  dispatcher_->PartEnded(*request);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::AcknowledgeCheckpoint(grpc::ServerContext*,
                                                      const CheckpointAck* request,
                                                      CheckpointAckResponse*) {
  return ToGrpcStatus(dispatcher_->AcknowledgeCheckpoint(*request));
}

grpc::Status JobManagerService::ReportAwaitingFinalCheckpoint(grpc::ServerContext*,
                                                              const JobPartReport* request,
                                                              JobPartAck*) {
  dispatcher_->PartAwaitsFinalCheckpoint(*request);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::TriggerSavepoint(grpc::ServerContext*,
                                                 const SavepointRequest* request,
                                                 SavepointResponse* response) {
  auto path = dispatcher_->TriggerSavepoint(*request);
  if (!path.ok()) return ToGrpcStatus(path.status());
  response->set_path(*path);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::UploadBlob(grpc::ServerContext*,
                                           grpc::ServerReader<BlobChunk>* reader,
                                           BlobRef* response) {
  auto id = blobs_->Receive([reader](BlobChunk* chunk) { return reader->Read(chunk); });
  if (!id.ok()) {
    // Logged after the partial file is gone (it belongs to the upload, deleted with it).
    LOG(WARNING) << "blob upload refused: " << id.status().message();
    return ToGrpcStatus(id.status());
  }
  LOG(INFO) << "stored blob " << id->sha256 << " (" << id->size << " bytes)";
  response->set_sha256(id->sha256);
  response->set_size(id->size);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::DownloadBlob(grpc::ServerContext*, const BlobRef* request,
                                             grpc::ServerWriter<BlobChunk>* writer) {
  return ToGrpcStatus(
      blobs_->Send(request->sha256(), [writer](const BlobChunk& c) { return writer->Write(c); }));
}

grpc::Status JobManagerService::GetClusterStatus(grpc::ServerContext*, const ClusterStatusRequest*,
                                                 ClusterStatus* response) {
  response->set_jobmanager_id(jobmanager_id_);
  const absl::Time now = registry_->Now();
  int total = 0, free = 0;
  for (const TaskManagerRegistry::Entry& tm : registry_->Entries()) {
    const std::string& id = tm.registration.taskmanager_id();
    // Registered a moment ago, its slots may not be in the pool yet: all free then.
    const int slots = tm.registration.slots();
    const int free_slots = dispatcher_->FreeSlotsOf(id).value_or(slots);
    TaskManagerStatus* s = response->add_taskmanagers();
    s->set_taskmanager_id(id);
    s->set_host(tm.registration.host());
    s->set_pid(tm.registration.pid());
    s->set_slots(slots);
    s->set_free_slots(free_slots);
    s->set_last_heartbeat_ms_ago(absl::ToInt64Milliseconds(now - tm.last_heartbeat));
    total += slots;
    free += free_slots;
  }
  for (JobStatus& job : dispatcher_->Jobs()) *response->add_jobs() = std::move(job);
  response->set_total_slots(total);
  response->set_free_slots(free);
  response->set_blob_dir(store_->dir());
  response->set_blobs(store_->Count());
  return grpc::Status::OK;
}

}  // namespace sluice::cluster
