// The Kafka source against `sluice dev kafka` (librdkafka's Kafka-protocol mock cluster in a
// process of its own), with data produced by kcat.

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/dev_kafka.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::DevKafka;

std::vector<std::string> Numbered(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(absl::StrCat(prefix, "-", i));
  return out;
}

/// Reads `topic` to its current end with a bounded source and returns the message values.
std::vector<std::string> ReadAll(const std::string& bootstrap, const std::string& topic,
                                 int parallelism,
                                 KafkaStartingOffsets start = KafkaStartingOffsets::kEarliest) {
  KafkaSourceOptions o;
  o.bootstrap_servers = bootstrap;
  o.topics = {topic};
  o.bounded = true;
  o.starting_offsets = start;
  Pipeline p("read-kafka");
  auto out = std::make_shared<CollectedRecords<std::string>>();
  p.Source(KafkaSource(o))
      .Parallelism(parallelism)
      .Map([](const KafkaRecord& r) { return r.value; })
      .Sink(CollectSink<std::string>(out));
  EXPECT_OK(ExecuteLocally(p));
  auto values = out->Values();
  std::sort(values.begin(), values.end());
  return values;
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

TEST(KafkaUrlTest, ParsesTopicsGroupAndPassThroughSettings) {
  auto o = ParseKafkaUrl(
      "kafka://h1:9092,h2:9092/a,b?group=g&starting_offsets=committed&reset=latest&bounded=true"
      "&fetch.max.bytes=1000");
  ASSERT_OK(o);
  EXPECT_EQ(o->bootstrap_servers, "h1:9092,h2:9092");
  EXPECT_EQ(o->topics, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(o->group_id, "g");
  EXPECT_EQ(o->starting_offsets, KafkaStartingOffsets::kCommitted);
  EXPECT_EQ(o->reset, KafkaStartingOffsets::kLatest);
  EXPECT_TRUE(o->bounded);
  EXPECT_EQ(o->properties.at("fetch.max.bytes"), "1000");
  EXPECT_THAT(std::string(ParseKafkaUrl("kafka://h:1").status().message()),
              HasSubstr("expected kafka://HOST:PORT"));
  EXPECT_THAT(std::string(ParseKafkaUrl("kafka://h:1/t?starting_offsets=soon").status().message()),
              HasSubstr("starting_offsets: earliest, latest or committed"));
}

// --- windowed_stats reading Kafka ---

class WindowedStatsFromKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(3);
    for (int i = 0; i < 20'000; ++i) {
      const int64_t ts = 1700000000000 + i * 10 + static_cast<int64_t>(rng() % 2000);
      lines_.push_back(absl::StrCat("sensor-", rng() % 20, ",", ts, ",",
                                    static_cast<int>(rng() % 101) - 50));
    }
    std::string csv;
    for (const auto& l : lines_) absl::StrAppend(&csv, l, "\n");
    testing::WriteFile(dir_.Join("in.csv"), csv);
  }
  std::vector<std::string> Args(const std::string& input, const std::string& output) {
    return {testing::BuildDir() + "/examples/windowed_stats", "--input=" + input,
            "--output=" + output, "--window=tumbling:10s", "--out-of-orderness=5s",
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

  testing::TempDir dir_;
  std::vector<std::string> lines_;
};

TEST_F(WindowedStatsFromKafkaTest, OutputEqualsThatOfTheSameLinesFromAFile) {
  DevKafka kafka({"--brokers=1", "--topic=readings:1"});
  kafka.Produce("readings", 0, lines_);
  const auto expected = Run(Args(dir_.Join("in.csv"), dir_.Join("from-file")), dir_.Join("from-file"));
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
  const auto expected = Run(Args(dir_.Join("in.csv"), dir_.Join("from-file")), dir_.Join("from-file"));
  const std::string out = dir_.Join("out");
  const std::string checkpoints = dir_.Join("ck");
  std::vector<std::string> argv =
      Args(absl::StrCat("kafka://", kafka.bootstrap(), "/readings"), out);
  for (const std::string& a : {std::string("--checkpoint-interval=50ms"),
                               "--checkpoint-dir=" + checkpoints,
                               std::string("--max-source-rate=5000"), std::string("--group=g")}) {
    argv.push_back(a);
  }
  {
    testing::ChildProcess process(argv, dir_.Join("first.log"));
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          std::error_code ec;
          int completed = 0;
          for (const auto& e :
               std::filesystem::directory_iterator(checkpoints + "/windowed_stats", ec)) {
            completed += std::filesystem::exists(e.path() / "_metadata");
          }
          return completed >= 3 || !process.Running();
        },
        20'000));
    ASSERT_TRUE(process.Running()) << testing::ReadFile(dir_.Join("first.log"));
    process.Signal(SIGKILL);
    EXPECT_EQ(process.Wait(), 128 + SIGKILL);
  }
  EXPECT_LT(testing::ReadPartFileLines(out).size(), expected.size()) << "killed before the end";
  argv.push_back("--from-savepoint=" + checkpoints + "/windowed_stats");
  EXPECT_EQ(Run(argv, out), expected);
}

}  // namespace
}  // namespace sluice
