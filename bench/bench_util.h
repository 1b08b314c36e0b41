#pragma once

// What the whole-job benchmarks share: the event keys and the report lines.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "sluice/api/pipeline.h"

namespace sluice::bench {

/// The key of event i: an xorshift of the index, the same for the raw loop and the engine.
inline int64_t KeyOf(uint64_t i, int64_t keys) {
  uint64_t x = i * 0x9e3779b97f4a7c15ULL + 1;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return static_cast<int64_t>(x % static_cast<uint64_t>(keys));
}

/// Runs a pipeline on the mini-cluster and returns its wall time in seconds (exits on failure).
inline double RunSeconds(const Pipeline& p) {
  auto result = ExecuteLocally(p);
  if (!result.ok()) {
    std::fprintf(stderr, "engine run failed: %s\n", std::string(result.status().message()).c_str());
    std::exit(1);
  }
  return absl::ToDoubleSeconds(result->duration);
}

/// Prints one result line: events/s and, if given, the ratio to the raw loop.
inline void Report(const std::string& what, int64_t events, double seconds, double raw_rate = 0) {
  const double rate = static_cast<double>(events) / seconds;
  if (raw_rate > 0) {
    std::printf("%-22s %8.1f M events/s  engine/raw = %.3f\n", what.c_str(), rate / 1e6,
                rate / raw_rate);
  } else {
    std::printf("%-22s %8.1f M events/s\n", what.c_str(), rate / 1e6);
  }
}

}  // namespace sluice::bench
