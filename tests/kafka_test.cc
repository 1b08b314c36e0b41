// The Kafka source against `sluice dev kafka` (librdkafka's Kafka-protocol mock cluster in a
// process of its own), with data produced by kcat.

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serialization/test_record.pb.h"
#include "sluice/connectors/kafka_json.h"
#include "sluice/connectors/kafka_protobuf.h"
#include "sluice/sluice.h"
#include "sluice/testing/dev_kafka.h"
#include "sluice/testing/log_capture.h"
#include "sluice/testing/operator_harness.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using testing::DevKafka;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<std::string> Numbered(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(absl::StrCat(prefix, "-", i));
  return out;
}

/// Runs a job of one Kafka source (bounded options) and returns the message values (or what
/// `show` makes of each record), sorted.
std::vector<std::string> SortedValues(
    const KafkaSourceOptions& o, int parallelism,
    std::function<std::string(const KafkaRecord&)> show = [](const KafkaRecord& r) {
      return r.value;
    }) {
  Pipeline p("read-kafka");
  auto out = std::make_shared<CollectedRecords<std::string>>();
  p.Source(KafkaSource(o))
      .Parallelism(parallelism)
      .Map(std::move(show))
      .Sink(CollectSink<std::string>(out));
  EXPECT_OK(ExecuteLocally(p));
  auto values = out->Values();
  std::sort(values.begin(), values.end());
  return values;
}

/// Options of a source that reads `topic` to its current end.
KafkaSourceOptions Bounded(const std::string& bootstrap, const std::string& topic) {
  KafkaSourceOptions o;
  o.bootstrap_servers = bootstrap;
  o.topics = {topic};
  o.bounded = true;
  return o;
}

/// Reads `topic` to its current end with a bounded source and returns the message values.
std::vector<std::string> ReadAll(const std::string& bootstrap, const std::string& topic,
                                 int parallelism,
                                 KafkaStartingOffsets start = KafkaStartingOffsets::kEarliest) {
  KafkaSourceOptions o = Bounded(bootstrap, topic);
  o.starting_offsets = start;
  return SortedValues(o, parallelism);
}

TEST(DevKafkaTest, PrintsItsBootstrapAddressAndTakesFaultCommands) {
  DevKafka kafka({"--brokers=2", "--topic=events:3"});
  EXPECT_THAT(kafka.bootstrap(), StartsWith("127.0.0.1:"));
  EXPECT_EQ(kafka.Command("topic more 2"), "ok");
  EXPECT_EQ(kafka.Command("leader events 0 2"), "ok");
  EXPECT_EQ(kafka.Command("broker-down 1"), "ok");
  EXPECT_EQ(kafka.Command("broker-up all"), "ok");
  EXPECT_EQ(kafka.Command("rtt all 5"), "ok");
  EXPECT_EQ(kafka.Command("request-errors 1 NOT_LEADER_FOR_PARTITION,_TRANSPORT"), "ok");
  EXPECT_EQ(kafka.Command("request-error-rtts 1 1 REQUEST_TIMED_OUT:100"), "ok");
  EXPECT_THAT(kafka.Command("request-errors 1 NO_SUCH_ERROR"), HasSubstr("unknown error"));
  EXPECT_THAT(kafka.Command("launch rockets"), StartsWith("error:"));
}

TEST(DevKafkaTest, RefusesBadOptions) {
  auto r = testing::RunCommand(testing::BuildDir() + "/bin/sluice dev kafka --topic=x:0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--topic takes NAME or NAME:PARTITIONS"));
}

TEST(KafkaSourceTest, ReadsEveryRecordOnceAtAnyParallelism) {
  DevKafka kafka({"--brokers=3", "--topic=events:4"});
  std::vector<std::string> all;
  for (int p = 0; p < 4; ++p) {
    auto lines = Numbered(absl::StrCat("p", p), 500);
    kafka.Produce("events", p, lines);
    all.insert(all.end(), lines.begin(), lines.end());
  }
  std::sort(all.begin(), all.end());
  for (int parallelism : {1, 2, 3, 5}) {
    EXPECT_EQ(ReadAll(kafka.bootstrap(), "events", parallelism), all)
        << "parallelism " << parallelism;
  }
}

TEST(KafkaSourceTest, LatestSkipsWhatWasThere) {
  DevKafka kafka({"--brokers=1", "--topic=events:2"});
  kafka.Produce("events", 0, Numbered("old", 10));
  EXPECT_TRUE(ReadAll(kafka.bootstrap(), "events", 2, KafkaStartingOffsets::kLatest).empty());
}

TEST(KafkaSourceTest, ABadLibrdkafkaSettingIsAClearError) {
  DevKafka kafka({"--brokers=1", "--topic=events:1"});
  KafkaSourceOptions o;
  o.bootstrap_servers = kafka.bootstrap();
  o.topics = {"events"};
  o.properties["fetch.max.bytes"] = "lots";
  Pipeline p("bad-setting");
  p.Source(KafkaSource(o)).Map([](const KafkaRecord& r) { return r.value; }).Print();
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("'fetch.max.bytes'='lots'"));
}

TEST(KafkaSourceTest, AllBrokersDownAtTheStartThenUp) {
  DevKafka kafka({"--brokers=2", "--topic=events:2"});
  kafka.Produce("events", 0, Numbered("a", 50));
  kafka.Produce("events", 1, Numbered("b", 50));
  ASSERT_EQ(kafka.Command("broker-down all"), "ok");
  std::vector<std::string> got;
  std::thread reader([&] { got = ReadAll(kafka.bootstrap(), "events", 2); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the outage itself
  ASSERT_EQ(kafka.Command("broker-up all"), "ok");
  reader.join();
  EXPECT_EQ(got.size(), 100u);
}

TEST(KafkaSourceTest, ThrottlesToTheGivenRate) {
  DevKafka kafka({"--brokers=1", "--topic=events:1"});
  kafka.Produce("events", 0, Numbered("e", 500));
  KafkaSourceOptions o = Bounded(kafka.bootstrap(), "events");
  o.max_records_per_second = 1000;
  Pipeline p("throttled");
  auto out = std::make_shared<CollectedRecords<std::string>>();
  p.Source(KafkaSource(o))
      .Map([](const KafkaRecord& r) { return r.value; })
      .Sink(CollectSink<std::string>(out));
  const absl::Time start = absl::Now();
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(450)) << "500 records at 1000/s";
  EXPECT_EQ(out->Values().size(), 500u);
}

/// Reads `events` bounded from `kafka` with checkpoints in `checkpoints`, restoring from
/// `restore_from` if given, with the given out-of-range policy.
absl::StatusOr<std::vector<std::string>> ReadWithCheckpoints(const DevKafka& kafka,
                                                             const std::string& checkpoints,
                                                             const std::string& restore_from,
                                                             KafkaOffsetReset out_of_range) {
  KafkaSourceOptions o = Bounded(kafka.bootstrap(), "events");
  o.out_of_range = out_of_range;
  Pipeline p("out-of-range");
  p.mutable_config().checkpoint_interval = absl::Milliseconds(20);
  p.mutable_config().checkpoint_dir = checkpoints;
  p.mutable_config().restore_from = restore_from;
  p.SetRestartStrategy(RestartStrategyConfig::None());  // a failing policy must fail the job
  auto out = std::make_shared<CollectedRecords<std::string>>();
  p.Source(KafkaSource(o))
      .Uid("kafka")
      .Map([](const KafkaRecord& r) { return r.value; })
      .Sink(CollectSink<std::string>(out));
  auto r = ExecuteLocally(p);
  if (!r.ok()) return r.status();
  return out->Values();
}

// The checkpoint says offset 300, but the topic was replaced and ends at 50: the policy
// decides where to continue.
TEST(KafkaSourceTest, ACheckpointedOffsetOutOfRangeFollowsThePolicy) {
  testing::TempDir dir;
  const std::string first_run = dir.Join("first");
  {
    DevKafka first({"--brokers=1", "--topic=events:1"});
    first.Produce("events", 0, Numbered("a", 300));
    auto all = ReadWithCheckpoints(first, first_run, "", KafkaOffsetReset::kEarliest);
    ASSERT_OK(all);
    ASSERT_EQ(all->size(), 300u);  // its final checkpoint holds offset 300
  }
  DevKafka replaced({"--brokers=1", "--topic=events:1"});
  replaced.Produce("events", 0, Numbered("b", 50));
  const std::string restore = first_run + "/out-of-range";
  auto earliest =
      ReadWithCheckpoints(replaced, dir.Join("r1"), restore, KafkaOffsetReset::kEarliest);
  ASSERT_OK(earliest);
  EXPECT_EQ(earliest->size(), 50u);
  auto latest = ReadWithCheckpoints(replaced, dir.Join("r2"), restore, KafkaOffsetReset::kLatest);
  ASSERT_OK(latest);
  EXPECT_TRUE(latest->empty());
  auto fail = ReadWithCheckpoints(replaced, dir.Join("r3"), restore, KafkaOffsetReset::kFail);
  ASSERT_FALSE(fail.ok());
  EXPECT_THAT(std::string(fail.status().message()),
              HasSubstr("events/0: the checkpointed offset 300 is out of range [0, 50]"));
}

// The checkpoint is the truth, not the consumer group: restored with a group that has
// committed nothing (and would start at the earliest offset), the source continues at the
// checkpointed offsets.
TEST(KafkaSourceTest, OffsetsComeFromTheCheckpointNotTheGroup) {
  testing::TempDir dir;
  DevKafka kafka({"--brokers=1", "--topic=events:1"});
  kafka.Produce("events", 0, Numbered("a", 300));
  ASSERT_OK(ReadWithCheckpoints(kafka, dir.Join("first"), "", KafkaOffsetReset::kEarliest));
  kafka.Produce("events", 0, Numbered("b", 100));
  KafkaSourceOptions o = Bounded(kafka.bootstrap(), "events");
  o.group_id = "never-committed";
  o.starting_offsets = KafkaStartingOffsets::kCommitted;
  o.reset = KafkaStartingOffsets::kEarliest;
  Pipeline p("out-of-range");  // the same job, so its state matches
  p.mutable_config().restore_from = dir.Join("first") + "/out-of-range";
  auto out = std::make_shared<CollectedRecords<std::string>>();
  p.Source(KafkaSource(o))
      .Uid("kafka")
      .Map([](const KafkaRecord& r) { return r.value; })
      .Sink(CollectSink<std::string>(out));
  ASSERT_OK(ExecuteLocally(p));
  auto got = out->Values();
  std::sort(got.begin(), got.end());
  auto expected = Numbered("b", 100);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(got, expected);
}

// Faults on the way: a leader move with NOT_LEADER and disconnects on fetches, then a slow
// broker. Every record arrives exactly once.
TEST(KafkaSourceTest, LeaderChangeFetchErrorsAndASlowBrokerLoseAndRepeatNothing) {
  DevKafka kafka({"--brokers=3", "--topic=events:2"});
  kafka.Produce("events", 0, Numbered("a", 1000));
  kafka.Produce("events", 1, Numbered("b", 1000));
  KafkaSourceOptions o = Bounded(kafka.bootstrap(), "events");
  o.max_records_per_second = 1000;  // about 2 s, so the faults meet a running read
  Pipeline p("faults");
  auto out = std::make_shared<CollectedRecords<std::string>>();
  p.Source(KafkaSource(o))
      .Map([](const KafkaRecord& r) { return r.value; })
      .Sink(CollectSink<std::string>(out));
  std::thread job([&] { EXPECT_OK(ExecuteLocally(p)); });
  ASSERT_TRUE(testing::WaitFor([&] { return out->Values().size() >= 200; }, 20'000));
  EXPECT_EQ(kafka.Command("leader events 0 3"), "ok");
  EXPECT_EQ(kafka.Command("leader events 1 2"), "ok");
  EXPECT_EQ(kafka.Command("request-errors 1 NOT_LEADER_FOR_PARTITION,_TRANSPORT,"
                          "NOT_LEADER_FOR_PARTITION"),
            "ok");
  ASSERT_TRUE(testing::WaitFor([&] { return out->Values().size() >= 1000; }, 20'000));
  EXPECT_EQ(kafka.Command("rtt all 100"), "ok");
  job.join();
  auto got = out->Values();
  std::sort(got.begin(), got.end());
  auto expected = Numbered("a", 1000);
  auto b = Numbered("b", 1000);
  expected.insert(expected.end(), b.begin(), b.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(got, expected);
}

// Committing offsets to the group is for monitoring: failed commits are logged and counted,
// and the job goes on.
TEST(KafkaSourceTest, FailedCommitsDoNotFailTheJob) {
  DevKafka kafka({"--brokers=1", "--topic=events:1"});
  kafka.Produce("events", 0, Numbered("e", 300));
  ASSERT_EQ(kafka.Command("request-errors 8 GROUP_AUTHORIZATION_FAILED,GROUP_AUTHORIZATION_FAILED,"
                          "GROUP_AUTHORIZATION_FAILED"),
            "ok");
  KafkaSourceOptions o;
  o.bootstrap_servers = kafka.bootstrap();
  o.topics = {"events"};
  o.group_id = "monitoring";
  o.bounded = true;
  o.max_records_per_second = 1000;
  Pipeline p("commit-failures");
  p.mutable_config().checkpoint_interval = absl::Milliseconds(20);
  auto out = std::make_shared<CollectedRecords<std::string>>();
  p.Source(KafkaSource(o))
      .Map([](const KafkaRecord& r) { return r.value; })
      .Sink(CollectSink<std::string>(out));
  testing::LogCapture log;
  auto result = ExecuteLocally(p);
  ASSERT_OK(result);
  EXPECT_EQ(out->Values().size(), 300u);
  EXPECT_THAT(log.text(), HasSubstr("committing offsets failed (only lag monitoring suffers)"));
  EXPECT_GE(result->CounterTotal("kafka_commits_failed"), 1);
  EXPECT_GE(result->CounterTotal("kafka_commits_succeeded"), 1);
  // Later commits went through: a reader starting at the group's offsets finds nothing left.
  kafka.Produce("events", 0, {"after"});
  o.starting_offsets = KafkaStartingOffsets::kCommitted;
  o.max_records_per_second = 0;
  Pipeline again("from-committed");
  auto rest = std::make_shared<CollectedRecords<std::string>>();
  again.Source(KafkaSource(o))
      .Map([](const KafkaRecord& r) { return r.value; })
      .Sink(CollectSink<std::string>(rest));
  ASSERT_OK(ExecuteLocally(again));
  EXPECT_EQ(rest->Values(), std::vector<std::string>{"after"});
}

/// Topic `events`, whose values are `timestamp_ms,...`: event time from the payload,
/// watermarks per partition without out-of-orderness.
KafkaSourceOptions EventTimeFromPayload(const std::string& bootstrap) {
  KafkaSourceOptions o;
  o.bootstrap_servers = bootstrap;
  o.topics = {"events"};
  o.timestamp = [](const KafkaRecord& r) {
    int64_t ts = 0;
    EXPECT_TRUE(absl::SimpleAtoi(r.value.substr(0, r.value.find(',')), &ts));
    return ts;
  };
  o.watermark_out_of_orderness = absl::ZeroDuration();
  return o;
}

// Event time from the payload, watermarks per partition: partition 1 never gets a message,
// yet once it counts as idle the windows of partition 0 fire while the job runs.
TEST(KafkaSourceTest, PerPartitionWatermarksWithAnIdlePartitionStillFireWindows) {
  DevKafka kafka({"--brokers=1", "--topic=events:2"});
  std::vector<std::string> lines;
  for (int i = 0; i < 500; ++i) lines.push_back(absl::StrCat(i * 10, ",1"));  // ts 0..4990 ms
  kafka.Produce("events", 0, lines);
  KafkaSourceOptions o = EventTimeFromPayload(kafka.bootstrap());
  o.idle_timeout = absl::Milliseconds(200);
  testing::TempDir dir;
  Pipeline p("watermarks");
  p.mutable_config().checkpoint_interval = absl::Milliseconds(100);  // to stop it
  auto out = std::make_shared<CollectedRecords<int64_t>>();
  p.Source(KafkaSource(o))
      .Parallelism(1)
      .Map([](const KafkaRecord&) { return int64_t{1}; })
      .WindowAll(TumblingEventTimeWindows::Of(absl::Seconds(1)))
      .Reduce([](const int64_t& a, const int64_t& b) { return a + b; })
      .Sink(CollectSink<int64_t>(out));
  MiniCluster cluster;
  auto graph = p.BuildJobGraph();
  ASSERT_OK(graph);
  absl::StatusOr<JobResult> result = absl::UnknownError("not run");
  std::thread runner([&] { result = cluster.Execute(*graph); });
  // Watermark 4989: the windows up to [3000, 4000) fire, each with 100 records.
  const bool fired = testing::WaitFor([&] { return out->Values().size() >= 4; }, 20'000);
  ASSERT_TRUE(testing::WaitFor([&] { return cluster.running(); }, 20'000));
  EXPECT_OK(cluster.TriggerSavepoint(dir.Join("sp"), /*stop=*/true));
  runner.join();
  ASSERT_OK(result);
  EXPECT_TRUE(fired) << "the empty partition held the watermark back";
  EXPECT_EQ(out->Values(), (std::vector<int64_t>{100, 100, 100, 100}));
}

/// Runs a source function outside a job: polls it on this thread and keeps what it emits.
template <typename T>
class PolledSource final : public ProcessingTimeService {
 public:
  explicit PolledSource(SourceFunction<T>& source)
      : source_(source), context_(TaskInfo{}, this, &metrics_) {}
  Timestamp CurrentProcessingTime() const override { return absl::ToUnixMillis(absl::Now()); }
  void ScheduleAt(Timestamp, Target*) override {}

  void Open() { source_.Open(context_); }
  /// Polls until `records` records came (bounded in time); false if they did not.
  bool PollFor(size_t records) {
    return testing::WaitFor(
        [&] {
          Batch<T> batch;
          SourceOutput<T> out(&batch, 512, &PolledSource::OnWatermark, this);
          source_.Poll(out);
          received_ += batch.size();
          return received_ >= records;
        },
        20'000);
  }
  std::optional<Timestamp> last_watermark() const { return last_watermark_; }

 private:
  static void OnWatermark(void* self, Timestamp wm) {
    static_cast<PolledSource*>(self)->last_watermark_ = wm;
  }

  SourceFunction<T>& source_;
  MetricGroup metrics_;
  RuntimeContext context_;
  size_t received_ = 0;
  std::optional<Timestamp> last_watermark_;
};

// A partition's event time is part of the source's checkpointed state. Restored, a partition
// that gets no new message still holds the watermark where it was, not at "no event time
// yet" (which would let records count as on time that a run without the failure took as
// late, once the other partitions move on).
TEST(KafkaSourceTest, APartitionsEventTimeIsRestoredWithItsOffset) {
  DevKafka kafka({"--brokers=1", "--topic=events:2"});
  auto timestamps = [](int from, int to) {
    std::vector<std::string> v;
    for (int ts = from; ts <= to; ts += 10) v.push_back(absl::StrCat(ts, ",1"));
    return v;
  };
  kafka.Produce("events", 0, timestamps(0, 2990));
  kafka.Produce("events", 1, timestamps(0, 4990));
  KafkaSourceOptions o = EventTimeFromPayload(kafka.bootstrap());
  std::vector<std::string> state;
  {
    KafkaSource<KafkaRecord> source(o);
    PolledSource<KafkaRecord> polled(source);
    polled.Open();
    ASSERT_TRUE(polled.PollFor(300 + 500));
    EXPECT_EQ(polled.last_watermark(), 2989) << "the minimum over both partitions";
    state = source.SnapshotState(1);
    source.Close();
  }
  // Partition 0 moves on; partition 1, restored at 4990, gets nothing new.
  kafka.Produce("events", 0, timestamps(9000, 9000));
  KafkaSource<KafkaRecord> restored(o);
  restored.RestoreState(state);
  PolledSource<KafkaRecord> polled(restored);
  polled.Open();
  ASSERT_TRUE(polled.PollFor(1)) << "only the new message is read again";
  EXPECT_EQ(polled.last_watermark(), 4989) << "partition 1's restored event time holds it";
  restored.Close();
}

// Topics by pattern with discovery: a topic created while the job runs is picked up, from
// its earliest offset, by the subtask that owns its partitions.
TEST(KafkaSourceTest, DiscoversNewTopicsMatchingThePattern) {
  DevKafka kafka({"--brokers=1", "--topic=metrics-a:1", "--topic=other:1"});
  kafka.Produce("metrics-a", 0, Numbered("a", 10));
  kafka.Produce("other", 0, Numbered("x", 10));
  auto o = ParseKafkaUrl(
      absl::StrCat("kafka://", kafka.bootstrap(), "/?pattern=metrics-.*&discovery_interval=100ms"));
  ASSERT_OK(o);
  testing::TempDir dir;
  Pipeline p("discovery");
  p.mutable_config().checkpoint_interval = absl::Milliseconds(100);  // to stop it
  auto out = std::make_shared<CollectedRecords<std::string>>();
  p.Source(KafkaSource(*o))
      .Parallelism(2)
      .Map([](const KafkaRecord& r) { return r.value; })
      .Sink(CollectSink<std::string>(out));
  MiniCluster cluster;
  auto graph = p.BuildJobGraph();
  ASSERT_OK(graph);
  absl::StatusOr<JobResult> result = absl::UnknownError("not run");
  std::thread runner([&] { result = cluster.Execute(*graph); });
  ASSERT_TRUE(testing::WaitFor([&] { return out->Values().size() >= 10; }, 20'000));
  ASSERT_EQ(kafka.Command("topic metrics-b 2"), "ok");
  kafka.Produce("metrics-b", 0, Numbered("b0", 5));
  kafka.Produce("metrics-b", 1, Numbered("b1", 5));
  const bool discovered = testing::WaitFor([&] { return out->Values().size() >= 20; }, 20'000);
  EXPECT_OK(cluster.TriggerSavepoint(dir.Join("sp"), /*stop=*/true));
  runner.join();
  ASSERT_OK(result);
  EXPECT_TRUE(discovered);
  auto got = out->Values();
  std::sort(got.begin(), got.end());
  std::vector<std::string> expected = Numbered("a", 10);
  for (const auto& prefix : {"b0", "b1"}) {
    auto more = Numbered(prefix, 5);
    expected.insert(expected.end(), more.begin(), more.end());
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(got, expected) << "every matching record once, nothing of 'other'";
}

// --- deserialization and its error policies ---

struct Reading {
  std::string sensor;
  double value = 0;
  int64_t time_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Reading, sensor, value, time_ms)
SLUICE_SERIALIZABLE(Reading, sensor, value, time_ms)

/// Ten messages of which offsets 3 (not JSON) and 5 (a field of the wrong type) are poison.
class PoisonMessageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> values;
    for (int i = 0; i < 10; ++i) {
      if (i == 3) {
        values.push_back("{not json");
      } else if (i == 5) {
        values.push_back(R"({"sensor": 7, "value": 1.5, "time_ms": 5000})");
      } else {
        values.push_back(absl::StrCat(R"({"sensor": "s)", i, R"(", "value": )", i,
                                      R"(.5, "time_ms": )", 1000 * i, "}"));
        good_.push_back(Reading{absl::StrCat("s", i), i + 0.5, 1000 * i});
      }
    }
    kafka_.Produce("readings", 0, values);
  }

  KafkaSourceOptions Options(KafkaDeserializationErrors policy) const {
    KafkaSourceOptions o = Bounded(kafka_.bootstrap(), "readings");
    o.deserialization_errors = policy;
    return o;
  }

  DevKafka kafka_{{"--brokers=1", "--topic=readings:1"}};
  std::vector<Reading> good_;
};

TEST_F(PoisonMessageTest, FailPolicyFailsTheJobNamingTopicPartitionAndOffset) {
  Pipeline p("poison-fail");
  p.Source(KafkaSource<Reading>(Options(KafkaDeserializationErrors::kFail),
                                KafkaJsonFormat<Reading>("Reading")))
      .Sink(CollectSink<Reading>(std::make_shared<CollectedRecords<Reading>>()));
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("Kafka readings/0 offset 3: cannot deserialize the value (9 bytes) as "
                        "JSON Reading: not valid JSON"));
}

TEST_F(PoisonMessageTest, SkipPolicySkipsAndCountsThem) {
  Pipeline p("poison-skip");
  auto out = std::make_shared<CollectedRecords<Reading>>();
  p.Source(
       KafkaSource<Reading>(Options(KafkaDeserializationErrors::kSkip), KafkaJsonFormat<Reading>()))
      .Sink(CollectSink<Reading>(out));
  auto r = ExecuteLocally(p);
  ASSERT_OK(r);
  EXPECT_EQ(out->Values(), good_);
  EXPECT_EQ(r->CounterTotal("kafka_deserialization_failures"), 2);
  EXPECT_EQ(r->CounterTotal("kafka_records_read"), 10);
  EXPECT_EQ(r->CounterTotal("kafka_lag"), 0);  // read to the end
  EXPECT_GT(r->CounterTotal("kafka_bytes_read"), 10 * 30);
}

TEST_F(PoisonMessageTest, DeadLetterPolicySendsThemToTheSideOutputWithTheError) {
  Pipeline p("poison-dead-letter");
  p.SetParallelism(2);
  auto out = std::make_shared<CollectedRecords<Reading>>();
  auto dead = std::make_shared<CollectedRecords<KafkaDeadLetter>>();
  auto readings = p.Source(KafkaSource<Reading>(Options(KafkaDeserializationErrors::kDeadLetter),
                                                KafkaJsonFormat<Reading>())
                               .WithTimestamp([](const Reading& r) { return r.time_ms; }));
  readings.Sink(CollectSink<Reading>(out)).Parallelism(1);
  readings.GetSideOutput(KafkaDeadLetters()).Rebalance().Sink(CollectSink<KafkaDeadLetter>(dead));
  auto r = ExecuteLocally(p);
  ASSERT_OK(r);
  EXPECT_EQ(out->Values(), good_);
  // Event time from the payload field.
  for (const auto& rec : out->Records()) EXPECT_EQ(rec.timestamp, rec.value.time_ms);
  std::vector<KafkaDeadLetter> letters = dead->Values();
  std::sort(letters.begin(), letters.end(),
            [](const auto& a, const auto& b) { return a.record.offset < b.record.offset; });
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(letters[0].record.offset, 3);
  EXPECT_EQ(letters[0].record.value, "{not json");
  EXPECT_EQ(letters[0].record.topic, "readings");
  EXPECT_THAT(letters[0].error, HasSubstr("not valid JSON"));
  EXPECT_EQ(letters[1].record.offset, 5);
  EXPECT_THAT(letters[1].error, HasSubstr("JSON does not fit"));
  EXPECT_THAT(letters[1].error, HasSubstr("type must be string"));
  EXPECT_EQ(r->CounterTotal("kafka_deserialization_failures"), 2);
}

TEST(KafkaFormatTest, ProtobufValuesAndAPoisonOne) {
  DevKafka kafka({"--brokers=1", "--topic=events:1"});
  std::vector<std::string> values;
  std::vector<std::string> users;
  for (int i = 0; i < 6; ++i) {
    sluice_test::TestEvent e;
    e.set_user(absl::StrCat("user\n", i));  // wire bytes with newlines in them
    e.set_amount(10 + i);
    e.add_labels("a\nb");
    values.push_back(e.SerializeAsString());
    users.push_back(e.user());
  }
  values.insert(values.begin() + 2, std::string("\xff\xff\xff\xff", 4));  // a truncated varint
  kafka.ProduceBinary("events", 0, values);

  KafkaSourceOptions o = Bounded(kafka.bootstrap(), "events");
  {
    Pipeline p("protobuf-fail");
    p.Source(KafkaSource<sluice_test::TestEvent>(o, KafkaProtobufFormat<sluice_test::TestEvent>()))
        .Map([](const sluice_test::TestEvent& e) { return e.user(); })
        .Print();
    auto r = ExecuteLocally(p);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(std::string(r.status().message()),
                HasSubstr("Kafka events/0 offset 2: cannot deserialize the value (4 bytes) as "
                          "protobuf sluice_test.TestEvent: not a valid sluice_test.TestEvent"));
  }
  o.deserialization_errors = KafkaDeserializationErrors::kSkip;
  Pipeline p("protobuf-skip");
  auto out = std::make_shared<CollectedRecords<sluice_test::TestEvent>>();
  p.Source(KafkaSource<sluice_test::TestEvent>(o, KafkaProtobufFormat<sluice_test::TestEvent>()))
      .Sink(CollectSink<sluice_test::TestEvent>(out));
  auto r = ExecuteLocally(p);
  ASSERT_OK(r);
  std::vector<std::string> got;
  for (const auto& e : out->Values()) {
    got.push_back(e.user());
    EXPECT_EQ(e.labels(0), "a\nb");
  }
  EXPECT_EQ(got, users);
  EXPECT_EQ(r->CounterTotal("kafka_deserialization_failures"), 1);
}

TEST(KafkaFormatTest, StringValuesMustBeUtf8UnlessToldOtherwise) {
  DevKafka kafka({"--brokers=1", "--topic=text:1"});
  const std::string bad_utf8 = "caf\xc3";  // a cut multi-byte sequence
  kafka.ProduceBinary("text", 0, {"grüße", bad_utf8, "\xed\xa0\x80", "plain"});
  KafkaSourceOptions o = Bounded(kafka.bootstrap(), "text");
  o.deserialization_errors = KafkaDeserializationErrors::kDeadLetter;
  for (bool require_utf8 : {true, false}) {
    Pipeline p("strings");
    auto out = std::make_shared<CollectedRecords<std::string>>();
    auto dead = std::make_shared<CollectedRecords<KafkaDeadLetter>>();
    auto text = p.Source(KafkaSource<std::string>(o, KafkaStringFormat(require_utf8)));
    text.Sink(CollectSink<std::string>(out));
    text.GetSideOutput(KafkaDeadLetters()).Sink(CollectSink<KafkaDeadLetter>(dead));
    ASSERT_OK(ExecuteLocally(p));
    if (require_utf8) {
      EXPECT_EQ(out->Values(), (std::vector<std::string>{"grüße", "plain"}));
      ASSERT_EQ(dead->Values().size(), 2u);
      EXPECT_THAT(dead->Values()[0].error, HasSubstr("not valid UTF-8 at byte 3"));
      EXPECT_THAT(dead->Values()[1].error, HasSubstr("not valid UTF-8 at byte 0"));  // surrogate
    } else {
      EXPECT_EQ(out->Values().size(), 4u);
      EXPECT_TRUE(dead->Values().empty());
    }
  }
}

// --- where reading starts and stops ---

TEST(KafkaSourceTest, SpecificStartAndStopOffsets) {
  DevKafka kafka({"--brokers=1", "--topic=events:2"});
  kafka.Produce("events", 0, Numbered("a", 10));
  kafka.Produce("events", 1, Numbered("b", 10));
  KafkaSourceOptions o = Bounded(kafka.bootstrap(), "events");
  o.starting_offsets = KafkaStartingOffsets::kSpecific;
  o.specific_offsets = {{"events", 0, 3}};
  o.reset = KafkaStartingOffsets::kLatest;  // partition 1 is not listed: from its end
  o.stop_offsets = {{"events", 0, 6}};
  EXPECT_EQ(SortedValues(o, 2), (std::vector<std::string>{"a-3", "a-4", "a-5"}));

  o.reset = KafkaStartingOffsets::kEarliest;
  o.stop_offsets.clear();
  EXPECT_EQ(SortedValues(o, 1).size(), 7u + 10u);

  o.specific_offsets = {{"events", 1, 1000}};
  o.out_of_range = KafkaOffsetReset::kFail;
  Pipeline p("beyond");
  p.Source(KafkaSource(o)).Map([](const KafkaRecord& r) { return r.value; }).Print();
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("events/1: the given offset 1000 is out of range [0, 10]"));
}

TEST(KafkaSourceTest, AStartTimestampAfterEveryMessageStartsAtTheEnd) {
  // The mock cluster answers every timestamp lookup with "no such message" (-1), as a real
  // broker does for a timestamp after the last message; which offset an earlier timestamp
  // finds cannot be checked against it.
  DevKafka kafka({"--brokers=1", "--topic=events:2"});
  kafka.Produce("events", 0, Numbered("a", 10));
  KafkaSourceOptions o = Bounded(kafka.bootstrap(), "events");
  o.starting_offsets = KafkaStartingOffsets::kTimestamp;
  o.starting_timestamp_ms = absl::ToUnixMillis(absl::Now() + absl::Hours(1));
  EXPECT_TRUE(SortedValues(o, 1).empty());
}

// --- the sink ---

/// Reads a topic as a read_committed consumer does (only committed transactions).
std::vector<std::string> ReadCommitted(const std::string& bootstrap, const std::string& topic) {
  KafkaSourceOptions o;
  o.bootstrap_servers = bootstrap;
  o.topics = {topic};
  o.bounded = true;
  o.properties["isolation.level"] = "read_committed";
  return SortedValues(o, 1);
}

/// Options of an exactly-once sink writing topic "out".
KafkaSinkOptions ExactlyOnceTo(const std::string& bootstrap) {
  KafkaSinkOptions o;
  o.bootstrap_servers = bootstrap;
  o.topic = "out";
  o.delivery = KafkaDelivery::kExactlyOnce;
  return o;
}

/// Makes `p` a checkpointed job (so its sink sees checkpoints) of an empty source and a Kafka
/// sink with `o`, for an OperatorHarness; returns the sink's node id.
int AddExactlyOnceSink(Pipeline& p, const KafkaSinkOptions& o) {
  p.mutable_config().checkpoint_interval = absl::Seconds(1);
  p.Source(CollectionSource<KafkaMessage>({})).Sink(KafkaSink(o));
  return static_cast<int>(p.graph().nodes.size()) - 1;
}

// The recovery of an exactly-once sink, step by step: a checkpoint's messages whose commit
// never happened (the job died first) are committed by the restored sink; restored again from
// the same checkpoint, it finds their commit marker and does not write them twice.
TEST(KafkaSinkTest, ARestoredSinkCommitsWhatWasNotCommittedAndNothingTwice) {
  DevKafka kafka({"--brokers=1", "--topic=out:2"});
  Pipeline p("sink-recovery");
  const int sink = AddExactlyOnceSink(p, ExactlyOnceTo(kafka.bootstrap()));
  OperatorSnapshot saved;
  {
    testing::OperatorHarness<KafkaMessage, int> h(p.graph(), sink);
    h.Open();
    for (int i = 0; i < 10; ++i) {
      KafkaMessage m;
      m.value = absl::StrCat("m", i);
      h.ProcessElement(m);
    }
    auto snapshot = h.op().SnapshotNow(1);
    ASSERT_OK(snapshot);
    saved = *snapshot;
    h.Close();  // checkpoint 1 completes, but this instance dies before it commits
  }
  EXPECT_TRUE(ReadCommitted(kafka.bootstrap(), "out").empty());
  const auto expected = [] {
    std::vector<std::string> v;
    for (int i = 0; i < 10; ++i) v.push_back(absl::StrCat("m", i));
    std::sort(v.begin(), v.end());
    return v;
  }();
  for (int restore = 0; restore < 2; ++restore) {
    testing::OperatorHarness<KafkaMessage, int> h(p.graph(), sink);
    h.op().InitializeState(RedistributeState({saved}, 0, 1, 128));
    h.Open();
    h.Close();
    EXPECT_EQ(ReadCommitted(kafka.bootstrap(), "out"), expected) << "restore " << restore;
  }
}

// A commit answered only after its timeout goes on at the broker (librdkafka says so): the
// sink resumes it instead of aborting and writing the messages again, which could show them
// twice. (The mock cluster shows aborted messages to read_committed readers too, so a second
// write is visible here either way.)
TEST(KafkaSinkTest, ACommitThatTimesOutIsResumedNotWrittenAgain) {
  DevKafka kafka({"--brokers=1", "--topic=out:2"});
  KafkaSinkOptions o = ExactlyOnceTo(kafka.bootstrap());
  o.properties["transaction.timeout.ms"] = "2000";  // commit calls give up after 2 s
  Pipeline p("sink-slow-commit");
  const int sink = AddExactlyOnceSink(p, o);
  testing::OperatorHarness<KafkaMessage, int> h(p.graph(), sink);
  h.Open();
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) {
    KafkaMessage m;
    m.value = absl::StrCat("m", i);
    expected.push_back(m.value);
    h.ProcessElement(m);
  }
  std::sort(expected.begin(), expected.end());
  ASSERT_OK(h.op().SnapshotNow(1));
  // The next EndTxn request (API key 26) answered after 5 s: the commit call gives up after
  // 2 s with the commit still going on.
  ASSERT_EQ(kafka.Command("request-error-rtts 1 26 NO_ERROR:5000"), "ok");
  h.op().NotifyCheckpointComplete(1);
  EXPECT_GE(h.metrics().GetCounter("kafka_commits_resumed").value(), 1);
  EXPECT_EQ(h.metrics().GetCounter("kafka_transactions_committed").value(), 1);
  h.Close();
  EXPECT_EQ(ReadCommitted(kafka.bootstrap(), "out"), expected);
}

/// Words w0..w49 over two partitions; a keyed running count per word; "word:count" to `out`.
class KafkaEndToEndTest : public ::testing::Test {
 protected:
  static constexpr int kPerPartition = 2000;
  void SetUp() override {
    for (int p = 0; p < 2; ++p) {
      std::vector<std::string> words;
      for (int i = 0; i < kPerPartition; ++i) words.push_back(absl::StrCat("w", (i * 7 + p) % 50));
      kafka_.Produce("in", p, words);
      for (const auto& w : words) ++occurrences_[w];
    }
  }
  std::vector<std::string> Expected() const {
    std::vector<std::string> out;
    for (const auto& [w, n] : occurrences_) {
      for (int c = 1; c <= n; ++c) out.push_back(absl::StrCat(w, ":", c));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  absl::StatusOr<JobResult> RunWithChaos(KafkaDelivery delivery) {
    KafkaSourceOptions in;
    in.bootstrap_servers = kafka_.bootstrap();
    in.topics = {"in"};
    in.bounded = true;
    KafkaSinkOptions out;
    out.bootstrap_servers = kafka_.bootstrap();
    out.topic = "out";
    out.delivery = delivery;
    Pipeline p("kafka-e2e");
    testing::CrashThreeTimes(p.mutable_config(), dir_.Join("ck"));
    p.Source(KafkaSource(in))
        .Parallelism(2)
        .Map([](const KafkaRecord& r) { return std::make_pair(r.value, int64_t{1}); })
        .KeyBy([](const std::pair<std::string, int64_t>& e) { return e.first; })
        .Reduce(
            [](const std::pair<std::string, int64_t>& a, const std::pair<std::string, int64_t>& b) {
              return std::make_pair(a.first, a.second + b.second);
            })
        .Parallelism(2)
        .Map([](const std::pair<std::string, int64_t>& e) {
          KafkaMessage m;
          m.key = e.first;
          m.value = absl::StrCat(e.first, ":", e.second);
          return m;
        })
        .Sink(KafkaSink(out))
        .Parallelism(2);
    return ExecuteLocally(p);
  }

  DevKafka kafka_{{"--brokers=3", "--topic=in:2", "--topic=out:3"}};
  testing::TempDir dir_;
  std::map<std::string, int> occurrences_;
};

TEST_F(KafkaEndToEndTest, ExactlyOnceUnderChaos) {
  auto r = RunWithChaos(KafkaDelivery::kExactlyOnce);
  ASSERT_OK(r);
  EXPECT_GE(r->restarts, 3) << "the chaos must have struck";
  EXPECT_EQ(ReadCommitted(kafka_.bootstrap(), "out"), Expected());
}

TEST_F(KafkaEndToEndTest, AtLeastOnceUnderChaosLosesNothing) {
  auto r = RunWithChaos(KafkaDelivery::kAtLeastOnce);
  ASSERT_OK(r);
  const auto got = ReadCommitted(kafka_.bootstrap(), "out");
  const std::set<std::string> distinct(got.begin(), got.end());
  const auto expected = Expected();
  EXPECT_EQ(distinct, std::set<std::string>(expected.begin(), expected.end()));
  EXPECT_GE(got.size(), expected.size());
}

// --- windowed_stats reading Kafka ---

class WindowedStatsFromKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(3);
    for (int i = 0; i < 20'000; ++i) {
      const int64_t ts = 1700000000000 + i * 10 + static_cast<int64_t>(rng() % 2000);
      lines_.push_back(
          absl::StrCat("sensor-", rng() % 20, ",", ts, ",", static_cast<int>(rng() % 101) - 50));
    }
    std::string csv;
    for (const auto& l : lines_) absl::StrAppend(&csv, l, "\n");
    testing::WriteFile(dir_.Join("in.csv"), csv);
  }
  std::vector<std::string> Args(const std::string& input, const std::string& output) {
    return {testing::BuildDir() + "/examples/windowed_stats",
            "--input=" + input,
            "--output=" + output,
            "--window=tumbling:10s",
            "--out-of-orderness=5s",
            "--parallelism=2"};
  }
  std::vector<std::string> Run(const std::vector<std::string>& argv, const std::string& out) {
    std::string command;
    for (const auto& a : argv) absl::StrAppend(&command, "'", a, "' ");
    auto r = testing::RunCommand(command);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto lines = testing::ReadPartFileLines(out);
    std::sort(lines.begin(), lines.end());
    return lines;
  }

  /// Runs `argv` slowed to 1,000 records/s (20 s for all, so that it is surely killed
  /// midway even on a loaded machine), SIGKILLs it once it has completed 3 checkpoints into
  /// `checkpoints` and `ready()` holds, and returns the arguments that resume it from there.
  std::vector<std::string> RunUntilKilled(std::vector<std::string> argv,
                                          const std::string& checkpoints,
                                          const std::function<bool()>& ready) {
    for (const std::string& a : {std::string("--checkpoint-interval=50ms"),
                                 "--checkpoint-dir=" + checkpoints, std::string("--group=g")}) {
      argv.push_back(a);
    }
    std::vector<std::string> first = argv;
    first.push_back("--max-source-rate=1000");
    testing::ChildProcess process(first, dir_.Join("first.log"));
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          std::error_code ec;
          int completed = 0;
          for (const auto& e :
               std::filesystem::directory_iterator(checkpoints + "/windowed_stats", ec)) {
            completed += std::filesystem::exists(e.path() / "_metadata");
          }
          return (completed >= 3 && ready()) || !process.Running();
        },
        20'000));
    EXPECT_TRUE(process.Running()) << testing::ReadFile(dir_.Join("first.log"));
    process.Signal(SIGKILL);
    EXPECT_EQ(process.Wait(), 128 + SIGKILL);
    argv.push_back("--from-savepoint=" + checkpoints + "/windowed_stats");  // at full speed
    return argv;
  }

  testing::TempDir dir_;
  std::vector<std::string> lines_;
};

TEST_F(WindowedStatsFromKafkaTest, OutputEqualsThatOfTheSameLinesFromAFile) {
  DevKafka kafka({"--brokers=1", "--topic=readings:1"});
  kafka.Produce("readings", 0, lines_);
  const auto expected =
      Run(Args(dir_.Join("in.csv"), dir_.Join("from-file")), dir_.Join("from-file"));
  ASSERT_GT(expected.size(), 100u);
  const auto got =
      Run(Args(absl::StrCat("kafka://", kafka.bootstrap(), "/readings"), dir_.Join("from-kafka")),
          dir_.Join("from-kafka"));
  EXPECT_EQ(got, expected);
}

// Offsets are checkpointed state: killed with SIGKILL and resumed from its checkpoint
// directory, the job continues exactly after the last checkpoint.
TEST_F(WindowedStatsFromKafkaTest, KilledProcessResumesFromItsCheckpointedOffsets) {
  DevKafka kafka({"--brokers=1", "--topic=readings:1"});
  kafka.Produce("readings", 0, lines_);
  const auto expected =
      Run(Args(dir_.Join("in.csv"), dir_.Join("from-file")), dir_.Join("from-file"));
  const std::string out = dir_.Join("out");
  const auto resume =
      RunUntilKilled(Args(absl::StrCat("kafka://", kafka.bootstrap(), "/readings"), out),
                     dir_.Join("ck"), [] { return true; });
  EXPECT_LT(testing::ReadPartFileLines(out).size(), expected.size()) << "killed before the end";
  EXPECT_EQ(Run(resume, out), expected);
}

/// The lines of `expected` missing from `actual`, and the lines of `actual` beyond `expected`
/// (both with multiplicity).
std::pair<std::vector<std::string>, std::vector<std::string>> MissingAndExtra(
    std::vector<std::string> actual, std::vector<std::string> expected) {
  std::sort(actual.begin(), actual.end());
  std::sort(expected.begin(), expected.end());
  std::vector<std::string> missing, extra;
  std::set_difference(expected.begin(), expected.end(), actual.begin(), actual.end(),
                      std::back_inserter(missing));
  std::set_difference(actual.begin(), actual.end(), expected.begin(), expected.end(),
                      std::back_inserter(extra));
  return {missing, extra};
}

/// The newest checkpoint of each transactional id's commit markers in the sink's marker topic.
std::map<std::string, int64_t> NewestCommitMarkers(const std::string& bootstrap) {
  std::map<std::string, int64_t> newest;
  for (const std::string& line :
       SortedValues(Bounded(bootstrap, "sluice-commits"), 1,
                    [](const KafkaRecord& r) { return absl::StrCat(r.key, " ", r.value); })) {
    const std::vector<std::string> owner_and_checkpoint = absl::StrSplit(line, ' ');
    int64_t checkpoint = -1;
    EXPECT_TRUE(absl::SimpleAtoi(owner_and_checkpoint[1], &checkpoint)) << line;
    newest[owner_and_checkpoint[0]] = std::max(newest[owner_and_checkpoint[0]], checkpoint);
  }
  return newest;
}

// Kafka in, Kafka out in transactions: killed with SIGKILL once firings were committed (and
// others are buffered for the next checkpoint, or in a transaction being committed), then
// resumed, every firing is committed exactly once.
//
// The mock cluster keeps no transaction state (its last stable offset is the end of the log and
// it lists no aborted transactions), so its read_committed readers see aborted messages too. A
// kill in the middle of a transaction leaves part of it readable here, where a real broker
// would abort it when the successor fences its transactional id; the resumed run then writes
// that transaction again in full. So the check is: nothing missing, and every line beyond the
// failure-free run's is one the first run wrote in a transaction that no commit marker covered
// and that the resumed run therefore wrote again.
TEST_F(WindowedStatsFromKafkaTest, KilledProcessWritingKafkaTransactionsCommitsEachFiringOnce) {
  DevKafka kafka({"--brokers=3", "--topic=readings:1", "--topic=stats:3"});
  kafka.Produce("readings", 0, lines_);
  // Sliding windows that fire every 100 ms of event time (10 records): every checkpoint's
  // transaction holds firings.
  const std::string window = "--window=sliding:2s:100ms";
  auto from_file = Args(dir_.Join("in.csv"), dir_.Join("from-file"));
  from_file[3] = window;
  const auto expected = Run(from_file, dir_.Join("from-file"));
  auto args = Args(absl::StrCat("kafka://", kafka.bootstrap(), "/readings"),
                   absl::StrCat("kafka://", kafka.bootstrap(), "/stats?delivery=exactly_once"));
  args[3] = window;
  const auto resume = RunUntilKilled(
      args, dir_.Join("ck"), [&] { return !ReadCommitted(kafka.bootstrap(), "stats").empty(); });
  const auto written_before = ReadCommitted(kafka.bootstrap(), "stats");
  const auto markers_before = NewestCommitMarkers(kafka.bootstrap());
  EXPECT_LT(written_before.size(), expected.size()) << "killed before the end";
  std::string command;
  for (const auto& a : resume) absl::StrAppend(&command, "'", a, "' ");
  auto r = testing::RunCommand(command);
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // The transactions the restored sinks wrote again, as their log names them.
  const std::regex rewrite(
      "committing the transaction of checkpoint ([0-9]+) \\(([0-9]+) messages\\) that (\\S+) "
      "had not committed");
  size_t rewritten_messages = 0;
  for (std::sregex_iterator it(r.output.begin(), r.output.end(), rewrite), end; it != end; ++it) {
    const std::string owner = (*it)[3];
    const int64_t checkpoint = std::stoll((*it)[1]);
    rewritten_messages += std::stoul((*it)[2]);
    const auto marker = markers_before.find(owner);
    EXPECT_TRUE(marker == markers_before.end() || marker->second < checkpoint)
        << owner << " wrote checkpoint " << checkpoint << " again, but its commit marker of "
        << marker->second << " was there";
  }
  const auto committed = ReadCommitted(kafka.bootstrap(), "stats");
  const auto [missing, extra] = MissingAndExtra(committed, expected);
  const std::string difference =
      absl::StrCat(committed.size(), " lines, ", expected.size(), " expected; missing ",
                   missing.size(), " (", absl::StrJoin(missing, " | "), "); extra ", extra.size(),
                   " (", absl::StrJoin(extra, " | "), ")\nthe resumed run:\n", r.output);
  EXPECT_TRUE(missing.empty()) << difference;
  EXPECT_LE(extra.size(), rewritten_messages) << difference;
  EXPECT_TRUE(MissingAndExtra(written_before, extra).first.empty())
      << "every extra line was written before the kill: " << difference;
  const std::set<std::string> expected_lines(expected.begin(), expected.end());
  for (const std::string& line : extra) {
    EXPECT_TRUE(expected_lines.contains(line)) << "not a firing of the failure-free run: " << line;
  }
}

}  // namespace
}  // namespace sluice
