#include "sluice/core/durable_file.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class DurableFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/durable_file_test_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(DurableFileTest, ACommitReplacesTheFileAndAnAbandonedOneLeavesNothing) {
  const std::string path = dir_ + "/state";
  ASSERT_TRUE(WriteFileAtomically(path, "old").ok());
  {
    auto file = AtomicFile::Create(path);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE(file->Append("half of the ").ok());
    EXPECT_EQ(Slurp(path), "old") << "nothing is visible before the commit";
  }  // abandoned
  EXPECT_EQ(Slurp(path), "old");
  EXPECT_FALSE(std::filesystem::exists(path + ".inprogress"));
  auto file = AtomicFile::Create(path, dir_ + "/incoming-1");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(file->Append("new ").ok());
  ASSERT_TRUE(file->Append("content").ok());
  EXPECT_EQ(file->size(), 11);
  ASSERT_TRUE(file->Commit().ok());
  EXPECT_EQ(Slurp(path), "new content");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/incoming-1"));
}

TEST_F(DurableFileTest, ErrorsNameTheFile) {
  const absl::Status s = WriteFileAtomically(dir_ + "/missing/dir/f", "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("cannot create '" + dir_ + "/missing/dir/f.inprogress': No such file"));
  const absl::Status r = RenameDurably(dir_ + "/nothing", dir_ + "/else");
  EXPECT_THAT(std::string(r.message()), HasSubstr("cannot rename into place '" + dir_ + "/else'"));
}

// A real full disk: a 64 KiB tmpfs, mounted in a mount namespace of a child process (so
// nothing outside the test sees it). Needs root (CAP_SYS_ADMIN), as the tests run in CI.
TEST_F(DurableFileTest, AFullDiskIsResourceExhaustedNamingTheFileAndKeepsTheOldContent) {
  const std::string mount_point = dir_ + "/small";
  std::filesystem::create_directories(mount_point);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    auto report = [&](const std::string& text, int code) {
      (void)!::write(pipe_fds[1], text.data(), text.size());
      ::_exit(code);
    };
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=64k") != 0) {
      report(std::string("no mount namespace: ") + std::strerror(errno), 77);
    }
    const std::string path = mount_point + "/state";
    if (!WriteFileAtomically(path, "old").ok()) report("the small write failed", 1);
    const absl::Status s = WriteFileAtomically(path, std::string(512 * 1024, 'x'));
    std::string out = std::string(absl::StatusCodeToString(s.code())) + "|" +
                      std::string(s.message()) + "|" + Slurp(path) + "|" +
                      (std::filesystem::exists(path + ".inprogress") ? "left" : "clean");
    report(out, 0);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) out.append(buf, n);
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << out;
  ASSERT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_EQ(out, "RESOURCE_EXHAUSTED|cannot write '" + mount_point +
                     "/state.inprogress': No space left on device|old|clean");
}

}  // namespace
}  // namespace sluice
