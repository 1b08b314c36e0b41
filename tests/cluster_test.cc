// The cluster's processes: a real sluice-jobmanager and sluice-taskmanagers on loopback,
// killed with SIGKILL where the test is about failure; the blob store through real gRPC.

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "blob/blob_cache.h"
#include "generated_input.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/jobmanager_service.grpc.pb.h"
#include "proto/taskmanager_service.grpc.pb.h"
#include "sluice/api/job.h"
#include "sluice/jobmanager/jobmanager_client.h"
#include "sluice/jobmanager/sha256.h"
#include "sluice/testing/local_cluster.h"
#include "sluice/testing/network_namespace.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using testing::JobManagerProcess;
using testing::Sluice;
using testing::TaskManagerProcess;

/// The rest of the line of `output` after `marker` (empty if it is not there).
std::string RestOfLineAfter(const std::string& output, const std::string& marker) {
  const size_t at = output.find(marker);
  if (at == std::string::npos) return "";
  const std::string rest = output.substr(at + marker.size());
  return rest.substr(0, rest.find('\n'));
}

/// Waits until `sluice status` shows `text`; returns its last output.
std::string StatusShowing(const std::string& jobmanager, const std::string& text,
                          int timeout_ms = 10000) {
  std::string output;
  testing::WaitFor(
      [&] {
        output = Sluice("status --jobmanager=" + jobmanager).output;
        return output.find(text) != std::string::npos;
      },
      timeout_ms);
  return output;
}

/// Waits until `sluice status` reports `taskmanagers` TaskManagers; returns its last output.
std::string StatusWith(const std::string& jobmanager, int taskmanagers, int timeout_ms = 10000) {
  return StatusShowing(jobmanager, absl::StrCat("TaskManagers: ", taskmanagers, ","), timeout_ms);
}

TEST(ClusterTest, TaskManagersRegisterTheirSlotsAndStatusShowsThem) {
  JobManagerProcess jm;
  TaskManagerProcess a(jm.address(), 2, "tm-a");
  TaskManagerProcess b(jm.address(), 2, "tm-b");
  TaskManagerProcess c(jm.address(), 4, "tm-c");
  const std::string status = StatusWith(jm.address(), 3);
  EXPECT_THAT(status, HasSubstr("TaskManagers: 3, slots: 8 total, 8 free"));
  EXPECT_THAT(status, HasSubstr("tm-a"));
  EXPECT_THAT(status, HasSubstr("tm-c"));
  EXPECT_THAT(status, HasSubstr(absl::StrCat("Blob store: ", jm.blob_dir(), " (0 job binaries)")));
}

TEST(ClusterTest, SettingsComeFromAFlagFileWithEitherSpelling) {
  JobManagerProcess jm;
  testing::TempDir dir;
  const std::string flags = dir.Join("taskmanager.flags");
  const std::string cache = dir.Join("cache");
  // Dashes (the documented spelling) in the file, the underscore alias on the command line.
  testing::WriteFile(flags, absl::StrCat("# a TaskManager\n--jobmanager=", jm.address(),
                                         "\n  --slots=3\n--cache-dir=", cache,
                                         "\n--local-state-dir=", dir.Join("local-state"), "\n"));
  testing::ChildProcess tm({testing::BuildDir() + "/bin/sluice-taskmanager", "--flagfile=" + flags,
                            "--id=from-file", "--registration_timeout=20s"},
                           dir.Join("tm.log"));
  const std::string status = StatusWith(jm.address(), 1);
  EXPECT_THAT(status, HasSubstr("slots: 3 total"));
  EXPECT_THAT(status, HasSubstr("from-file"));
  EXPECT_TRUE(std::filesystem::is_directory(cache)) << "the flag file's --cache-dir was ignored";
}

TEST(ClusterTest, AnUnreadableFlagFileIsNamed) {
  testing::TempDir dir;
  const std::string missing = dir.Join("nowhere.flags");
  testing::ChildProcess jm(
      {testing::BuildDir() + "/bin/sluice-jobmanager", "--flagfile=" + missing},
      dir.Join("jm.log"));
  EXPECT_EQ(jm.Wait(), 2);
  EXPECT_THAT(testing::ReadFile(dir.Join("jm.log")),
              HasSubstr(absl::StrCat("cannot read the flag file '", missing, "'")));
}

TEST(ClusterTest, AKilledTaskManagerIsDeclaredLostAtOnceByItsBrokenControlStream) {
  // Heartbeats alone would take a minute to notice: the status below waits 10 s at most.
  JobManagerProcess jm({"--heartbeat-interval=100ms", "--heartbeat-timeout=60s"});
  TaskManagerProcess a(jm.address(), 1, "tm-a");
  TaskManagerProcess b(jm.address(), 1, "tm-b");
  ASSERT_THAT(StatusWith(jm.address(), 2), HasSubstr("tm-b"));
  b.process().Signal(SIGKILL);
  const std::string status = StatusWith(jm.address(), 1);
  EXPECT_THAT(status, HasSubstr("TaskManagers: 1, slots: 1 total"));
  EXPECT_THAT(status, Not(HasSubstr("tm-b")));
  EXPECT_THAT(jm.log(), HasSubstr("TaskManager 'tm-b' was lost (its control stream broke"));
}

TEST(ClusterTest, ASilentTaskManagerIsLostAfterTheHeartbeatTimeoutAndComesBackRegistered) {
  // SIGSTOP: the process lives and its connection stays open, but it says nothing.
  JobManagerProcess jm({"--heartbeat-interval=100ms", "--heartbeat-timeout=1s"});
  TaskManagerProcess a(jm.address(), 1, "tm-a");
  TaskManagerProcess b(jm.address(), 1, "tm-b");
  ASSERT_THAT(StatusWith(jm.address(), 2), HasSubstr("tm-b"));
  b.process().Signal(SIGSTOP);
  EXPECT_THAT(StatusWith(jm.address(), 1), Not(HasSubstr("tm-b")));
  EXPECT_THAT(jm.log(), HasSubstr("TaskManager 'tm-b' was lost (no heartbeat for"));
  b.process().Signal(SIGCONT);
  // Its control stream was ended by the JobManager: it registers again.
  EXPECT_THAT(StatusWith(jm.address(), 2), HasSubstr("tm-b"));
  EXPECT_TRUE(testing::WaitFor(
      [&] { return b.log().find("registering again") != std::string::npos; }, 10000))
      << b.log();
}

TEST(ClusterTest, ATaskManagerNoticesAKilledJobManagerAtOnceAndRegistersWithTheNextOne) {
  auto jm = std::make_unique<JobManagerProcess>(
      std::vector<std::string>{"--heartbeat-interval=100ms", "--heartbeat-timeout=60s"});
  const int port = jm->port();
  TaskManagerProcess a(jm->address(), 1, "tm-a");
  ASSERT_THAT(StatusWith(jm->address(), 1), HasSubstr("tm-a"));
  jm->process().Signal(SIGKILL);
  jm->process().Wait();
  jm.reset();
  EXPECT_TRUE(testing::WaitFor(
      [&] { return a.log().find("control stream to the JobManager") != std::string::npos; }, 10000))
      << a.log();
  JobManagerProcess again({"--heartbeat-interval=100ms", "--heartbeat-timeout=60s"}, port);
  EXPECT_THAT(StatusWith(again.address(), 1), HasSubstr("slots: 1 total"));
}

TEST(ClusterTest, TaskManagersRegisterAgainWithARestartedJobManager) {
  auto jm = std::make_unique<JobManagerProcess>(
      std::vector<std::string>{"--heartbeat-interval=100ms", "--heartbeat-timeout=2s"});
  const int port = jm->port();
  TaskManagerProcess a(jm->address(), 1, "tm-a");
  TaskManagerProcess b(jm->address(), 1, "tm-b");
  ASSERT_THAT(StatusWith(jm->address(), 2), HasSubstr("tm-b"));
  jm->process().Signal(SIGKILL);
  jm->process().Wait();
  jm.reset();
  JobManagerProcess again({"--heartbeat-interval=100ms", "--heartbeat-timeout=2s"}, port);
  EXPECT_THAT(StatusWith(again.address(), 2), HasSubstr("slots: 2 total"));
  EXPECT_THAT(a.log(), HasSubstr("registering again"));
}

TEST(ClusterTest, StatusNamesAnUnreachableJobManager) {
  testing::ClosedPort closed;
  const int port = closed.port();
  auto r = Sluice(absl::StrCat("status --jobmanager=127.0.0.1:", port));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr(absl::StrCat("cannot reach the JobManager at 127.0.0.1:", port)));
  EXPECT_THAT(r.output, HasSubstr("is sluice-jobmanager running there"));
  EXPECT_EQ(Sluice(absl::StrCat("cancel --jobmanager=127.0.0.1:", port)).exit_code, 2);
}

TEST(ClusterTest, StatusNamesAnAddressThatIsNotAJobManager) {
  int port = 0;
  const int fd = testing::ListenOnLoopback(&port);  // accepts connections, never answers
  auto r = Sluice(absl::StrCat("status --jobmanager=127.0.0.1:", port));
  ::close(fd);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("is that a Sluice JobManager's address?"));
}

TEST(ClusterTest, ATaskManagerWithAWrongJobManagerAddressGivesUpClearly) {
  testing::ClosedPort closed;
  const int port = closed.port();
  TaskManagerProcess tm(absl::StrCat("127.0.0.1:", port), 1, "lonely",
                        {"--registration-timeout=1s"});
  EXPECT_EQ(tm.process().Wait(), 1);
  EXPECT_THAT(tm.log(), HasSubstr(absl::StrCat("cannot reach the JobManager at 127.0.0.1:", port)));
  EXPECT_THAT(tm.log(), HasSubstr("gave up after"));

  testing::TempDir dir;
  testing::ChildProcess bad({testing::BuildDir() + "/bin/sluice-taskmanager", "--jobmanager=nope"},
                            dir.Join("bad.log"));
  EXPECT_EQ(bad.Wait(), 2);
  EXPECT_THAT(testing::ReadFile(dir.Join("bad.log")),
              HasSubstr("--jobmanager=HOST:PORT is required"));
}

TEST(ClusterTest, AJobManagerRefusesATaskManagerOfAnotherEngineBuild) {
  JobManagerProcess jm;
  cluster::JobManagerClient client(jm.address());
  cluster::RegisterTaskManagerRequest request;
  request.set_taskmanager_id("old-build");
  request.set_slots(1);
  request.set_engine_abi("sluice-engine-abi-0/gcc9");
  auto r = client.Register(request);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("runs engine ABI 'sluice-engine-abi-0/gcc9'"));
  request.set_engine_abi(EngineAbi());
  EXPECT_TRUE(client.Register(request).ok());
}

TEST(ClusterTest, AClusterWithATokenLetsInOnlyCallsThatCarryIt) {
  testing::TempDir dir;
  const std::string token = dir.Join("token");
  const std::string wrong = dir.Join("wrong");
  testing::WriteFile(token, "s3cret-5e1f9a\n");
  testing::WriteFile(wrong, "s3cret-guess\n");
  JobManagerProcess jm({"--auth-token-file=" + token});
  TaskManagerProcess tm(jm.address(), 2, "tm-1", {"--auth-token-file=" + token});
  // Reading the cluster's state needs no token.
  ASSERT_THAT(StatusWith(jm.address(), 1), HasSubstr("slots: 2 total"));
  EXPECT_THAT(jm.log(), ::testing::Not(HasSubstr("this cluster is open")));

  // A TaskManager without it is refused at once, and gives up.
  TaskManagerProcess intruder(jm.address(), 1, "intruder");
  EXPECT_EQ(intruder.process().Wait(), 1);
  EXPECT_THAT(intruder.log(),
              HasSubstr("registering a TaskManager refused: the call carries no auth token"));

  // A submission without the token, or with a wrong one, uploads and runs nothing.
  const std::string input = dir.Join("words.txt");
  testing::WriteFile(input, "to be or not to be\n");
  const std::string job =
      absl::StrCat(testing::BuildDir(), "/examples/word_count.so -- --input=", input,
                   " --output=", dir.Join("out"));
  auto r = Sluice(absl::StrCat("run --jobmanager=", jm.address(), " ", job));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("an upload refused: the call carries no auth token"));
  r = Sluice(
      absl::StrCat("run --jobmanager=", jm.address(), " --auth-token-file=", wrong, " ", job));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("an upload refused: the call's auth token is wrong"));
  EXPECT_THAT(Sluice("status --jobmanager=" + jm.address()).output, HasSubstr("(0 job binaries)"));
  EXPECT_THAT(Sluice("list --jobmanager=" + jm.address()).output, HasSubstr("no jobs"));
  r = Sluice(absl::StrCat("cancel --jobmanager=", jm.address(), " job-1"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("a cancellation refused"));

  // Straight to the TaskManager: a deployment without the token is refused before anything
  // is fetched or loaded.
  const std::string log = tm.log();
  const size_t at = log.find("serving on ");
  ASSERT_NE(at, std::string::npos) << log;
  const std::string tm_address = log.substr(at + 11, log.find('\n', at) - at - 11);
  auto stub = cluster::TaskManagerService::NewStub(
      grpc::CreateChannel(tm_address, grpc::InsecureChannelCredentials()));
  cluster::DeployJobRequest deploy;
  deploy.set_job_id("job-666");
  deploy.mutable_job()->mutable_job_binary()->set_sha256(std::string(64, 'a'));
  cluster::DeployJobReply reply;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  const grpc::Status refused = stub->DeployJob(&ctx, deploy, &reply);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("a deployment refused"));
  EXPECT_THAT(tm.log(), ::testing::Not(HasSubstr("job-666")));

  // With the token, from the environment: the job runs, and its deployment and exchange
  // calls carry it.
  r = testing::RunCommand(absl::StrCat("SLUICE_AUTH_TOKEN_FILE=", token, " ", testing::BuildDir(),
                                       "/bin/sluice run --jobmanager=", jm.address(),
                                       " --parallelism=2 ", job));
  EXPECT_EQ(r.exit_code, 0) << r.output << jm.log() << tm.log();
  EXPECT_THAT(r.output, HasSubstr("job-1 finished"));
  EXPECT_THAT(testing::ReadPartFileLines(dir.Join("out")),
              ::testing::UnorderedElementsAre("be\t2", "not\t1", "or\t1", "to\t2"));
}

TEST(ClusterTest, AnOversizedRequestIsRefusedAndTheJobManagerRunsOn) {
  JobManagerProcess jm(std::vector<std::string>{});
  // gRPC's bound on a received message (4 MiB): a bigger one is refused before any handler
  // sees it. Job binaries travel in 1 MiB chunks of a stream.
  auto stub = cluster::JobManager::NewStub(
      grpc::CreateChannel(jm.address(), grpc::InsecureChannelCredentials()));
  cluster::GetJobRequest request;
  request.set_job_id(std::string(5 << 20, 'x'));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  cluster::GetJobReply reply;
  const grpc::Status status = stub->GetJob(&ctx, request, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(StatusWith(jm.address(), 0), HasSubstr("slots: 0 total")) << jm.log();
}

TEST(ClusterTest, WithALogDirectoryTheLogGoesIntoFilesAndWarningsAlsoToStderr) {
  testing::TempDir dir;
  JobManagerProcess jm({"--log-dir=" + dir.Join("logs")});
  // INFO goes only into the file (glog's link to the newest one), at once; a warning (no
  // TLS) also to stderr.
  const std::string info = dir.Join("logs/sluice-jobmanager.INFO");
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        const std::string log = testing::ReadFile(info);
        return log.find("JobManager on port") != std::string::npos &&
               log.find("its connections are plaintext") != std::string::npos;
      },
      10000))
      << jm.log() << testing::ReadFile(info);
  EXPECT_THAT(jm.log(), ::testing::Not(HasSubstr("JobManager on port")));
  EXPECT_TRUE(testing::WaitFor(
      [&] { return jm.log().find("its connections are plaintext") != std::string::npos; }, 10000))
      << jm.log();
  // Settings it cannot follow are named.
  const std::string jobmanager = testing::BuildDir() + "/bin/sluice-jobmanager --port=0 ";
  auto level = testing::RunCommand(jobmanager + "--log-level=chatty 2>&1");
  EXPECT_EQ(level.exit_code, 2);
  EXPECT_THAT(level.output, HasSubstr("--log-level must be info, warning or error (got 'chatty')"));
  testing::WriteFile(dir.Join("file"), "");
  auto blocked = testing::RunCommand(jobmanager + "--log-dir=" + dir.Join("file/logs") + " 2>&1");
  EXPECT_EQ(blocked.exit_code, 2);
  EXPECT_THAT(blocked.output, HasSubstr("cannot be created"));
}

TEST(ClusterTest, AnOpenClusterSaysSoAndABadTokenFileIsNamed) {
  JobManagerProcess open;
  EXPECT_TRUE(testing::WaitFor(
      [&] { return open.log().find("this cluster is open") != std::string::npos; }, 10000))
      << open.log();
  testing::TempDir dir;
  testing::WriteFile(dir.Join("empty"), "\n");
  testing::ChildProcess jm({testing::BuildDir() + "/bin/sluice-jobmanager",
                            "--auth-token-file=" + dir.Join("empty"), "--port=0"},
                           dir.Join("jm.log"));
  EXPECT_EQ(jm.Wait(), 2);
  EXPECT_THAT(testing::ReadFile(dir.Join("jm.log")),
              HasSubstr("the auth token file '" + dir.Join("empty") + "' is empty"));
  auto r = Sluice("list --auth-token-file=" + dir.Join("missing"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("cannot read the auth token file '" + dir.Join("missing")));
}

TEST(ClusterTest, ADeploymentTheTaskManagerDoesNotAnswerFailsAtTheDeployTimeout) {
  JobManagerProcess jm({"--deploy-timeout=300ms"});
  // A "TaskManager" whose address accepts connections and never answers.
  int port = 0;
  const int silent = testing::ListenOnLoopback(&port);
  cluster::RegisterTaskManagerRequest request;
  request.set_taskmanager_id("silent");
  request.set_slots(1);
  request.set_engine_abi(EngineAbi());
  request.set_address(absl::StrCat("127.0.0.1:", port));
  ASSERT_OK(cluster::JobManagerClient(jm.address()).Register(request));
  auto r = Sluice(absl::StrCat("run --jobmanager=", jm.address(), " ", testing::BuildDir(),
                               "/examples/word_count.so -- --input=/dev/null"));
  ::close(silent);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr(absl::StrCat("the TaskManager at 127.0.0.1:", port,
                                               " did not answer DeployJob within 300ms "
                                               "(--deploy-timeout)")))
      << jm.log();
}

TEST(ClusterTest, BadSettingsAndUnknownJobsAreNamed) {
  testing::TempDir dir;
  testing::ChildProcess jm({testing::BuildDir() + "/bin/sluice-jobmanager", "--port=0",
                            "--blob-dir=" + dir.Join("blobs"), "--slot-strategy=random"},
                           dir.Join("jm.log"));
  EXPECT_EQ(jm.Wait(), 2);
  EXPECT_THAT(testing::ReadFile(dir.Join("jm.log")),
              HasSubstr("--slot-strategy is spread or pack, not 'random'"));
  testing::ChildProcess no_deadline({testing::BuildDir() + "/bin/sluice-jobmanager", "--port=0",
                                     "--blob-dir=" + dir.Join("blobs"), "--cancel-timeout=0s"},
                                    dir.Join("jm2.log"));
  EXPECT_EQ(no_deadline.Wait(), 2);
  EXPECT_THAT(testing::ReadFile(dir.Join("jm2.log")),
              HasSubstr("--cancel-timeout must be positive (got 0)"));
  testing::ChildProcess tm(
      {testing::BuildDir() + "/bin/sluice-taskmanager", "--jobmanager=127.0.0.1:1", "--slots=0"},
      dir.Join("tm.log"));
  EXPECT_EQ(tm.Wait(), 2);
  EXPECT_THAT(testing::ReadFile(dir.Join("tm.log")), HasSubstr("--slots must be at least 1"));

  JobManagerProcess running;
  auto cancel = Sluice("cancel --jobmanager=" + running.address() + " job-42");
  EXPECT_EQ(cancel.exit_code, 1);
  EXPECT_THAT(cancel.output, HasSubstr("no job 'job-42' (see sluice list)"));
}

TEST(ClusterTest, AJobManagerRefusesABlobDirectoryItCannotUse) {
  testing::TempDir dir;
  testing::ChildProcess jm(
      {testing::BuildDir() + "/bin/sluice-jobmanager", "--port=0", "--blob-dir=/etc/passwd/blobs"},
      dir.Join("jm.log"));
  EXPECT_EQ(jm.Wait(), 2);
  EXPECT_THAT(testing::ReadFile(dir.Join("jm.log")),
              HasSubstr("blob directory '/etc/passwd/blobs' cannot be created"));
}

// --- jobs on the cluster ---

/// Lines of letter-only words (word_count splits on anything else).
std::string Words(int lines) {
  std::string text;
  for (int i = 0; i < lines; ++i) {
    for (int w = 0; w < 8; ++w) {
      int n = (i * 31 + w * 7) % 500 + 1;
      while (n != 0) {
        text.push_back(static_cast<char>('a' + n % 26));
        n /= 26;
      }
      text.push_back(w == 7 ? '\n' : ' ');
    }
  }
  return text;
}

/// The lines of a job's part files in `dir`, sorted (subtasks write in any order).
std::vector<std::string> SortedOutput(const std::string& dir) {
  auto lines = testing::ReadPartFileLines(dir);
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// Runs word_count on the mini-cluster at parallelism 4 from `input` into `output` (the
/// expected output of the same job on a cluster).
void WordCountLocally(const std::string& input, const std::string& output) {
  auto local = Sluice(absl::StrCat("run --local ", testing::BuildDir(),
                                   "/examples/word_count.so --parallelism=4 -- --input=", input,
                                   " --output=", output));
  ASSERT_EQ(local.exit_code, 0) << local.output;
}

/// A JobManager and three TaskManagers of two slots each, all registered.
class JobsOnClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    jm_ = std::make_unique<JobManagerProcess>(JobManagerFlags());
    for (int i = 0; i < 3; ++i) {
      tms_.push_back(
          std::make_unique<TaskManagerProcess>(jm_->address(), 2, absl::StrCat("tm-", i + 1),
                                               TaskManagerFlags(i), "", TaskManagerLauncher(i)));
    }
    ASSERT_THAT(StatusWith(jm_->address(), 3), HasSubstr("slots: 6 total, 6 free"));
  }

  /// Flags of TaskManager `i` (0-2), and what runs it.
  virtual std::vector<std::string> TaskManagerFlags(int /*i*/) const { return {}; }
  virtual std::vector<std::string> TaskManagerLauncher(int /*i*/) const { return {}; }

  virtual std::vector<std::string> JobManagerFlags() const {
    return {"--heartbeat-interval=100ms", "--heartbeat-timeout=2s", "--slot-wait=1s"};
  }

  std::string Job(const std::string& name) const {
    return absl::StrCat(testing::BuildDir(), "/examples/", name, ".so");
  }
  testing::CommandResult RunOnCluster(const std::string& args) {
    return Sluice(absl::StrCat("run --jobmanager=", jm_->address(), " ", args));
  }
  /// Writes `lines` lines of words, runs word_count on them on the mini-cluster at
  /// `parallelism` into dir_/local (the expected output) and returns the job's arguments up
  /// to `--output=`.
  std::string WordCountOnTheMiniCluster(int lines, int parallelism) {
    const std::string input = dir_.Join("words.txt");
    testing::WriteFile(input, Words(lines));
    const std::string job_args = absl::StrCat(" --input=", input, " --output=");
    auto local =
        Sluice(absl::StrCat("run --local ", Job("word_count"), " --parallelism=", parallelism,
                            " --", job_args, dir_.Join("local")));
    EXPECT_EQ(local.exit_code, 0) << local.output;
    return job_args;
  }
  /// Submits windowed_stats (detached, parallelism 3, 200 ms checkpoints into
  /// dir_/checkpoints, output in dir_/out/main and dir_/out/side, `extra_args`) over 40,000
  /// lines of out-of-order events with late records generated from `seed`, throttled to
  /// last about `seconds`; returns the model's firings and late lines.
  std::pair<std::vector<std::string>, std::vector<std::string>> SubmitWindowedStats(
      uint64_t seed, int seconds, const std::string& extra_args);
  /// Submits word_count (detached, parallelism 4, 100 ms checkpoints, `restart_args`; the
  /// expected output in dir_/local), waits for a completed checkpoint and sends `signal` to
  /// TaskManager `victim` (0: none, the caller cuts it off itself).
  void RunWordCountAndKillATaskManager(int victim, const std::string& restart_args,
                                       int signal = SIGKILL);
  /// How many TaskManagers ran a part of some job.
  int TaskManagersThatRanAPart() const {
    int n = 0;
    for (const auto& tm : tms_) {
      if (tm->log().find("deploying this TaskManager's subtasks") != std::string::npos) ++n;
    }
    return n;
  }

  std::unique_ptr<JobManagerProcess> jm_;
  std::vector<std::unique_ptr<TaskManagerProcess>> tms_;
  testing::TempDir dir_;
};

/// Certificates made with openssl for a test: a CA and a certificate it signed for
/// 127.0.0.1 (every process of the cluster uses it, as server and as client), and a rogue
/// one for the same address signed by another CA.
struct TestCertificates {
  explicit TestCertificates(const testing::TempDir& dir) : dir(dir.path()) {
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    testing::WriteFile(dir.Join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    const std::string script = absl::StrCat(
        "cd ", dir.path(), " && set -e", " && openssl req -x509 ", key,
        " -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca", " && openssl req ", key,
        " -keyout node.key -out node.csr -subj /CN=localhost",
        " && openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial",
        " -out node.pem -days 2 -extfile ext.cnf", " && openssl req -x509 ", key,
        " -keyout other.key -out other.pem -days 2 -subj /CN=other", " && openssl req ", key,
        " -keyout rogue.key -out rogue.csr -subj /CN=localhost",
        " && openssl x509 -req -in rogue.csr -CA other.pem -CAkey other.key -CAcreateserial",
        " -out rogue.pem -days 2 -extfile ext.cnf");
    made = testing::RunCommand(script + " 2>&1");
  }
  /// The flags of a process holding certificate `name` (node or rogue) and trusting the CA.
  std::string Flags(const std::string& name) const {
    return absl::StrCat("--tls-cert=", dir, "/", name, ".pem --tls-key=", dir, "/", name,
                        ".key --tls-ca=", dir, "/ca.pem");
  }
  std::vector<std::string> FlagList(const std::string& name) const {
    return absl::StrSplit(Flags(name), ' ');
  }
  std::string dir;
  testing::CommandResult made;
};

TEST(ClusterTest, WithMutualTlsOnlyHoldersOfTheClustersCertificatesGetIn) {
  testing::TempDir dir;
  TestCertificates certs(dir);
  ASSERT_EQ(certs.made.exit_code, 0) << certs.made.output;
  std::vector<std::string> jm_flags = certs.FlagList("node");
  jm_flags.push_back("--rest-port=0");
  JobManagerProcess jm(jm_flags);
  std::vector<std::string> tm1_flags = certs.FlagList("node");
  tm1_flags.push_back("--metrics-port=0");
  TaskManagerProcess tm1(jm.address(), 2, "tm-1", tm1_flags);
  TaskManagerProcess tm2(jm.address(), 2, "tm-2", certs.FlagList("node"));
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return Sluice(absl::StrCat("status --jobmanager=", jm.address(), " ", certs.Flags("node")))
                   .output.find("slots: 4 total") != std::string::npos;
      },
      10000))
      << jm.log() << tm1.log();

  // A job across both TaskManagers: deployments, checkpoint commands, reports and the data
  // exchange all over mutual TLS.
  const std::string input = dir.Join("words.txt");
  testing::WriteFile(input, Words(5000));
  const std::string word_count = absl::StrCat(testing::BuildDir(), "/examples/word_count.so");
  WordCountLocally(input, dir.Join("local"));
  if (HasFatalFailure()) return;
  auto r = Sluice(absl::StrCat("run --jobmanager=", jm.address(), " ", certs.Flags("node"), " ",
                               word_count, " --parallelism=4 -- --input=", input,
                               " --output=", dir.Join("cluster"), " --checkpoint-interval=100ms",
                               " --checkpoint-dir=", dir.Join("checkpoints")));
  EXPECT_EQ(r.exit_code, 0) << r.output << jm.log() << tm1.log();
  EXPECT_THAT(tm1.log(), HasSubstr("deploying this TaskManager's subtasks"));
  EXPECT_THAT(tm2.log(), HasSubstr("deploying this TaskManager's subtasks"));
  const auto expected = SortedOutput(dir.Join("local"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(SortedOutput(dir.Join("cluster")), expected);

  // Plaintext, a client without a certificate, and one whose certificate another CA signed:
  // none gets an answer, not even to read.
  const std::string list = "list --jobmanager=" + jm.address();
  EXPECT_EQ(Sluice(list).exit_code, 1);
  EXPECT_EQ(Sluice(absl::StrCat(list, " --tls-ca=", certs.dir, "/ca.pem")).exit_code, 1);
  EXPECT_EQ(Sluice(absl::StrCat(list, " ", certs.Flags("rogue"))).exit_code, 1);
  EXPECT_EQ(Sluice(absl::StrCat(list, " ", certs.Flags("node"))).exit_code, 0);
  // A TaskManager with the rogue certificate cannot register.
  TaskManagerProcess rogue(jm.address(), 1, "rogue",
                           {certs.FlagList("rogue")[0], certs.FlagList("rogue")[1],
                            certs.FlagList("rogue")[2], "--registration-timeout=2s"});
  EXPECT_EQ(rogue.process().Wait(), 1);
  EXPECT_THAT(rogue.log(), HasSubstr("cannot reach the JobManager"));
  // The REST API and a TaskManager's /metrics with the same certificate, over HTTPS only.
  auto curl = [&](const std::string& url) {
    return testing::RunCommand(
        absl::StrCat("curl -sS --max-time 5 --cacert ", certs.dir, "/ca.pem ", url, " 2>&1"));
  };
  ASSERT_THAT(jm.rest_url(), ::testing::StartsWith("https://127.0.0.1:")) << jm.log();
  auto overview = curl(jm.rest_url() + "/overview");
  EXPECT_EQ(overview.exit_code, 0) << overview.output;
  EXPECT_THAT(overview.output, HasSubstr("\"slots-total\":4"));
  const std::string metrics_url = tm1.metrics_url();
  ASSERT_THAT(metrics_url, ::testing::StartsWith("https://127.0.0.1:")) << tm1.log();
  EXPECT_THAT(curl(metrics_url + "/metrics").output,
              HasSubstr("sluice_taskmanager_slots{taskmanager=\"tm-1\"} 2"));
  std::string plain = jm.rest_url();
  plain.replace(0, 5, "http");
  EXPECT_NE(curl(plain + "/overview").exit_code, 0) << "plain HTTP is not answered";
  // A certificate without its key is named.
  auto half = Sluice(absl::StrCat(list, " --tls-cert=", certs.dir, "/node.pem"));
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_THAT(half.output, HasSubstr("--tls-cert and --tls-key go together"));
}

TEST_F(JobsOnClusterTest, WordCountOnThreeTaskManagersMatchesTheMiniCluster) {
  std::string text;
  for (int i = 0; i < 3000; ++i) {
    absl::StrAppend(&text, "the quick brown fox ", i % 97, " jumps over ", i % 13, " dogs\n");
  }
  const std::string input = dir_.Join("words.txt");
  testing::WriteFile(input, text);
  auto local =
      Sluice(absl::StrCat("run --local ", Job("word_count"), " --parallelism=4 -- --input=", input,
                          " --output=", dir_.Join("local")));
  ASSERT_EQ(local.exit_code, 0) << local.output;
  auto cluster = RunOnCluster(absl::StrCat(Job("word_count"), " --parallelism=4 -- --input=", input,
                                           " --output=", dir_.Join("cluster")));
  ASSERT_EQ(cluster.exit_code, 0) << cluster.output << jm_->log();
  EXPECT_THAT(cluster.output, HasSubstr("job-1 running"));
  EXPECT_THAT(cluster.output, HasSubstr("job-1 finished"));
  const auto expected = SortedOutput(dir_.Join("local"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(SortedOutput(dir_.Join("cluster")), expected);
  EXPECT_EQ(TaskManagersThatRanAPart(), 3) << "spread: 4 slots over 3 TaskManagers";
  // The slots are free again, and the job is listed as finished.
  EXPECT_THAT(StatusWith(jm_->address(), 3), HasSubstr("slots: 6 total, 6 free"));
  EXPECT_THAT(Sluice("list --jobmanager=" + jm_->address()).output, HasSubstr("finished"));
}

TEST_F(JobsOnClusterTest, TwoInputJobsOnThreeTaskManagersMatchTheMiniCluster) {
  // Two-input tasks across processes: each remote channel's records reach the input its edge
  // feeds, watermarks and barriers combine over both inputs. fraud_rules (broadcast state) on
  // its bundled data; the harness's joins job (interval join and co-group) on two sources.
  const std::string data = std::string(SLUICE_SOURCE_DIR) + "/examples/data/";
  std::string left, right;
  for (int i = 0; i < 4000; ++i) {
    absl::StrAppend(&left, "k", i % 23, ",", 10 * i + (i * 7) % 40, ",", i % 100, "\n");
    absl::StrAppend(&right, "k", (i * 3) % 23, ",", 10 * i + (i * 11) % 40, ",", i % 50, "\n");
  }
  testing::WriteFile(dir_.Join("left.csv"), left);
  testing::WriteFile(dir_.Join("right.csv"), right);
  const std::vector<std::pair<std::string, std::string>> jobs = {
      {Job("fraud_rules"), absl::StrCat(" --transactions=", data, "transactions.csv --rules=", data,
                                        "rules.csv --output=")},
      {testing::BuildDir() + "/tests/joins.so",
       absl::StrCat(" --inputs=", dir_.Join("left.csv"), ",", dir_.Join("right.csv"),
                    " --parallelism=4 --out-of-orderness=100ms --interval=30ms --window=200ms"
                    " --side-output=",
                    dir_.Join("groups-"), "OUT --output=")}};
  for (const auto& [job, args] : jobs) {
    SCOPED_TRACE(job);
    const std::string local_out = dir_.Join("local"), cluster_out = dir_.Join("cluster");
    std::string local_args = absl::StrReplaceAll(args, {{"OUT", "local"}});
    std::string cluster_args = absl::StrReplaceAll(args, {{"OUT", "cluster"}});
    auto local =
        Sluice(absl::StrCat("run --local ", job, " --parallelism=4 --", local_args, local_out));
    ASSERT_EQ(local.exit_code, 0) << local.output;
    auto cluster =
        RunOnCluster(absl::StrCat(job, " --parallelism=4 --", cluster_args, cluster_out));
    ASSERT_EQ(cluster.exit_code, 0) << cluster.output << jm_->log();
    const auto expected = SortedOutput(local_out);
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(SortedOutput(cluster_out), expected);
    std::filesystem::remove_all(local_out);
    std::filesystem::remove_all(cluster_out);
  }
  EXPECT_EQ(SortedOutput(dir_.Join("groups-cluster")), SortedOutput(dir_.Join("groups-local")));
  EXPECT_FALSE(SortedOutput(dir_.Join("groups-local")).empty());
}

TEST_F(JobsOnClusterTest, WindowedStatsOnThreeTaskManagersMatchesTheMiniCluster) {
  std::string lines;
  for (int i = 0; i < 5000; ++i) {
    absl::StrAppend(&lines, "sensor-", i % 17, ",", 1000 * (i / 10) + (i * 37) % 900, ",",
                    (i * 7) % 100, "\n");
  }
  const std::string input = dir_.Join("events.csv");
  testing::WriteFile(input, lines);
  const std::string args =
      absl::StrCat(" --window=tumbling:5s --out-of-orderness=2s --input=", input, " --output=");
  auto local = Sluice(absl::StrCat("run --local ", Job("windowed_stats"), " --parallelism=4 --",
                                   args, dir_.Join("local")));
  ASSERT_EQ(local.exit_code, 0) << local.output;
  auto cluster = RunOnCluster(
      absl::StrCat(Job("windowed_stats"), " --parallelism=4 --", args, dir_.Join("cluster")));
  ASSERT_EQ(cluster.exit_code, 0) << cluster.output << jm_->log();
  const auto expected = SortedOutput(dir_.Join("local"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(SortedOutput(dir_.Join("cluster")), expected);
}

TEST_F(JobsOnClusterTest, AFailingJobFailsWithItsErrorAndFreesItsSlots) {
  const std::string input = dir_.Join("bad.csv");
  testing::WriteFile(input, "a,1000,1\nb,2000,2\nthis is not a record\n");
  auto r = RunOnCluster(absl::StrCat(Job("windowed_stats"), " --parallelism=2 -- --input=", input,
                                     " --output=", dir_.Join("out"), " --window=tumbling:1s"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("job-1 failed: on TaskManager 'tm-"));
  EXPECT_THAT(r.output, HasSubstr("bad.csv:3: expected key,timestamp_ms,value"));
  // The job fails with its first failed part; the others give their slots back once canceled.
  EXPECT_THAT(StatusShowing(jm_->address(), "slots: 6 total, 6 free"),
              HasSubstr("slots: 6 total, 6 free"));
}

TEST_F(JobsOnClusterTest, AJobNeedingMoreSlotsThanTheClusterHasFailsSayingSo) {
  auto r = RunOnCluster(absl::StrCat(Job("word_count"), " --parallelism=8 -- --input=/dev/null"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("not enough slots: the job needs 8 (its highest parallelism); "
                                  "the cluster has 6 slots in 3 TaskManagers"));
}

TEST_F(JobsOnClusterTest, ABadJobBinaryIsRefusedBeforeAnythingIsSubmitted) {
  auto missing = RunOnCluster(dir_.Join("nothing.so"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.output, HasSubstr("nothing.so"));
  auto not_a_job = RunOnCluster("/etc/passwd");
  EXPECT_NE(not_a_job.exit_code, 0);
  EXPECT_THAT(not_a_job.output, HasSubstr("is not a job binary"));
  auto no_entry = RunOnCluster(testing::BuildDir() + "/lib/libsluice_engine.so");
  EXPECT_NE(no_entry.exit_code, 0);
  EXPECT_THAT(no_entry.output, HasSubstr("no SLUICE_JOB entry point"));
  auto foreign = RunOnCluster(testing::BuildDir() + "/tests/foreign_abi.so");
  EXPECT_NE(foreign.exit_code, 0);
  EXPECT_THAT(foreign.output, HasSubstr("built against engine ABI 'sluice-engine-abi-0/other'"));
  EXPECT_THAT(Sluice("list --jobmanager=" + jm_->address()).output, HasSubstr("no jobs"));
}

TEST_F(JobsOnClusterTest, TheJobManagerAndTaskManagersCheckTheJobBinaryToo) {
  // A client that skips its own checks: the JobManager refuses the binary when it loads it.
  cluster::JobManagerClient client(jm_->address());
  auto blob = client.UploadFile(testing::BuildDir() + "/tests/foreign_abi.so");
  ASSERT_OK(blob);
  cluster::JobSubmission request;
  request.mutable_job_binary()->set_sha256(blob->sha256);
  request.mutable_job_binary()->set_size(blob->size);
  request.set_job_name("foreign");
  request.add_vertex_parallelism(1);
  auto refused = client.Submit(request);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("built against engine ABI 'sluice-engine-abi-0/other'"));

  // So does a TaskManager given it directly.
  const std::string log = tms_[0]->log();
  const std::string marker = "serving on ";
  const std::string address = RestOfLineAfter(log, marker);
  ASSERT_FALSE(address.empty()) << log;
  auto taskmanager = cluster::TaskManagerService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  cluster::DeployJobRequest deploy;
  deploy.set_job_id("job-direct");
  *deploy.mutable_job() = request;
  deploy.add_placement(0);
  deploy.add_exchange_addresses(address);
  deploy.set_attempt(1);
  grpc::ClientContext ctx;
  cluster::DeployJobReply reply;
  ASSERT_TRUE(taskmanager->DeployJob(&ctx, deploy, &reply).ok());
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return tms_[0]->log().find("built against engine ABI 'sluice-engine-abi-0/other'") !=
               std::string::npos;
      },
      10000))
      << tms_[0]->log();

  // Nor can a job name a binary the blob store does not have.
  request.mutable_job_binary()->set_sha256(std::string(64, 'e'));
  refused = client.Submit(request);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("is not in the blob store"));
}

/// A process's resident memory, in MiB (0 if it is gone).
int64_t ResidentMiB(int pid) {
  const std::string status = testing::ReadFile(absl::StrCat("/proc/", pid, "/status"));
  const size_t at = status.find("VmRSS:");
  if (at == std::string::npos) return 0;
  return std::strtoll(status.c_str() + at + 6, nullptr, 10) / 1024;
}

TEST_F(JobsOnClusterTest, ASlowSinkBackPressuresItsProducersAcrossProcesses) {
  // An unbounded source of 1 KiB records against a sink of 1 ms per record: without back
  // pressure the producers would queue gigabytes within seconds.
  auto r = RunOnCluster(
      absl::StrCat(testing::BuildDir(), "/tests/slow_sink.so", " --parallelism=2 --detached"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(testing::WaitFor([&] { return TaskManagersThatRanAPart() == 2; }, 10000));
  int64_t most = 0;
  const absl::Time end = absl::Now() + absl::Seconds(3);  // the window memory is watched in
  while (absl::Now() < end) {
    for (const auto& tm : tms_) most = std::max(most, ResidentMiB(tm->process().pid()));
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_THAT(Sluice("list --jobmanager=" + jm_->address()).output, HasSubstr("running"));
  EXPECT_LT(most, 200) << "MiB resident in the largest TaskManager";
  EXPECT_EQ(Sluice("cancel --jobmanager=" + jm_->address() + " job-1").exit_code, 0);
}

TEST_F(JobsOnClusterTest, ARunningJobIsCanceledOnEveryTaskManager) {
  int port = 0;
  const int listener = testing::ListenOnLoopback(&port);  // connects, never sends: runs on
  auto r = RunOnCluster(
      absl::StrCat(Job("socket_window_sum"), " --parallelism=3 --detached -- --port=", port));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return Sluice("list --jobmanager=" + jm_->address()).output.find("running") !=
               std::string::npos;
      },
      10000));
  auto cancel = Sluice("cancel --jobmanager=" + jm_->address() + " job-1");
  EXPECT_EQ(cancel.exit_code, 0) << cancel.output;
  EXPECT_THAT(cancel.output, HasSubstr("canceled"));
  // Every part stops and gives its slots back.
  EXPECT_THAT(StatusShowing(jm_->address(), "slots: 6 total, 6 free"),
              HasSubstr("slots: 6 total, 6 free"));
  ::close(listener);
}

// A TaskManager keeps copies of its subtasks' snapshots while their job lives and drops them
// once the JobManager no longer lists the job (here: canceled by the user).
TEST_F(JobsOnClusterTest, LocalStateCopiesGoWhenTheirJobEnds) {
  constexpr int kLines = 40000;
  const std::string job_args = WordCountOnTheMiniCluster(kLines, 4);
  auto r = RunOnCluster(absl::StrCat(
      Job("word_count"), " --parallelism=4 --detached --", job_args, dir_.Join("cluster"),
      " --checkpoint-interval=100ms --checkpoint-dir=", dir_.Join("checkpoints"),
      " --max-source-rate=", kLines / 16));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto copies = [&] {
    int n = 0;
    for (const auto& tm : tms_) n += std::filesystem::exists(tm->local_state_dir() + "/job-1");
    return n;
  };
  ASSERT_TRUE(testing::WaitFor([&] { return copies() == 3; }, 20000))
      << "every TaskManager keeps copies of its subtasks' snapshots";
  auto cancel = Sluice("cancel --jobmanager=" + jm_->address() + " job-1");
  ASSERT_EQ(cancel.exit_code, 0) << cancel.output;
  EXPECT_TRUE(testing::WaitFor([&] { return copies() == 0; }, 10000)) << copies();
}

TEST_F(JobsOnClusterTest, AJobFailsWhenOneOfItsTaskManagersIsKilled) {
  int port = 0;
  const int listener = testing::ListenOnLoopback(&port);
  auto r = RunOnCluster(
      absl::StrCat(Job("socket_window_sum"), " --parallelism=3 --detached -- --port=", port));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(testing::WaitFor([&] { return TaskManagersThatRanAPart() == 3; }, 10000));
  tms_[1]->process().Signal(SIGKILL);
  std::string list;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        list = Sluice("list --jobmanager=" + jm_->address()).output;
        return list.find("failed") != std::string::npos;
      },
      10000));
  EXPECT_THAT(list, HasSubstr("TaskManager 'tm-2' was lost"));
  ::close(listener);
}

// --- checkpoints, restarts and savepoints across processes ---

/// Polls the JobManager until `job_id` reaches `state` (or a final state); returns its status.
cluster::JobStatus AwaitJob(const std::string& jobmanager, const std::string& job_id,
                            cluster::JobState state, int timeout_ms = 60000) {
  cluster::JobManagerClient client(jobmanager);
  cluster::JobStatus last;
  testing::WaitFor(
      [&] {
        auto job = client.Job(job_id);
        if (job.ok()) last = *job;
        const cluster::JobState s = last.state();
        return s == state || s == cluster::FINISHED || s == cluster::FAILED ||
               s == cluster::CANCELED;
      },
      timeout_ms);
  return last;
}

std::pair<std::vector<std::string>, std::vector<std::string>>
JobsOnClusterTest::SubmitWindowedStats(uint64_t seed, int seconds, const std::string& extra_args) {
  constexpr int kLines = 40000;
  const auto events = testing::GenerateEvents(seed, kLines, /*late_records=*/true, 0);
  const std::string input = dir_.Join("events.csv");
  testing::WriteFile(input, testing::EventLines(events));
  testing::RefSpec spec;
  spec.kind = testing::RefWindowKind::kSliding;
  spec.size = 1000;
  spec.slide = 250;
  spec.out_of_orderness = 200;
  spec.allowed_lateness = 200;
  const std::string out = dir_.Join("out");
  auto r = RunOnCluster(absl::StrCat(
      Job("windowed_stats"), " --parallelism=3 --detached -- --input=", input, " --output=", out,
      "/main --late-output=", out, "/side",
      " --window=sliding:1000ms:250ms --out-of-orderness=200ms --allowed-lateness=200ms",
      " --checkpoint-interval=200ms --checkpoint-dir=", dir_.Join("checkpoints"), extra_args,
      " --max-source-rate=", kLines / seconds));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return testing::WindowedStatsLines(testing::RunReference(events, spec));
}

/// Runs word_count at parallelism 4 on the cluster (about 4 s of input, checkpoints every
/// 100 ms into a directory all processes reach, `restart_args`) and sends TaskManager
/// `victim` `signal` once a checkpoint completed; the expected output is in dir_/local, the
/// job's goes to dir_/cluster.
void JobsOnClusterTest::RunWordCountAndKillATaskManager(int victim, const std::string& restart_args,
                                                        int signal) {
  constexpr int kLines = 40000;
  const std::string job_args = WordCountOnTheMiniCluster(kLines, 4);
  auto r = RunOnCluster(absl::StrCat(
      Job("word_count"), " --parallelism=4 --detached --", job_args, dir_.Join("cluster"),
      " --checkpoint-interval=100ms --checkpoint-dir=", dir_.Join("checkpoints"), restart_args,
      " --max-source-rate=", kLines / 16));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(testing::WaitFor(
      [&] { return testing::HasCompletedCheckpoint(dir_.Join("checkpoints/word_count")); }, 20000))
      << jm_->log();
  ASSERT_EQ(TaskManagersThatRanAPart(), 3);
  if (signal != 0) tms_[victim]->process().Signal(signal);
}

TEST_F(JobsOnClusterTest, ATaskManagerStoppedAndResumedMidRunWritesNothingIntoTheNewRun) {
  // SIGSTOP: the JobManager declares it lost after the heartbeat timeout and runs the job
  // again elsewhere; then it wakes up with its old run's subtasks and their buffered records.
  RunWordCountAndKillATaskManager(1, " --restart-strategy=fixed-delay --restart-attempts=2",
                                  SIGSTOP);
  if (HasFatalFailure()) return;
  cluster::JobManagerClient client(jm_->address());
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto job = client.Job("job-1");
        return job.ok() && job->restarts() == 1 && job->state() == cluster::RUNNING;
      },
      20000))
      << jm_->log();
  tms_[1]->process().Signal(SIGCONT);
  // Its control stream was ended: it registers again and cancels the old run's part — unless
  // that part failed first, on its inputs from the old run's canceled parts elsewhere. Until
  // then the old run's producers reach no consumer of the new run (streams carry the run).
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        const std::string log = tms_[1]->log();
        return log.find("canceling its part here") != std::string::npos ||
               log.find("this TaskManager's part ended") != std::string::npos;
      },
      10000))
      << tms_[1]->log();
  const cluster::JobStatus job = AwaitJob(jm_->address(), "job-1", cluster::FINISHED);
  ASSERT_EQ(job.state(), cluster::FINISHED) << job.failure() << jm_->log();
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_THAT(job.restart_cause(), HasSubstr("TaskManager 'tm-2' was lost (no heartbeat for"));
  const auto expected = SortedOutput(dir_.Join("local"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(SortedOutput(dir_.Join("cluster")), expected);
}

TEST_F(JobsOnClusterTest, CheckpointsCompleteAcrossProcessesAndTheJobRestartsFromOne) {
  const std::string checkpoints = dir_.Join("checkpoints");
  RunWordCountAndKillATaskManager(0, " --restart-attempts=2 --restart-delay=100ms");
  if (HasFatalFailure()) return;

  // The job restarts on the two TaskManagers left, from the latest checkpoint, and its
  // output is exactly that of an undisturbed run: nothing lost, nothing twice.
  const cluster::JobStatus job = AwaitJob(jm_->address(), "job-1", cluster::FINISHED);
  ASSERT_EQ(job.state(), cluster::FINISHED) << job.failure() << jm_->log();
  EXPECT_EQ(job.restarts(), 1);
  // The first to notice: a peer's broken exchange stream, or the lost heartbeats.
  EXPECT_THAT(job.restart_cause(), ::testing::AnyOf(HasSubstr("exchange with the TaskManager at"),
                                                    HasSubstr("'tm-1' was lost")));
  EXPECT_THAT(job.restored_from(), HasSubstr(checkpoints + "/word_count/chk-"));
  EXPECT_GT(job.completed_checkpoints(), 1);
  for (const std::string& tm : job.taskmanagers()) EXPECT_NE(tm, "tm-1");
  const auto expected = SortedOutput(dir_.Join("local"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(SortedOutput(dir_.Join("cluster")), expected);
}

/// The cluster with the JobManager's default settings.
class DefaultSettingsClusterTest : public JobsOnClusterTest {
 protected:
  std::vector<std::string> JobManagerFlags() const override { return {}; }
};

TEST_F(DefaultSettingsClusterTest, AKilledTaskManagersWorkRunsAgainWithoutAnyRestartSetting) {
  // Checkpoints (of RocksDB state), and nothing said about restarts or heartbeats.
  const std::string checkpoints = dir_.Join("checkpoints");
  RunWordCountAndKillATaskManager(2, " --state-backend=rocksdb");
  if (HasFatalFailure()) return;
  const int64_t killed_ms = absl::ToUnixMillis(absl::Now());

  const cluster::JobStatus job = AwaitJob(jm_->address(), "job-1", cluster::FINISHED);
  ASSERT_EQ(job.state(), cluster::FINISHED) << job.failure() << jm_->log();
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_THAT(job.restart_strategy(), HasSubstr("exponential-delay"));
  // The restored run processed records again after the kill (how soon: bench/recovery_bench).
  EXPECT_GE(job.run_first_record_ms(), killed_ms - 5);
  // Noticed by a broken stream (the control stream, or a consumer's input), not by waiting
  // for the heartbeat timeout.
  EXPECT_THAT(job.restart_cause(),
              ::testing::AnyOf(HasSubstr("TaskManager 'tm-3' was lost (its control stream broke"),
                               HasSubstr("exchange stream from the TaskManager at"),
                               HasSubstr("exchange with the TaskManager at")));
  ASSERT_EQ(job.failures_size(), 1);
  EXPECT_EQ(job.failures(0).message(), job.restart_cause());
  for (const std::string& tm : job.taskmanagers()) EXPECT_NE(tm, "tm-3");
  // Each slot went back to its TaskManager where that one lives: tm-1 kept subtasks 0 and 3,
  // and restored them from the copies it had kept of their snapshots and of their databases'
  // files (task-local recovery).
  EXPECT_THAT(tms_[0]->log(), HasSubstr("of them from local copies")) << tms_[0]->log();
  EXPECT_THAT(tms_[0]->log(), ::testing::ContainsRegex("RocksDB files: [0-9]+, [1-9][0-9]* of "
                                                       "them with local copies"))
      << tms_[0]->log();
  const auto expected = SortedOutput(dir_.Join("local"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(SortedOutput(dir_.Join("cluster")), expected);

  // `sluice status JOB_ID` tells the story.
  const std::string status = Sluice("status --jobmanager=" + jm_->address() + " job-1").output;
  EXPECT_THAT(status, HasSubstr("job-1 'word_count': finished"));
  EXPECT_THAT(status, HasSubstr("restart strategy: exponential-delay (--restart-initial-delay="));
  EXPECT_THAT(status, HasSubstr("restarts: 1"));
  EXPECT_THAT(status, HasSubstr("failures (1, oldest first):"));
  EXPECT_THAT(status, HasSubstr(job.restart_cause()));
  EXPECT_THAT(status, HasSubstr("restored from " + checkpoints + "/word_count/chk-"));
  // ... including where each TaskManager's restore read its state from.
  EXPECT_THAT(status, ::testing::ContainsRegex(
                          "tm-1: [0-9]+ state files read, [1-9][0-9]* of them from its local "
                          "copies, [0-9]+ not needed; RocksDB files: [0-9]+, [1-9][0-9]* of them "
                          "from its local copies"));
  EXPECT_THAT(status, ::testing::ContainsRegex("tm-2: [0-9]+ state files read"));
}

/// The cluster with tm-3 in a network namespace of the test's own, joined by a veth pair
/// whose inside end the test can take down: a silent host (no reset reaches anyone).
class SilentHostClusterTest : public JobsOnClusterTest {
 protected:
  void SetUp() override {
    if (!netns_.available()) {
      GTEST_SKIP() << "a network namespace cannot be created here, so no silent host either "
                      "(the SIGSTOP tests cover silence): "
                   << netns_.why();
    }
    JobsOnClusterTest::SetUp();
  }
  std::vector<std::string> JobManagerFlags() const override {
    std::vector<std::string> flags = JobsOnClusterTest::JobManagerFlags();
    flags.push_back("--bind-address=" + netns_.outer_address());
    return flags;
  }
  std::vector<std::string> TaskManagerFlags(int i) const override {
    return {"--bind-address=" + (i == 2 ? netns_.inner_address() : netns_.outer_address())};
  }
  std::vector<std::string> TaskManagerLauncher(int i) const override {
    return i == 2 ? netns_.Launcher() : std::vector<std::string>{};
  }

  testing::NetworkNamespace netns_;
};

TEST_F(SilentHostClusterTest, AHostCutOffIsFoundByTheHeartbeatTimeoutAndItsWorkMoves) {
  const std::string checkpoints = dir_.Join("checkpoints");
  RunWordCountAndKillATaskManager(2, " --restart-attempts=2 --restart-delay=100ms",
                                  /*signal=*/0);
  if (HasFatalFailure()) return;
  const absl::Time cut = absl::Now();
  ASSERT_TRUE(netns_.SetLinkUp(false)) << netns_.why();

  const cluster::JobStatus job = AwaitJob(jm_->address(), "job-1", cluster::FINISHED);
  ASSERT_EQ(job.state(), cluster::FINISHED) << job.failure() << jm_->log();
  EXPECT_EQ(job.restarts(), 1);
  // Nothing broke: only the silence (heartbeats, here 2 s) or a stalled exchange tells.
  EXPECT_THAT(job.restart_cause(), HasSubstr("TaskManager 'tm-3' was lost (no heartbeat for"))
      << jm_->log();
  ASSERT_GT(job.history_size(), 2);
  for (const cluster::StateChange& change : job.history()) {
    if (change.state() == cluster::RESTARTING) {
      EXPECT_GE(absl::FromUnixMillis(change.at_ms()) - cut, absl::Milliseconds(1900))
          << "found by the heartbeat timeout, not before";
    }
  }
  for (const std::string& tm : job.taskmanagers()) EXPECT_NE(tm, "tm-3");
  const auto expected = SortedOutput(dir_.Join("local"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(SortedOutput(dir_.Join("cluster")), expected);
}

/// A JobManager that keeps its jobs in a recovery directory.
class RecoveringJobManagerTest : public JobsOnClusterTest {
 protected:
  std::vector<std::string> JobManagerFlags() const override {
    // The blob store outlives the process too (later flags win).
    return {"--heartbeat-interval=100ms", "--heartbeat-timeout=2s", "--slot-wait=5s",
            "--recovery-dir=" + recovery_.Join("jobs"), "--blob-dir=" + recovery_.Join("blobs")};
  }
  testing::TempDir recovery_;
};

TEST_F(RecoveringJobManagerTest, AKilledJobManagerStartedAgainRunsItsJobToTheExactOutput) {
  constexpr int kLines = 40000;
  const std::string job_args = WordCountOnTheMiniCluster(kLines, 4);
  const std::string checkpoints = dir_.Join("checkpoints");
  // Followed by a `sluice run` that is not detached, as a user would.
  testing::ChildProcess follower(
      {testing::BuildDir() + "/bin/sluice", "run", "--jobmanager=" + jm_->address(),
       Job("word_count"), "--parallelism=4", "--", "--input=" + dir_.Join("words.txt"),
       "--output=" + dir_.Join("cluster"), "--checkpoint-interval=100ms",
       "--checkpoint-dir=" + checkpoints, absl::StrCat("--max-source-rate=", kLines / 16)},
      dir_.Join("follower.log"));
  ASSERT_TRUE(testing::WaitFor(
      [&] { return testing::HasCompletedCheckpoint(checkpoints + "/word_count"); }, 20000))
      << jm_->log() << testing::ReadFile(dir_.Join("follower.log"));
  const int port = jm_->port();
  jm_->process().Signal(SIGKILL);
  jm_->process().Wait();
  jm_ = std::make_unique<JobManagerProcess>(JobManagerFlags(), port);

  // The TaskManagers come back, the job runs again from its latest checkpoint.
  const cluster::JobStatus job = AwaitJob(jm_->address(), "job-1", cluster::FINISHED);
  ASSERT_EQ(job.state(), cluster::FINISHED) << job.failure() << jm_->log();
  EXPECT_THAT(job.restored_from(), HasSubstr(checkpoints + "/word_count/chk-"));
  EXPECT_THAT(jm_->log(),
              HasSubstr("job-1 ('word_count') recovered from " + recovery_.Join("jobs")));
  const auto expected = SortedOutput(dir_.Join("local"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(SortedOutput(dir_.Join("cluster")), expected);
  // The follower waited for the JobManager and saw the job finish.
  EXPECT_EQ(follower.Wait(), 0) << testing::ReadFile(dir_.Join("follower.log"));
  EXPECT_THAT(testing::ReadFile(dir_.Join("follower.log")), HasSubstr("job-1 finished"));
  // Job ids are never given again; the ended job leaves the recovery directory.
  auto next = RunOnCluster(absl::StrCat(Job("word_count"), " --detached -- --input=",
                                        dir_.Join("words.txt"), " --output=", dir_.Join("again")));
  EXPECT_THAT(next.output, HasSubstr("submitted job-2"));
  EXPECT_TRUE(testing::WaitFor(
      [&] { return !std::filesystem::exists(recovery_.Join("jobs/jobs/job-1.job")); }, 10000));
}

TEST_F(RecoveringJobManagerTest, ChaosOfKilledTaskManagersAndAJobManagerChangesNoOutput) {
  // windowed_stats over out-of-order input with late records (firings and late records are
  // written all along), checkpoints every 200 ms, about 10 s of input at parallelism 3. Every
  // 0.8-2 s a random TaskManager is SIGKILLed and a new one started; once, the JobManager is
  // SIGKILLed and started again. The output must be the model's, as without failures.
  const uint64_t seed = std::getenv("SLUICE_CLUSTER_CHAOS_SEED") != nullptr
                            ? std::stoull(std::getenv("SLUICE_CLUSTER_CHAOS_SEED"))
                            : std::random_device{}();
  std::printf("cluster chaos: seed %llu (SLUICE_CLUSTER_CHAOS_SEED=%llu repeats its choices)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const auto [firings, late] = SubmitWindowedStats(seed, /*seconds=*/10, "");
  if (HasFailure()) return;
  const std::string out = dir_.Join("out");
  const std::string checkpoints = dir_.Join("checkpoints");
  ASSERT_TRUE(testing::WaitFor(
      [&] { return testing::HasCompletedCheckpoint(checkpoints + "/windowed_stats"); }, 20000))
      << jm_->log();

  cluster::JobManagerClient client(jm_->address());
  auto ended = [&] {
    auto job = client.Job("job-1");
    return job.ok() && (job->state() == cluster::FINISHED || job->state() == cluster::FAILED ||
                        job->state() == cluster::CANCELED);
  };
  const int jobmanager_fault = std::uniform_int_distribution<int>(1, 3)(rng);
  int next_tm = static_cast<int>(tms_.size());
  std::string faults;
  for (int fault = 1; fault <= 5 && !ended(); ++fault) {
    // The pace of the chaos, not a condition to wait for.
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(800, 2000)(rng)));
    if (fault == jobmanager_fault) {
      const int port = jm_->port();
      jm_->process().Signal(SIGKILL);
      jm_->process().Wait();
      jm_ = std::make_unique<JobManagerProcess>(JobManagerFlags(), port);
      absl::StrAppend(&faults, " JobManager;");
      continue;
    }
    const size_t victim = std::uniform_int_distribution<size_t>(0, tms_.size() - 1)(rng);
    tms_[victim]->process().Signal(SIGKILL);
    tms_[victim] =
        std::make_unique<TaskManagerProcess>(jm_->address(), 2, absl::StrCat("tm-", ++next_tm));
    absl::StrAppend(&faults, " TaskManager ", victim, ";");
  }
  const cluster::JobStatus job = AwaitJob(jm_->address(), "job-1", cluster::FINISHED, 120000);
  ASSERT_EQ(job.state(), cluster::FINISHED) << "seed " << seed << ", faults:" << faults << "\n"
                                            << job.failure() << jm_->log();
  std::printf("cluster chaos: faults:%s restarts since the JobManager's last start: %d\n",
              faults.c_str(), job.restarts());
  ASSERT_FALSE(firings.empty());
  EXPECT_EQ(SortedOutput(out + "/main"), firings) << "seed " << seed << ", faults:" << faults;
  EXPECT_EQ(SortedOutput(out + "/side"), late) << "seed " << seed << ", faults:" << faults;
}

/// True if `dir` holds a committed part file and, for each of `subtasks` sink subtasks, a
/// non-empty in-progress one: output both committed and pending.
bool HasCommittedAndPendingParts(const std::string& dir, int subtasks) {
  std::error_code ec;
  bool committed = false;
  std::set<std::string> pending;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    std::error_code size_ec;
    const auto size = std::filesystem::file_size(entry.path(), size_ec);
    if (size_ec || size == 0) continue;
    if (name.starts_with("part-")) committed = true;
    // .part-<subtask>-<n>.inprogress
    if (name.starts_with(".part-") && name.ends_with(".inprogress")) {
      pending.insert(name.substr(6, name.find('-', 6) - 6));
    }
  }
  return committed && static_cast<int>(pending.size()) == subtasks;
}

TEST_F(JobsOnClusterTest, ATaskManagerKilledWithFiringsPendingInItsSinkLosesAndRepeatsNothing) {
  // windowed_stats over out-of-order input with late records writes firings and late records
  // all along. About 4 s of input at parallelism 3; a TaskManager is killed once a checkpoint
  // completed, firings were committed, and every sink subtask has firings pending (written
  // after the last completed checkpoint).
  const auto [firings, late] =
      SubmitWindowedStats(20261202, /*seconds=*/4, " --restart-attempts=2 --restart-delay=100ms");
  if (HasFailure()) return;
  const std::string out = dir_.Join("out");
  const std::string checkpoints = dir_.Join("checkpoints");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::HasCompletedCheckpoint(checkpoints + "/windowed_stats") &&
               HasCommittedAndPendingParts(out + "/main", 3);
      },
      20000))
      << jm_->log();
  ASSERT_EQ(TaskManagersThatRanAPart(), 3);
  tms_[1]->process().Signal(SIGKILL);

  const cluster::JobStatus job = AwaitJob(jm_->address(), "job-1", cluster::FINISHED);
  ASSERT_EQ(job.state(), cluster::FINISHED) << job.failure() << jm_->log();
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_THAT(job.restored_from(), HasSubstr(checkpoints + "/windowed_stats/chk-"));
  for (const std::string& tm : job.taskmanagers()) EXPECT_NE(tm, "tm-2");
  // Exactly the model's firings and late records: the pending ones of the dead TaskManager
  // are neither lost nor committed twice.
  ASSERT_FALSE(firings.empty());
  EXPECT_EQ(SortedOutput(out + "/main"), firings);
  EXPECT_EQ(SortedOutput(out + "/side"), late);
}

TEST_F(JobsOnClusterTest, AFailedTaskRestartsTheJobFromTheLatestCheckpoint) {
  // Lines copied through an exchange between TaskManagers; the first run fails at "fail here", 3/4
  // into the file, about a second in (so checkpoints completed before).
  constexpr int kLines = 20000;
  std::string text;
  std::vector<std::string> expected;
  for (int i = 0; i < kLines; ++i) {
    expected.push_back(i == kLines * 3 / 4 ? "fail here" : absl::StrCat("line ", i));
    absl::StrAppend(&text, expected.back(), "\n");
  }
  std::sort(expected.begin(), expected.end());
  const std::string input = dir_.Join("lines.txt");
  testing::WriteFile(input, text);
  const std::string checkpoints = dir_.Join("checkpoints");
  auto r = RunOnCluster(
      absl::StrCat(testing::BuildDir(), "/tests/fail_once.so --parallelism=2 -- --input=", input,
                   " --output=", dir_.Join("out"), " --marker=", dir_.Join("marker"),
                   " --checkpoint-interval=100ms --checkpoint-dir=", checkpoints,
                   " --restart-attempts=1 --restart-delay=50ms --max-source-rate=", kLines / 4));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("job-1 restarting: on TaskManager 'tm-"));
  EXPECT_THAT(r.output, HasSubstr("the planned failure"));
  EXPECT_THAT(r.output,
              HasSubstr("job-1 running: restored from " + checkpoints + "/fail_once/chk-"));
  EXPECT_THAT(r.output, HasSubstr("job-1 finished"));
  EXPECT_TRUE(std::filesystem::exists(dir_.Join("marker")));
  EXPECT_EQ(SortedOutput(dir_.Join("out")), expected);
}

TEST_F(JobsOnClusterTest, AKilledTaskManagersRegionRestartsAloneWhileTheOthersRunOn) {
  // Three pipelines without an exchange between them (three pipelined regions), one per
  // TaskManager. SIGKILL of the TaskManager running region 1 restarts that region alone, from
  // the latest checkpoint, in a free slot of another TaskManager; regions 0 and 2 keep the
  // parts of the first run, and the output is exactly the input, each line once.
  constexpr int kLines = 30000;
  std::string text;
  std::vector<std::string> expected;
  for (int i = 0; i < kLines; ++i) {
    absl::StrAppend(&text, "line ", i, "\n");
    expected.push_back(absl::StrCat("seen line ", i));
  }
  std::sort(expected.begin(), expected.end());
  const std::string input = dir_.Join("lines.txt");
  testing::WriteFile(input, text);
  const std::string checkpoints = dir_.Join("checkpoints");
  auto r = RunOnCluster(absl::StrCat(
      testing::BuildDir(), "/tests/regions.so --parallelism=3 --detached -- --input=", input,
      " --output=", dir_.Join("out"), " --checkpoint-interval=100ms --checkpoint-dir=", checkpoints,
      " --restart-strategy=fixed-delay --restart-attempts=3 --restart-delay=100ms",
      " --max-source-rate=", kLines / 3 / 6));  // about 6 s per subtask
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(testing::WaitFor(
      [&] { return testing::HasCompletedCheckpoint(checkpoints + "/regions"); }, 20000))
      << jm_->log();
  cluster::JobManagerClient client(jm_->address());
  auto before = client.Job("job-1");
  ASSERT_OK(before);
  EXPECT_EQ(before->regions(), 3);
  ASSERT_EQ(before->running_parts_size(), 3);
  std::map<int, std::string> where;  // region -> TaskManager
  for (const cluster::RunningPart& p : before->running_parts()) {
    EXPECT_EQ(p.attempt(), 1);
    where[p.region()] = p.taskmanager_id();
  }
  ASSERT_EQ(where.size(), 3u);
  const std::string victim = where[1];
  ASSERT_NE(victim, where[0]);
  ASSERT_NE(victim, where[2]);
  int victim_index = -1;
  for (size_t i = 0; i < tms_.size(); ++i) {
    if (absl::StrCat("tm-", i + 1) == victim) victim_index = static_cast<int>(i);
  }
  ASSERT_GE(victim_index, 0);
  tms_[victim_index]->process().Signal(SIGKILL);

  // Region 1 runs again (run 2) while regions 0 and 2 are still the parts of run 1.
  cluster::JobStatus during;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto job = client.Job("job-1");
        if (!job.ok()) return false;
        during = *job;
        for (const cluster::RunningPart& p : during.running_parts()) {
          if (p.region() == 1 && p.attempt() == 2) return true;
        }
        return during.state() != cluster::RUNNING;
      },
      20000))
      << jm_->log();
  ASSERT_EQ(during.state(), cluster::RUNNING) << during.failure() << jm_->log();
  EXPECT_EQ(during.region_restarts(), 1);
  for (const cluster::RunningPart& p : during.running_parts()) {
    if (p.region() == 1) {
      EXPECT_NE(p.taskmanager_id(), victim);
    } else {
      EXPECT_EQ(p.attempt(), 1) << "region " << p.region() << " was not restarted";
      EXPECT_EQ(p.taskmanager_id(), where[p.region()]);
    }
  }
  const std::string status = Sluice("status --jobmanager=" + jm_->address() + " job-1").output;
  EXPECT_THAT(status, HasSubstr("restarts: 1 (1 of them of some pipelined regions only)"));
  EXPECT_THAT(status, HasSubstr("pipelined regions: 3 (a failure restarts only the regions it "
                                "touched)"));
  EXPECT_THAT(status, HasSubstr(absl::StrCat(where[0], " region 0 (run 1)")));
  EXPECT_THAT(status, ::testing::ContainsRegex("tm-[0-9] region 1 \\(run 2\\)"));
  EXPECT_THAT(status, HasSubstr("region failover: 1 of 3 pipelined regions started again from " +
                                checkpoints + "/regions/chk-"));

  const cluster::JobStatus job = AwaitJob(jm_->address(), "job-1", cluster::FINISHED);
  ASSERT_EQ(job.state(), cluster::FINISHED) << job.failure() << jm_->log();
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_THAT(job.restart_cause(), HasSubstr("'" + victim + "' was lost"));
  // The survivors deployed the first run's parts, and one of them region 1's second: four
  // deployments in all, none of regions 0 and 2 again.
  int deployments = 0;
  for (size_t i = 0; i < tms_.size(); ++i) {
    if (static_cast<int>(i) == victim_index) continue;
    const std::string log = tms_[i]->log();
    EXPECT_THAT(log, ::testing::Not(HasSubstr("(region 0, run 2)")));
    EXPECT_THAT(log, ::testing::Not(HasSubstr("(region 2, run 2)")));
    for (size_t at = log.find("deploying this TaskManager's subtasks"); at != std::string::npos;
         at = log.find("deploying this TaskManager's subtasks", at + 1)) {
      ++deployments;
    }
  }
  EXPECT_EQ(deployments, 3);
  EXPECT_EQ(SortedOutput(dir_.Join("out")), expected);
}

// Several hosts: a JobManager and two TaskManagers, each in a network namespace of its own
// with its own address, joined by a bridge; the CLI on a fourth. The TaskManagers listen on
// every interface and advertise their host's address, as the operations guide's recipe says.
TEST(SeveralHostsTest, ACheckpointedJobRunsAcrossHostsWithExactOutput) {
  testing::NetworkHosts hosts(4);
  if (!hosts.available()) {
    GTEST_SKIP() << "network namespaces (and a bridge) cannot be made here, so no hosts: "
                 << hosts.why();
  }
  testing::TempDir dir;
  JobManagerProcess jm({"--bind-address=0.0.0.0", "--advertised-address=" + hosts.address(0),
                        "--heartbeat-interval=100ms", "--heartbeat-timeout=2s"},
                       0, "", hosts.Launcher(0));
  ASSERT_THAT(jm.address(), ::testing::StartsWith(hosts.address(0) + ":")) << jm.log();
  std::vector<std::unique_ptr<TaskManagerProcess>> tms;
  for (int i = 1; i <= 2; ++i) {
    tms.push_back(std::make_unique<TaskManagerProcess>(
        jm.address(), 2, absl::StrCat("tm-", i),
        std::vector<std::string>{"--bind-address=0.0.0.0",
                                 "--advertised-address=" + hosts.address(i)},
        "", hosts.Launcher(i)));
  }
  auto on_client = [&](const std::string& args) {
    return testing::RunCommand(
        absl::StrCat(hosts.Prefix(3), testing::BuildDir(), "/bin/sluice ", args));
  };
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return on_client("status --jobmanager=" + jm.address()).output.find("slots: 4 total") !=
               std::string::npos;
      },
      15000))
      << jm.log() << tms[0]->log();
  EXPECT_THAT(tms[0]->log(), HasSubstr("serving on " + hosts.address(1) + ":"));
  EXPECT_EQ(testing::RunCommand(absl::StrCat(testing::BuildDir(),
                                             "/bin/sluice status "
                                             "--jobmanager=",
                                             jm.address()))
                .exit_code,
            1)
      << "the test's own namespace does not reach the hosts";

  const std::string input = dir.Join("words.txt");
  testing::WriteFile(input, Words(20000));
  const std::string word_count = absl::StrCat(testing::BuildDir(), "/examples/word_count.so");
  WordCountLocally(input, dir.Join("local"));
  if (HasFatalFailure()) return;
  auto r = on_client(absl::StrCat(
      "run --jobmanager=", jm.address(), " ", word_count, " --parallelism=4 -- --input=", input,
      " --output=", dir.Join("cluster"), " --checkpoint-interval=100ms",
      " --checkpoint-dir=", dir.Join("checkpoints"), " --max-source-rate=10000"));
  EXPECT_EQ(r.exit_code, 0) << r.output << jm.log();
  EXPECT_THAT(r.output, HasSubstr("job-1 finished"));
  EXPECT_TRUE(testing::HasCompletedCheckpoint(dir.Join("checkpoints/word_count")));
  for (const auto& tm : tms) {
    EXPECT_THAT(tm->log(), HasSubstr("deploying this TaskManager's subtasks"));
  }
  const auto expected = SortedOutput(dir.Join("local"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(SortedOutput(dir.Join("cluster")), expected);
}

TEST_F(JobsOnClusterTest, AJobFailsOnceItsRestartAttemptsAreUsedUp) {
  const std::string input = dir_.Join("bad.csv");
  testing::WriteFile(input, "a,1000,1\nb,2000,2\nthis is not a record\n");
  auto r = RunOnCluster(absl::StrCat(Job("windowed_stats"), " --parallelism=2 -- --input=", input,
                                     " --output=", dir_.Join("out"),
                                     " --window=tumbling:1s --restart-attempts=1"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("job-1 restarting: on TaskManager 'tm-"));
  EXPECT_THAT(r.output, HasSubstr("job-1 failed: on TaskManager 'tm-"));
  EXPECT_THAT(r.output, HasSubstr("bad.csv:3: expected key,timestamp_ms,value"));
  EXPECT_THAT(Sluice("list --jobmanager=" + jm_->address()).output, HasSubstr("restarts: 1"));
}

TEST_F(JobsOnClusterTest, SavepointStopAndRestoreThroughTheCli) {
  constexpr int kLines = 40000;
  const std::string job_args = WordCountOnTheMiniCluster(kLines, 2);

  const std::string checkpoints = dir_.Join("checkpoints");
  const std::string flags =
      absl::StrCat(" --checkpoint-interval=200ms --checkpoint-dir=", checkpoints);
  auto r =
      RunOnCluster(absl::StrCat(Job("word_count"), " --parallelism=2 --detached --", job_args,
                                dir_.Join("cluster"), flags, " --max-source-rate=", kLines / 20));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(testing::WaitFor(
      [&] { return testing::HasCompletedCheckpoint(checkpoints + "/word_count"); }, 20000))
      << jm_->log();

  // An acknowledgement from a task the job does not have is refused, naming the count.
  cluster::CheckpointAck bogus;
  bogus.set_job_id("job-1");
  bogus.set_attempt(1);
  bogus.set_checkpoint_id(1);
  bogus.set_task_index(99);
  const absl::Status refused =
      cluster::JobManagerClient(jm_->address()).AcknowledgeCheckpoint(bogus);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("by task 99, but the job has 4 tasks"));

  const std::string at = " --jobmanager=" + jm_->address();
  auto savepoint = Sluice("savepoint" + at + " job-1 " + dir_.Join("savepoints"));
  ASSERT_EQ(savepoint.exit_code, 0) << savepoint.output << jm_->log();
  const std::string taken = RestOfLineAfter(savepoint.output, "savepoint of job-1 written to ");
  EXPECT_THAT(taken, HasSubstr(dir_.Join("savepoints") + "/"));
  EXPECT_TRUE(std::filesystem::exists(taken + "/_metadata")) << savepoint.output;

  auto stop = Sluice("stop" + at + " job-1 --savepoint-dir=" + dir_.Join("stops"));
  ASSERT_EQ(stop.exit_code, 0) << stop.output << jm_->log();
  const std::string path = RestOfLineAfter(stop.output, "job-1 stopped with savepoint ");
  ASSERT_THAT(path, HasSubstr(dir_.Join("stops") + "/")) << stop.output;
  EXPECT_TRUE(std::filesystem::exists(path + "/_metadata")) << path;
  EXPECT_THAT(Sluice("list" + at).output, HasSubstr("finished"));
  EXPECT_LT(SortedOutput(dir_.Join("cluster")).size(), SortedOutput(dir_.Join("local")).size())
      << "stopped before the end of its input";

  // Resumed from the stop's savepoint (at another parallelism), the job ends with exactly
  // the output of an uninterrupted run.
  auto resumed =
      RunOnCluster(absl::StrCat(Job("word_count"), " --parallelism=3 --from-savepoint=", path,
                                " --", job_args, dir_.Join("cluster"), flags));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output << jm_->log();
  EXPECT_THAT(resumed.output, HasSubstr("job-2 running: restored from " + path));
  EXPECT_EQ(SortedOutput(dir_.Join("cluster")), SortedOutput(dir_.Join("local")));
}

TEST_F(JobsOnClusterTest, CheckpointAndSavepointMistakesAreNamed) {
  const std::string input = dir_.Join("words.txt");
  testing::WriteFile(input, Words(10));
  const std::string at = " --jobmanager=" + jm_->address();
  // Checkpoints need a directory every process reaches.
  auto no_dir =
      RunOnCluster(absl::StrCat(Job("word_count"), " -- --input=", input,
                                " --output=", dir_.Join("out"), " --checkpoint-interval=1s"));
  EXPECT_EQ(no_dir.exit_code, 1);
  EXPECT_THAT(no_dir.output, HasSubstr("checkpoints on a cluster need --checkpoint-dir=DIR"));
  auto relative = RunOnCluster(absl::StrCat(Job("word_count"), " -- --input=", input,
                                            " --output=", dir_.Join("out"),
                                            " --checkpoint-interval=1s --checkpoint-dir=chk"));
  EXPECT_THAT(relative.output, HasSubstr("'chk' is relative"));
  // A savepoint that is not there is refused at submission.
  auto missing = RunOnCluster(absl::StrCat(Job("word_count"),
                                           " --from-savepoint=", dir_.Join("no-such-savepoint"),
                                           " -- --input=", input, " --output=", dir_.Join("out")));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output,
              HasSubstr("cannot restore job 'word_count' from " + dir_.Join("no-such-savepoint")));
  // Savepoints of unknown jobs, and of jobs without checkpoints.
  auto unknown = Sluice("savepoint" + at + " job-9 " + dir_.Join("sp"));
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.output, HasSubstr("no job 'job-9'"));
  int port = 0;
  const int listener = testing::ListenOnLoopback(&port);
  auto r = RunOnCluster(absl::StrCat(Job("socket_window_sum"), " --detached -- --port=", port));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string id = r.output.substr(r.output.find("job-"), 5);
  ASSERT_EQ(AwaitJob(jm_->address(), id, cluster::RUNNING).state(), cluster::RUNNING);
  auto no_checkpoints = Sluice("savepoint" + at + " " + id + " " + dir_.Join("sp"));
  EXPECT_EQ(no_checkpoints.exit_code, 1);
  EXPECT_THAT(no_checkpoints.output, HasSubstr("takes no checkpoints"));
  auto no_stop_dir = Sluice("stop" + at + " " + id);
  EXPECT_EQ(no_stop_dir.exit_code, 2);
  EXPECT_THAT(no_stop_dir.output, HasSubstr("give JOB_ID and --savepoint-dir=DIR"));
  EXPECT_EQ(Sluice("cancel" + at + " " + id).exit_code, 0);
  ::close(listener);
}

// --- the blob store ---

TEST(BlobStoreTest, AnUploadedJobBinaryIsStoredByHashAndFetchedIntoACache) {
  JobManagerProcess jm;
  const std::string job = testing::BuildDir() + "/examples/word_count.so";
  cluster::JobManagerClient client(jm.address());
  auto id = client.UploadFile(job);
  ASSERT_OK(id);
  EXPECT_EQ(id->sha256, *cluster::Sha256OfFile(job));
  EXPECT_EQ(id->size, static_cast<int64_t>(std::filesystem::file_size(job)));
  EXPECT_TRUE(std::filesystem::exists(jm.blob_dir() + "/" + id->sha256));
  EXPECT_THAT(Sluice("status --jobmanager=" + jm.address()).output, HasSubstr("(1 job binaries)"));

  testing::TempDir dir;
  auto cache = cluster::BlobCache::Open(
      dir.Join("cache"),
      [&](const auto& blob, const auto& write) { return client.Download(blob, write); });
  ASSERT_OK(cache);
  auto path = (*cache)->Acquire(*id);
  ASSERT_OK(path);
  EXPECT_EQ(*cluster::Sha256OfFile(*path), id->sha256);
  ASSERT_OK((*cache)->Acquire(*id));  // a second use: no second download
  EXPECT_EQ((*cache)->Uses(id->sha256), 2);
  (*cache)->Release(id->sha256);
  EXPECT_TRUE(std::filesystem::exists(*path));
  (*cache)->Release(id->sha256);
  EXPECT_FALSE(std::filesystem::exists(*path)) << "unused binaries are deleted";

  // A blob the JobManager does not have: a clear error, nothing left in the cache.
  cluster::BlobId missing{std::string(64, 'a'), 10};
  auto not_there = (*cache)->Acquire(missing);
  ASSERT_FALSE(not_there.ok());
  EXPECT_THAT(std::string(not_there.status().message()), HasSubstr("no blob aaaa"));
  EXPECT_EQ((*cache)->Uses(missing.sha256), 0);
}

TEST(BlobStoreTest, AnInterruptedUploadLeavesNothing) {
  JobManagerProcess jm;
  auto channel = grpc::CreateChannel(jm.address(), grpc::InsecureChannelCredentials());
  auto stub = cluster::JobManager::NewStub(channel);
  {
    grpc::ClientContext ctx;
    cluster::UploadBlobReply reply;
    auto writer = stub->UploadBlob(&ctx, &reply);
    cluster::UploadBlobRequest chunk;
    chunk.set_sha256(std::string(64, 'b'));
    chunk.set_size(10 << 20);
    chunk.set_data(std::string(1 << 20, 'x'));
    ASSERT_TRUE(writer->Write(chunk));
    chunk.clear_sha256();
    ASSERT_TRUE(writer->Write(chunk));
    // The client goes away midway.
    ctx.TryCancel();
    EXPECT_FALSE(writer->Finish().ok());
  }
  // Once the JobManager saw the upload end, nothing of it is left.
  ASSERT_TRUE(testing::WaitFor(
      [&] { return jm.log().find("blob upload refused") != std::string::npos; }, 5000))
      << jm.log();
  EXPECT_TRUE(testing::FilesIn(jm.blob_dir()).empty())
      << testing::FilesIn(jm.blob_dir()).size() << " files left";

  // All bytes, but not those announced: refused, nothing stored.
  grpc::ClientContext ctx;
  cluster::UploadBlobReply reply;
  auto writer = stub->UploadBlob(&ctx, &reply);
  cluster::UploadBlobRequest chunk;
  chunk.set_sha256(std::string(64, 'c'));
  chunk.set_size(5);
  chunk.set_data("hello");
  ASSERT_TRUE(writer->Write(chunk));
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(s.error_message(), HasSubstr("has SHA-256 2cf24dba"));
  EXPECT_TRUE(testing::FilesIn(jm.blob_dir()).empty());
}

}  // namespace
}  // namespace sluice
