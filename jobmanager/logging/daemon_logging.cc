#include "sluice/jobmanager/daemon_logging.h"

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "daemon_logging_flags.h"
#include "glog/logging.h"

namespace sluice::cluster {

absl::Status InitDaemonLogging(const char* argv0) {
  const DaemonLoggingFlags flags = ReadDaemonLoggingFlags();
  const std::string& level = flags.level;
  if (level == "info") {
    FLAGS_minloglevel = google::GLOG_INFO;
  } else if (level == "warning") {
    FLAGS_minloglevel = google::GLOG_WARNING;
  } else if (level == "error") {
    FLAGS_minloglevel = google::GLOG_ERROR;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-level must be info, warning or error (got '", level, "')"));
  }
  const std::string& dir = flags.dir;
  if (dir.empty()) {
    FLAGS_logtostderr = true;
    google::InitGoogleLogging(argv0);
    return absl::OkStatus();
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("--log-dir '", dir, "' cannot be created: ", ec.message()));
  }
  if (flags.max_size_mb < 1 || flags.retention_days < 1) {
    return absl::InvalidArgumentError(
        "--log-max-size-mb and --log-retention-days must be at least 1");
  }
  FLAGS_logtostderr = false;
  FLAGS_log_dir = dir;
  FLAGS_max_log_size = static_cast<uint32_t>(flags.max_size_mb);
  FLAGS_stderrthreshold = google::GLOG_WARNING;
  // Every line written at once: a daemon does not log per record, and a SIGKILLed one must
  // not take its last lines with it.
  FLAGS_logbuflevel = -1;
  google::InitGoogleLogging(argv0);
  google::EnableLogCleaner(static_cast<unsigned>(flags.retention_days));
  return absl::OkStatus();
}

}  // namespace sluice::cluster
