#pragma once

#include <string>

namespace sluice::cluster {

/// --log-dir, --log-max-size-mb, --log-retention-days, --log-level as parsed.
struct DaemonLoggingFlags {
  std::string dir;
  int max_size_mb = 100;
  int retention_days = 7;
  std::string level;
};

DaemonLoggingFlags ReadDaemonLoggingFlags();

}  // namespace sluice::cluster
