#pragma once

#include <string>
#include <vector>

namespace sluice::cli {

extern const char kClusterUsage[];

/// `sluice status --jobmanager=HOST:PORT`: TaskManagers, slots and the blob store. Returns
/// the exit code (1: the JobManager could not be asked).
int ClusterStatus(const std::vector<std::string>& args);

}  // namespace sluice::cli
