#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/taskmanager_service.grpc.pb.h"
#include "sluice/core/mutex.h"
#include "sluice/jobmanager/credentials.h"

namespace sluice::cluster {

/// The JobManager's calls to TaskManagers: deploying a job's part, canceling it, and the
/// checkpoint commands of a run. An interface, so that the parts that decide what to send
/// (job masters, a run's checkpoint participants) are tested with a fake of it.
class TaskManagerGateway {
 public:
  virtual ~TaskManagerGateway() = default;
  virtual absl::Status Deploy(const std::string& address, const DeployJobRequest& request) = 0;
  virtual absl::Status Cancel(const std::string& address, const CancelJobPartRequest& request) = 0;
  virtual absl::Status SendCheckpointCommand(const std::string& address,
                                             const CheckpointCommandRequest& request) = 0;
};

/// How long each call may take before it counts as failed.
/// How long each call to a TaskManager may take (the JobManager's --deploy-timeout,
/// --cancel-timeout, --checkpoint-command-timeout).
struct GatewayDeadlines {
  absl::Duration deploy = absl::Seconds(10);
  absl::Duration cancel = absl::Seconds(5);
  absl::Duration checkpoint_command = absl::Seconds(5);
};

/// The gateway over gRPC. One channel per TaskManager address, made on first use and kept
/// (a channel reconnects by itself); thread-safe.
class GrpcTaskManagerGateway final : public TaskManagerGateway {
 public:
  /// Calls go with `credentials` (the cluster's token and TLS, if it has them).
  explicit GrpcTaskManagerGateway(GatewayDeadlines deadlines = {}, Credentials credentials = {});

  absl::Status Deploy(const std::string& address, const DeployJobRequest& request) override;
  absl::Status Cancel(const std::string& address, const CancelJobPartRequest& request) override;
  absl::Status SendCheckpointCommand(const std::string& address,
                                     const CheckpointCommandRequest& request) override;

 private:
  TaskManagerService::Stub* StubFor(const std::string& address);

  const GatewayDeadlines deadlines_;
  const Credentials credentials_;
  Mutex mu_;
  std::map<std::string, std::unique_ptr<TaskManagerService::Stub>> stubs_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::cluster
