#pragma once

#include <algorithm>
#include <optional>

#include "absl/time/time.h"
#include "sluice/graph/stream_graph.h"

namespace sluice {

/// Whether a failed job runs again, and after how long: a fixed delay, at most `attempts`
/// restarts (--restart-attempts, --restart-delay). The one decision for the mini-cluster and
/// the JobManager's job masters. Not thread-safe.
class RestartStrategy {
 public:
  RestartStrategy(int attempts, absl::Duration delay) : attempts_(attempts), delay_(delay) {}
  /// The job's configured strategy; the chaos option raises its attempts to at least its
  /// number of simulated crashes.
  static RestartStrategy Of(const JobConfig& config) {
    int attempts = config.restart_attempts;
    if (config.chaos_enabled()) attempts = std::max(attempts, config.chaos_max_failures);
    return RestartStrategy(attempts, config.restart_delay);
  }

  /// The job failed: the delay before it restarts, or nothing when no attempt is left.
  std::optional<absl::Duration> OnFailure() {
    if (restarts_ >= attempts_) return std::nullopt;
    ++restarts_;
    return delay_;
  }
  int restarts() const { return restarts_; }
  int attempts() const { return attempts_; }

 private:
  const int attempts_;
  const absl::Duration delay_;
  int restarts_ = 0;
};

}  // namespace sluice
