// The seed's socket job: integers over a real TCP connection, summed in processing-time
// windows, printed while the connection is still open.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

TEST(SocketWindowSumTest, SumsIntegersPerWindowWhileConnected) {
  int port = 0;
  const int listener = testing::ListenOnLoopback(&port);
  ASSERT_GE(listener, 0);

  std::atomic<bool> close_now{false};
  std::thread server([&] {
    int conn = ::accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    const std::string lines = "1\n2\nnot-a-number\n3\n";
    (void)!::write(conn, lines.data(), lines.size());
    // Keep the connection open (as `nc -lk` does) until the test has its sums.
    while (!close_now.load()) {
      pollfd pfd{conn, POLLIN, 0};
      ::poll(&pfd, 1, 10);
    }
    ::close(conn);
  });

  const std::string cmd = absl::StrCat(
      testing::BuildDir(), "/examples/socket_window_sum --port=", port, " --window=500ms 2>&1");
  FILE* job = ::popen(cmd.c_str(), "r");
  ASSERT_NE(job, nullptr);
  int64_t total = 0;
  bool saw_skip = false;
  char line[512];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (total < 6 && std::chrono::steady_clock::now() < deadline &&
         std::fgets(line, sizeof(line), job)) {
    std::string l(line);
    if (l.find("skipping 'not-a-number'") != std::string::npos) saw_skip = true;
    std::vector<std::string> parts = absl::StrSplit(absl::StripAsciiWhitespace(l), ',');
    int64_t end, sum;
    if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &end) && absl::SimpleAtoi(parts[1], &sum)) {
      EXPECT_EQ(end % 500, 0) << "window ends are aligned to the window size";
      total += sum;
    }
  }
  close_now.store(true);
  // Drain the rest so the job can exit.
  while (std::fgets(line, sizeof(line), job)) {
    if (std::string(line).find("skipping 'not-a-number'") != std::string::npos) saw_skip = true;
  }
  int status = ::pclose(job);
  server.join();
  ::close(listener);
  EXPECT_EQ(total, 6);
  EXPECT_TRUE(saw_skip);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace sluice
