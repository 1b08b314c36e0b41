#pragma once

#include <string>
#include <vector>

namespace sluice::cli {

extern const char kSavepointToolsUsage[];

/// `sluice savepoint inspect PATH [--json] [--top=N]`: what a savepoint or retained checkpoint
/// holds, per operator and state, read from its files alone.
int InspectSavepoint(const std::vector<std::string>& args);

}  // namespace sluice::cli
