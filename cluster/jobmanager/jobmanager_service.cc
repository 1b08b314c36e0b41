#include "cluster/jobmanager/jobmanager_service.h"

#include <unistd.h>

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "sluice/api/job.h"

namespace sluice::cluster {

namespace {

constexpr size_t kChunkBytes = 1 << 20;

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace

JobManagerService::JobManagerService(BlobStore* blobs, JobManagerOptions options)
    : blobs_(blobs),
      options_(options),
      jobmanager_id_(absl::StrCat("jm-", ::getpid(), "-", absl::ToUnixMillis(absl::Now()))) {
  watcher_ = std::thread([this] { WatchHeartbeats(); });
}

JobManagerService::~JobManagerService() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  watcher_.join();
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
    taskmanagers_[request->taskmanager_id()] = TaskManagerEntry{*request, absl::Now()};
  }
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
    for (auto it = taskmanagers_.begin(); it != taskmanagers_.end();) {
      if (now - it->second.last_heartbeat > options_.heartbeat_timeout) {
        LOG(WARNING) << "TaskManager '" << it->first << "' lost: no heartbeat for "
                     << absl::FormatDuration(now - it->second.last_heartbeat);
        it = taskmanagers_.erase(it);
      } else {
        ++it;
      }
    }
  }
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
  int total = 0;
  for (const auto& [id, tm] : taskmanagers_) {
    TaskManagerStatus* s = response->add_taskmanagers();
    s->set_taskmanager_id(id);
    s->set_host(tm.registration.host());
    s->set_pid(tm.registration.pid());
    s->set_slots(tm.registration.slots());
    s->set_free_slots(tm.registration.slots());  // nothing is scheduled yet
    s->set_last_heartbeat_ms_ago(absl::ToInt64Milliseconds(now - tm.last_heartbeat));
    total += tm.registration.slots();
  }
  response->set_total_slots(total);
  response->set_free_slots(total);
  response->set_blob_dir(blobs_->dir());
  response->set_blobs(blobs_->Count());
  return grpc::Status::OK;
}

}  // namespace sluice::cluster
