// The seeds' aggregator (examples/aggregator) end to end: events produced to `sluice dev kafka`
// by produce_feedback, read back from the topic with kcat and aggregated here by an independent
// model; the job's points in a real influxd must equal the model's, with and without crashes.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sluice/testing/dev_kafka.h"
#include "sluice/testing/influx_server.h"
#include "sluice/testing/local_cluster.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using nlohmann::json;

/// One point: the fields the job writes, as InfluxDB answers them.
struct Point {
  int64_t unique_users = 0, events = 0, bytes_p2p = 0, bytes_cdn = 0;
  double offload_ratio = 0;
  int64_t rebuffer_p50_ms = 0, rebuffer_p95_ms = 0;
  bool operator==(const Point& o) const {
    return std::tie(unique_users, events, bytes_p2p, bytes_cdn, rebuffer_p50_ms, rebuffer_p95_ms) ==
               std::tie(o.unique_users, o.events, o.bytes_p2p, o.bytes_cdn, o.rebuffer_p50_ms,
                        o.rebuffer_p95_ms) &&
           std::abs(offload_ratio - o.offload_ratio) < 1e-9;
  }
};
std::ostream& operator<<(std::ostream& os, const Point& p) {
  return os << "{users " << p.unique_users << ", events " << p.events << ", p2p " << p.bytes_p2p
            << ", cdn " << p.bytes_cdn << ", ratio " << p.offload_ratio << ", p50 "
            << p.rebuffer_p50_ms << ", p95 " << p.rebuffer_p95_ms << "}";
}
using Points = std::map<std::pair<std::string, int64_t>, Point>;  // (key, window end) -> point

/// The event in `text` if it follows the schema (every field, of its type and range).
std::optional<json> ValidEvent(const std::string& text) {
  json e = json::parse(text, nullptr, false);
  if (e.is_discarded() || !e.is_object()) return std::nullopt;
  for (const char* f : {"stream_id", "user_id", "isp", "platform"}) {
    if (!e.contains(f) || !e[f].is_string() || e[f].get<std::string>().empty()) {
      return std::nullopt;
    }
  }
  for (const char* f : {"ts", "bytes_p2p", "bytes_cdn", "rebuffer_ms"}) {
    if (!e.contains(f) || !e[f].is_number_integer() || e[f].get<int64_t>() < 0) {
      return std::nullopt;
    }
  }
  if (e["ts"].get<int64_t>() <= 0) return std::nullopt;
  return e;
}

/// The nearest-rank percentile of `values`: the ceil(p * n)th smallest.
int64_t Percentile(std::vector<int64_t> values, double p) {
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::max<size_t>(rank, 1) - 1];
}

/// The model: every valid message aggregated by `dimension` and tumbling window of `window_ms`;
/// `malformed` gets the others.
Points Expected(const std::vector<std::string>& messages, const std::string& dimension,
                int64_t window_ms, std::vector<std::string>* malformed) {
  struct Window {
    std::set<std::string> users;
    int64_t events = 0, p2p = 0, cdn = 0;
    std::vector<int64_t> rebuffer;
  };
  std::map<std::pair<std::string, int64_t>, Window> windows;
  for (const std::string& m : messages) {
    std::optional<json> e = ValidEvent(m);
    if (!e) {
      malformed->push_back(m);
      continue;
    }
    const int64_t ts = (*e)["ts"];
    Window& w = windows[{(*e)[dimension], ts - ts % window_ms + window_ms}];
    w.users.insert((*e)["user_id"].get<std::string>());
    ++w.events;
    w.p2p += (*e)["bytes_p2p"].get<int64_t>();
    w.cdn += (*e)["bytes_cdn"].get<int64_t>();
    w.rebuffer.push_back((*e)["rebuffer_ms"]);
  }
  Points out;
  for (const auto& [key, w] : windows) {
    out[key] = Point{static_cast<int64_t>(w.users.size()),
                     w.events,
                     w.p2p,
                     w.cdn,
                     static_cast<double>(w.p2p) / static_cast<double>(w.p2p + w.cdn),
                     Percentile(w.rebuffer, 0.5),
                     Percentile(w.rebuffer, 0.95)};
  }
  return out;
}

/// What InfluxDB holds in `db`'s measurement feedback, by the tag `dimension`.
Points Stored(testing::InfluxServer& influx, const std::string& db, const std::string& dimension) {
  const json answer = json::parse(influx.Query("SELECT * FROM feedback GROUP BY " + dimension, db));
  Points out;
  const json& result = answer["results"][0];
  if (!result.contains("series")) return out;
  for (const json& series : result["series"]) {
    const std::vector<std::string> columns = series["columns"];
    for (const json& row : series["values"]) {
      std::map<std::string, json> r;
      for (size_t i = 0; i < columns.size(); ++i) r[columns[i]] = row[i];
      out[{series["tags"][dimension], r["time"]}] =
          Point{r["unique_users"],  r["events"],          r["bytes_p2p"],      r["bytes_cdn"],
                r["offload_ratio"], r["rebuffer_p50_ms"], r["rebuffer_p95_ms"]};
    }
  }
  return out;
}

class AggregatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kafka_ = std::make_unique<testing::DevKafka>(std::vector<std::string>{"--topic=feedback:4"});
  }

  /// Produces `events` events with seed `seed` (and `extra` arguments); returns every message
  /// of the topic as kcat reads it back.
  std::vector<std::string> Produce(int events, int seed, const std::string& extra = "") {
    auto produced = testing::RunCommand(absl::StrCat(
        testing::BuildDir(), "/examples/produce_feedback --kafka=", kafka_->bootstrap(),
        " --topic=feedback --events=", events, " --seed=", seed,
        " --late-fraction=0.01 --malformed-fraction=0.005 ", extra));
    EXPECT_EQ(produced.exit_code, 0) << produced.output;
    auto read = testing::RunCommand(absl::StrCat("kcat -C -b ", kafka_->bootstrap(),
                                                 " -t feedback -o beginning -e -q -f '%s\\n'"));
    EXPECT_EQ(read.exit_code, 0) << read.output;
    std::vector<std::string> messages = absl::StrSplit(read.output, '\n', absl::SkipEmpty());
    EXPECT_EQ(messages.size(), static_cast<size_t>(events));
    return messages;
  }

  /// Runs the aggregator on the mini-cluster into database `db`, with `extra` arguments;
  /// returns what it printed.
  std::string RunLocally(const std::string& db, const std::string& dimension,
                         const std::string& extra) {
    influx_.CreateDatabase(db);
    auto r = testing::Sluice(absl::StrCat(
        "run --local ", testing::BuildDir(), "/examples/aggregator.so -- --kafka=",
        kafka_->bootstrap(), " --topic=feedback --influx=", influx_.url(), "/", db,
        " --dimension=", dimension, " --bounded --parallelism=2 --checkpoint-interval=100ms",
        " --checkpoint-dir=", dir_.Join("checkpoints-" + db),
        " --dead-letters=", dir_.Join("dead-" + db), " ", extra));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::DevKafka> kafka_;
  testing::InfluxServer influx_;
};

TEST_F(AggregatorTest, PointsEqualAnIndependentAggregateWithAndWithoutCrashes) {
  const std::vector<std::string> messages = Produce(20'000, 7);
  std::vector<std::string> malformed;
  const Points expected = Expected(messages, "isp", 5 * 60'000, &malformed);
  ASSERT_GT(expected.size(), 50u);
  ASSERT_GT(malformed.size(), 50u);

  RunLocally("clean", "isp", "");
  EXPECT_EQ(Stored(influx_, "clean", "isp"), expected);

  // Task crashes mid-run (the sources throttled so that they happen): restored from
  // checkpoints, the points are the same.
  const std::string crashed =
      RunLocally("crashes", "isp",
                 "--max-source-rate=4000 --chaos-kill-task-every=700ms --chaos-max-failures=3");
  // (The job may finish before its last crash is due.)
  EXPECT_THAT(crashed, ::testing::HasSubstr("'aggregator' restarts (restart 1")) << crashed;
  EXPECT_EQ(Stored(influx_, "crashes", "isp"), expected);

  // Every malformed event is a dead letter with its reason, once.
  std::vector<std::string> letters = testing::ReadPartFileLines(dir_.Join("dead-clean"));
  std::multiset<std::string> dead_values;
  for (const std::string& line : letters) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits('\t', 2));
    ASSERT_EQ(parts.size(), 3u) << line;
    EXPECT_THAT(parts[0], ::testing::StartsWith("feedback/"));
    EXPECT_FALSE(parts[1].empty()) << line;
    dead_values.insert(parts[2]);
  }
  EXPECT_EQ(dead_values, std::multiset<std::string>(malformed.begin(), malformed.end()));
  EXPECT_EQ(testing::ReadPartFileLines(dir_.Join("dead-crashes")).size(), malformed.size());
}

TEST_F(AggregatorTest, OnAClusterAKilledTaskManagerChangesNoPoint) {
  const std::vector<std::string> messages = Produce(20'000, 3);
  std::vector<std::string> malformed;
  const Points expected = Expected(messages, "stream_id", 5 * 60'000, &malformed);
  influx_.CreateDatabase("cluster");
  testing::JobManagerProcess jm;
  testing::TaskManagerProcess a(jm.address(), 2, "tm-a");
  testing::TaskManagerProcess b(jm.address(), 2, "tm-b");
  const std::string checkpoints = dir_.Join("checkpoints");
  // Followed by `sluice run` as a user would; throttled to about 5 s of input.
  testing::ChildProcess run(
      {testing::BuildDir() + "/bin/sluice", "run", "--jobmanager=" + jm.address(),
       testing::BuildDir() + "/examples/aggregator.so", "--parallelism=2", "--",
       "--kafka=" + kafka_->bootstrap(), "--topic=feedback",
       "--influx=" + influx_.url() + "/cluster", "--dimension=stream_id", "--bounded",
       "--checkpoint-interval=100ms", "--checkpoint-dir=" + checkpoints, "--max-source-rate=2000"},
      dir_.Join("run.log"));
  ASSERT_TRUE(testing::WaitFor(
      [&] { return testing::HasCompletedCheckpoint(checkpoints + "/aggregator"); }, 30000))
      << jm.log() << testing::ReadFile(dir_.Join("run.log"));
  b.process().Signal(SIGKILL);
  EXPECT_EQ(run.Wait(), 0) << testing::ReadFile(dir_.Join("run.log")) << jm.log();
  EXPECT_THAT(jm.log(), ::testing::HasSubstr("TaskManager 'tm-b' was lost"));
  EXPECT_THAT(testing::ReadFile(dir_.Join("run.log")), ::testing::HasSubstr("job-1 restarting"))
      << "the job ran on tm-b too (spread over the TaskManagers)";
  EXPECT_EQ(Stored(influx_, "cluster", "stream_id"), expected);
}

TEST_F(AggregatorTest, InfluxDbDownForAMinuteMidRunChangesNoPoint) {
  const std::vector<std::string> messages = Produce(20'000, 5);
  std::vector<std::string> malformed;
  const Points expected = Expected(messages, "platform", 5 * 60'000, &malformed);
  influx_.CreateDatabase("outage");
  const std::string checkpoints = dir_.Join("checkpoints");
  // Throttled to about 10 s of input; the sink retries for as long as it takes (the default).
  testing::ChildProcess run(
      {testing::BuildDir() + "/bin/sluice", "run", "--local",
       testing::BuildDir() + "/examples/aggregator.so", "--", "--kafka=" + kafka_->bootstrap(),
       "--topic=feedback", "--influx=" + influx_.url() + "/outage?flush_interval=100ms",
       "--dimension=platform", "--bounded", "--parallelism=2", "--checkpoint-interval=200ms",
       "--checkpoint-dir=" + checkpoints, "--max-source-rate=1000"},
      dir_.Join("run.log"));
  ASSERT_TRUE(testing::WaitFor(
      [&] { return testing::HasCompletedCheckpoint(checkpoints + "/aggregator"); }, 30000))
      << testing::ReadFile(dir_.Join("run.log"));
  influx_.Kill();
  absl::SleepFor(absl::Minutes(1));  // the outage itself, while the job runs on
  influx_.Start();
  EXPECT_EQ(run.Wait(), 0) << testing::ReadFile(dir_.Join("run.log"));
  EXPECT_THAT(testing::ReadFile(dir_.Join("run.log")), ::testing::HasSubstr("recovered: written"));
  EXPECT_EQ(Stored(influx_, "outage", "platform"), expected);
}

TEST_F(AggregatorTest, HyperLogLogCountsUniqueUsersWithinItsStatedError) {
  // One window per platform (an hour) over 60,000 events from a million possible users.
  const std::vector<std::string> messages = Produce(60'000, 11, "--users=1000000");
  std::vector<std::string> malformed;
  const Points expected = Expected(messages, "platform", 60 * 60'000, &malformed);
  RunLocally("hll", "platform", "--unique-users=hll --window=1h");
  const Points stored = Stored(influx_, "hll", "platform");
  ASSERT_EQ(stored.size(), expected.size());
  int64_t largest = 0;
  for (const auto& [key, point] : expected) {
    const Point& counted = stored.at(key);
    largest = std::max(largest, point.unique_users);
    // 3 standard errors (0.81% each) of the true count, or 3 users for tiny windows.
    EXPECT_NEAR(counted.unique_users, point.unique_users,
                std::max(3.0, 3 * 0.0081 * static_cast<double>(point.unique_users)))
        << key.first << " " << key.second;
    Point rest = counted;
    rest.unique_users = point.unique_users;
    EXPECT_EQ(rest, point) << "all but the user count is exact";
  }
  EXPECT_GT(largest, 10'000) << "windows large enough for the estimate to matter";
}

}  // namespace
}  // namespace sluice
