// produce_feedback --kafka=BOOTSTRAP --topic=NAME [--events=100000] [--rate=0] [--seed=1]
//                  [--streams=40] [--users=20000] [--start-ms=1767225600000] [--span=1h]
//                  [--out-of-orderness=10s] [--late-fraction=0.002]
//                  [--malformed-fraction=0.001]
//
// Writes realistic feedback events (feedback.h) to a Kafka topic, keyed by user id (so each
// viewer's events stay in order in one partition): many streams of very unequal popularity,
// users spread over ISPs and platforms, bytes from peers and from the CDN, rebuffering now and
// then. Event time runs from --start-ms over --span; each event is a little out of order
// (up to 90% of --out-of-orderness behind the newest event), a --late-fraction of them more
// (up to 30 s beyond the bound: within the aggregator's default allowed lateness of 1 min),
// and a --malformed-fraction are broken (not JSON, a missing field, a negative count). The
// same seed writes the same messages. --rate limits the events per second (0: as fast as
// Kafka takes them). Prints how many it wrote, and of them late and malformed; fails if the
// topic no longer holds them all (`sluice dev kafka` keeps about 5 MB per partition).

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "feedback.h"

namespace {

struct Flags {
  std::string kafka, topic;
  int64_t events = 100'000;
  double rate = 0;
  uint64_t seed = 1;
  int64_t streams = 40, users = 20'000;
  int64_t start_ms = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
  absl::Duration span = absl::Hours(1), bound = absl::Seconds(10);
  double late_fraction = 0.002, malformed_fraction = 0.001;
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "produce_feedback: %s\nusage: produce_feedback --kafka=BOOTSTRAP --topic=NAME "
               "[--events=N] [--rate=N] [--seed=N] [--streams=N] [--users=N] [--start-ms=MS] "
               "[--span=DUR] [--out-of-orderness=DUR] [--late-fraction=F] "
               "[--malformed-fraction=F]\n",
               why.c_str());
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const size_t eq = a.find('=');
    if (!a.starts_with("--") || eq == std::string::npos) Usage("unexpected '" + a + "'");
    const std::string name = a.substr(2, eq - 2), value = a.substr(eq + 1);
    bool ok = true;
    if (name == "kafka") {
      f.kafka = value;
    } else if (name == "topic") {
      f.topic = value;
    } else if (name == "events") {
      ok = absl::SimpleAtoi(value, &f.events) && f.events >= 0;
    } else if (name == "rate") {
      ok = absl::SimpleAtod(value, &f.rate) && f.rate >= 0;
    } else if (name == "seed") {
      ok = absl::SimpleAtoi(value, &f.seed);
    } else if (name == "streams") {
      ok = absl::SimpleAtoi(value, &f.streams) && f.streams > 0;
    } else if (name == "users") {
      ok = absl::SimpleAtoi(value, &f.users) && f.users > 0;
    } else if (name == "start-ms") {
      ok = absl::SimpleAtoi(value, &f.start_ms) && f.start_ms > 0;
    } else if (name == "span") {
      ok = absl::ParseDuration(value, &f.span) && f.span > absl::ZeroDuration();
    } else if (name == "out-of-orderness") {
      ok = absl::ParseDuration(value, &f.bound) && f.bound >= absl::ZeroDuration();
    } else if (name == "late-fraction") {
      ok = absl::SimpleAtod(value, &f.late_fraction) && f.late_fraction >= 0;
    } else if (name == "malformed-fraction") {
      ok = absl::SimpleAtod(value, &f.malformed_fraction) && f.malformed_fraction >= 0;
    } else {
      Usage("unknown flag --" + name);
    }
    if (!ok) Usage("bad value for --" + name + ": '" + value + "'");
  }
  if (f.kafka.empty() || f.topic.empty()) Usage("--kafka and --topic are required");
  return f;
}

/// The events, deterministic from the seed.
class Generator {
 public:
  explicit Generator(const Flags& f) : f_(f), random_(f.seed) {}

  /// The `i`th message: its key and value; `late`/`malformed` say what it is.
  std::pair<std::string, std::string> Next(int64_t i, bool* late, bool* malformed) {
    static const std::vector<std::string> kIsps = {"Orange",  "Free",    "SFR",      "Bouygues",
                                                   "Comcast", "Verizon", "Deutsche", "Vodafone"};
    static const std::vector<std::string> kPlatforms = {"web", "android", "ios", "smarttv"};
    aggregator::Feedback e;
    // Popularity falls off steeply: stream k is watched about 1/(k+1) as much as stream 0.
    const double u = Uniform();
    const int64_t stream = static_cast<int64_t>(std::pow(static_cast<double>(f_.streams), u)) - 1;
    e.stream_id = absl::StrCat("stream-", stream);
    const int64_t user = static_cast<int64_t>(Uniform() * static_cast<double>(f_.users));
    e.user_id = absl::StrCat("user-", user);
    e.isp = kIsps[user % kIsps.size()];  // a user keeps an ISP and a platform
    e.platform = kPlatforms[(user / kIsps.size()) % kPlatforms.size()];
    e.bytes_p2p = static_cast<int64_t>(Uniform() * 4'000'000);
    e.bytes_cdn = static_cast<int64_t>(Uniform() * 1'500'000);
    e.rebuffer_ms = Uniform() < 0.9 ? 0 : 50 + static_cast<int64_t>(Uniform() * 4950);
    const int64_t nominal =
        f_.start_ms +
        static_cast<int64_t>(static_cast<double>(i) * absl::ToDoubleMilliseconds(f_.span) /
                             static_cast<double>(std::max<int64_t>(f_.events, 1)));
    const double bound_ms = absl::ToDoubleMilliseconds(f_.bound);
    *late = Uniform() < f_.late_fraction;
    const double behind = *late ? bound_ms + 1 + Uniform() * 30'000 : Uniform() * 0.9 * bound_ms;
    e.ts = std::max<int64_t>(1, nominal - static_cast<int64_t>(behind));
    std::string value = aggregator::ToJson(e);
    *malformed = Uniform() < f_.malformed_fraction;
    if (*malformed) {
      switch (random_() % 3) {
        case 0:
          value = value.substr(0, value.size() / 2);  // cut off: not JSON
          break;
        case 1:
          value.replace(value.find("\"isp\""), 5, "\"ips\"");  // a missing field
          break;
        default:
          value.replace(value.find("\"bytes_cdn\":"), 12, "\"bytes_cdn\":-");  // negative
          break;
      }
    }
    return {e.user_id, value};
  }

 private:
  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(random_); }

  const Flags& f_;
  std::mt19937_64 random_;
};

}  // namespace

int main(int argc, char** argv) {
  const Flags f = ParseFlags(argc, argv);
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"bootstrap.servers", f.kafka},
           {"enable.idempotence", "true"},  // each partition in the order produced, no dup
           {"linger.ms", "20"},
           {"message.timeout.ms", "60000"}}) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), error, sizeof error) != RD_KAFKA_CONF_OK) {
      Usage(error);
    }
  }
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (producer == nullptr) Usage(error);
  Generator generator(f);
  int64_t late = 0, malformed = 0;
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < f.events; ++i) {
    bool is_late = false, is_malformed = false;
    auto [key, value] = generator.Next(i, &is_late, &is_malformed);
    late += is_late && !is_malformed;
    malformed += is_malformed;
    for (;;) {
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          producer, RD_KAFKA_V_TOPIC(f.topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        std::fprintf(stderr, "produce_feedback: %s\n", rd_kafka_err2str(err));
        return 1;
      }
      rd_kafka_poll(producer, 10);  // the local queue is full: let deliveries drain it
    }
    rd_kafka_poll(producer, 0);
    if (f.rate > 0) {
      const absl::Time due = start + absl::Seconds(static_cast<double>(i + 1) / f.rate);
      if (due > absl::Now()) absl::SleepFor(due - absl::Now());
    }
  }
  if (rd_kafka_flush(producer, 60'000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fprintf(stderr, "produce_feedback: not every event was delivered within 60 s\n");
    return 1;
  }
  // A broker that deleted the oldest messages (retention; the mock keeps about 5 MB per
  // partition) would lose events silently: say so instead.
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_topic_t* topic = rd_kafka_topic_new(producer, f.topic.c_str(), nullptr);
  if (rd_kafka_metadata(producer, 0, topic, &metadata, 10'000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < metadata->topics[0].partition_cnt; ++i) {
      int64_t low = -1, high = -1;
      rd_kafka_query_watermark_offsets(producer, f.topic.c_str(),
                                       metadata->topics[0].partitions[i].id, &low, &high, 10'000);
      if (low > 0) {
        std::fprintf(stderr,
                     "produce_feedback: partition %d of %s no longer holds its first %lld "
                     "events (deleted by the broker; sluice dev kafka keeps about 5 MB per "
                     "partition): use fewer events or more partitions\n",
                     metadata->topics[0].partitions[i].id, f.topic.c_str(),
                     static_cast<long long>(low));
        return 1;
      }
    }
    rd_kafka_metadata_destroy(metadata);
  }
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(producer);
  std::printf("produced %lld events to %s (%lld late, %lld malformed)\n",
              static_cast<long long>(f.events), f.topic.c_str(), static_cast<long long>(late),
              static_cast<long long>(malformed));
  return 0;
}
