// large_state_bench [--keys=N] [--payload=BYTES] [--events=N] [--checkpoint-interval=DUR]
//                   [--state-backend=rocksdb|heap]
//
// Keyed state far larger than a cache: every event writes a payload into the ValueState of
// its key (keys = event index modulo --keys, so state grows to keys x payload bytes). Runs the
// job at parallelism 1 without checkpoints, then with exactly-once checkpoints stored to a
// temporary directory, and prints the throughput ratio, the checkpoints' phases and the final
// state size.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "bench_util.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/sluice.h"

ABSL_FLAG(int64_t, keys, 10'000'000, "distinct keys (state entries)");
ABSL_FLAG(int64_t, payload, 100, "bytes of state per key");
ABSL_FLAG(int64_t, events, 12'000'000, "events per run");
ABSL_FLAG(absl::Duration, checkpoint_interval, absl::Seconds(1), "checkpoint interval");
ABSL_FLAG(std::string, state_backend, "rocksdb", "heap or rocksdb");

namespace {

using Event = std::pair<int64_t, int64_t>;  // key, index

class KeepPayload final : public sluice::KeyedProcessFunction<int64_t, Event, int64_t> {
 public:
  explicit KeepPayload(size_t bytes) : bytes_(bytes) {}
  void Open(sluice::KeyedRuntimeContext<int64_t>& ctx) override {
    state_ = &ctx.GetState(sluice::ValueStateDescriptor<std::string>("payload"));
  }
  void ProcessElement(const Event& e, Context&, sluice::Collector<int64_t>&) override {
    std::string payload(bytes_, static_cast<char>('a' + e.second % 26));
    state_->Update(std::move(payload));
  }

 private:
  size_t bytes_;
  sluice::ValueState<std::string>* state_ = nullptr;
};

sluice::JobResult Run(int64_t events, int64_t keys, int64_t payload, bool rocksdb,
                      absl::Duration interval, const std::string& dir) {
  sluice::Pipeline p("large-state-bench");
  if (rocksdb) p.mutable_config().state_backend = sluice::StateBackendKind::kRocksDb;
  p.mutable_config().local_state_dir = dir + "/local";
  if (interval > absl::ZeroDuration()) {
    p.EnableCheckpointing(interval);
    p.SetCheckpointDir(dir + "/checkpoints");
  }
  p.Source(sluice::Generator(
               [keys](uint64_t i) {
                 return Event{static_cast<int64_t>(i % static_cast<uint64_t>(keys)),
                              static_cast<int64_t>(i)};
               },
               {.count = static_cast<uint64_t>(events)}),
           "Generator")
      .KeyBy(&Event::first)
      .Process(KeepPayload(static_cast<size_t>(payload)), "KeepPayload")
      .Sink(sluice::DiscardingSink<int64_t>{}, "Discard");
  return sluice::bench::Run(p);
}

}  // namespace

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  const int64_t keys = absl::GetFlag(FLAGS_keys);
  const int64_t payload = absl::GetFlag(FLAGS_payload);
  const int64_t events = absl::GetFlag(FLAGS_events);
  const bool rocksdb = absl::GetFlag(FLAGS_state_backend) == "rocksdb";
  char dir[] = "/var/tmp/large-state-bench-XXXXXX";
  if (::mkdtemp(dir) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  std::printf("%lld events into %lld keys x %lld bytes, %s state, parallelism 1\n",
              static_cast<long long>(events), static_cast<long long>(keys),
              static_cast<long long>(payload), rocksdb ? "rocksdb" : "heap");
  const sluice::JobResult plain = Run(events, keys, payload, rocksdb, absl::ZeroDuration(), dir);
  const double without = absl::ToDoubleSeconds(plain.duration);
  sluice::bench::Report("without checkpoints", events, without);
  const absl::Duration interval = absl::GetFlag(FLAGS_checkpoint_interval);
  const sluice::JobResult r = Run(events, keys, payload, rocksdb, interval, dir);
  const double with = absl::ToDoubleSeconds(r.duration);
  std::printf("%-22s %8.1f M events/s  with checkpoints every %s: %.1f%% of the run without\n",
              "checkpointed", events / with / 1e6, absl::FormatDuration(interval).c_str(),
              100.0 * without / with);
  sluice::bench::ReportCheckpoints(r);
  int64_t state_bytes = 0, entries = 0;
  for (const auto& t : r.tasks) {
    state_bytes += t.state_bytes;
    entries += t.state_entries;
  }
  std::printf("%-22s %lld entries, %.2f GiB serialized\n", "final keyed state",
              static_cast<long long>(entries), state_bytes / double(1 << 30));
  std::filesystem::remove_all(dir);
  return 0;
}
