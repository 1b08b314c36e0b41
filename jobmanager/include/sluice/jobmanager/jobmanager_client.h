#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/jobmanager_service.grpc.pb.h"
#include "sluice/jobmanager/blob_store.h"
#include "sluice/jobmanager/credentials.h"

namespace sluice::cluster {

/// Talks to a JobManager (for the CLI and the TaskManager), turning gRPC failures into
/// messages a user can act on: nobody listening, something else listening, no answer.
class JobManagerClient {
 public:
  /// `address` is HOST:PORT. Connects lazily; calls time out after `timeout` and carry
  /// go with `credentials` (the cluster's token and TLS, if it has them).
  explicit JobManagerClient(std::string address, absl::Duration timeout = absl::Seconds(10),
                            const Credentials& credentials = {});

  const std::string& address() const { return address_; }

  absl::StatusOr<GetClusterStatusReply> Status();
  absl::StatusOr<RegisterTaskManagerReply> Register(const RegisterTaskManagerRequest& request);
  /// Opens a TaskManager's control stream (heartbeats up, answers down) on `ctx`, without a
  /// deadline: it lives as long as both processes. Cancel `ctx` to end it.
  std::unique_ptr<grpc::ClientReaderWriter<HeartbeatRequest, HeartbeatReply>> OpenHeartbeats(
      grpc::ClientContext* ctx);
  absl::Status ReportJobPart(const JobPartReport& report);
  absl::StatusOr<std::string> Submit(const JobSubmission& job);
  /// Checks a submission without starting it (see SubmitJobRequest.dry_run).
  absl::Status Check(const JobSubmission& job);
  absl::StatusOr<JobStatus> Job(const std::string& job_id);
  /// What a job was submitted with.
  absl::StatusOr<JobSubmission> SubmissionOf(const std::string& job_id);
  absl::StatusOr<std::vector<JobStatus>> Jobs();
  absl::StatusOr<JobStatus> Cancel(const std::string& job_id);
  /// Takes a savepoint of a running job into `dir` (empty: the job's --savepoint-dir);
  /// with `stop` the job then ends. Returns the savepoint's directory. Waits as long as
  /// the savepoint takes (up to `patience`).
  absl::StatusOr<std::string> Savepoint(const std::string& job_id, const std::string& dir,
                                        bool stop, absl::Duration patience);
  absl::Status AcknowledgeCheckpoint(const CheckpointAck& ack);
  absl::Status ReportAwaitingFinalCheckpoint(const JobPartReport& report);
  absl::Status ReportPartRestored(const JobPartReport& report);
  /// Uploads a file to the blob store; returns its id once the JobManager verified it.
  absl::StatusOr<BlobId> UploadFile(const std::string& path);
  /// Streams a stored blob into `write`.
  absl::Status Download(const BlobId& id,
                        const std::function<absl::Status(std::string_view)>& write);

 private:
  /// A failed call as a status naming the JobManager and what to check.
  absl::Status Explain(const grpc::Status& s, const char* what) const;
  std::unique_ptr<grpc::ClientContext> Context() const;
  /// One unary RPC with the default deadline: its reply, or the failure explained.
  template <typename Request, typename Reply>
  absl::StatusOr<Reply> Call(grpc::Status (JobManager::Stub::*rpc)(grpc::ClientContext*,
                                                                   const Request&, Reply*),
                             const Request& request, const char* what);

  std::string address_;
  absl::Duration timeout_;
  std::unique_ptr<JobManager::Stub> stub_;
};

}  // namespace sluice::cluster
