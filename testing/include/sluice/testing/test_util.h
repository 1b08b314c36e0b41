#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

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
/// The concatenated committed part files (names not starting with '.' or '_') of a
/// directory, split into lines.
std::vector<std::string> ReadPartFileLines(const std::string& directory);

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int PickFreePort();

/// The directory holding this build's binaries (bin/, examples/, tests/).
std::string BuildDir();

/// The result of a shell command: its exit code and what it printed (stdout and stderr).
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
/// Runs `command` with /bin/sh and waits for it.
CommandResult RunCommand(const std::string& command);

}  // namespace sluice::testing
