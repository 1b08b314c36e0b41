// Built-in sources and sinks against real files and a real TCP socket.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

std::vector<std::string> RunFileSource(const std::string& path, int parallelism) {
  Pipeline p("read");
  auto out = std::make_shared<CollectedRecords<std::string>>();
  p.Source(TextFileSource(path)).Parallelism(parallelism).Sink(CollectSink<std::string>(out));
  EXPECT_OK(ExecuteLocally(p));
  return out->Values();
}

TEST(TextFileSourceTest, EveryLineExactlyOnceAtAnyParallelism) {
  testing::TempDir dir;
  std::vector<std::string> lines;
  std::string content;
  for (int i = 0; i < 997; ++i) {
    lines.push_back(absl::StrCat("line ", i, std::string(i % 13, 'x')));
    content += lines.back() + "\n";
  }
  lines.push_back("");  // an empty line is a line
  content += "\n";
  lines.push_back("last line without newline");
  content += lines.back();
  testing::WriteFile(dir.Join("in.txt"), content);
  for (int parallelism = 1; parallelism <= 5; ++parallelism) {
    EXPECT_THAT(RunFileSource(dir.Join("in.txt"), parallelism), UnorderedElementsAreArray(lines))
        << "parallelism " << parallelism;
  }
}

TEST(TextFileSourceTest, StripsCrLfAndHandlesEmptyFiles) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("crlf.txt"), "a\r\nb\r\n");
  EXPECT_EQ(RunFileSource(dir.Join("crlf.txt"), 1), (std::vector<std::string>{"a", "b"}));
  testing::WriteFile(dir.Join("empty.txt"), "");
  EXPECT_TRUE(RunFileSource(dir.Join("empty.txt"), 3).empty());
}

TEST(TextFileSourceTest, DirectoryIsRefused) {
  testing::TempDir dir;
  Pipeline p("dir");
  p.Source(TextFileSource(dir.path()), "ReadLines").Print();
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("is a directory"));
}

TEST(TextFileSinkTest, WithoutCheckpointsWritesOneCommittedPartFilePerSubtask) {
  testing::TempDir dir;
  const std::string out = dir.Join("out");
  // A stale part from an earlier run at higher parallelism must not survive.
  std::filesystem::create_directories(out);
  testing::WriteFile(out + "/part-7", "stale\n");
  Pipeline p("write");
  p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }, {.count = 1000}))
      .Sink(TextFileSink<int64_t>(out))
      .Parallelism(3);
  ASSERT_OK(ExecuteLocally(p));
  std::vector<std::string> expected;
  for (int i = 0; i < 1000; ++i) expected.push_back(std::to_string(i));
  EXPECT_THAT(testing::ReadPartFileLines(out), UnorderedElementsAreArray(expected));
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(out))
    names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"part-0-0", "part-1-0", "part-2-0"}));
}

TEST(TextFileSinkTest, FailedJobCommitsNothing) {
  testing::TempDir dir;
  const std::string out = dir.Join("out");
  Pipeline p("write-fails");
  p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }, {.count = 100000}))
      .Map([](const int64_t& v) {
        if (v == 90000) throw std::runtime_error("late failure");
        return v;
      })
      .Sink(TextFileSink<int64_t>(out));
  ASSERT_FALSE(ExecuteLocally(p).ok());
  EXPECT_TRUE(testing::ReadPartFileLines(out).empty());
}

TEST(TextFileSinkTest, UnwritableDirectoryIsNamed) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("file"), "x");
  Pipeline p("bad-out");
  p.Source(CollectionSource<int64_t>({1}))
      .Sink(TextFileSink<int64_t>(dir.Join("file") + "/sub"), "Write");
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("cannot create output directory"));
}

/// A one-connection TCP server on a free loopback port that sends `payload` and closes.
class LineServer {
 public:
  explicit LineServer(std::string payload) {
    fd_ = testing::ListenOnLoopback(&port_);
    EXPECT_GE(fd_, 0);
    thread_ = std::thread([this, payload = std::move(payload)] {
      int conn = ::accept(fd_, nullptr, nullptr);
      if (conn < 0) return;
      // Two writes: a line split across packets must still come out whole.
      size_t half = payload.size() / 2;
      (void)!::write(conn, payload.data(), half);
      (void)!::write(conn, payload.data() + half, payload.size() - half);
      ::close(conn);
    });
  }
  ~LineServer() {
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_;
  int port_;
  std::thread thread_;
};

TEST(SocketTextSourceTest, ReadsLinesUntilThePeerCloses) {
  std::string payload;
  std::vector<std::string> lines;
  for (int i = 0; i < 5000; ++i) {
    lines.push_back(absl::StrCat("event-", i));
    payload += lines.back() + "\n";
  }
  payload += "tail";
  lines.push_back("tail");
  LineServer server(payload);
  Pipeline p("socket");
  auto out = std::make_shared<CollectedRecords<std::string>>();
  p.Source(SocketTextSource("127.0.0.1", server.port())).Sink(CollectSink<std::string>(out));
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_EQ(out->Values(), lines);  // in order: one connection, one subtask
}

TEST(SocketTextSourceTest, RefusedConnectionIsAClearError) {
  int port = testing::PickFreePort();
  Pipeline p("no-server");
  p.Source(SocketTextSource("127.0.0.1", port), "Socket").Print();
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr(absl::StrCat("cannot connect to 127.0.0.1:", port)));
}

TEST(PrintSinkTest, PrintsOneLinePerRecordWithSubtaskPrefix) {
  Pipeline p("print");
  p.Source(CollectionSource<std::pair<std::string, int64_t>>({{"a", 1}, {"b", 2}})).Print();
  ::testing::internal::CaptureStdout();
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "(a,1)\n(b,2)\n");

  Pipeline p2("print-parallel");
  p2.Source(CollectionSource<int64_t>({7})).Rebalance().Print().Parallelism(2);
  ::testing::internal::CaptureStdout();
  ASSERT_OK(ExecuteLocally(p2));
  std::string printed = ::testing::internal::GetCapturedStdout();
  EXPECT_TRUE(printed == "1> 7\n" || printed == "2> 7\n") << printed;
}

}  // namespace
}  // namespace sluice
