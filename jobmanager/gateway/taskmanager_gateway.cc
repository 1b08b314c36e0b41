#include "gateway/taskmanager_gateway.h"

#include "grpcpp/grpcpp.h"
#include "sluice/jobmanager/grpc_status.h"

namespace sluice::cluster {

namespace {

std::unique_ptr<grpc::ClientContext> WithDeadline(absl::Duration deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
  return ctx;
}

}  // namespace

GrpcTaskManagerGateway::GrpcTaskManagerGateway(GatewayDeadlines deadlines)
    : deadlines_(deadlines) {}

TaskManagerService::Stub* GrpcTaskManagerGateway::StubFor(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& stub = stubs_[address];
  if (stub == nullptr) {
    stub = TaskManagerService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
  return stub.get();  // stubs live as long as the gateway; a Stub is thread-safe
}

absl::Status GrpcTaskManagerGateway::Deploy(const std::string& address,
                                            const DeployJobRequest& request) {
  DeployJobReply reply;
  return ToAbslStatus(
      StubFor(address)->DeployJob(WithDeadline(deadlines_.deploy).get(), request, &reply));
}

absl::Status GrpcTaskManagerGateway::Cancel(const std::string& address, const std::string& job_id) {
  CancelJobPartRequest request;
  request.set_job_id(job_id);
  CancelJobPartReply reply;
  return ToAbslStatus(
      StubFor(address)->CancelJobPart(WithDeadline(deadlines_.cancel).get(), request, &reply));
}

absl::Status GrpcTaskManagerGateway::SendCheckpointCommand(
    const std::string& address, const CheckpointCommandRequest& request) {
  CheckpointCommandReply reply;
  return ToAbslStatus(StubFor(address)->CheckpointCommand(
      WithDeadline(deadlines_.checkpoint_command).get(), request, &reply));
}

}  // namespace sluice::cluster
