#pragma once

// Generated out-of-order input for the failure tests: the harness (chaos_harness_test) and
// the cluster's kill tests draw their `key,timestamp_ms,value` events here.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "window_reference.h"

namespace sluice::testing {

/// `lines` events: about 30 keys of skewed frequency (some with spaces or non-ASCII
/// letters), event time advancing 0-13 ms per line. With late records (windowed_stats): 80%
/// up to 150 ms out of order, 17% 150-900 ms, 3% 0.9-5 s late; without (timer_buckets): every
/// record at most `bound_ms` out of order.
inline std::vector<RefEvent> GenerateEvents(uint64_t seed, int lines, bool late_records,
                                            int64_t bound_ms) {
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  std::vector<std::string> keys;
  for (int i = 0; i < 26; ++i) keys.push_back(absl::StrCat("k", i));
  for (const char* k : {"sp ace", "ünï", "naïve key", "Ωmega", "ключ"}) keys.emplace_back(k);
  std::vector<double> weights;
  for (size_t i = 0; i < keys.size(); ++i) weights.push_back(1.0 / static_cast<double>(i + 1));
  std::discrete_distribution<size_t> key(weights.begin(), weights.end());
  std::vector<RefEvent> events;
  int64_t t = 1'000'000;
  for (int i = 0; i < lines; ++i) {
    t += static_cast<int64_t>(rng() % 14);
    const uint64_t r = rng() % 100;
    int64_t delay = r < 80   ? static_cast<int64_t>(rng() % 151)
                    : r < 97 ? 150 + static_cast<int64_t>(rng() % 751)
                             : 900 + static_cast<int64_t>(rng() % 4101);
    if (!late_records) delay %= bound_ms + 1;
    events.push_back({keys[key(rng)], t - delay, static_cast<int64_t>(rng() % 2001) - 1000});
  }
  return events;
}

/// The events as the `key,timestamp_ms,value` lines the test jobs read.
inline std::string EventLines(const std::vector<RefEvent>& events) {
  std::string text;
  for (const RefEvent& e : events) absl::StrAppend(&text, e.key, ",", e.ts, ",", e.value, "\n");
  return text;
}

}  // namespace sluice::testing
