#include "sluice/jobmanager/jobmanager_client.h"

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "sluice/core/status_macros.h"
#include "sluice/jobmanager/grpc_status.h"

namespace sluice::cluster {

namespace {
constexpr size_t kChunkBytes = 1 << 20;
}  // namespace

JobManagerClient::JobManagerClient(std::string address, absl::Duration timeout,
                                   const Credentials& credentials)
    : address_(std::move(address)),
      timeout_(timeout),
      stub_(JobManager::NewStub(credentials.Channel(address_))) {}

std::unique_ptr<grpc::ClientContext> JobManagerClient::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout_)));
  return ctx;
}

absl::Status JobManagerClient::Explain(const grpc::Status& s, const char* what) const {
  const std::string detail = s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return absl::UnavailableError(
          absl::StrCat("cannot reach the JobManager at ", address_, " (", what, "): ", detail,
                       " — is sluice-jobmanager running there, and is the address right?"));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::DeadlineExceededError(absl::StrCat("no answer from ", address_, " within ",
                                                      absl::FormatDuration(timeout_), " (", what,
                                                      "): is that a Sluice JobManager's address?"));
    case grpc::StatusCode::UNIMPLEMENTED:
      return absl::FailedPreconditionError(absl::StrCat(
          address_, " is not a Sluice JobManager (it does not know ", what, "): ", detail));
    default:
      return absl::Status(ToAbslStatus(s).code(),
                          absl::StrCat("JobManager at ", address_, " (", what, "): ", detail));
  }
}

template <typename Request, typename Reply>
absl::StatusOr<Reply> JobManagerClient::Call(
    grpc::Status (JobManager::Stub::*rpc)(grpc::ClientContext*, const Request&, Reply*),
    const Request& request, const char* what) {
  Reply reply;
  grpc::Status s = (stub_.get()->*rpc)(Context().get(), request, &reply);
  if (!s.ok()) return Explain(s, what);
  return reply;
}

absl::StatusOr<GetClusterStatusReply> JobManagerClient::Status() {
  return Call(&JobManager::Stub::GetClusterStatus, GetClusterStatusRequest(), "cluster status");
}

absl::StatusOr<RegisterTaskManagerReply> JobManagerClient::Register(
    const RegisterTaskManagerRequest& request) {
  return Call(&JobManager::Stub::RegisterTaskManager, request, "TaskManager registration");
}

std::unique_ptr<grpc::ClientReaderWriter<HeartbeatRequest, HeartbeatReply>>
JobManagerClient::OpenHeartbeats(grpc::ClientContext* ctx) {
  return stub_->Heartbeats(ctx);
}

absl::Status JobManagerClient::ReportJobPart(const JobPartReport& report) {
  ReportJobPartRequest request;
  *request.mutable_report() = report;
  return Call(&JobManager::Stub::ReportJobPart, request, "job report").status();
}

absl::StatusOr<std::string> JobManagerClient::Submit(const JobSubmission& job) {
  SubmitJobRequest request;
  *request.mutable_job() = job;
  SLUICE_ASSIGN_OR_RETURN(auto reply,
                          Call(&JobManager::Stub::SubmitJob, request, "job submission"));
  return reply.job_id();
}

absl::Status JobManagerClient::Check(const JobSubmission& job) {
  SubmitJobRequest request;
  *request.mutable_job() = job;
  request.set_dry_run(true);
  return Call(&JobManager::Stub::SubmitJob, request, "job check").status();
}

absl::StatusOr<JobSubmission> JobManagerClient::SubmissionOf(const std::string& job_id) {
  GetJobRequest request;
  request.set_job_id(job_id);
  SLUICE_ASSIGN_OR_RETURN(auto reply, Call(&JobManager::Stub::GetJob, request, "job status"));
  return reply.submission();
}

absl::StatusOr<JobStatus> JobManagerClient::Job(const std::string& job_id) {
  GetJobRequest request;
  request.set_job_id(job_id);
  SLUICE_ASSIGN_OR_RETURN(auto reply, Call(&JobManager::Stub::GetJob, request, "job status"));
  return reply.job();
}

absl::StatusOr<std::vector<JobStatus>> JobManagerClient::Jobs() {
  SLUICE_ASSIGN_OR_RETURN(auto reply,
                          Call(&JobManager::Stub::ListJobs, ListJobsRequest(), "job list"));
  return std::vector<JobStatus>(reply.jobs().begin(), reply.jobs().end());
}

absl::StatusOr<JobStatus> JobManagerClient::Cancel(const std::string& job_id) {
  CancelJobRequest request;
  request.set_job_id(job_id);
  SLUICE_ASSIGN_OR_RETURN(auto reply,
                          Call(&JobManager::Stub::CancelJob, request, "job cancellation"));
  return reply.job();
}

absl::StatusOr<std::string> JobManagerClient::Savepoint(const std::string& job_id,
                                                        const std::string& dir, bool stop,
                                                        absl::Duration patience) {
  TriggerSavepointRequest request;
  request.set_job_id(job_id);
  request.set_dir(dir);
  request.set_stop(stop);
  TriggerSavepointReply reply;
  grpc::ClientContext ctx;  // not the default deadline: a savepoint takes as long as it takes
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(absl::ToInt64Milliseconds(patience)));
  grpc::Status s = stub_->TriggerSavepoint(&ctx, request, &reply);
  if (!s.ok()) return Explain(s, stop ? "stop with savepoint" : "savepoint");
  return reply.path();
}

absl::Status JobManagerClient::AcknowledgeCheckpoint(const CheckpointAck& ack) {
  AcknowledgeCheckpointRequest request;
  *request.mutable_ack() = ack;
  return Call(&JobManager::Stub::AcknowledgeCheckpoint, request, "checkpoint acknowledgement")
      .status();
}

absl::Status JobManagerClient::ReportAwaitingFinalCheckpoint(const JobPartReport& report) {
  ReportAwaitingFinalCheckpointRequest request;
  *request.mutable_report() = report;
  return Call(&JobManager::Stub::ReportAwaitingFinalCheckpoint, request, "job part report")
      .status();
}

absl::Status JobManagerClient::ReportPartRestored(const JobPartReport& report) {
  ReportPartRestoredRequest request;
  *request.mutable_report() = report;
  return Call(&JobManager::Stub::ReportPartRestored, request, "restore report").status();
}

absl::StatusOr<BlobId> JobManagerClient::UploadFile(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(auto sha, Sha256OfFile(path));
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const int64_t size = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  auto ctx = Context();
  UploadBlobReply reply;
  auto writer = stub_->UploadBlob(ctx.get(), &reply);
  std::vector<char> buffer(kChunkBytes);
  UploadBlobRequest chunk;
  chunk.set_sha256(sha);
  chunk.set_size(size);
  bool first = true;
  while (in || first) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    chunk.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
    if (!writer->Write(chunk)) break;  // the server ended the call: Finish says why
    chunk.clear_sha256();
    first = false;
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) return Explain(s, absl::StrCat("upload of '", path, "'").c_str());
  return BlobId{reply.blob().sha256(), reply.blob().size()};
}

absl::Status JobManagerClient::Download(
    const BlobId& id, const std::function<absl::Status(std::string_view)>& write) {
  DownloadBlobRequest request;
  request.mutable_blob()->set_sha256(id.sha256);
  request.mutable_blob()->set_size(id.size);
  auto ctx = Context();
  auto reader = stub_->DownloadBlob(ctx.get(), request);
  DownloadBlobReply chunk;
  absl::Status written;
  while (reader->Read(&chunk)) {
    written = write(chunk.data());
    if (!written.ok()) {
      ctx->TryCancel();
      break;
    }
  }
  grpc::Status s = reader->Finish();
  if (!written.ok()) return written;
  if (!s.ok()) return Explain(s, "blob download");
  return absl::OkStatus();
}

}  // namespace sluice::cluster
