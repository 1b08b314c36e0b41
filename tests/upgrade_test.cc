// `sluice upgrade` on a cluster of real processes: a Kafka -> Kafka exactly-once job
// (tests/upgrade_job.cc) upgraded twice mid-stream, once to a version whose state has an
// added field, leaves every record in the output topic exactly once with its key's count
// carried across; a version whose state changed a field's type is refused before anything
// stops; a version that fails once started is rolled back to the old binary.

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sluice/jobmanager/jobmanager_client.h"
#include "sluice/sluice.h"
#include "sluice/testing/dev_kafka.h"
#include "sluice/testing/local_cluster.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using testing::Sluice;

constexpr int kPartitions = 4;

class UpgradeTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) {
      tms_.push_back(std::make_unique<testing::TaskManagerProcess>(jm_.address(), 4,
                                                                   absl::StrCat("tm-", i + 1)));
    }
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          return Sluice("status --jobmanager=" + jm_.address()).output.find("slots: 8 total") !=
                 std::string::npos;
        },
        10'000));
  }

  std::string JobBinary(const std::string& version) const {
    return absl::StrCat(testing::BuildDir(), "/tests/upgrade_", version, ".so");
  }
  std::string JobArgs() const {
    return absl::StrCat("--kafka=", kafka_.bootstrap(), " --in=in --out=out",
                        " --checkpoint-interval=200ms --checkpoint-dir=", dir_.Join("ck"),
                        " --savepoint-dir=", dir_.Join("sp"), " --state-backend=", GetParam());
  }
  /// Records next_..next_+n-1, record i to partition i mod 4 (the job's key): each key's
  /// records arrive in order.
  void Produce(int n) {
    std::vector<std::vector<std::string>> parts(kPartitions);
    for (int i = next_; i < next_ + n; ++i) parts[i % kPartitions].push_back(std::to_string(i));
    for (int p = 0; p < kPartitions; ++p) kafka_.Produce("in", p, parts[p]);
    next_ += n;
  }
  /// The committed values of topic "out" (read_committed).
  std::vector<std::string> Output() {
    KafkaSourceOptions o;
    o.bootstrap_servers = kafka_.bootstrap();
    o.topics = {"out"};
    o.bounded = true;
    o.properties["isolation.level"] = "read_committed";
    Pipeline p("read-out");
    p.SetParallelism(1);
    auto values = std::make_shared<CollectedRecords<std::string>>();
    p.Source(KafkaSource(o))
        .Map([](const KafkaRecord& r) { return r.value; })
        .Sink(CollectSink<std::string>(values));
    EXPECT_OK(ExecuteLocally(p));
    return values->Values();
  }
  /// Waits until the output holds `n` records; returns it.
  std::vector<std::string> OutputOf(size_t n) {
    std::vector<std::string> out;
    testing::WaitFor([&] { return (out = Output()).size() >= n; }, 60'000);
    return out;
  }
  std::string Submit(const std::string& version) {
    auto run = Sluice(absl::StrCat("run --detached --jobmanager=", jm_.address(), " ",
                                   JobBinary(version), " --parallelism=2 -- ", JobArgs()));
    EXPECT_EQ(run.exit_code, 0) << run.output;
    const std::string marker = "submitted ";
    const size_t at = run.output.find(marker);
    if (at == std::string::npos) return "";
    return run.output.substr(at + marker.size(),
                             run.output.find(' ', at + marker.size()) - at - marker.size());
  }
  testing::CommandResult Upgrade(const std::string& job, const std::string& version,
                                 const std::string& flags = "") {
    return Sluice(absl::StrCat("upgrade --jobmanager=", jm_.address(), " ", job, " ",
                               JobBinary(version), " ", flags, " -- ", JobArgs()));
  }
  /// The job id `sluice upgrade` said runs now ("... running: ID replaces ...").
  static std::string NewJobId(const std::string& output, const std::string& marker) {
    const size_t at = output.find(marker);
    if (at == std::string::npos) return "";
    const std::string rest = output.substr(at + marker.size());
    return rest.substr(0, rest.find(' '));
  }
  cluster::JobStatus JobStatusOf(const std::string& id) {
    cluster::JobManagerClient client(jm_.address());
    auto job = client.Job(id);
    EXPECT_OK(job);
    return job.ok() ? *job : cluster::JobStatus();
  }
  /// Waits until job `id` has completed a checkpoint (it runs, its state is stored).
  void AwaitCheckpoint(const std::string& id) {
    ASSERT_TRUE(
        testing::WaitFor([&] { return JobStatusOf(id).completed_checkpoints() > 0; }, 30'000))
        << id;
  }

  testing::TempDir dir_;
  testing::DevKafka kafka_{{"--topic=in:4", "--topic=out:2"}};
  testing::JobManagerProcess jm_{{"--heartbeat-interval=100ms", "--heartbeat-timeout=2s"}};
  std::vector<std::unique_ptr<testing::TaskManagerProcess>> tms_;
  int next_ = 0;
};

/// Every record 0..n-1 exactly once, as "i:k" where k is the count of its key (i mod 4) so
/// far: i / 4 + 1 when each key's state carried over every upgrade.
void ExpectEachRecordOnceWithItsCount(const std::vector<std::string>& out, int n) {
  std::map<int, int> seen;
  for (const std::string& line : out) {
    const std::vector<std::string> f = absl::StrSplit(line, ':');
    ASSERT_EQ(f.size(), 2u) << line;
    int i = 0, count = 0;
    ASSERT_TRUE(absl::SimpleAtoi(f[0], &i) && absl::SimpleAtoi(f[1], &count)) << line;
    ++seen[i];
    EXPECT_EQ(count, i / kPartitions + 1) << line;
  }
  EXPECT_EQ(static_cast<int>(out.size()), n);
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen[i], 1) << "record " << i;
}

TEST_P(UpgradeTest, TwoUpgradesMidStreamLoseAndRepeatNothing) {
  const std::string first = Submit("v1");
  ASSERT_FALSE(first.empty());
  Produce(2'000);
  AwaitCheckpoint(first);

  // The same binary again, at another parallelism.
  auto once = Upgrade(first, "v1", "--parallelism=3");
  ASSERT_EQ(once.exit_code, 0) << once.output;
  EXPECT_THAT(once.output, HasSubstr("restores the latest checkpoint of " + first));
  EXPECT_THAT(once.output, HasSubstr("2/4 stop: " + first + " stopped with savepoint "));
  const std::string second = NewJobId(once.output, "4/4 running: ");
  ASSERT_FALSE(second.empty()) << once.output;
  EXPECT_EQ(JobStatusOf(first).state(), cluster::FINISHED);
  Produce(2'000);

  // Version 2: a field added to the state.
  auto twice = Upgrade(second, "v2");
  ASSERT_EQ(twice.exit_code, 0) << twice.output;
  const std::string third = NewJobId(twice.output, "4/4 running: ");
  ASSERT_FALSE(third.empty()) << twice.output;
  Produce(2'000);

  ExpectEachRecordOnceWithItsCount(OutputOf(6'000), 6'000);
  EXPECT_EQ(JobStatusOf(third).state(), cluster::RUNNING);
  EXPECT_EQ(JobStatusOf(third).restarts(), 0);

  // Its keyed state in `sluice status`, over both subtasks at the newest checkpoint: on the
  // heap exactly one entry per key (i mod 4), each at least its 8-byte key; RocksDB reports
  // its estimates (which count overwritten versions not yet compacted).
  const std::string expected =
      GetParam() == "heap" ? "state count/seen: 4 entries" : "state count/seen: ";
  std::string status;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        status = Sluice("status --jobmanager=" + jm_.address() + " " + third).output;
        return status.find(expected) != std::string::npos;
      },
      20'000))
      << status;
  if (GetParam() != "heap") return;
  const auto json = nlohmann::json::parse(
      Sluice("status --json --jobmanager=" + jm_.address() + " " + third).output);
  int64_t entries = 0, bytes = 0;
  for (const auto& v : json["vertices"]) {
    for (const auto& state : v["keyed-states"]) {
      if (state["operator"] == "count" && state["state"] == "seen") {
        entries += state["entries"].get<int64_t>();
        bytes += state["bytes"].get<int64_t>();
      }
    }
  }
  EXPECT_EQ(entries, 4) << json.dump();
  EXPECT_GT(bytes, 4 * 8) << json.dump();
}

TEST_P(UpgradeTest, AnIncompatibleStateIsRefusedBeforeAnythingStops) {
  const std::string job = Submit("v1");
  Produce(500);
  AwaitCheckpoint(job);
  auto refused = Upgrade(job, "v3");
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output,
              HasSubstr("operator 'count' (KeyedProcess): state 'seen' cannot be restored: field "
                        "'count' was i64 and is now f64"));
  EXPECT_THAT(refused.output, HasSubstr("nothing was stopped: " + job + " runs on"));
  EXPECT_THAT(refused.output, ::testing::Not(HasSubstr("2/4")));
  EXPECT_EQ(JobStatusOf(job).state(), cluster::RUNNING);
  Produce(500);
  ExpectEachRecordOnceWithItsCount(OutputOf(1'000), 1'000);
}

TEST_P(UpgradeTest, ANewVersionThatFailsIsRolledBackToTheOldBinary) {
  const std::string job = Submit("v1");
  Produce(500);
  AwaitCheckpoint(job);
  ExpectEachRecordOnceWithItsCount(OutputOf(500), 500);
  Produce(500);  // waiting for the new version, which fails on the first of them
  auto upgrade = Upgrade(job, "broken", "--timeout=60s");
  EXPECT_EQ(upgrade.exit_code, 1) << upgrade.output;
  EXPECT_THAT(upgrade.output, HasSubstr("4/4 not running: "));
  EXPECT_THAT(upgrade.output, HasSubstr("version 4 fails on every record"));
  const std::string back = NewJobId(upgrade.output, "rolled back: ");
  ASSERT_FALSE(back.empty()) << upgrade.output;
  Produce(500);
  ExpectEachRecordOnceWithItsCount(OutputOf(1'500), 1'500);
  EXPECT_EQ(JobStatusOf(back).state(), cluster::RUNNING);
}

TEST(UpgradeCommandTest, LocalSaysHowAndBadArgumentsAreNamed) {
  const auto local = Sluice("upgrade --local job-1 new.so");
  EXPECT_EQ(local.exit_code, 2);
  EXPECT_THAT(local.output, HasSubstr("SIGTERM"));
  EXPECT_THAT(local.output, HasSubstr("--from-savepoint=PATH"));
  const auto missing = Sluice("upgrade job-1");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("give JOB_ID and NEW_JOB.so"));
  const auto timeout = Sluice("upgrade job-1 new.so --timeout=soon");
  EXPECT_EQ(timeout.exit_code, 2);
  EXPECT_THAT(timeout.output, HasSubstr("--timeout must be a duration"));
  // Nobody listening: named, nothing done.
  testing::ClosedPort closed;
  const auto unreachable =
      Sluice(absl::StrCat("upgrade --jobmanager=127.0.0.1:", closed.port(), " job-1 x.so"));
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_THAT(unreachable.output, HasSubstr("127.0.0.1:"));
}

INSTANTIATE_TEST_SUITE_P(Backends, UpgradeTest, ::testing::Values("heap", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sluice
