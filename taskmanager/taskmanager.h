#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "blob/blob_cache.h"
#include "control_stream.h"
#include "exchange/exchange_server.h"
#include "job_part.h"
#include "metrics/metrics_endpoint.h"
#include "proto/taskmanager_service.grpc.pb.h"
#include "sluice/checkpoint/local_state_store.h"
#include "sluice/core/mutex.h"
#include "sluice/jobmanager/jobmanager_client.h"

namespace sluice::cluster {

struct TaskManagerOptions {
  std::string jobmanager;  // HOST:PORT
  int slots = 1;
  std::string id;         // unique in the cluster
  std::string cache_dir;  // local copies of job binaries
  /// Where copies of its subtasks' snapshots go (task-local recovery); empty: none are kept.
  /// Emptied when the TaskManager starts, removed when it stops.
  std::string local_state_dir;
  std::string bind_address = "127.0.0.1";
  /// What peers dial (empty: the bind address, or this host's name when that is a wildcard).
  std::string advertised_address;
  int port = 0;  // of its TaskManager and Exchange services (0: any free port)
  /// Where /metrics is served (Prometheus' text format): -1 nowhere, 0 any free port.
  int metrics_port = -1;
  std::string metrics_bind_address = "127.0.0.1";
  /// Its --tls-cert and --tls-key: with them /metrics is served over HTTPS.
  HttpsFiles metrics_https;
  /// Gives up when the JobManager cannot be reached this long at the start.
  absl::Duration registration_timeout = absl::Seconds(30);
  /// How long each call to the JobManager (registration, reports) may take.
  absl::Duration jobmanager_timeout = absl::Seconds(5);
  /// After losing the JobManager, the job parts keep running this long while it is
  /// unreachable, then are canceled. (A JobManager that answers again has failed or
  /// forgotten their runs: registering again cancels them at once.)
  absl::Duration jobmanager_grace_period = absl::Seconds(30);
  /// The cluster's shared secret (--auth-token-file) and TLS files: carried by its calls to the
  /// JobManager and other TaskManagers, required of deployments, cancellations, checkpoint commands
  /// and exchange streams. None: it runs open.
  Credentials credentials;
};

/// A TaskManager process: serves deployments and the data exchange, registers its slots
/// with the JobManager, keeps a control stream to it (heartbeats; registers again when the
/// stream breaks, the JobManager goes silent or forgets it), runs the job parts it is given
/// and reports how they end.
class TaskManager final : public TaskManagerService::Service {
 public:
  explicit TaskManager(TaskManagerOptions options);
  ~TaskManager() override;

  /// Runs until Stop() or a fatal error (the JobManager refused it, could not be reached
  /// within the registration timeout at the start, or the port cannot be bound).
  absl::Status Run();
  /// Any thread (a signal handler's helper).
  void Stop() { stopping_.store(true); }

  grpc::Status DeployJob(grpc::ServerContext* ctx, const DeployJobRequest* request,
                         DeployJobReply* reply) override;
  grpc::Status CancelJobPart(grpc::ServerContext* ctx, const CancelJobPartRequest* request,
                             CancelJobPartReply* reply) override;
  grpc::Status CheckpointCommand(grpc::ServerContext* ctx, const CheckpointCommandRequest* request,
                                 CheckpointCommandReply* reply) override;

 private:
  /// Registers, retrying while the JobManager is unreachable, for at most `patience`.
  absl::Status RegisterWithin(absl::Duration patience);
  /// Registers again after the control stream ended. The parts running here belong to the
  /// old registration, whose runs the JobManager failed (or, restarted, never knew): they
  /// are canceled once registered, or after the grace period if the JobManager stays
  /// unreachable. Retries until registered or stopping.
  absl::Status RegisterAgain();
  /// Cancels every running job part, saying why.
  void CancelParts(const std::string& why);
  /// Drops job parts that ended.
  void ForgetEndedParts();
  /// Drops the local state of jobs neither the JobManager's answer lists as live nor running
  /// here (control stream's reader thread).
  void KeepLocalStateOf(const HeartbeatReply& reply);

  TaskManagerOptions options_;
  JobManagerClient jobmanager_;
  std::unique_ptr<BlobCache> blobs_;
  std::unique_ptr<LocalStateStore> local_state_;  // null without local recovery
  ExchangeServer exchange_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsEndpoint> metrics_;
  std::string address_;  // where other processes reach this one
  std::atomic<bool> stopping_{false};
  ControlStreamOptions control_;  // of the current registration
  Mutex mu_;
  /// One part per job and pipelined region.
  using PartKey = std::pair<std::string, int>;
  std::map<PartKey, std::unique_ptr<JobPart>> parts_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::cluster
