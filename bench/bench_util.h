#pragma once

// What the whole-job benchmarks share: the event keys and the report lines.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

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

/// Runs a pipeline on the mini-cluster and returns its result (exits on failure).
inline JobResult Run(const Pipeline& p) {
  auto result = ExecuteLocally(p);
  if (!result.ok()) {
    std::fprintf(stderr, "engine run failed: %s\n", std::string(result.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(result);
}

/// Runs a pipeline on the mini-cluster and returns its wall time in seconds (exits on failure).
inline double RunSeconds(const Pipeline& p) { return absl::ToDoubleSeconds(Run(p).duration); }

/// The median of some measurements (the upper one of an even count).
inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// The q-quantile (0..1) of some durations, in milliseconds.
inline double QuantileMs(std::vector<absl::Duration> d, double q) {
  if (d.empty()) return 0;
  std::sort(d.begin(), d.end());
  const size_t i = std::min(d.size() - 1, static_cast<size_t>(q * static_cast<double>(d.size())));
  return absl::ToDoubleMilliseconds(d[i]);
}

/// Prints how the checkpoints of a run went: how many, and the synchronous phase (the
/// longest stall of any task thread, per checkpoint) and asynchronous phase durations.
inline void ReportCheckpoints(const JobResult& r) {
  std::vector<absl::Duration> sync, sync_cpu, async, total;
  int failed = 0;
  for (const CheckpointStats& c : r.checkpoints) {
    if (c.failed) {
      ++failed;
      continue;
    }
    sync.push_back(c.max_sync_duration);
    sync_cpu.push_back(c.max_sync_cpu);
    async.push_back(c.max_async_duration);
    total.push_back(c.duration);
  }
  std::printf(
      "%-22s %zu checkpoints (%d failed); sync phase wall p50 %.2f ms, p99 %.2f ms (CPU p50 "
      "%.2f ms, p99 %.2f ms); async p50 %.1f ms; trigger to complete p50 %.1f ms\n",
      "", sync.size(), failed, QuantileMs(sync, 0.5), QuantileMs(sync, 0.99),
      QuantileMs(sync_cpu, 0.5), QuantileMs(sync_cpu, 0.99), QuantileMs(async, 0.5),
      QuantileMs(total, 0.5));
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
