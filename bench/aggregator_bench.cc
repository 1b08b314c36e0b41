// aggregator_bench [--events=N] [--partitions=N] [--rounds=N] [--parallelism=N]
//                  [--checkpoint-interval=DUR]
//
// End-to-end events per second of the main job, the aggregator (examples/aggregator: Kafka ->
// JSON -> 5-minute windows per stream -> InfluxDB), run as a user runs it (`sluice run --local
// aggregator.so`, exactly-once checkpoints every 10 s, a real influxd), beside its limit in
// the same run: a raw C++ loop that consumes the same topic with librdkafka, parses each event
// with the same parser (ParseFeedback) and aggregates it in a hash map with the same
// accumulator (WindowAccumulator). The events are produce_feedback's, in a mock cluster
// (`sluice dev kafka`) topic of many partitions (it keeps about 5 MB per partition). Rounds
// alternate; medians and their ratio are printed.

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench_util.h"
#include "feedback.h"
#include "raw_kafka_consumer.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/testing/dev_kafka.h"
#include "sluice/testing/influx_server.h"
#include "sluice/testing/test_util.h"
#include "sluice_seconds.h"
#include "window_aggregate.h"

ABSL_FLAG(int64_t, events, 400'000, "events in the topic");
ABSL_FLAG(int, partitions, 32, "partitions of the topic");
ABSL_FLAG(int, rounds, 3, "runs of each side");
ABSL_FLAG(int, parallelism, 2, "the job's parallelism");
ABSL_FLAG(std::string, checkpoint_interval, "10s", "the job's exactly-once checkpoints");

namespace {

constexpr char kTopic[] = "feedback";
constexpr int64_t kWindowMs = 5 * 60 * 1000;

/// The raw loop: reads every partition from the start until it has `events` messages,
/// parsing and aggregating each; returns its seconds and the windows it made.
std::pair<double, size_t> RawSeconds(const std::string& bootstrap, int partitions, int64_t events) {
  const absl::Time start = absl::Now();
  std::vector<int> all(partitions);
  for (int p = 0; p < partitions; ++p) all[p] = p;
  rd_kafka_t* rk = sluice::bench::NewRawConsumer(bootstrap, kTopic, all);
  absl::flat_hash_map<std::pair<std::string, int64_t>, aggregator::WindowAccumulator> windows;
  int64_t read = 0, malformed = 0;
  while (read < events) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++read;
      auto e =
          aggregator::ParseFeedback(std::string_view(static_cast<const char*>(m->payload), m->len));
      if (e.ok()) {
        windows[{e->stream_id, e->ts - e->ts % kWindowMs + kWindowMs}].Add(
            *e, aggregator::UniqueUsers::kExact);
      } else {
        ++malformed;
      }
    }
    rd_kafka_message_destroy(m);
  }
  int64_t checksum = malformed;
  for (const auto& [key, acc] : windows) checksum += aggregator::Summarize(acc).unique_users;
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (checksum < 0) std::printf("unreachable\n");  // keeps the work observable
  return {absl::ToDoubleSeconds(absl::Now() - start), windows.size()};
}

/// The job as a user runs it, into database `db`: its wall time in seconds, and into `tasks`
/// the table of where each task's time went that `sluice run` prints at the end.
double EngineSeconds(const std::string& bootstrap, sluice::testing::InfluxServer& influx,
                     const std::string& db, const std::string& checkpoints, std::string* tasks) {
  influx.CreateDatabase(db);
  const double seconds = sluice::bench::SluiceSeconds(
      absl::StrCat(
          "run --local ", sluice::testing::BuildDir(), "/examples/aggregator.so -- --kafka=",
          bootstrap, " --topic=", kTopic, " --influx=", influx.url(), "/", db,
          " --dimension=stream_id --bounded --parallelism=", absl::GetFlag(FLAGS_parallelism),
          " --checkpoint-interval=", absl::GetFlag(FLAGS_checkpoint_interval),
          " --checkpoint-dir=", checkpoints),
      tasks);
  const size_t end = tasks->find("finished in");
  *tasks = end == std::string::npos ? "" : tasks->substr(tasks->find('\n', end) + 1);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int partitions = absl::GetFlag(FLAGS_partitions);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  sluice::testing::DevKafka kafka(
      {"--brokers=1", absl::StrCat("--topic=", kTopic, ":", partitions)});
  auto produced = sluice::testing::RunCommand(absl::StrCat(
      sluice::testing::BuildDir(), "/examples/produce_feedback --kafka=", kafka.bootstrap(),
      " --topic=", kTopic, " --events=", events));
  if (produced.exit_code != 0) {
    std::fprintf(stderr, "produce_feedback failed: %s\n", produced.output.c_str());
    return 1;
  }
  // Streams are keys, of very unequal popularity: partitions differ in size, and the mock
  // deletes the oldest messages of one beyond about 5 MB.
  int64_t largest = 0;
  for (const auto& [low, high] :
       sluice::bench::PartitionOffsets(kafka.bootstrap(), kTopic, partitions)) {
    if (low != 0) {
      std::fprintf(stderr,
                   "the mock cluster dropped old messages (it keeps about 5 MB per partition): "
                   "use fewer --events or more --partitions\n");
      return 1;
    }
    largest = std::max(largest, high);
  }
  sluice::testing::InfluxServer influx;
  sluice::testing::TempDir dir;
  std::printf("%s(the largest of %d partitions holds %lld)\n", produced.output.c_str(), partitions,
              static_cast<long long>(largest));
  std::vector<double> raw, engine;
  std::string tasks;
  size_t windows = 0;
  for (int r = 0; r < rounds; ++r) {
    auto [seconds, made] = RawSeconds(kafka.bootstrap(), partitions, events);
    raw.push_back(seconds);
    windows = made;
    engine.push_back(EngineSeconds(kafka.bootstrap(), influx, absl::StrCat("round", r),
                                   dir.Join(absl::StrCat("checkpoints-", r)), &tasks));
    std::printf("  round %d: raw loop %.2f s, aggregator %.2f s\n", r + 1, raw.back(),
                engine.back());
  }
  const int64_t points = influx.QueryNumber("SELECT count(events) FROM feedback", "round0");
  if (points != static_cast<int64_t>(windows)) {
    std::fprintf(stderr, "the aggregator wrote %lld points, the raw loop made %zu windows\n",
                 static_cast<long long>(points), windows);
    return 1;
  }
  const double raw_rate = static_cast<double>(events) / sluice::bench::Median(raw);
  const double engine_rate = static_cast<double>(events) / sluice::bench::Median(engine);
  std::printf(
      "%lld events, %zu windows: raw loop (1 thread) %.0f events/s; aggregator p=%d with "
      "checkpoints every %s into influxd, whole `sluice run`: %.0f events/s; ratio %.1f%%\n",
      static_cast<long long>(events), windows, raw_rate, absl::GetFlag(FLAGS_parallelism),
      absl::GetFlag(FLAGS_checkpoint_interval).c_str(), engine_rate, 100 * engine_rate / raw_rate);
  std::printf("where the aggregator's last run spent its time:\n%s", tasks.c_str());
  return 0;
}
