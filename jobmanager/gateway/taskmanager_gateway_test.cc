#include "gateway/taskmanager_gateway.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sluice/testing/test_util.h"

namespace sluice::cluster {
namespace {

TEST(GrpcTaskManagerGatewayTest, NobodyListeningIsUnavailable) {
  testing::ClosedPort closed;
  GrpcTaskManagerGateway gateway;
  const std::string address = absl::StrCat("127.0.0.1:", closed.port());
  EXPECT_EQ(gateway.Cancel(address, CancelJobPartRequest()).code(), absl::StatusCode::kUnavailable);
  DeployJobRequest deploy;
  EXPECT_EQ(gateway.Deploy(address, deploy).code(), absl::StatusCode::kUnavailable);
}

TEST(GrpcTaskManagerGatewayTest, ATaskManagerThatDoesNotAnswerTimesOutAtItsDeadline) {
  int port = 0;
  const int fd = testing::ListenOnLoopback(&port);  // accepts connections, never answers
  GatewayDeadlines deadlines;
  deadlines.checkpoint_command = absl::Milliseconds(300);
  GrpcTaskManagerGateway gateway(deadlines);
  const absl::Time start = absl::Now();
  absl::Status s =
      gateway.SendCheckpointCommand(absl::StrCat("127.0.0.1:", port), CheckpointCommandRequest());
  const absl::Duration took = absl::Now() - start;
  ::close(fd);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_EQ(s.message(), absl::StrCat("the TaskManager at 127.0.0.1:", port,
                                      " did not answer CheckpointCommand within 300ms "
                                      "(--checkpoint-command-timeout)"));
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(5)) << "the deadline option, not the 5 s default";
}

}  // namespace
}  // namespace sluice::cluster
