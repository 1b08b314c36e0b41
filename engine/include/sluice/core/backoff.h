#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace sluice {

/// How retries space out: `initial`, then each delay `multiplier` times the one before, never
/// above `max`, each multiplied by a random factor in [1 - jitter, 1 + jitter] (and capped at
/// `max` again), so that many clients that failed together do not retry together.
struct BackoffPolicy {
  absl::Duration initial = absl::Milliseconds(100);
  absl::Duration max = absl::Seconds(30);
  double multiplier = 2.0;
  double jitter = 0.0;  // 0..1
  bool operator==(const BackoffPolicy&) const = default;
};

/// The delays of one sequence of retries (not thread-safe): the one backoff of the InfluxDB
/// sender, TaskManager registration and the restart strategies.
class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy, uint64_t seed = std::random_device{}())
      : policy_(policy), random_(seed) {}

  /// The delay before the next retry; the one after it grows.
  absl::Duration Next() {
    absl::Duration d = std::min(
        policy_.initial * std::pow(policy_.multiplier, std::min(retries_, 62)), policy_.max);
    ++retries_;
    if (policy_.jitter > 0) {
      std::uniform_real_distribution<double> factor(1 - policy_.jitter, 1 + policy_.jitter);
      d = std::min(d * factor(random_), policy_.max);
    }
    return d;
  }
  /// The next delay is `initial` again (the operation succeeded, or was stable long enough).
  void Reset() { retries_ = 0; }
  int retries() const { return retries_; }

 private:
  const BackoffPolicy policy_;
  std::mt19937_64 random_;
  int retries_ = 0;
};

}  // namespace sluice
