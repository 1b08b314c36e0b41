#include "job/job_master.h"

#include "gateway/fake_taskmanager_gateway.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/api/job.h"
#include "sluice/connectors/collection.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

/// One source subtask, three sink subtasks; restart attempts and checkpoints from the args.
void SmallJob(Pipeline* p) {
  const int attempts = static_cast<int>(p->Args().GetInt("attempts", 0));
  if (attempts > 0) p->SetRestartStrategy(attempts, absl::Seconds(2));
  if (p->Args().GetBool("checkpoints", false)) p->EnableCheckpointing(absl::Milliseconds(20));
  p->Source(CollectionSource<int64_t>({1, 2, 3}), "Numbers").Parallelism(1).Print().Parallelism(3);
}

/// A job master over a fake gateway and a clock the test moves.
class JobMasterTest : public ::testing::Test {
 protected:
  std::unique_ptr<JobMaster> Make(std::vector<std::string> args,
                                  std::optional<RestartStrategyConfig> cluster_default = {}) {
    JobSpec spec;
    spec.job_name = "small";
    spec.args = std::move(args);
    auto graph = BuildJob(&SmallJob, spec);
    EXPECT_OK(graph);
    JobSubmission request;
    request.set_job_name("small");
    for (const JobVertex& v : graph->vertices) request.add_vertex_parallelism(v.parallelism);
    SubmittedJob job{nullptr, std::make_unique<JobGraph>(std::move(*graph))};
    std::unique_ptr<internal::JobCheckpoints> checkpoints;
    if (job.graph->stream.config.checkpoint_interval > absl::ZeroDuration()) {
      auto created = internal::JobCheckpoints::Create(job.graph.get());
      EXPECT_OK(created);
      checkpoints = std::move(*created);
    }
    return std::make_unique<JobMaster>(
        "job-1", request, std::move(job), std::move(checkpoints), &gateway_,
        [this](int64_t attempt, const absl::Status&) { failed_runs_.push_back(attempt); },
        cluster_default, [this] { return now_; });
  }

  static std::string AddressOf(const std::string& tm) { return tm + ":7000"; }
  static std::vector<std::string> Targets(const std::vector<PartCall>& calls) {
    std::vector<std::string> out;
    for (const PartCall& c : calls) out.push_back(c.taskmanager_id);
    return out;
  }

  FakeTaskManagerGateway gateway_;
  absl::Time now_ = absl::FromUnixSeconds(5000);
  std::vector<int64_t> failed_runs_;
};

TEST_F(JobMasterTest, ARunIsDeployedToEachTaskManagerOfItsSlots) {
  auto job = Make({});
  EXPECT_EQ(job->state(), CREATED);
  EXPECT_EQ(job->slots_needed(), 3);
  ASSERT_TRUE(job->WaitsForSlots());
  auto calls = job->StartRun({"a", "b", "a"}, &AddressOf);
  EXPECT_EQ(job->state(), RUNNING);
  ASSERT_EQ(calls.size(), 2u);
  for (size_t i = 0; i < calls.size(); ++i) {
    const DeployJobRequest& d = calls[i].deploy;
    EXPECT_EQ(calls[i].address, AddressOf(calls[i].taskmanager_id));
    EXPECT_EQ(d.self(), static_cast<int>(i));
    EXPECT_EQ(d.attempt(), 1);
    // Slot i holds subtask i of every vertex: the source in slot 0 (a), the sinks in a, b, a.
    EXPECT_THAT(d.placement(), ElementsAre(0, 0, 1, 0));
    EXPECT_THAT(d.exchange_addresses(), ElementsAre("a:7000", "b:7000"));
    EXPECT_TRUE(d.restore_path().empty());
  }
  const JobStatus status = job->Status();
  EXPECT_THAT(status.taskmanagers(), ElementsAre("a", "b"));
  EXPECT_FALSE(job->WaitsForSlots());
}

TEST_F(JobMasterTest, AJobFinishesWhenEveryPartFinishedAndGivesItsSlotsBackOnce) {
  auto job = Make({});
  job->StartRun({"a", "b", "a"}, &AddressOf);
  EXPECT_THAT(job->TakeReleasableSlots(), IsEmpty()) << "parts still run";
  EXPECT_THAT(job->PartEnded("a", FINISHED, "", /*first_record_ms=*/7000), IsEmpty());
  EXPECT_EQ(job->state(), RUNNING);
  EXPECT_THAT(job->PartEnded("b", FINISHED, "", /*first_record_ms=*/6500), IsEmpty());
  EXPECT_EQ(job->state(), FINISHED);
  EXPECT_EQ(job->Status().run_first_record_ms(), 6500) << "the run's earliest first record";
  EXPECT_THAT(job->TakeReleasableSlots(), ElementsAre("a", "b", "a"));
  EXPECT_THAT(job->TakeReleasableSlots(), IsEmpty());
  EXPECT_NE(job->RetireRun(), nullptr);
}

TEST_F(JobMasterTest, AFailedPartRestartsTheJobAfterTheDelayUntilAttemptsAreUsedUp) {
  auto job = Make({"--attempts=1"});
  job->StartRun({"a", "b", "a"}, &AddressOf);
  auto cancel = job->PartEnded("b", FAILED, "boom");
  EXPECT_EQ(job->state(), RESTARTING);
  EXPECT_THAT(Targets(cancel), ElementsAre("a")) << "the other parts are canceled";
  EXPECT_EQ(job->Status().restart_cause(), "on TaskManager 'b': boom");
  EXPECT_EQ(job->RetireRun(), nullptr) << "a part still runs";
  EXPECT_FALSE(job->WaitsForSlots());
  job->PartEnded("a", CANCELED, "");
  EXPECT_NE(job->RetireRun(), nullptr);
  EXPECT_THAT(job->TakeReleasableSlots(), ElementsAre("a", "b", "a"));
  now_ += absl::Milliseconds(1999);
  EXPECT_FALSE(job->WaitsForSlots()) << "the restart delay has not passed";
  now_ += absl::Milliseconds(1);
  ASSERT_TRUE(job->WaitsForSlots());
  EXPECT_EQ(job->waiting_since(), now_);
  auto second = job->StartRun({"c", "c", "c"}, &AddressOf);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].deploy.attempt(), 2);
  EXPECT_EQ(job->Status().restarts(), 1);
  EXPECT_THAT(job->TaskManagerLost("a", "gone"), IsEmpty()) << "a is not in this run";
  EXPECT_EQ(job->state(), RUNNING);
  EXPECT_THAT(job->TaskManagerLost("c", "TaskManager 'c' was lost"), IsEmpty());
  EXPECT_EQ(job->state(), FAILED);
  // The cause, then the strategy that gave up and the history of the failures.
  EXPECT_THAT(job->Status().failure(),
              HasSubstr("TaskManager 'c' was lost (restart strategy fixed-delay "
                        "(--restart-attempts=1 --restart-delay=2s) gave up after 1 restart; "
                        "failures, oldest first: 1. 1970-01-01 01:23:20.000: on TaskManager "
                        "'b': boom; 2. 1970-01-01 01:23:22.000: TaskManager 'c' was lost)"));
  const JobStatus status = job->Status();
  ASSERT_EQ(status.failures_size(), 2);
  EXPECT_EQ(status.failures(0).taskmanager_id(), "b");
  EXPECT_EQ(status.failures(0).message(), "on TaskManager 'b': boom");
  EXPECT_EQ(status.failures(0).at_ms(), 5000 * 1000);
  EXPECT_EQ(status.failures(1).taskmanager_id(), "c");
  EXPECT_EQ(status.failures(1).at_ms(), 5002 * 1000);
  std::vector<JobState> history;
  for (const StateChange& c : status.history()) history.push_back(c.state());
  EXPECT_THAT(history, ElementsAre(CREATED, RUNNING, RESTARTING, CREATED, RUNNING, FAILED));
}

TEST_F(JobMasterTest, ReportsOfAnEarlierRunChangeNothing) {
  auto job = Make({"--attempts=3"});
  job->StartRun({"a", "a", "a"}, &AddressOf);
  job->TaskManagerLost("a", "lost");
  job->RetireRun();
  job->TakeReleasableSlots();
  now_ += absl::Seconds(2);
  ASSERT_TRUE(job->WaitsForSlots());
  job->StartRun({"b", "b", "b"}, &AddressOf);
  EXPECT_THAT(job->DeployFailed("a", /*attempt=*/1, "late"), IsEmpty());
  EXPECT_EQ(job->state(), RUNNING);
  auto cancel = job->DeployFailed("b", /*attempt=*/2, "refused");
  EXPECT_EQ(job->state(), RESTARTING);
  EXPECT_THAT(cancel, IsEmpty()) << "the part that was not deployed is not canceled";
}

TEST_F(JobMasterTest, AJobWithoutAStrategyTakesTheClusterDefaultElseByCheckpointing) {
  EXPECT_EQ(Make({})->Status().restart_strategy(), "none");
  EXPECT_THAT(Make({"--checkpoints"})->Status().restart_strategy(),
              HasSubstr("exponential-delay (--restart-initial-delay=100ms"));
  const auto cluster = RestartStrategyConfig::FailureRate(2, absl::Minutes(1), absl::Seconds(1));
  EXPECT_EQ(Make({"--checkpoints"}, cluster)->Status().restart_strategy(), cluster.ToString());
  EXPECT_THAT(Make({"--attempts=2"}, cluster)->Status().restart_strategy(),
              HasSubstr("fixed-delay (--restart-attempts=2"))
      << "the job's own comes first";

  // Failure-rate: two failures within the minute restart, the third fails the job.
  auto job = Make({"--checkpoints"}, cluster);
  for (int run = 1; run <= 3; ++run) {
    ASSERT_TRUE(job->WaitsForSlots()) << "run " << run;
    job->StartRun({"a", "a", "a"}, &AddressOf);
    job->TaskManagerLost("a", absl::StrCat("lost ", run));
    job->RetireRun();
    job->TakeReleasableSlots();
    now_ += absl::Seconds(1);
  }
  EXPECT_EQ(job->state(), FAILED);
  EXPECT_EQ(job->Status().restarts(), 2);
  EXPECT_THAT(job->Status().failure(), HasSubstr("gave up after 2 restarts"));
}

TEST_F(JobMasterTest, CancelingARunningJobCancelsEveryPart) {
  auto job = Make({});
  job->StartRun({"a", "b", "c"}, &AddressOf);
  auto cancel = job->End(CANCELED, "canceled by the user");
  EXPECT_THAT(Targets(cancel), ElementsAre("a", "b", "c"));
  EXPECT_EQ(job->state(), CANCELED);
  now_ += absl::Seconds(3);
  EXPECT_EQ(job->Status().duration_ms(), 0) << "an ended job's duration stops at its end";
}

TEST_F(JobMasterTest, ADeployedRunsCheckpointCommandsReachEveryTaskManager) {
  auto job = Make({"--checkpoints"});
  ASSERT_NE(job->checkpoints(), nullptr);
  job->StartRun({"a", "b", "a"}, &AddressOf);
  EXPECT_FALSE(gateway_.AwaitSent("TRIGGER", 1, absl::Milliseconds(100)))
      << "no checkpoint before every part is deployed";
  job->RunDeployed(/*attempt=*/1);
  ASSERT_TRUE(gateway_.AwaitSent("TRIGGER", 2, absl::Seconds(10)));
  const std::vector<std::string> to = gateway_.AddressesOf("TRIGGER");
  EXPECT_EQ(std::vector<std::string>(to.begin(), to.begin() + 2),
            (std::vector<std::string>{"a:7000", "b:7000"}));
  for (const auto& sent : gateway_.sent()) {
    EXPECT_EQ(sent.command.job_id(), "job-1");
    EXPECT_EQ(sent.command.attempt(), 1);
  }
}

}  // namespace
}  // namespace sluice::cluster
