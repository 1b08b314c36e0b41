// The JobManager's REST API and Prometheus metrics, over real HTTP from real processes: the
// JSON of a running checkpointed job, errors, `promtool check metrics` on /metrics, and a real
// prometheus server scraping the cluster and answering a query for a job's metric.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
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

/// `text` with everything but letters, digits and -._~ percent-encoded (a URL's query).
std::string UrlEncoded(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, absl::StrFormat("%%%02X", c));
    }
  }
  return out;
}

/// The Sluice and process metric names a PromQL expression mentions (histogram suffixes off).
std::vector<std::string> MetricNames(const std::string& expr) {
  std::vector<std::string> names;
  for (size_t at = 0; at < expr.size();) {
    const size_t sluice = expr.find("sluice_", at), process = expr.find("process_", at);
    const size_t start = std::min(sluice, process);
    if (start == std::string::npos) break;
    size_t end = start;
    while (end < expr.size() &&
           (std::isalnum(static_cast<unsigned char>(expr[end])) || expr[end] == '_')) {
      ++end;
    }
    std::string name = expr.substr(start, end - start);
    if (name.ends_with("_bucket")) name.resize(name.size() - 7);
    names.push_back(name);
    at = end;
  }
  return names;
}

/// curl `options` `url`, with the bearer `token` if not empty: the HTTP status and the
/// answer parsed as JSON.
std::pair<int, json> Curl(const std::string& options, const std::string& url,
                          const std::string& token) {
  testing::TempDir dir;
  auto r = testing::RunCommand(
      absl::StrCat("curl -sS --max-time 60 -o ", dir.Join("answer"), " -w '%{http_code}' ", options,
                   token.empty() ? "" : absl::StrCat(" -H 'Authorization: Bearer ", token, "'"),
                   " '", url, "'"));
  int status = 0;
  if (!absl::SimpleAtoi(r.output, &status)) status = -1;
  return {status, json::parse(testing::ReadFile(dir.Join("answer")), nullptr, false)};
}

/// `method` `url` with a JSON `body` (maybe empty), as the bearer of `token` if not empty.
std::pair<int, json> Call(const std::string& method, const std::string& url,
                          const std::string& body = "", const std::string& token = "") {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("body"), body);
  return Curl(absl::StrCat("-X ", method, " -H 'Content-Type: application/json' --data-binary @",
                           dir.Join("body")),
              url, token);
}

/// Uploads `file` to `url`/jars/upload as Flink's form (`curl -F jarfile=@FILE`), or as the
/// bare body.
std::pair<int, json> Upload(const std::string& url, const std::string& file,
                            const std::string& token, bool form = true) {
  return Curl(absl::StrCat(form ? "-F jarfile=@" : "--data-binary @", file), url + "/jars/upload",
              token);
}

/// A JobManager serving REST and a TaskManager with 4 slots, both with kToken in their
/// --auth-token-file; ready once the TaskManager is registered.
class GuardedClusterTest : public ::testing::Test {
 protected:
  static constexpr char kToken[] = "rest-guarded-token-5e1f";

  GuardedClusterTest()
      : token_file_(WriteToken(dir_)),
        jm_(std::vector<std::string>{"--rest-port=0", "--auth-token-file=" + token_file_}),
        tm_(jm_.address(), 4, "tm-1", {"--auth-token-file=" + token_file_}),
        url_(jm_.rest_url()) {}
  void SetUp() override {
    ASSERT_TRUE(testing::WaitFor(
        [&] { return Get(url_, "/overview").second.value("taskmanagers", 0) == 1; }, 10000))
        << jm_.log();
  }
  static std::string WriteToken(const testing::TempDir& dir) {
    testing::WriteFile(dir.Join("token"), std::string(kToken) + "\n");
    return dir.Join("token");
  }

  testing::TempDir dir_;
  const std::string token_file_;
  testing::JobManagerProcess jm_;
  testing::TaskManagerProcess tm_;
  const std::string url_;
};

TEST_F(GuardedClusterTest, CancelSavepointAndStopNeedTheTokenAndDoWhatTheySay) {
  std::string text;
  for (int i = 0; i < 30000; ++i) absl::StrAppend(&text, "word", i % 100, " other\n");
  testing::WriteFile(dir_.Join("words.txt"), text);
  auto submit = [&]() {
    auto r = testing::Sluice(absl::StrCat(
        "run --jobmanager=", jm_.address(), " --auth-token-file=", dir_.Join("token"),
        " --detached ", testing::BuildDir(), "/examples/word_count.so --parallelism=2 -- --input=",
        dir_.Join("words.txt"), " --output=", dir_.Join("out"),
        " --checkpoint-interval=100ms --checkpoint-dir=", dir_.Join("checkpoints"),
        " --max-source-rate=200"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
  };
  auto state = [&](const std::string& id) { return Get(url_, "/jobs/" + id).second["state"]; };
  submit();
  ASSERT_TRUE(testing::WaitFor([&] { return state("job-1") == "RUNNING"; }, 15000));

  // Without the token, or with a wrong one: refused, and the job runs on.
  auto [no_token, refusal] = Call("PATCH", url_ + "/jobs/job-1?mode=cancel");
  EXPECT_EQ(no_token, 401);
  EXPECT_THAT(refusal["errors"][0].get<std::string>(),
              HasSubstr("a cancellation refused: the call carries no auth token"));
  EXPECT_EQ(Call("POST", url_ + "/jobs/job-1/stop", "{}", "guess").first, 401);
  EXPECT_EQ(state("job-1"), "RUNNING");

  // A savepoint: written where asked, the job running on.
  auto [saved, savepoint] =
      Call("POST", url_ + "/jobs/job-1/savepoints",
           json{{"target-directory", dir_.Join("savepoints")}}.dump(), kToken);
  EXPECT_EQ(saved, 200) << savepoint.dump();
  const std::string location = savepoint["operation"].value("location", "");
  EXPECT_THAT(location, ::testing::StartsWith(dir_.Join("savepoints") + "/"));
  EXPECT_TRUE(std::filesystem::is_directory(location)) << location;
  EXPECT_EQ(state("job-1"), "RUNNING");

  // Stop with a savepoint: the job ends, finished.
  auto [stopped, stop] = Call("POST", url_ + "/jobs/job-1/stop",
                              json{{"targetDirectory", dir_.Join("savepoints")}}.dump(), kToken);
  EXPECT_EQ(stopped, 200) << stop.dump();
  EXPECT_TRUE(std::filesystem::is_directory(stop["operation"].value("location", "")));
  EXPECT_TRUE(testing::WaitFor([&] { return state("job-1") == "FINISHED"; }, 15000));

  // Cancel: the second job ends canceled.
  submit();
  ASSERT_TRUE(testing::WaitFor([&] { return state("job-2") == "RUNNING"; }, 15000));
  auto [canceled, job] = Call("PATCH", url_ + "/jobs/job-2?mode=cancel", "", kToken);
  EXPECT_EQ(canceled, 202) << job.dump();
  EXPECT_EQ(job["jid"], "job-2");
  EXPECT_TRUE(testing::WaitFor([&] { return state("job-2") == "CANCELED"; }, 15000));

  // Mistakes are named. A bare curl -X PATCH sends no Content-Length, which the HTTP server
  // refuses before the API sees it: the error says what to add.
  auto bare = testing::RunCommand(absl::StrCat("curl -sS -X PATCH -H 'Authorization: Bearer ",
                                               kToken, "' '", url_, "/jobs/job-2?mode=cancel'"));
  EXPECT_THAT(bare.output, HasSubstr("needs a Content-Length, even of 0 (curl: -d '')"));
  EXPECT_EQ(Call("PATCH", url_ + "/jobs/job-7?mode=cancel", "", kToken).first, 404);
  EXPECT_EQ(Call("PATCH", url_ + "/jobs/job-2?mode=drain", "", kToken).first, 400);
  auto [bad_body, bad] = Call("POST", url_ + "/jobs/job-2/savepoints", "[1, 2", kToken);
  EXPECT_EQ(bad_body, 400);
  EXPECT_EQ(bad["errors"][0], "the request body is not a JSON object");
}

TEST_F(GuardedClusterTest, AnUploadedBinaryRunsAndAStrangerStoresAndRunsNothing) {
  const std::string binary = testing::BuildDir() + "/examples/word_count.so";
  auto stored = [&] { return Get(url_, "/jars").second["files"].size(); };

  // Strangers store nothing: no token, a wrong one.
  auto [anonymous, refusal] = Upload(url_, binary, "");
  EXPECT_EQ(anonymous, 401);
  EXPECT_THAT(refusal["errors"][0].get<std::string>(),
              HasSubstr("an upload refused: the call carries no auth token"));
  EXPECT_EQ(Upload(url_, binary, "guess").first, 401);
  // Not a job binary, or announced larger than any blob: refused, nothing stored either.
  testing::WriteFile(dir_.Join("script.sh"), "#!/bin/sh\nrm -rf /\n");
  auto [not_elf, not_elf_answer] = Upload(url_, dir_.Join("script.sh"), kToken);
  EXPECT_EQ(not_elf, 400);
  EXPECT_THAT(not_elf_answer["errors"][0].get<std::string>(), HasSubstr("not a job binary"));
  auto huge = testing::RunCommand(
      absl::StrCat("curl -sS --max-time 30 -w ' %{http_code}' -H 'Authorization: Bearer ", kToken,
                   "' -H 'Content-Length: 4000000000' --data-binary @", dir_.Join("script.sh"),
                   " '", url_, "/jars/upload'"));
  EXPECT_THAT(huge.output, HasSubstr("request body too large: 4000000000 bytes, /jars/upload "
                                     "takes up to "));
  EXPECT_THAT(huge.output, HasSubstr(" 413"));
  // Any other path takes bodies of 1 MiB, announced: a chunked body is not read at all.
  auto chunked = testing::RunCommand(
      absl::StrCat("curl -sS --max-time 30 -w ' %{http_code}' -H 'Transfer-Encoding: chunked' -H "
                   "'Authorization: Bearer ",
                   kToken, "' --data-binary @", binary, " '", url_, "/jobs/job-1/stop'"));
  EXPECT_THAT(chunked.output, HasSubstr("chunked bodies are not taken"));
  EXPECT_THAT(chunked.output, HasSubstr(" 411"));
  EXPECT_EQ(stored(), 0u);
  EXPECT_EQ(testing::FilesIn(jm_.blob_dir()), std::vector<std::string>{})
      << "nothing, not even a part";

  // The owner's upload: stored under its SHA-256 (as sha256sum computes it), its id naming
  // the job; the same bytes as a bare body are the same blob.
  auto [uploaded, upload] = Upload(url_, binary, kToken);
  ASSERT_EQ(uploaded, 200) << upload.dump();
  const std::string sha256 = testing::RunCommand("sha256sum " + binary).output.substr(0, 64);
  EXPECT_EQ(upload["sha256"], sha256);
  EXPECT_EQ(upload["id"], sha256 + "_word_count");
  EXPECT_EQ(upload["size"], std::filesystem::file_size(binary));
  auto [bare, bare_upload] = Upload(url_, binary, kToken, /*form=*/false);
  EXPECT_EQ(bare, 200);
  EXPECT_EQ(bare_upload["id"], sha256);
  const json jars = Get(url_, "/jars").second["files"];
  ASSERT_EQ(jars.size(), 1u) << jars.dump();
  EXPECT_EQ(jars[0]["id"], sha256);
  EXPECT_EQ(jars[0]["size"], std::filesystem::file_size(binary));

  // Running it: a stranger cannot; mistakes are named; the owner's run counts the words.
  std::string text;
  std::map<std::string, int64_t> expected;  // the model: word -> count
  for (int i = 0; i < 5000; ++i) {
    const std::string word = absl::StrCat("word", std::string(1, static_cast<char>('a' + i % 26)));
    absl::StrAppend(&text, word, " other\n");
    ++expected[word];
    ++expected["other"];
  }
  testing::WriteFile(dir_.Join("words.txt"), text);
  const std::string run = absl::StrCat(url_, "/jars/", upload["id"].get<std::string>(), "/run");
  const json args = {
      {"programArgsList", {"--input=" + dir_.Join("words.txt"), "--output=" + dir_.Join("out")}},
      {"parallelism", 2}};
  EXPECT_EQ(Call("POST", run, args.dump()).first, 401);
  EXPECT_EQ(Call("POST", run, args.dump(), "guess").first, 401);
  auto [missing, missing_answer] = Call("POST", run, R"({"programArgs": "--bogus=1"})", kToken);
  EXPECT_EQ(missing, 400);
  EXPECT_EQ(missing_answer["errors"][0], "word_count: missing required argument --input");
  EXPECT_EQ(Call("POST", run, R"({"parallelism": "two"})", kToken).first, 400);
  EXPECT_EQ(Call("POST", run, R"({"savepointPath": "relative/sp"})", kToken).first, 400);
  EXPECT_EQ(
      Call("POST", absl::StrCat(url_, "/jars/", std::string(64, 'a'), "/run"), "{}", kToken).first,
      404);
  EXPECT_EQ(Get(url_, "/jobs").second["jobs"].size(), 0u) << "no job from any of these";

  auto [ran, job] = Call("POST", run, args.dump(), kToken);
  ASSERT_EQ(ran, 200) << job.dump();
  const std::string id = job["jobid"];
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Get(url_, "/jobs/" + id).second["state"] == "FINISHED"; }, 30000))
      << jm_.log();
  const json described = Get(url_, "/jobs/" + id).second;
  EXPECT_EQ(described["name"], "word_count");
  std::map<std::string, int64_t> counted;
  for (const std::string& line : testing::ReadPartFileLines(dir_.Join("out"))) {
    std::vector<std::string> fields = absl::StrSplit(line, '\t');
    ASSERT_EQ(fields.size(), 2u) << line;
    int64_t n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(fields[1], &n)) << line;
    counted[fields[0]] += n;
  }
  EXPECT_EQ(counted, expected);
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
  EXPECT_THAT(body, HasSubstr("POST /jobs is not served here"));
  EXPECT_EQ(testing::HttpRequest("POST", url + "/jobs", std::string(2 << 20, 'x'), &body), 413);
}

TEST_F(RestTest, AJobsVerticesCarryTheirSubtasksMetrics) {
  SubmitCheckpointedJob();
  if (HasFatalFailure()) return;
  // While it runs, from the TaskManagers' heartbeats: every subtask reports, the source
  // chain sends records and the counting chain takes them.
  json job;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        job = Get(jm_->rest_url(), "/jobs/job-1").second;
        if (job["vertices"].size() != 2) return false;
        const json& source = job["vertices"][0]["metrics"];
        const json& counting = job["vertices"][1]["metrics"];
        return source["subtasks-reporting"] == 3 && counting["subtasks-reporting"] == 3 &&
               source["write-records"].get<int64_t>() > 0 &&
               counting["read-records"].get<int64_t>() > 0 &&
               source["write-records-per-second"].get<double>() > 0;
      },
      15000))
      << job.dump(2);
  // Once it finished, the parts' final reports: each of the 30,000 lines is two words
  // ("wordN other": word_count splits at the digits), each sent once over the keyed edge.
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Get(jm_->rest_url(), "/jobs/job-1").second["state"] == "FINISHED"; }, 30000));
  job = Get(jm_->rest_url(), "/jobs/job-1").second;
  EXPECT_EQ(job["vertices"][0]["metrics"]["read-records"], 0) << "a source has no input";
  EXPECT_EQ(job["vertices"][0]["metrics"]["write-records"], 60000) << job.dump(2);
  EXPECT_EQ(job["vertices"][1]["metrics"]["read-records"], 60000) << job.dump(2);
  EXPECT_GT(job["vertices"][1]["metrics"]["input-watermark"].get<int64_t>(), 0)
      << "the final watermark reached the counting chain";
  auto status = testing::Sluice("status job-1 --jobmanager=" + jm_->address());
  EXPECT_THAT(status.output, HasSubstr("ReadLines -> SplitWords x3: 0 in"));
  EXPECT_THAT(status.output, HasSubstr("60000 sent"));
}

TEST_F(RestTest, TheDashboardDrawsTheRunningJobInARealBrowser) {
  if (testing::RunCommand("command -v chromium").exit_code != 0) {
    GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it)";
  }
  SubmitCheckpointedJob(/*max_source_rate=*/200);  // runs for about 50 s
  if (HasFatalFailure()) return;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const json job = Get(jm_->rest_url(), "/jobs/job-1").second;
        return job["vertices"].size() == 2 &&
               job["vertices"][1]["metrics"]["read-records-per-second"].get<double>() > 0;
      },
      15000));
  // Headless Chromium loads the page, runs its script against the API (virtual time lets
  // its fetches and a few refreshes happen) and prints the DOM it built; then a screenshot.
  const std::string chromium = absl::StrCat(
      "timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage ",
      "--user-data-dir=", dir_.Join("chromium"), " --virtual-time-budget=6000 ");
  auto dom =
      testing::RunCommand(absl::StrCat(chromium, "--dump-dom ", jm_->rest_url(), "/ 2>/dev/null"));
  ASSERT_EQ(dom.exit_code, 0) << dom.output;
  // The job graph: both tasks as boxes, the keyed edge between them, rates drawn.
  EXPECT_THAT(dom.output, HasSubstr("id=\"job-graph\""));
  EXPECT_THAT(dom.output, HasSubstr("class=\"vertex\" data-name=\"ReadLines -&gt; SplitWords\""));
  EXPECT_THAT(dom.output, HasSubstr("data-name=\"CountWords -&gt; Format -&gt; WriteCounts\""));
  EXPECT_THAT(dom.output, HasSubstr(">HASH<"));
  EXPECT_THAT(dom.output, HasSubstr(">parallelism 3<"));
  // The jobs table, the checkpoint table with completed checkpoints, the TaskManagers.
  EXPECT_THAT(dom.output, HasSubstr("<td class=\"state-RUNNING\">RUNNING</td>"));
  EXPECT_THAT(dom.output, HasSubstr("<tr class=\"checkpoint\"><td>"));
  EXPECT_THAT(dom.output, HasSubstr("<td>COMPLETED</td>"));
  EXPECT_THAT(dom.output, HasSubstr("<td>tm-1</td>"));
  EXPECT_THAT(dom.output, ::testing::Not(HasSubstr("HTTP 4"))) << "no request failed";
  const std::string png = dir_.Join("dashboard.png");
  auto shot = testing::RunCommand(absl::StrCat(
      chromium, "--window-size=1400,1000 --screenshot=", png, " ", jm_->rest_url(), "/ 2>&1"));
  EXPECT_EQ(shot.exit_code, 0) << shot.output;
  EXPECT_TRUE(testing::ReadFile(png).starts_with("\x89PNG")) << "a PNG screenshot";
  if (const char* keep = std::getenv("SLUICE_DASHBOARD_SCREENSHOT")) {
    // How docs/dashboard.png is made.
    testing::RunCommand(absl::StrCat("cp ", png, " ", keep));
  }
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
  EXPECT_THAT(metrics, HasSubstr("sluice_job_checkpoints_in_progress{job_id=\"job-1\""));
  ExpectPromtoolPasses(metrics);

  // Each TaskManager's: its own gauges, and its tasks' and operators' metrics labeled with
  // the job, the task and the subtask. The job runs: its sources have sent records.
  std::vector<std::string> targets = {jm_->rest_url()};
  int sources_sending = 0;
  // The counting operator's keyed state: one entry per distinct word over its subtasks, and
  // "wordN other" splits at the digits into just "word" and "other".
  double count_entries = 0, count_bytes = 0;
  int count_checkpoint_sizes = 0;
  // The sum over a TaskManager's CountWords subtasks of their "count" state's `metric`.
  auto count_words_state = [](const std::string& text, const std::string& metric) {
    double sum = 0;
    const std::vector<std::string> lines = absl::StrSplit(text, '\n');
    for (const std::string& line : lines) {
      if (line.starts_with("sluice_" + metric + "{") &&
          line.find("operator=\"CountWords\",state=\"count\"}") != std::string::npos) {
        sum += std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return sum;
  };
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
      if (line.starts_with("sluice_state_checkpoint_bytes{") &&
          line.find("operator=\"CountWords\"}") != std::string::npos && !line.ends_with(" 0")) {
        ++count_checkpoint_sizes;
      }
    }
    count_entries += count_words_state(text, "state_entries");
    count_bytes += count_words_state(text, "state_bytes");
    ExpectPromtoolPasses(text);
  }
  EXPECT_GE(sources_sending, 1);
  EXPECT_EQ(count_checkpoint_sizes, 3) << "each CountWords subtask checkpointed its state";
  if (count_entries != 2) {
    // Sizes are taken at checkpoints: one after both words arrived may still be coming.
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          double entries = 0, bytes = 0;
          for (const auto& tm : tms_) {
            std::string text;
            testing::HttpRequest("GET", tm->metrics_url() + "/metrics", "", &text);
            entries += count_words_state(text, "state_entries");
            bytes += count_words_state(text, "state_bytes");
          }
          count_entries = entries;
          count_bytes = bytes;
          return entries == 2;
        },
        10000))
        << "the distinct words: " << count_entries;
  }
  // Two words and their counts, serialized: more than nothing, far less than 1 KiB.
  EXPECT_GT(count_bytes, 0);
  EXPECT_LT(count_bytes, 1024);

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

  // The Grafana dashboard in docs/: prometheus accepts every panel's query, those about the
  // tasks answer for the running job, and every metric they name is in the operations guide.
  const json dashboard = json::parse(
      testing::ReadFile(absl::StrCat(SLUICE_SOURCE_DIR, "/docs/grafana-dashboard.json")), nullptr,
      false);
  ASSERT_FALSE(dashboard.is_discarded());
  const std::string guide =
      testing::ReadFile(absl::StrCat(SLUICE_SOURCE_DIR, "/docs/operations.md"));
  int queries = 0;
  for (const json& panel : dashboard["panels"]) {
    for (const json& target : panel["targets"]) {
      const std::string expr =
          absl::StrReplaceAll(target["expr"].get<std::string>(), {{"$job", ".*"}});
      ++queries;
      const std::string url =
          absl::StrCat("http://127.0.0.1:", port, "/api/v1/query?query=", UrlEncoded(expr));
      // Those about the tasks answer for the job once prometheus has two scrapes to rate.
      const bool about_tasks = expr.find("sluice_task_records_in_total") != std::string::npos ||
                               expr.find("sluice_task_busy_seconds_total") != std::string::npos;
      json reply;
      std::string answer;
      const bool answered = testing::WaitFor(
          [&] {
            if (testing::HttpRequest("GET", url, "", &answer) != 200) return false;
            reply = json::parse(answer, nullptr, false);
            return !about_tasks || (!reply.is_discarded() && !reply["data"]["result"].empty());
          },
          about_tasks ? 15000 : 0);
      EXPECT_TRUE(answered) << panel["title"] << ": " << expr << "\n" << answer;
      EXPECT_EQ(reply.value("status", ""), "success") << expr << "\n" << answer;
      for (const std::string& name : MetricNames(expr)) {
        EXPECT_THAT(guide, HasSubstr(name)) << "the dashboard's " << name << " is not documented";
      }
    }
  }
  EXPECT_GE(queries, 16);
}

}  // namespace
}  // namespace sluice
