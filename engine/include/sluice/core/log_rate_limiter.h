#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "sluice/core/mutex.h"

namespace sluice {

/// For errors that repeat while something outside is down (a Kafka broker, InfluxDB): lets
/// one line per key through each `interval` and counts the others, so an outage says what
/// happened and how often, without flooding the log. Any thread.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(absl::Duration interval) : interval_(interval) {}

  /// True if a line of `key` should be logged at `now`; then `*suppressed` is how many lines
  /// of that key were held back since the last one logged.
  bool Allow(const std::string& key, absl::Time now, int64_t* suppressed);

 private:
  struct Key {
    absl::Time last_logged = absl::InfinitePast();
    int64_t suppressed = 0;
  };
  static constexpr size_t kMaxKeys = 1000;  // keys are few (facilities, partitions)
  const absl::Duration interval_;
  Mutex mu_;
  std::map<std::string, Key> keys_ SLUICE_GUARDED_BY(mu_);
};

/// What a line let through adds about the ones held back before it: "" or
/// " (N similar lines held back)".
std::string SuppressedNote(int64_t suppressed);

}  // namespace sluice
