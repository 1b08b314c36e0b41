#include "jobmanager/client/jobmanager_client.h"

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "jobmanager/client/grpc_status.h"

namespace sluice::cluster {

namespace {
constexpr size_t kChunkBytes = 1 << 20;
}  // namespace

JobManagerClient::JobManagerClient(std::string address, absl::Duration timeout)
    : address_(std::move(address)),
      timeout_(timeout),
      stub_(
          JobManager::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()))) {}

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

absl::StatusOr<ClusterStatus> JobManagerClient::Status() {
  ClusterStatus status;
  grpc::Status s = stub_->GetClusterStatus(Context().get(), ClusterStatusRequest(), &status);
  if (!s.ok()) return Explain(s, "cluster status");
  return status;
}

absl::StatusOr<RegisterTaskManagerResponse> JobManagerClient::Register(
    const RegisterTaskManagerRequest& request) {
  RegisterTaskManagerResponse response;
  grpc::Status s = stub_->RegisterTaskManager(Context().get(), request, &response);
  if (!s.ok()) return Explain(s, "TaskManager registration");
  return response;
}

absl::StatusOr<bool> JobManagerClient::Heartbeat(const std::string& taskmanager_id) {
  HeartbeatRequest request;
  request.set_taskmanager_id(taskmanager_id);
  HeartbeatResponse response;
  grpc::Status s = stub_->Heartbeat(Context().get(), request, &response);
  if (!s.ok()) return Explain(s, "heartbeat");
  return response.known();
}

absl::Status JobManagerClient::ReportJobPart(const JobPartReport& report) {
  JobPartAck ack;
  grpc::Status s = stub_->ReportJobPart(Context().get(), report, &ack);
  if (!s.ok()) return Explain(s, "job report");
  return absl::OkStatus();
}

absl::StatusOr<std::string> JobManagerClient::Submit(const SubmitJobRequest& request) {
  SubmitJobResponse response;
  grpc::Status s = stub_->SubmitJob(Context().get(), request, &response);
  if (!s.ok()) return Explain(s, "job submission");
  return response.job_id();
}

absl::StatusOr<JobStatus> JobManagerClient::Job(const std::string& job_id) {
  JobRequest request;
  request.set_job_id(job_id);
  JobStatus status;
  grpc::Status s = stub_->GetJob(Context().get(), request, &status);
  if (!s.ok()) return Explain(s, "job status");
  return status;
}

absl::StatusOr<std::vector<JobStatus>> JobManagerClient::Jobs() {
  ListJobsResponse response;
  grpc::Status s = stub_->ListJobs(Context().get(), ListJobsRequest(), &response);
  if (!s.ok()) return Explain(s, "job list");
  return std::vector<JobStatus>(response.jobs().begin(), response.jobs().end());
}

absl::StatusOr<JobStatus> JobManagerClient::Cancel(const std::string& job_id) {
  JobRequest request;
  request.set_job_id(job_id);
  JobStatus status;
  grpc::Status s = stub_->CancelJob(Context().get(), request, &status);
  if (!s.ok()) return Explain(s, "job cancellation");
  return status;
}

absl::StatusOr<std::string> JobManagerClient::Savepoint(const std::string& job_id,
                                                        const std::string& dir, bool stop,
                                                        absl::Duration patience) {
  SavepointRequest request;
  request.set_job_id(job_id);
  request.set_dir(dir);
  request.set_stop(stop);
  SavepointResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(absl::ToInt64Milliseconds(patience)));
  grpc::Status s = stub_->TriggerSavepoint(&ctx, request, &response);
  if (!s.ok()) return Explain(s, stop ? "stop with savepoint" : "savepoint");
  return response.path();
}

absl::Status JobManagerClient::AcknowledgeCheckpoint(const CheckpointAck& ack) {
  CheckpointAckResponse response;
  grpc::Status s = stub_->AcknowledgeCheckpoint(Context().get(), ack, &response);
  if (!s.ok()) return Explain(s, "checkpoint acknowledgement");
  return absl::OkStatus();
}

absl::Status JobManagerClient::ReportAwaitingFinalCheckpoint(const JobPartReport& report) {
  JobPartAck response;
  grpc::Status s = stub_->ReportAwaitingFinalCheckpoint(Context().get(), report, &response);
  if (!s.ok()) return Explain(s, "job part report");
  return absl::OkStatus();
}

absl::StatusOr<BlobId> JobManagerClient::UploadFile(const std::string& path) {
  auto sha = Sha256OfFile(path);
  if (!sha.ok()) return sha.status();
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const int64_t size = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  auto ctx = Context();
  BlobRef ref;
  auto writer = stub_->UploadBlob(ctx.get(), &ref);
  std::vector<char> buffer(kChunkBytes);
  BlobChunk chunk;
  chunk.set_sha256(*sha);
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
  return BlobId{ref.sha256(), ref.size()};
}

absl::Status JobManagerClient::Download(
    const BlobId& id, const std::function<absl::Status(std::string_view)>& write) {
  BlobRef ref;
  ref.set_sha256(id.sha256);
  ref.set_size(id.size);
  auto ctx = Context();
  auto reader = stub_->DownloadBlob(ctx.get(), ref);
  BlobChunk chunk;
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
