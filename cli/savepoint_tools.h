#pragma once

#include <string>
#include <vector>

namespace sluice::cli {

extern const char kSavepointToolsUsage[];

/// `sluice savepoint inspect PATH [--json] [--top=N]`: what a savepoint or retained checkpoint
/// holds, per operator and state, read from its files alone.
int InspectSavepoint(const std::vector<std::string>& args);
/// `sluice savepoint rewrite PATH OUT --drop-state=UID/NAME | --drop-keys-older-than=DUR |
/// --with=REPAIR.so`: a new savepoint with state removed or repaired.
int RewriteSavepoint(const std::vector<std::string>& args);

}  // namespace sluice::cli
