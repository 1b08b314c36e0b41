#pragma once

// What the aggregator computes per key and window, apart from the engine: the job's
// AggregateFunction wraps it, and bench/aggregator_bench's raw loop uses it directly.

#include <cstdint>
#include <map>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "feedback.h"
#include "sluice/sluice.h"

namespace aggregator {

/// How unique users are counted (--unique-users).
enum class UniqueUsers {
  kExact,        // every user id of the window kept: exact, memory grows with the users
  kHyperLogLog,  // HyperLogLog with 2^14 one-byte registers (16 KiB per key and window):
                 // standard error 1.04/sqrt(2^14) = 0.81%, so 99.7% of the counts are within
                 // 2.4% of the truth, whatever the number of users
};

/// HyperLogLog (Flajolet et al. 2007) with the small-range correction (linear counting),
/// over a hash of the user id that is the same in every process and run.
class HyperLogLog {
 public:
  static constexpr int kPrecision = 14;
  static constexpr size_t kRegisters = size_t{1} << kPrecision;

  /// Adds a user to `registers` (empty: none added yet).
  static void Add(std::string_view user, std::string* registers);
  /// Merges `other` into `registers`.
  static void Merge(const std::string& other, std::string* registers);
  static int64_t Estimate(const std::string& registers);
};

/// One key's window so far.
struct WindowAccumulator {
  absl::flat_hash_set<std::string> users;  // kExact
  std::string user_registers;              // kHyperLogLog
  int64_t events = 0;
  int64_t bytes_p2p = 0;
  int64_t bytes_cdn = 0;
  std::map<int64_t, int64_t> rebuffer_ms;  // value -> events with it: exact percentiles

  void Add(const Feedback& e, UniqueUsers mode);
  void Merge(const WindowAccumulator& other);
};
SLUICE_SERIALIZABLE(WindowAccumulator, users, user_registers, events, bytes_p2p, bytes_cdn,
                    rebuffer_ms)

/// A finished window of one key: the point written to InfluxDB.
struct WindowSummary {
  std::string key;
  int64_t window_end_ms = 0;
  int64_t unique_users = 0;
  int64_t events = 0;
  int64_t bytes_p2p = 0;
  int64_t bytes_cdn = 0;
  double offload_ratio = 0;  // p2p / (p2p + cdn); 0 when nothing was received
  int64_t rebuffer_p50_ms = 0;
  int64_t rebuffer_p95_ms = 0;
};
SLUICE_SERIALIZABLE(WindowSummary, key, window_end_ms, unique_users, events, bytes_p2p, bytes_cdn,
                    offload_ratio, rebuffer_p50_ms, rebuffer_p95_ms)

/// The summary of `acc` (its key and window end left for the caller).
WindowSummary Summarize(const WindowAccumulator& acc);

/// The nearest-rank percentile `p` (0 < p <= 1) of the values counted in `histogram`: the
/// smallest value with at least ceil(p * n) of the n values at or below it; 0 when empty.
int64_t NearestRankPercentile(const std::map<int64_t, int64_t>& histogram, double p);

}  // namespace aggregator
