// join_bench [--events=N] [--keys=K] [--state-backend=heap|rocksdb]
//
// Joins against a raw C++ hash join of the same inputs, in one run. Two streams of N events
// each (key = xorshift of the index over K keys, event time = index / 1000 ms, so both
// advance together):
//   raw interval  one pass over both streams in time order: per key a hash map of the
//                 other side's recent timestamps, pairs within [-5 ms, +5 ms], expired as
//                 time passes
//   raw window    per 10 ms window a hash map key -> left records; every right record
//                 pairs with its key's left records of its window
//   engine        Generator x2 -> timestamps -> KeyBy -> IntervalJoin(-5 ms, +5 ms) or
//                 Join().Window(10 ms tumbling) -> discarding sink, parallelism 1 and 2
// Prints events/s (both streams' events), per core, the pairs found and engine/raw.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/flags/flag.h"
#include "bench_util.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/sluice.h"

ABSL_FLAG(int64_t, events, 2'000'000, "events per stream");
ABSL_FLAG(int64_t, keys, 10'000, "distinct keys");
ABSL_FLAG(std::string, state_backend, "heap",
          "keyed state backend of the engine runs: heap or rocksdb");

namespace join_bench {

struct Rec {
  int64_t key = 0;
  int64_t ts = 0;
};
SLUICE_SERIALIZABLE(Rec, key, ts)

constexpr int64_t kLowerMs = -5;
constexpr int64_t kUpperMs = 5;
constexpr int64_t kWindowMs = 10;

Rec LeftOf(uint64_t i, int64_t keys) {
  return {sluice::bench::KeyOf(i, keys), static_cast<int64_t>(i / 1000)};
}
Rec RightOf(uint64_t i, int64_t keys) {
  return {sluice::bench::KeyOf(i + 0x5bd1e995, keys), static_cast<int64_t>(i / 1000)};
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Interval join of the two streams taken in time order (left first at equal times).
double RawInterval(int64_t events, int64_t keys, int64_t* pairs) {
  std::unordered_map<int64_t, std::deque<int64_t>> left, right;  // key -> recent timestamps
  int64_t found = 0;
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < events; ++i) {
    const Rec l = LeftOf(i, keys);
    auto& ls = left[l.key];
    ls.push_back(l.ts);
    // Rights at [ts + lower, ts + upper] seen so far (the rest pair when they come).
    auto& rs = right[l.key];
    while (!rs.empty() && rs.front() < l.ts + kLowerMs) rs.pop_front();
    for (int64_t rt : rs) found += rt <= l.ts + kUpperMs;
    const Rec r = RightOf(i, keys);
    auto& rs2 = right[r.key];
    rs2.push_back(r.ts);
    auto& ls2 = left[r.key];
    while (!ls2.empty() && ls2.front() < r.ts - kUpperMs) ls2.pop_front();
    for (int64_t lt : ls2) found += lt >= r.ts - kUpperMs && lt <= r.ts - kLowerMs;
  }
  *pairs = found;
  return Seconds(start);
}

/// Window join: per window a hash map key -> left count; each right pairs with them.
double RawWindow(int64_t events, int64_t keys, int64_t* pairs) {
  std::unordered_map<int64_t, std::vector<int64_t>> lefts;  // key -> left timestamps
  int64_t found = 0, window = -1;
  std::vector<Rec> rights;
  auto start = std::chrono::steady_clock::now();
  auto fire = [&] {
    for (const Rec& r : rights) {
      auto it = lefts.find(r.key);
      if (it != lefts.end()) found += static_cast<int64_t>(it->second.size());
    }
    lefts.clear();
    rights.clear();
  };
  for (int64_t i = 0; i < events; ++i) {
    const Rec l = LeftOf(i, keys);
    if (l.ts / kWindowMs != window) {
      fire();
      window = l.ts / kWindowMs;
    }
    lefts[l.key].push_back(l.ts);
    rights.push_back(RightOf(i, keys));
  }
  fire();
  *pairs = found;
  return Seconds(start);
}

sluice::DataStream<Rec> Stream(sluice::Pipeline& p, bool left, int64_t events, int64_t keys) {
  auto gen = [left, keys](uint64_t i) { return left ? LeftOf(i, keys) : RightOf(i, keys); };
  return p
      .Source(sluice::Generator(gen, {.count = static_cast<uint64_t>(events)}),
              left ? "left" : "right")
      .AssignTimestampsAndWatermarks(
          sluice::WatermarkStrategy<Rec>::ForMonotonousTimestamps().WithTimestampAssigner(
              &Rec::ts));
}

class CountPair final : public sluice::ProcessJoinFunction<Rec, Rec, int64_t> {
 public:
  void ProcessElement(const Rec& l, const Rec&, Context&,
                      sluice::Collector<int64_t>& out) override {
    out.Collect(l.key);
  }
};
struct JoinKey final : sluice::JoinFunction<Rec, Rec, int64_t> {
  int64_t Join(const Rec& l, const Rec&) override { return l.key; }
};

sluice::JobResult EngineRun(bool interval, int64_t events, int64_t keys, int parallelism) {
  sluice::Pipeline p(interval ? "interval-join-bench" : "window-join-bench");
  p.SetParallelism(parallelism);
  if (absl::GetFlag(FLAGS_state_backend) == "rocksdb") {
    p.mutable_config().state_backend = sluice::StateBackendKind::kRocksDb;
  }
  auto left = Stream(p, true, events, keys);
  auto right = Stream(p, false, events, keys);
  if (interval) {
    left.KeyBy(&Rec::key)
        .IntervalJoin(right.KeyBy(&Rec::key))
        .Between(absl::Milliseconds(kLowerMs), absl::Milliseconds(kUpperMs))
        .Process(CountPair{})
        .Sink(sluice::DiscardingSink<int64_t>(), "pairs");
  } else {
    left.Join(right)
        .Where(&Rec::key)
        .EqualTo(&Rec::key)
        .Window(sluice::TumblingEventTimeWindows::Of(absl::Milliseconds(kWindowMs)))
        .Apply(JoinKey{})
        .Sink(sluice::DiscardingSink<int64_t>(), "pairs");
  }
  return sluice::bench::Run(p);
}

void Compare(const char* what, bool interval, int64_t events, int64_t keys, double raw_seconds,
             int64_t raw_pairs) {
  const double raw_rate = 2.0 * static_cast<double>(events) / raw_seconds;
  std::printf("%-28s %8.2f M events/s  (%lld pairs)\n", (std::string("raw ") + what).c_str(),
              raw_rate / 1e6, static_cast<long long>(raw_pairs));
  for (int parallelism : {1, 2}) {
    const sluice::JobResult r = EngineRun(interval, events, keys, parallelism);
    const double seconds = absl::ToDoubleSeconds(r.duration);
    const double rate = 2.0 * static_cast<double>(events) / seconds;
    std::printf("%-28s %8.2f M events/s  %6.2f M/s per core  %.3f of raw  (%lld pairs)\n",
                (std::string("engine ") + what + " p=" + std::to_string(parallelism)).c_str(),
                rate / 1e6, rate / 1e6 / parallelism, rate / raw_rate,
                static_cast<long long>(r.CounterTotal("records")));
  }
}

}  // namespace join_bench

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t keys = absl::GetFlag(FLAGS_keys);
  std::printf("joins of two streams of %lld events, %lld keys, %s state\n",
              static_cast<long long>(events), static_cast<long long>(keys),
              absl::GetFlag(FLAGS_state_backend).c_str());
  int64_t pairs = 0;
  double raw = join_bench::RawInterval(events, keys, &pairs);
  join_bench::Compare("interval join", true, events, keys, raw, pairs);
  raw = join_bench::RawWindow(events, keys, &pairs);
  join_bench::Compare("window join", false, events, keys, raw, pairs);
  return 0;
}
