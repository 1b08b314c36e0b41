// window_bench [--events=N] [--keys=K] [--checkpoint-interval=DUR] [--state-backend=heap|rocksdb]
//
// The windowed job against the raw loop computing the same windows:
//   raw     xorshift key per event, event time = index / 1000 ms, 1-second tumbling windows:
//           per key (count, sum) of its current window, emitted when the key's window
//           changes and at the end
//   engine  Generator -> timestamps/watermarks (monotonous) -> KeyBy -> 1 s tumbling
//           event-time window with an aggregate (count, sum) -> discarding sink, on the
//           mini-cluster at parallelism 1 and 2
// Prints events/s and engine/raw. (WindFlow reaches ~15M events/s on this job here.)

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "bench_util.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/sluice.h"
#include "window_job.h"

ABSL_FLAG(int64_t, events, 100'000'000, "events per run");
ABSL_FLAG(int64_t, keys, 10'000, "distinct keys");
ABSL_FLAG(std::string, state_backend, "heap",
          "keyed state backend of the engine runs: heap or rocksdb");
ABSL_FLAG(absl::Duration, checkpoint_interval, absl::ZeroDuration(),
          "also run the engine with exactly-once checkpoints at this interval (e.g. 1s)");

namespace {

using sluice::bench::Event;
using sluice::bench::KeyOf;

double RawLoop(int64_t events, int64_t keys, int64_t* firings) {
  struct Current {
    int64_t window = -1;
    int64_t count = 0;
    int64_t sum = 0;
  };
  std::vector<Current> current(keys);
  int64_t fired = 0, checksum = 0;
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < events; ++i) {
    const int64_t key = KeyOf(i, keys);
    const int64_t ts = i / 1000;
    const int64_t window = ts - ts % 1000;
    Current& c = current[key];
    if (c.window != window) {
      if (c.count > 0) {
        ++fired;
        checksum += c.sum;
      }
      c = {window, 0, 0};
    }
    c.count++;
    c.sum += i & 0xff;
  }
  for (const Current& c : current) {
    if (c.count > 0) {
      ++fired;
      checksum += c.sum;
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  *firings = fired + (checksum == -1 ? 1 : 0);  // keep the checksum alive
  return seconds;
}

sluice::JobResult EngineRun(int64_t events, int64_t keys, int parallelism,
                            absl::Duration checkpoint_interval = absl::ZeroDuration(),
                            const std::string& checkpoint_dir = "") {
  sluice::Pipeline p("window-bench");
  p.SetParallelism(parallelism);
  if (absl::GetFlag(FLAGS_state_backend) == "rocksdb") {
    p.mutable_config().state_backend = sluice::StateBackendKind::kRocksDb;
  }
  if (checkpoint_interval > absl::ZeroDuration()) {
    p.EnableCheckpointing(checkpoint_interval);
    p.SetCheckpointDir(checkpoint_dir);
  }
  sluice::bench::BuildWindowJob(p, events, keys);
  return sluice::bench::Run(p);
}

}  // namespace

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t keys = absl::GetFlag(FLAGS_keys);
  std::printf("1 s tumbling event-time windows, count+sum: %lld events, %lld keys, %s state\n",
              static_cast<long long>(events), static_cast<long long>(keys),
              absl::GetFlag(FLAGS_state_backend).c_str());
  int64_t firings = 0;
  const double raw = RawLoop(events, keys, &firings);
  const double raw_rate = events / raw;
  std::printf("%-22s %8.1f M events/s  (%lld window firings)\n", "raw C++ loop", raw_rate / 1e6,
              static_cast<long long>(firings));
  const absl::Duration interval = absl::GetFlag(FLAGS_checkpoint_interval);
  char checkpoint_dir[] = "/tmp/window-bench-XXXXXX";
  if (interval > absl::ZeroDuration() && ::mkdtemp(checkpoint_dir) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  for (int parallelism : {1, 2}) {
    const double seconds = absl::ToDoubleSeconds(EngineRun(events, keys, parallelism).duration);
    sluice::bench::Report("engine parallelism " + std::to_string(parallelism), events, seconds,
                          raw_rate);
    if (interval > absl::ZeroDuration()) {
      const sluice::JobResult r = EngineRun(events, keys, parallelism, interval, checkpoint_dir);
      const double with = absl::ToDoubleSeconds(r.duration);
      std::printf("%-22s %8.1f M events/s  with checkpoints every %s: %.1f%% of the run without\n",
                  ("  checkpointed p=" + std::to_string(parallelism)).c_str(), events / with / 1e6,
                  absl::FormatDuration(interval).c_str(), 100.0 * seconds / with);
      sluice::bench::ReportCheckpoints(r);
    }
  }
  if (interval > absl::ZeroDuration()) std::filesystem::remove_all(checkpoint_dir);
  return 0;
}
