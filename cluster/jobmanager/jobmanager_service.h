#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "cluster/blob/blob_store.h"
#include "proto/cluster.grpc.pb.h"

namespace sluice::cluster {

struct JobManagerOptions {
  absl::Duration heartbeat_interval = absl::Seconds(1);
  /// A TaskManager silent this long is declared lost.
  absl::Duration heartbeat_timeout = absl::Seconds(10);
};

/// The JobManager's RPCs: TaskManager registration and heartbeats, the blob store, status.
/// gRPC calls arrive on its threads; the registry is under one mutex.
class JobManagerService final : public JobManager::Service {
 public:
  JobManagerService(BlobStore* blobs, JobManagerOptions options);
  ~JobManagerService() override;

  grpc::Status RegisterTaskManager(grpc::ServerContext* ctx,
                                   const RegisterTaskManagerRequest* request,
                                   RegisterTaskManagerResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const HeartbeatRequest* request,
                         HeartbeatResponse* response) override;
  grpc::Status UploadBlob(grpc::ServerContext* ctx, grpc::ServerReader<BlobChunk>* reader,
                          BlobRef* response) override;
  grpc::Status DownloadBlob(grpc::ServerContext* ctx, const BlobRef* request,
                            grpc::ServerWriter<BlobChunk>* writer) override;
  grpc::Status GetClusterStatus(grpc::ServerContext* ctx, const ClusterStatusRequest* request,
                                ClusterStatus* response) override;

 private:
  struct TaskManagerEntry {
    RegisterTaskManagerRequest registration;
    absl::Time last_heartbeat;
  };
  /// Stores an upload's chunks as one blob (nothing stays if it fails).
  absl::StatusOr<BlobId> ReceiveBlob(grpc::ServerReader<BlobChunk>* reader);
  /// Declares TaskManagers lost that have been silent for the heartbeat timeout.
  void WatchHeartbeats();

  BlobStore* blobs_;
  const JobManagerOptions options_;
  const std::string jobmanager_id_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::map<std::string, TaskManagerEntry> taskmanagers_;
  std::thread watcher_;
};

}  // namespace sluice::cluster
