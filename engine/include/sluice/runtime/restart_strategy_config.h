#pragma once

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "sluice/core/backoff.h"

namespace sluice {

class JobArgs;

/// How a failed job runs again (Flink's restart strategies):
/// - none: it fails at its first failure.
/// - fixed-delay: at most `attempts` restarts, each after `delay`.
/// - exponential-delay: after `backoff.initial`, each delay `backoff.multiplier` times the one
///   before up to `backoff.max`, jittered by `backoff.jitter`; a run that lasted `reset_after`
///   without failing starts the sequence (and the count of attempts) anew; gives up after
///   `attempts` restarts in one sequence (unlimited by default, as Flink).
/// - failure-rate: restarts after `delay` unless this is failure number `max_failures` + 1
///   within `failure_interval`.
enum class RestartStrategyKind { kNone, kFixedDelay, kExponentialDelay, kFailureRate };

struct RestartStrategyConfig {
  static constexpr int kUnlimited = std::numeric_limits<int>::max();

  RestartStrategyKind kind = RestartStrategyKind::kNone;
  int attempts = kUnlimited;                       // fixed-delay, exponential-delay
  absl::Duration delay = absl::Milliseconds(100);  // fixed-delay, failure-rate
  // exponential-delay. A dead TaskManager's work should run again within a second, so the
  // first delay is short; Flink's are 1 s initial, 1 min max, x1.5, jitter 0.1, reset 1 h.
  BackoffPolicy backoff{.initial = absl::Milliseconds(100),
                        .max = absl::Seconds(30),
                        .multiplier = 2.0,
                        .jitter = 0.1};
  absl::Duration reset_after = absl::Minutes(10);
  int max_failures = 3;  // failure-rate
  absl::Duration failure_interval = absl::Minutes(1);

  static RestartStrategyConfig None() { return {}; }
  static RestartStrategyConfig FixedDelay(int attempts, absl::Duration delay);
  static RestartStrategyConfig ExponentialDelay(BackoffPolicy backoff,
                                                absl::Duration reset_after = absl::Minutes(10),
                                                int attempts = kUnlimited);
  static RestartStrategyConfig FailureRate(int max_failures, absl::Duration interval,
                                           absl::Duration delay);

  /// The strategy and its parameters as the flags that set them, for logs and messages:
  /// "exponential-delay (--restart-initial-delay=100ms --restart-max-delay=30s ...)".
  std::string ToString() const;
  bool operator==(const RestartStrategyConfig&) const = default;
};

const char* RestartStrategyKindName(RestartStrategyKind kind);

/// The restart strategy the arguments name (`--restart-strategy=none|fixed-delay|
/// exponential-delay|failure-rate` with its parameters `--restart-attempts`,
/// `--restart-delay`, `--restart-initial-delay`, `--restart-max-delay`,
/// `--restart-multiplier`, `--restart-jitter`, `--restart-reset-after`,
/// `--restart-max-failures`, `--restart-failure-interval`), or nothing when they name none.
/// `--restart-attempts` (and `--restart-delay`) without a strategy mean fixed-delay, as
/// before strategies had names. A parameter of another strategy than the one named, or one
/// without a strategy, is an error naming both. Throws JobArgumentError.
std::optional<RestartStrategyConfig> ReadRestartStrategy(const JobArgs& args);

/// Every flag ReadRestartStrategy reads (without the dashes), for programs that take them
/// as their own flags.
const std::vector<std::string>& RestartStrategyFlagNames();

}  // namespace sluice
