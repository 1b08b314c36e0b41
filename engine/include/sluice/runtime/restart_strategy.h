#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <random>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "sluice/core/backoff.h"
#include "sluice/graph/stream_graph.h"
#include "sluice/runtime/restart_strategy_config.h"

namespace sluice {

/// Whether a failed job runs again, and after how long (the kinds in
/// restart_strategy_config.h), with the history of its failures for the message it fails
/// with when the strategy gives up. The one decision for the mini-cluster and the
/// JobManager's job masters. Not thread-safe.
class RestartStrategy {
 public:
  using Clock = std::function<absl::Time()>;
  struct Failure {
    absl::Time at;
    std::string why;
    std::string where;  // the TaskManager it happened on (empty: not one TaskManager's)
  };
  /// Failures kept for the history (the newest).
  static constexpr size_t kHistory = 20;

  explicit RestartStrategy(RestartStrategyConfig config, Clock now = &absl::Now,
                           uint64_t seed = std::random_device{}());

  /// The strategy a job runs with: the one it names, else `cluster_default`, else
  /// exponential-delay for a checkpointed job (as Flink since 1.19) and none for others. The
  /// chaos option raises attempts (or failures per interval) to at least its number of
  /// simulated crashes; a chaos job that names no strategy restarts with a fixed delay, so
  /// its restarts do not wait longer and longer.
  static RestartStrategyConfig ConfigOf(
      const JobConfig& config, const std::optional<RestartStrategyConfig>& cluster_default = {});
  static RestartStrategy Of(const JobConfig& config,
                            const std::optional<RestartStrategyConfig>& cluster_default = {},
                            Clock now = &absl::Now) {
    return RestartStrategy(ConfigOf(config, cluster_default), std::move(now));
  }

  /// The job failed (now, because of `why`, on TaskManager `where` if one): the delay before
  /// it runs again, or nothing when the strategy gives up.
  std::optional<absl::Duration> OnFailure(std::string why, std::string where = "");

  /// Restarts granted so far.
  int restarts() const { return restarts_; }
  const RestartStrategyConfig& config() const { return config_; }
  /// The newest failures (at most kHistory), oldest first.
  const std::deque<Failure>& failures() const { return failures_; }
  /// Why the job ends: "restart strategy STRATEGY gave up after N restarts; failures,
  /// oldest first: 1. TIME: WHY; 2. ...".
  std::string GaveUpMessage() const;
  /// What the job fails with once OnFailure(why) gave up: `why`, followed by GaveUpMessage()
  /// unless the strategy never restarts.
  std::string FailureMessage(const std::string& why) const {
    if (config_.kind == RestartStrategyKind::kNone) return why;
    return why + " (" + GaveUpMessage() + ")";
  }

 private:
  const RestartStrategyConfig config_;
  const Clock now_;
  Backoff backoff_;
  int restarts_ = 0;
  int restarts_in_sequence_ = 0;                    // exponential-delay: since the last reset
  absl::Time restarted_at_ = absl::InfinitePast();  // when the last granted restart ran
  std::deque<absl::Time> recent_failures_;          // failure-rate: within the interval
  std::deque<Failure> failures_;
};

}  // namespace sluice
