// The JobManager's REST API and Prometheus metrics, over real HTTP from real processes: the
// JSON of a running checkpointed job, errors, `promtool check metrics` on /metrics, and a real
// prometheus server scraping the cluster and answering a query for a job's metric.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sluice/testing/influx_server.h"
#include "sluice/testing/local_cluster.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

/// GETs `path` from the REST API at `url`: the status and the body parsed as JSON.
std::pair<int, json> Get(const std::string& url, const std::string& path) {
  std::string body;
  const int status = testing::HttpRequest("GET", url + path, "", &body);
  return {status, json::parse(body, nullptr, /*allow_exceptions=*/false)};
}

/// `promtool check metrics` (syntax and Prometheus' naming rules) finds nothing in `text`.
void ExpectPromtoolPasses(const std::string& text) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("metrics.txt"), text);
  auto lint = testing::RunCommand("promtool check metrics < " + dir.Join("metrics.txt"));
  EXPECT_EQ(lint.exit_code, 0) << lint.output << text;
}

class RestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    jm_ = std::make_unique<testing::JobManagerProcess>(std::vector<std::string>{"--rest-port=0"});
    ASSERT_THAT(jm_->rest_url(), HasSubstr("http://127.0.0.1:")) << jm_->log();
    for (int i = 0; i < 2; ++i) {
      tms_.push_back(std::make_unique<testing::TaskManagerProcess>(
          jm_->address(), 2, absl::StrCat("tm-", i + 1),
          std::vector<std::string>{"--metrics-port=0"}));
    }
    ASSERT_TRUE(testing::WaitFor(
        [&] { return Get(jm_->rest_url(), "/overview").second.value("taskmanagers", 0) == 2; },
        10000));
  }

  /// Submits word_count (parallelism 3, checkpoints every 100 ms, throttled to
  /// `max_source_rate` lines a second per source subtask: 30,000 lines last a while) and
  /// waits until it completed checkpoints.
  void SubmitCheckpointedJob(int max_source_rate = 2000) {
    std::string text;
    for (int i = 0; i < 30000; ++i) absl::StrAppend(&text, "word", i % 100, " other\n");
    testing::WriteFile(dir_.Join("words.txt"), text);
    auto r = testing::Sluice(absl::StrCat(
        "run --jobmanager=", jm_->address(), " --detached ", testing::BuildDir(),
        "/examples/word_count.so --parallelism=3 -- --input=", dir_.Join("words.txt"),
        " --output=", dir_.Join("out"), " --checkpoint-interval=100ms --checkpoint-dir=",
        dir_.Join("checkpoints"), " --max-source-rate=", max_source_rate));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          return Get(jm_->rest_url(), "/jobs/job-1/checkpoints")
                     .second["counts"]
                     .value("completed", 0) >= 2;
        },
        20000))
        << jm_->log();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::JobManagerProcess> jm_;
  std::vector<std::unique_ptr<testing::TaskManagerProcess>> tms_;
};

TEST_F(RestTest, TheApiDescribesTheClusterAndARunningJob) {
  SubmitCheckpointedJob();
  if (HasFatalFailure()) return;
  const std::string& url = jm_->rest_url();
  auto [status, overview] = Get(url, "/overview");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(overview["slots-total"], 4);
  EXPECT_EQ(overview["slots-available"], 1) << "the job holds 3";
  EXPECT_EQ(overview["jobs-running"], 1);

  auto [tm_status, taskmanagers] = Get(url, "/taskmanagers");
  EXPECT_EQ(tm_status, 200);
  ASSERT_EQ(taskmanagers["taskmanagers"].size(), 2u);
  std::vector<std::string> ids;
  for (const json& tm : taskmanagers["taskmanagers"]) {
    ids.push_back(tm["id"]);
    EXPECT_EQ(tm["slotsNumber"], 2);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"tm-1", "tm-2"}));

  auto [jobs_status, jobs] = Get(url, "/jobs");
  EXPECT_EQ(jobs_status, 200);
  ASSERT_EQ(jobs["jobs"].size(), 1u);
  EXPECT_EQ(jobs["jobs"][0]["id"], "job-1");
  EXPECT_EQ(jobs["jobs"][0]["status"], "RUNNING");

  auto [job_status, job] = Get(url, "/jobs/job-1");
  EXPECT_EQ(job_status, 200);
  EXPECT_EQ(job["jid"], "job-1");
  EXPECT_EQ(job["name"], "word_count");
  EXPECT_EQ(job["state"], "RUNNING");
  // The graph as the job built it: a source task, and after the keyed exchange the counting
  // chain, each at the parallelism asked for.
  ASSERT_GE(job["vertices"].size(), 2u);
  for (const json& v : job["vertices"]) EXPECT_EQ(v["parallelism"], 3) << v.dump();
  EXPECT_THAT(job["vertices"].back()["name"].get<std::string>(), HasSubstr("WriteCounts"));

  auto [cp_status, checkpoints] = Get(url, "/jobs/job-1/checkpoints");
  EXPECT_EQ(cp_status, 200);
  EXPECT_GE(checkpoints["counts"]["completed"].get<int>(), 2);
  ASSERT_FALSE(checkpoints["history"].empty());
  const json& latest = checkpoints["latest"]["completed"];
  EXPECT_EQ(latest["status"], "COMPLETED");
  EXPECT_GT(latest["state_size"].get<int64_t>(), 0) << "state files were written";
  EXPECT_GE(latest["end_to_end_duration"].get<int64_t>(), 0);

  auto [ex_status, exceptions] = Get(url, "/jobs/job-1/exceptions");
  EXPECT_EQ(ex_status, 200);
  EXPECT_TRUE(exceptions["exceptionHistory"]["entries"].empty());

  // Errors: JSON with a message and the right status.
  auto [missing_status, missing] = Get(url, "/jobs/job-7");
  EXPECT_EQ(missing_status, 404);
  EXPECT_EQ(missing["errors"][0], "no job 'job-7' (see /jobs)");
  auto [path_status, path] = Get(url, "/no/such/thing");
  EXPECT_EQ(path_status, 404);
  EXPECT_EQ(path["errors"][0], "no such path: /no/such/thing");
  std::string body;
  EXPECT_EQ(testing::HttpRequest("POST", url + "/jobs", "{}", &body), 405);
  EXPECT_THAT(body, HasSubstr("POST is not served here"));
  EXPECT_EQ(testing::HttpRequest("POST", url + "/jobs", std::string(2 << 20, 'x'), &body), 413);
}

TEST_F(RestTest, TheCliPrintsTheClusterAndTheJobAsJsonForScripts) {
  SubmitCheckpointedJob();
  if (HasFatalFailure()) return;
  auto sluice_json = [&](const std::string& command) {
    auto r = testing::Sluice(absl::StrCat(command, " --jobmanager=", jm_->address(), " --json"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    json parsed = json::parse(r.output, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(parsed.is_discarded()) << r.output;
    return parsed;
  };
  const json cluster = sluice_json("status");
  EXPECT_EQ(cluster["jobmanager"], jm_->address());
  EXPECT_EQ(cluster["overview"]["slots-total"], 4);
  EXPECT_EQ(cluster["overview"]["slots-available"], 1) << "the job holds 3";
  ASSERT_EQ(cluster["taskmanagers"].size(), 2u);
  ASSERT_EQ(cluster["jobs"].size(), 1u);
  EXPECT_EQ(cluster["jobs"][0]["jid"], "job-1");
  EXPECT_EQ(cluster["job-binaries"], 1);

  const json job = sluice_json("status job-1");
  EXPECT_EQ(job["name"], "word_count");
  EXPECT_EQ(job["state"], "RUNNING");
  EXPECT_GE(job["checkpoints"]["counts"]["completed"].get<int>(), 2);
  EXPECT_TRUE(job["exceptions"]["exceptionHistory"]["entries"].empty());

  const json list = sluice_json("list");
  EXPECT_EQ(list,
            (json{{"jobs", {{{"id", "job-1"}, {"name", "word_count"}, {"status", "RUNNING"}}}}}));
}

TEST_F(RestTest, MetricsPassPromtoolAndARealPrometheusScrapesThem) {
  SubmitCheckpointedJob(/*max_source_rate=*/200);  // runs for about 50 s: while prometheus reads
  if (HasFatalFailure()) return;
  std::string metrics;
  ASSERT_EQ(testing::HttpRequest("GET", jm_->rest_url() + "/metrics", "", &metrics), 200);
  EXPECT_THAT(metrics, HasSubstr("sluice_jobmanager_slots 4\n"));
  EXPECT_THAT(metrics, HasSubstr("sluice_job_state{job_id=\"job-1\",job_name=\"word_count\","
                                 "state=\"running\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("sluice_job_checkpoints_completed_total{job_id=\"job-1\""));
  ExpectPromtoolPasses(metrics);

  // Each TaskManager's: its own gauges, and its tasks' and operators' metrics labeled with
  // the job, the task and the subtask. The job runs: its sources have sent records.
  std::vector<std::string> targets = {jm_->rest_url()};
  int sources_sending = 0;
  for (const auto& tm : tms_) {
    const std::string url = tm->metrics_url();
    ASSERT_THAT(url, HasSubstr("http://127.0.0.1:")) << tm->log();
    targets.push_back(url);
    std::string text;
    ASSERT_EQ(testing::HttpRequest("GET", url + "/metrics", "", &text), 200);
    EXPECT_THAT(text, HasSubstr("sluice_taskmanager_slots{taskmanager=\"tm-"));
    EXPECT_THAT(text, HasSubstr("process_resident_memory_bytes{"));
    EXPECT_THAT(text, HasSubstr("sluice_task_busy_seconds_per_second{job_id=\"job-1\","
                                "job_name=\"word_count\",task=\""));
    EXPECT_THAT(text, HasSubstr("sluice_task_checkpoint_sync_duration_seconds_bucket{"));
    const std::vector<std::string> lines = absl::StrSplit(text, '\n');
    for (const std::string& line : lines) {
      if (line.starts_with("sluice_task_records_sent_total{") &&
          line.find("task=\"ReadLines -> SplitWords\"") != std::string::npos &&
          !line.ends_with(" 0")) {
        ++sources_sending;
      }
    }
    ExpectPromtoolPasses(text);
  }
  EXPECT_GE(sources_sending, 1);

  // A real prometheus server scrapes the JobManager and the TaskManagers every second; its
  // query API answers with the job's completed checkpoints and the records its tasks took.
  std::string target_list;
  for (const std::string& url : targets) {
    absl::StrAppend(&target_list, target_list.empty() ? "" : ", ", "'",
                    url.substr(std::string("http://").size()), "'");
  }
  testing::WriteFile(dir_.Join("prometheus.yml"),
                     absl::StrCat("global:\n  scrape_interval: 1s\nscrape_configs:\n",
                                  "  - job_name: sluice\n    static_configs:\n",
                                  "      - targets: [", target_list, "]\n"));
  const int port = testing::PickFreePort();
  testing::ChildProcess prometheus({"prometheus", "--config.file=" + dir_.Join("prometheus.yml"),
                                    "--storage.tsdb.path=" + dir_.Join("tsdb"),
                                    absl::StrCat("--web.listen-address=127.0.0.1:", port)},
                                   dir_.Join("prometheus.log"));
  // The first value prometheus answers `query` (URL-encoded) with, once it is above 0.
  auto positive_answer = [&](const std::string& query) {
    const std::string url = absl::StrCat("http://127.0.0.1:", port, "/api/v1/query?query=", query);
    double value = 0;
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          std::string answer;
          if (testing::HttpRequest("GET", url, "", &answer) != 200) return false;
          const json reply = json::parse(answer, nullptr, false);
          if (reply.is_discarded() || reply["data"]["result"].empty()) return false;
          value = std::stod(reply["data"]["result"][0]["value"][1].get<std::string>());
          return value > 0;
        },
        30000))
        << query << "\n"
        << testing::ReadFile(dir_.Join("prometheus.log"));
    return value;
  };
  EXPECT_GT(positive_answer("sluice_job_checkpoints_completed_total%7Bjob_id%3D%22job-1%22%7D"), 0);
  EXPECT_GT(positive_answer("sum(sluice_task_records_in_total%7Bjob_id%3D%22job-1%22%7D)"), 0);
}

}  // namespace
}  // namespace sluice
