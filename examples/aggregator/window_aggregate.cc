#include "window_aggregate.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "sluice/core/stable_hash.h"

namespace aggregator {

void HyperLogLog::Add(std::string_view user, std::string* registers) {
  if (registers->empty()) registers->assign(kRegisters, '\0');
  // The engine's key hash: the same in every process and run, its top bits well mixed.
  const uint64_t h = sluice::StableHash(user);
  const size_t index = h >> (64 - kPrecision);
  const uint64_t rest = h << kPrecision;
  const int rank = rest == 0 ? 64 - kPrecision + 1 : std::countl_zero(rest) + 1;
  char& r = (*registers)[index];
  r = static_cast<char>(std::max<int>(r, rank));
}

void HyperLogLog::Merge(const std::string& other, std::string* registers) {
  if (other.empty()) return;
  if (registers->empty()) {
    *registers = other;
    return;
  }
  for (size_t i = 0; i < kRegisters; ++i) {
    (*registers)[i] = std::max((*registers)[i], other[i]);
  }
}

int64_t HyperLogLog::Estimate(const std::string& registers) {
  if (registers.empty()) return 0;
  const double m = static_cast<double>(kRegisters);
  double sum = 0;
  int zeros = 0;
  for (char r : registers) {
    sum += std::ldexp(1.0, -r);
    zeros += r == 0;
  }
  const double alpha = 0.7213 / (1 + 1.079 / m);
  const double estimate = alpha * m * m / sum;
  if (estimate <= 2.5 * m && zeros > 0) {
    return std::llround(m * std::log(m / zeros));  // linear counting: small cardinalities
  }
  return std::llround(estimate);
}

void WindowAccumulator::Add(const Feedback& e, UniqueUsers mode) {
  if (mode == UniqueUsers::kExact) {
    users.insert(e.user_id);
  } else {
    HyperLogLog::Add(e.user_id, &user_registers);
  }
  ++events;
  bytes_p2p += e.bytes_p2p;
  bytes_cdn += e.bytes_cdn;
  ++rebuffer_ms[e.rebuffer_ms];
}

void WindowAccumulator::Merge(const WindowAccumulator& other) {
  users.insert(other.users.begin(), other.users.end());
  HyperLogLog::Merge(other.user_registers, &user_registers);
  events += other.events;
  bytes_p2p += other.bytes_p2p;
  bytes_cdn += other.bytes_cdn;
  for (const auto& [value, count] : other.rebuffer_ms) rebuffer_ms[value] += count;
}

int64_t NearestRankPercentile(const std::map<int64_t, int64_t>& histogram, double p) {
  int64_t n = 0;
  for (const auto& [value, count] : histogram) n += count;
  if (n == 0) return 0;
  const int64_t rank = static_cast<int64_t>(std::ceil(p * static_cast<double>(n)));
  int64_t seen = 0;
  for (const auto& [value, count] : histogram) {
    seen += count;
    if (seen >= rank) return value;
  }
  return histogram.rbegin()->first;
}

WindowSummary Summarize(const WindowAccumulator& acc) {
  WindowSummary s;
  s.unique_users = acc.user_registers.empty() ? static_cast<int64_t>(acc.users.size())
                                              : HyperLogLog::Estimate(acc.user_registers);
  s.events = acc.events;
  s.bytes_p2p = acc.bytes_p2p;
  s.bytes_cdn = acc.bytes_cdn;
  const int64_t total = acc.bytes_p2p + acc.bytes_cdn;
  s.offload_ratio = total == 0 ? 0 : static_cast<double>(acc.bytes_p2p) / total;
  s.rebuffer_p50_ms = NearestRankPercentile(acc.rebuffer_ms, 0.5);
  s.rebuffer_p95_ms = NearestRankPercentile(acc.rebuffer_ms, 0.95);
  return s;
}

}  // namespace aggregator
