#include "sluice/testing/local_cluster.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice::testing {

namespace {
std::string BinDirOr(const std::string& bin_dir) {
  return bin_dir.empty() ? BuildDir() + "/bin" : bin_dir;
}

/// Waits (10 s at most) for the log at `path` to say `marker`; returns the rest of that line,
/// empty if it never did.
std::string WaitForLineAfter(const std::string& path, const std::string& marker) {
  std::string rest;
  WaitFor(
      [&] {
        const std::string log = ReadFile(path);
        const size_t at = log.find(marker);
        if (at == std::string::npos) return false;
        rest = log.substr(at + marker.size());
        rest = rest.substr(0, rest.find('\n'));
        return true;
      },
      10000);
  return rest;
}
}  // namespace

JobManagerProcess::JobManagerProcess(std::vector<std::string> extra_args, int port,
                                     const std::string& bin_dir,
                                     std::vector<std::string> launcher) {
  blob_dir_ = dir_.Join("blobs");
  log_path_ = dir_.Join("jobmanager.log");
  std::vector<std::string> argv = {BinDirOr(bin_dir) + "/sluice-jobmanager",
                                   absl::StrCat("--port=", port),
                                   absl::StrCat("--blob-dir=", blob_dir_)};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  argv.insert(argv.begin(), launcher.begin(), launcher.end());
  process_ = std::make_unique<ChildProcess>(argv, log_path_);
  const std::string line = WaitForLineAfter(log_path_, "sluice-jobmanager listening on ");
  EXPECT_FALSE(line.empty()) << "the JobManager did not start:\n" << ReadFile(log_path_);
  address_ = line;
  if (!absl::SimpleAtoi(line.substr(line.rfind(':') + 1), &port_)) port_ = 0;
  constexpr char kRest[] = "sluice-jobmanager REST API on ";
  const std::string log = ReadFile(log_path_);
  if (const size_t at = log.find(kRest); at != std::string::npos) {
    rest_url_ = log.substr(at + sizeof(kRest) - 1);
    rest_url_ = rest_url_.substr(0, rest_url_.find('\n'));
  }
}

TaskManagerProcess::TaskManagerProcess(const std::string& jobmanager, int slots,
                                       const std::string& id, std::vector<std::string> extra_args,
                                       const std::string& bin_dir,
                                       std::vector<std::string> launcher) {
  cache_dir_ = dir_.Join("cache");
  local_state_dir_ = dir_.Join("local-state");
  log_path_ = dir_.Join("taskmanager.log");
  std::vector<std::string> argv = {BinDirOr(bin_dir) + "/sluice-taskmanager",
                                   absl::StrCat("--jobmanager=", jobmanager),
                                   absl::StrCat("--slots=", slots),
                                   absl::StrCat("--id=", id),
                                   absl::StrCat("--cache-dir=", cache_dir_),
                                   absl::StrCat("--local-state-dir=", local_state_dir_)};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  argv.insert(argv.begin(), launcher.begin(), launcher.end());
  process_ = std::make_unique<ChildProcess>(argv, log_path_);
}

std::string TaskManagerProcess::metrics_url() const {
  const std::string url = WaitForLineAfter(log_path_, "metrics on ");
  return url.substr(0, url.find("/metrics"));
}

CommandResult Sluice(const std::string& args) {
  return RunCommand(absl::StrCat(BuildDir(), "/bin/sluice ", args));
}

}  // namespace sluice::testing
