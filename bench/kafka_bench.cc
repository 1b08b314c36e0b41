// kafka_bench [--records=N] [--partitions=N] [--rounds=N]
//
// Records per second of 100-byte messages through the Kafka source (bounded, into a sink
// that only counts them) at parallelism 1 and 2, beside the baseline: plain librdkafka
// consumers (one per subtask, each assigned the same partitions, polling until they have
// read them all) reading the same topic from the same mock cluster (`sluice dev kafka`, a
// process of its own) in the same run. Each configuration runs `rounds` times, alternating
// with its baseline; the medians and their ratio are printed.
//
// The mock cluster keeps only about 5 MB per partition (older messages are deleted, as by
// retention), so the topic has many partitions of at most ~36k messages each; the bench
// refuses to run if the producer's messages did not all stay.

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench_util.h"
#include "raw_kafka_consumer.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/sluice.h"
#include "sluice/testing/dev_kafka.h"

ABSL_FLAG(int64_t, records, 576'000, "messages in the topic (100 bytes each)");
ABSL_FLAG(int, partitions, 16, "partitions of the topic");
ABSL_FLAG(int, rounds, 3, "runs of each configuration");

namespace {

constexpr char kTopic[] = "bench";

/// One raw consumer reading `partitions` from the start until it has `expected` messages.
int64_t RawConsume(const std::string& bootstrap, const std::vector<int>& partitions,
                   int64_t expected) {
  rd_kafka_t* rk = sluice::bench::NewRawConsumer(bootstrap, kTopic, partitions);
  int64_t read = 0, bytes = 0;
  while (read < expected) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++read;
      bytes += static_cast<int64_t>(m->len);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return bytes;
}

/// Seconds for `consumers` raw consumers to read the whole topic, partitions dealt out as
/// the source deals them (round robin).
double RawSeconds(const std::string& bootstrap, int consumers, int partitions, int64_t records) {
  std::vector<std::vector<int>> assigned(consumers);
  for (int p = 0; p < partitions; ++p) assigned[p % consumers].push_back(p);
  const int64_t per_partition = records / partitions;
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (const auto& parts : assigned) {
    threads.emplace_back([&, parts] {
      RawConsume(bootstrap, parts, per_partition * static_cast<int64_t>(parts.size()));
    });
  }
  for (auto& t : threads) t.join();
  return absl::ToDoubleSeconds(absl::Now() - start);
}

class CountingSink final : public sluice::SinkFunction<sluice::KafkaRecord> {
 public:
  void Invoke(const sluice::KafkaRecord& r, const sluice::SinkContext&) override {
    bytes_ += static_cast<int64_t>(r.value.size());
  }
  void Finish() override {
    if (bytes_ < 0) std::printf("unreachable\n");  // keeps the work observable
  }

 private:
  int64_t bytes_ = 0;
};

double SluiceSeconds(const std::string& bootstrap, int parallelism) {
  sluice::KafkaSourceOptions o;
  o.bootstrap_servers = bootstrap;
  o.topics = {kTopic};
  o.bounded = true;
  sluice::Pipeline p("kafka-bench");
  p.SetParallelism(parallelism);
  p.Source(sluice::KafkaSource(o)).Sink(CountingSink{});
  return sluice::bench::RunSeconds(p);
}

}  // namespace

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  const int64_t records = absl::GetFlag(FLAGS_records);
  const int partitions = absl::GetFlag(FLAGS_partitions);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  sluice::testing::DevKafka kafka(
      {"--brokers=1", absl::StrCat("--topic=", kTopic, ":", partitions)});
  // 100-byte values: a number padded with letters.
  const int64_t per_partition = records / partitions;
  for (int part = 0; part < partitions; ++part) {
    std::vector<std::string> lines;
    lines.reserve(per_partition);
    for (int64_t i = 0; i < per_partition; ++i) {
      std::string v = absl::StrCat(part, "-", i, "-");
      v.resize(100, 'x');
      lines.push_back(std::move(v));
    }
    kafka.Produce(kTopic, part, lines);
  }
  const int64_t total = per_partition * partitions;
  for (const auto& [low, high] :
       sluice::bench::PartitionOffsets(kafka.bootstrap(), kTopic, partitions)) {
    if (low != 0) {
      std::fprintf(stderr,
                   "the mock cluster dropped old messages (it keeps about 5 MB per partition): "
                   "use fewer --records or more --partitions\n");
      return 1;
    }
  }
  std::printf("topic: %lld messages of 100 bytes in %d partitions (mock cluster, 1 broker)\n",
              static_cast<long long>(total), partitions);
  for (int parallelism : {1, 2}) {
    std::vector<double> raw, engine;
    for (int r = 0; r < rounds; ++r) {
      raw.push_back(RawSeconds(kafka.bootstrap(), parallelism, partitions, total));
      engine.push_back(SluiceSeconds(kafka.bootstrap(), parallelism));
      std::printf("  p=%d round %d: raw %.2f s, sluice %.2f s\n", parallelism, r + 1, raw.back(),
                  engine.back());
    }
    const double raw_rate = static_cast<double>(total) / sluice::bench::Median(raw);
    const double engine_rate = static_cast<double>(total) / sluice::bench::Median(engine);
    std::printf(
        "p=%d  raw librdkafka: %9.0f records/s (%6.1f MB/s)   sluice source: %9.0f records/s "
        "(%6.1f MB/s)   ratio %.1f%%\n",
        parallelism, raw_rate, raw_rate * 100 / 1e6, engine_rate, engine_rate * 100 / 1e6,
        100 * engine_rate / raw_rate);
  }
  return 0;
}
