#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "sluice/graph/job_graph.h"
#include "sluice/graph/stream_graph.h"

#define ASSERT_OK(expr)                                                 \
  do {                                                                  \
    const ::absl::Status sluice_s_ = ::sluice::testing::ToStatus(expr); \
    ASSERT_TRUE(sluice_s_.ok()) << sluice_s_;                           \
  } while (0)

#define EXPECT_OK(expr)                                                 \
  do {                                                                  \
    const ::absl::Status sluice_s_ = ::sluice::testing::ToStatus(expr); \
    EXPECT_TRUE(sluice_s_.ok()) << sluice_s_;                           \
  } while (0)

namespace sluice::testing {

inline absl::Status ToStatus(const absl::Status& s) { return s; }
template <typename T>
absl::Status ToStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

/// A fresh directory under the test's temporary root, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Writes `content` to `path`, failing the test on error.
void WriteFile(const std::string& path, const std::string& content);
/// Reads a whole file.
std::string ReadFile(const std::string& path);
/// Overwrites one byte of the file at `path` (at `offset`), as a bit rot would.
void DamageFile(const std::string& path, int64_t offset = 3);
/// The names of the files in `dir`, sorted.
std::vector<std::string> FilesIn(const std::string& dir);
/// The concatenated committed part files (names not starting with '.' or '_') of a
/// directory, split into lines.
std::vector<std::string> ReadPartFileLines(const std::string& directory);
/// True once a job's checkpoint directory (<checkpoint dir>/<job>) holds a completed
/// checkpoint.
bool HasCompletedCheckpoint(const std::string& job_dir);

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int PickFreePort();

/// A loopback port held bound but not listening for the object's life: connecting to it is
/// refused, and no other process can take it meanwhile (unlike a port PickFreePort returned).
class ClosedPort {
 public:
  ClosedPort();
  ~ClosedPort();
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

/// A listening TCP socket on 127.0.0.1 with a port of the kernel's choosing (no race with
/// other processes): returns the socket (-1 on error) and sets `port`.
int ListenOnLoopback(int* port);

/// The directory holding this build's binaries (bin/, examples/, tests/).
std::string BuildDir();

/// The result of a shell command: its exit code and what it printed (stdout and stderr).
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
/// Runs `command` with /bin/sh and waits for it.
CommandResult RunCommand(const std::string& command);

/// A process started by a test: its output goes to a log file; killed (SIGKILL) and
/// reaped when the object dies, so no test leaves processes behind.
class ChildProcess {
 public:
  /// Starts `argv` (argv[0] is the program's path) with stdout and stderr to `log_path`.
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  /// Sends `signal` (e.g. SIGKILL, SIGTERM, SIGUSR1).
  void Signal(int signal);
  /// Waits for the process to end and returns its exit code (128 + signal if killed).
  int Wait();
  /// True while the process runs (reaps it if it ended).
  bool Running();

 private:
  int pid_ = -1;
  int exit_code_ = -1;
};

/// Checkpoints every 50 ms into `checkpoint_dir` and three crashes, one per attempt after a
/// few hundred records of a task (so three whatever the machine's speed), the sources slowed
/// to 2,000 records/s so that a few thousand records last long enough for them.
void CrashThreeTimes(JobConfig& config, const std::string& checkpoint_dir, uint64_t seed = 7);

/// Runs `graph` on a mini-cluster until more than `checkpoints` checkpoints completed (30 s
/// at most), then stops it with a savepoint into `savepoint_dir`: the savepoint's path, or
/// why the run or the savepoint failed. For a job throttled to be still running by then.
absl::StatusOr<std::string> StopWithSavepointAfter(const JobGraph& graph,
                                                   const std::string& savepoint_dir,
                                                   int checkpoints);

/// Waits until `condition` holds, checking every 10 ms, for at most `timeout_ms`; returns
/// whether it held.
bool WaitFor(const std::function<bool()>& condition, int timeout_ms);

}  // namespace sluice::testing
