#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "proto/jobmanager_service.pb.h"
#include "sluice/jobmanager/http_endpoint.h"

namespace sluice::cluster {

/// The JobManager's HTTP endpoint (`--rest-port`): a REST API in JSON under Flink's paths
/// where Flink has one (`/overview`, `/taskmanagers`, `/jobs`, `/jobs/ID`,
/// `/jobs/ID/checkpoints`, `/jobs/ID/exceptions`) and Prometheus metrics (`/metrics`), all
/// read from the cluster's status as `sluice status` shows it. Errors are JSON
/// (`{"errors": [...]}`) with 404 for an unknown path or job and 405 for another method
/// than GET; request bodies are bounded. `/` is the web dashboard (rest/dashboard/, compiled
/// in), which reads the same API. Serves on threads of its own.
class RestServer {
 public:
  using ClusterStatus = std::function<GetClusterStatusReply()>;

  /// With `https` files it serves HTTPS only.
  explicit RestServer(ClusterStatus status, const HttpsFiles& https = {});
  RestServer(const RestServer&) = delete;
  RestServer& operator=(const RestServer&) = delete;

  /// Binds `address`:`port` (0: any free port) and starts serving; returns the port.
  absl::StatusOr<int> Start(const std::string& address, int port);
  const char* scheme() const { return endpoint_.scheme(); }

 private:
  const ClusterStatus status_;
  HttpEndpoint endpoint_;
};

}  // namespace sluice::cluster
