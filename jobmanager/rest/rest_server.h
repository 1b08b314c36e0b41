#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "proto/jobmanager_service.pb.h"
#include "sluice/jobmanager/blob_store.h"
#include "sluice/jobmanager/credentials.h"
#include "sluice/jobmanager/http_endpoint.h"

namespace sluice::cluster {

/// The JobManager's HTTP endpoint (`--rest-port`): a REST API in JSON under Flink's paths
/// where Flink has one (`/overview`, `/taskmanagers`, `/jobs`, `/jobs/ID`,
/// `/jobs/ID/checkpoints`, `/jobs/ID/exceptions`) and Prometheus metrics (`/metrics`), all
/// read from the cluster's status as `sluice status` shows it; job binaries (`GET /jars`,
/// `POST /jars/upload` streamed into the blob store, `POST /jars/ID/run`) and actions on a
/// job (`PATCH /jobs/ID?mode=cancel`, `POST /jobs/ID/savepoints`, `POST /jobs/ID/stop`),
/// which need the cluster's token as `Authorization: Bearer TOKEN` when it has one, checked
/// before a byte of the body is read. Errors are JSON (`{"errors": [...]}`) with 401, 400,
/// 404, 405 (another method), 411 or 413; request bodies are bounded (an upload by
/// BlobStore::kMaxBlobBytes). `/` is the web dashboard (rest/dashboard/, compiled in),
/// which reads the same API. Serves on threads of its own.
class RestServer {
 public:
  using ClusterStatus = std::function<GetClusterStatusReply()>;
  /// What the actions do (the dispatcher's), where uploads go, and who may (none null).
  struct Actions {
    std::function<absl::StatusOr<JobStatus>(const std::string& job_id)> cancel;
    std::function<absl::StatusOr<std::string>(const TriggerSavepointRequest&)> savepoint;
    /// Submits an uploaded binary (Dispatcher::SubmitUploaded); returns the job's id.
    std::function<absl::StatusOr<std::string>(const JobSubmission&)> run;
    BlobStore* blobs = nullptr;
    const Credentials* credentials = nullptr;
  };

  /// With `https` files it serves HTTPS only.
  RestServer(ClusterStatus status, Actions actions, const HttpsFiles& https = {});
  RestServer(const RestServer&) = delete;
  RestServer& operator=(const RestServer&) = delete;

  /// Binds `address`:`port` (0: any free port) and starts serving; returns the port.
  absl::StatusOr<int> Start(const std::string& address, int port);
  const char* scheme() const { return endpoint_.scheme(); }

 private:
  const ClusterStatus status_;
  const Actions actions_;
  HttpEndpoint endpoint_;
};

}  // namespace sluice::cluster
