// The logging flags, apart from daemon_logging.cc: glog declares a FLAGS_log_dir of its own,
// which these cannot sit beside in one file.
#include "daemon_logging_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, log_dir, "",
          "write the log into files in this directory (rotated; WARNING and above also on "
          "stderr); empty: stderr only");
ABSL_FLAG(int, log_max_size_mb, 100, "with --log-dir: a log file is rotated at this size (MB)");
ABSL_FLAG(int, log_retention_days, 7, "with --log-dir: log files older than this are deleted");
ABSL_FLAG(std::string, log_level, "info", "the least severity logged: info, warning or error");

namespace sluice::cluster {

DaemonLoggingFlags ReadDaemonLoggingFlags() {
  return {absl::GetFlag(FLAGS_log_dir), absl::GetFlag(FLAGS_log_max_size_mb),
          absl::GetFlag(FLAGS_log_retention_days), absl::GetFlag(FLAGS_log_level)};
}

}  // namespace sluice::cluster
