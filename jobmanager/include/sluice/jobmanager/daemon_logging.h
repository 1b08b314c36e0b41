#pragma once

#include "absl/status/status.h"

namespace sluice::cluster {

/// Sets up glog for a daemon from its flags (after they are parsed, before anything logs):
/// `--log-dir` (files there, rotated at `--log-max-size-mb`, deleted after
/// `--log-retention-days`; WARNING and above also on stderr) or stderr alone, and the least
/// severity logged (`--log-level`: info, warning, error). Fails naming a directory it cannot
/// make or a level it does not know.
absl::Status InitDaemonLogging(const char* argv0);

}  // namespace sluice::cluster
