#pragma once

#include <string>
#include <vector>

namespace sluice::cli {

extern const char kUpgradeUsage[];

/// `sluice upgrade [--jobmanager=HOST:PORT] JOB_ID NEW_JOB.so [--parallelism=N] [-- ARGS]`:
/// check, stop with a savepoint, start the new binary from it, roll back if it does not run.
/// Prints each step; exit 0 only when the new job runs.
int UpgradeJob(const std::vector<std::string>& args);

}  // namespace sluice::cli
