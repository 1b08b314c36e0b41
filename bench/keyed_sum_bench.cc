// keyed_sum_bench [--events=N] [--keys=K]
//
// The per-record cost of the engine against the plain C++ loop it competes with:
//   raw     a single-threaded loop: xorshift key per event, sum per key in an array (and,
//           second baseline, in a hash map as keyed state keeps it)
//   engine  Generator -> KeyBy -> keyed Reduce (sum) -> discarding sink, on the
//           mini-cluster at parallelism 1 and 2
// Prints events/s for each and the engine/raw ratio. Ratios within one run are what to
// compare: the machine is shared and absolute numbers move by +-25%.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "bench_util.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/sluice.h"

ABSL_FLAG(int64_t, events, 100'000'000, "events per run");
ABSL_FLAG(int64_t, keys, 10'000, "distinct keys");

namespace {

using Event = std::pair<int64_t, int64_t>;  // key, value

/// The key of event i: an xorshift of the index, the same in both variants.
using sluice::bench::KeyOf;

double RawLoop(int64_t events, int64_t keys, int64_t* checksum) {
  std::vector<int64_t> sums(keys, 0);
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < events; ++i) sums[KeyOf(i, keys)] += i & 0xff;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t total = 0;
  for (int64_t s : sums) total += s;
  *checksum = total;
  return seconds;
}

/// The same loop with the per-key sums in a hash map, as the engine's keyed state keeps them.
double RawHashMapLoop(int64_t events, int64_t keys, int64_t* checksum) {
  absl::flat_hash_map<int64_t, int64_t> sums;
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < events; ++i) sums[KeyOf(i, keys)] += i & 0xff;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t total = 0;
  for (const auto& [k, s] : sums) total += s;
  *checksum = total;
  return seconds;
}

double EngineRun(int64_t events, int64_t keys, int parallelism) {
  sluice::Pipeline p("keyed-sum");
  p.SetParallelism(parallelism);
  p.Source(sluice::Generator(
               [keys](uint64_t i) {
                 return Event{KeyOf(i, keys), static_cast<int64_t>(i & 0xff)};
               },
               {.count = static_cast<uint64_t>(events)}),
           "Generator")
      .KeyBy(&Event::first)
      .Reduce(
          [](const Event& a, const Event& b) {
            return Event{a.first, a.second + b.second};
          },
          "Sum")
      .Sink(sluice::DiscardingSink<Event>{}, "Discard");
  return sluice::bench::RunSeconds(p);
}

}  // namespace

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t keys = absl::GetFlag(FLAGS_keys);
  std::printf("keyed sum: %lld events, %lld keys\n", static_cast<long long>(events),
              static_cast<long long>(keys));

  int64_t checksum = 0;
  const double raw = RawLoop(events, keys, &checksum);
  const double raw_rate = events / raw;
  std::printf("%-22s %8.1f M events/s  (checksum %lld)\n", "raw C++ loop", raw_rate / 1e6,
              static_cast<long long>(checksum));
  const double raw_map = RawHashMapLoop(events, keys, &checksum);
  std::printf("%-22s %8.1f M events/s  (checksum %lld)\n", "raw loop, hash map",
              events / raw_map / 1e6, static_cast<long long>(checksum));
  for (int parallelism : {1, 2}) {
    const double seconds = EngineRun(events, keys, parallelism);
    sluice::bench::Report("engine parallelism " + std::to_string(parallelism), events, seconds,
                          raw_rate);
  }
  return 0;
}
