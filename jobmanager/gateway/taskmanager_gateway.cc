#include "gateway/taskmanager_gateway.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "sluice/jobmanager/grpc_status.h"

namespace sluice::cluster {

namespace {

/// One call to a TaskManager within `deadline`; a missed deadline says which call, where, and
/// the flag that sets it.
template <typename Call>
absl::Status WithDeadline(const std::string& address, const char* rpc, absl::Duration deadline,
                          const char* flag, Call call) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
  const grpc::Status s = call(&ctx);
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::DeadlineExceededError(
        absl::StrCat("the TaskManager at ", address, " did not answer ", rpc, " within ",
                     absl::FormatDuration(deadline), " (", flag, ")"));
  }
  return ToAbslStatus(s);
}

}  // namespace

GrpcTaskManagerGateway::GrpcTaskManagerGateway(GatewayDeadlines deadlines, Credentials credentials)
    : deadlines_(deadlines), credentials_(std::move(credentials)) {}

TaskManagerService::Stub* GrpcTaskManagerGateway::StubFor(const std::string& address) {
  MutexLock lock(&mu_);
  auto& stub = stubs_[address];
  if (stub == nullptr) {
    stub = TaskManagerService::NewStub(credentials_.Channel(address));
  }
  return stub.get();  // stubs live as long as the gateway; a Stub is thread-safe
}

absl::Status GrpcTaskManagerGateway::Deploy(const std::string& address,
                                            const DeployJobRequest& request) {
  DeployJobReply reply;
  return WithDeadline(
      address, "DeployJob", deadlines_.deploy, "--deploy-timeout",
      [&](grpc::ClientContext* ctx) { return StubFor(address)->DeployJob(ctx, request, &reply); });
}

absl::Status GrpcTaskManagerGateway::Cancel(const std::string& address,
                                            const CancelJobPartRequest& request) {
  CancelJobPartReply reply;
  return WithDeadline(address, "CancelJobPart", deadlines_.cancel, "--cancel-timeout",
                      [&](grpc::ClientContext* ctx) {
                        return StubFor(address)->CancelJobPart(ctx, request, &reply);
                      });
}

absl::Status GrpcTaskManagerGateway::SendCheckpointCommand(
    const std::string& address, const CheckpointCommandRequest& request) {
  CheckpointCommandReply reply;
  return WithDeadline(address, "CheckpointCommand", deadlines_.checkpoint_command,
                      "--checkpoint-command-timeout", [&](grpc::ClientContext* ctx) {
                        return StubFor(address)->CheckpointCommand(ctx, request, &reply);
                      });
}

}  // namespace sluice::cluster
