#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

/// Every program's flags are written with dashes (`--checkpoint-interval`); the underscore
/// spelling (`--checkpoint_interval`) stays an alias so that old scripts keep working. Only a
/// flag's name changes, never its value; arguments that are not `--name[=value]` and
/// everything after a bare `--` are left as they are.

/// `--name_with_parts=v` -> `--name-with-parts=v` (the CLI and jobs spell flags with dashes).
std::string DashedFlag(std::string_view arg);

/// The command line of a program whose flags are Abseil flags (declared with underscores:
/// ABSL_FLAG(heartbeat_interval)), with every name spelled that way. `--flagfile=F[,G]` is
/// expanded here (one flag per line, `#` comments), so flag files may use dashes too; a flag
/// file that cannot be read is an error naming it.
absl::StatusOr<std::vector<std::string>> AbseilSpelledCommandLine(int argc, char** argv);

}  // namespace sluice
