#include "job/job_master.h"

#include "gateway/fake_taskmanager_gateway.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/api/job.h"
#include "sluice/connectors/collection.h"
#include "sluice/connectors/text_file.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

/// One source subtask, three sink subtasks; restart attempts and checkpoints from the args.
/// With --regions: three subtasks of a chain without an exchange, three pipelined regions.
void SmallJob(Pipeline* p) {
  const int attempts = static_cast<int>(p->Args().GetInt("attempts", 0));
  if (attempts > 0) p->SetRestartStrategy(attempts, absl::Seconds(2));
  if (p->Args().GetBool("checkpoints", false)) p->EnableCheckpointing(absl::Milliseconds(20));
  if (p->Args().GetBool("regions", false)) {
    p->Source(TextFileSource("/never/read"), "Lines").Parallelism(3).Print().Parallelism(3);
    return;
  }
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
  /// What the part of `region` on `tm` of run `attempt` reports at its end.
  static JobPartReport Ended(const std::string& tm, JobState state, const std::string& failure = "",
                             int64_t first_record_ms = 0, int64_t attempt = 1, int region = 0) {
    JobPartReport r;
    r.set_job_id("job-1");
    r.set_taskmanager_id(tm);
    r.set_state(state);
    r.set_failure(failure);
    r.set_first_record_ms(first_record_ms);
    r.set_attempt(attempt);
    r.set_region(region);
    return r;
  }
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
  EXPECT_THAT(job->PartEnded(Ended("a", FINISHED, "", /*first_record_ms=*/7000)), IsEmpty());
  EXPECT_EQ(job->state(), RUNNING);
  EXPECT_THAT(job->PartEnded(Ended("b", FINISHED, "", /*first_record_ms=*/6500)), IsEmpty());
  EXPECT_EQ(job->state(), FINISHED);
  EXPECT_EQ(job->Status().run_first_record_ms(), 6500) << "the run's earliest first record";
  EXPECT_THAT(job->TakeReleasableSlots(), ElementsAre("a", "b", "a"));
  EXPECT_THAT(job->TakeReleasableSlots(), IsEmpty());
  EXPECT_THAT(job->TakeEndedRuns(), SizeIs(1));
}

TEST_F(JobMasterTest, AFailedPartRestartsTheJobAfterTheDelayUntilAttemptsAreUsedUp) {
  auto job = Make({"--attempts=1"});
  job->StartRun({"a", "b", "a"}, &AddressOf);
  auto cancel = job->PartEnded(Ended("b", FAILED, "boom"));
  EXPECT_EQ(job->state(), RESTARTING);
  EXPECT_THAT(Targets(cancel), ElementsAre("a")) << "the other parts are canceled";
  EXPECT_EQ(job->Status().restart_cause(), "on TaskManager 'b': boom");
  EXPECT_THAT(job->TakeEndedRuns(), IsEmpty()) << "a part still runs";
  EXPECT_FALSE(job->WaitsForSlots());
  job->PartEnded(Ended("a", CANCELED));
  EXPECT_THAT(job->TakeEndedRuns(), SizeIs(1));
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
  job->TakeEndedRuns();
  job->TakeReleasableSlots();
  now_ += absl::Seconds(2);
  ASSERT_TRUE(job->WaitsForSlots());
  job->StartRun({"b", "b", "b"}, &AddressOf);
  EXPECT_THAT(job->DeployFailed({"a", "a:7000", {}, 0, /*attempt=*/1}, {}, "late"), IsEmpty());
  EXPECT_EQ(job->state(), RUNNING);
  auto cancel = job->DeployFailed({"b", "b:7000", {}, 0, /*attempt=*/2}, {}, "refused");
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
    job->TakeEndedRuns();
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

TEST_F(JobMasterTest, AFailureRestartsOnlyThePipelinedRegionItTouched) {
  auto job = Make({"--attempts=3", "--regions", "--checkpoints"});
  EXPECT_EQ(job->Status().regions(), 3);
  EXPECT_EQ(Make({})->Status().regions(), 1) << "an exchange joins everything";
  auto calls = job->StartRun({"a", "b", "c"}, &AddressOf);
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_THAT(calls[1].deploy.placement(), ElementsAre(-1, 1, -1));
  EXPECT_EQ(calls[1].deploy.region(), 1);
  job->RunDeployed(1);

  auto cancel = job->PartEnded(Ended("b", FAILED, "boom", 0, /*attempt=*/1, /*region=*/1));
  EXPECT_THAT(cancel, IsEmpty()) << "nothing else of region 1 runs";
  EXPECT_EQ(job->state(), RUNNING) << "the other regions run on";
  EXPECT_EQ(job->Status().restarts(), 1);
  EXPECT_EQ(job->Status().region_restarts(), 1);
  EXPECT_THAT(job->TakeEndedRuns(), SizeIs(1)) << "the participants without region 1";
  EXPECT_THAT(job->TakeReleasableSlots(), IsEmpty());
  EXPECT_FALSE(job->RegionsAwaitRestart()) << "the restart delay has not passed";
  EXPECT_FALSE(job->WaitsForSlots());
  EXPECT_EQ(job->restart_due(), now_ + absl::Seconds(2));
  now_ += absl::Seconds(2);
  ASSERT_TRUE(job->RegionsAwaitRestart());
  EXPECT_EQ(job->lost_slots(), 0);
  auto again = job->RestartRegions({}, &AddressOf);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].taskmanager_id, "b");
  EXPECT_EQ(again[0].deploy.attempt(), 2);
  EXPECT_EQ(again[0].deploy.region(), 1);
  EXPECT_THAT(again[0].deploy.placement(), ElementsAre(-1, 1, -1));
  EXPECT_TRUE(job->IsCurrent(0, 1));
  EXPECT_TRUE(job->IsCurrent(1, 2));
  EXPECT_FALSE(job->IsCurrent(1, 1)) << "the failed part's run";
  EXPECT_FALSE(job->IsStaleTask(2, 1));
  EXPECT_TRUE(job->IsStaleTask(1, 1));
  EXPECT_FALSE(job->IsStaleTask(99, 1)) << "not one of the job's: the checkpoints refuse it";
  const JobStatus status = job->Status();
  ASSERT_EQ(status.running_parts_size(), 3);
  EXPECT_EQ(status.running_parts(1).attempt(), 2);
  EXPECT_EQ(status.running_parts(2).attempt(), 1);

  // Checkpoint commands reach each part with the run that deployed it.
  job->RunDeployed(2);
  ASSERT_TRUE(gateway_.AwaitSent("TRIGGER", 3, absl::Seconds(10)));
  std::map<int, int64_t> attempt_of_region;
  for (const auto& sent : gateway_.sent()) {
    if (sent.what == "TRIGGER") attempt_of_region[sent.command.region()] = sent.command.attempt();
  }
  EXPECT_EQ(attempt_of_region, (std::map<int, int64_t>{{0, 1}, {1, 2}, {2, 1}}));

  // A late report of the failed run changes nothing; the regions finish one by one.
  EXPECT_THAT(job->PartEnded(Ended("b", CANCELED, "", 0, 1, 1)), IsEmpty());
  job->PartEnded(Ended("a", FINISHED, "", 0, 1, 0));
  job->PartEnded(Ended("c", FINISHED, "", 0, 1, 2));
  EXPECT_EQ(job->state(), RUNNING);
  job->PartEnded(Ended("b", FINISHED, "", 0, 2, 1));
  EXPECT_EQ(job->state(), FINISHED);
}

TEST_F(JobMasterTest, ALostTaskManagersRegionsMoveAndFailuresOfEveryRegionRestartTheJob) {
  auto job = Make({"--attempts=5", "--regions"});
  job->StartRun({"a", "b", "c"}, &AddressOf);
  EXPECT_THAT(job->TaskManagerLost("c", "TaskManager 'c' was lost"), IsEmpty());
  EXPECT_EQ(job->state(), RUNNING);
  now_ += absl::Seconds(2);
  ASSERT_TRUE(job->RegionsAwaitRestart());
  EXPECT_EQ(job->lost_slots(), 1);
  auto moved = job->RestartRegions({"d"}, &AddressOf);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].taskmanager_id, "d");
  EXPECT_THAT(moved[0].deploy.exchange_addresses(), ElementsAre("a:7000", "b:7000", "d:7000"));
  EXPECT_THAT(moved[0].deploy.placement(), ElementsAre(-1, -1, 2));

  // Region 0 fails, then region 1 while 0 waits: that is every region but 2 ...
  EXPECT_THAT(job->PartEnded(Ended("a", FAILED, "one", 0, 1, 0)), IsEmpty());
  EXPECT_EQ(job->state(), RUNNING);
  // ... and then region 2 too: the whole job restarts, canceling what still runs.
  EXPECT_THAT(job->PartEnded(Ended("b", FAILED, "two", 0, 1, 1)), IsEmpty());
  EXPECT_EQ(job->state(), RUNNING);
  auto cancel = job->PartEnded(Ended("d", FAILED, "three", 0, 2, 2));
  EXPECT_EQ(job->state(), RESTARTING);
  EXPECT_THAT(cancel, IsEmpty());
  EXPECT_THAT(job->TakeReleasableSlots(), ElementsAre("a", "b", "d"));
  EXPECT_EQ(job->Status().restarts(), 4);
  EXPECT_EQ(job->Status().region_restarts(), 3);
}

TEST_F(JobMasterTest, AFailureInAJobOfOneRegionRestartsAllOfIt) {
  // An exchange joins every subtask into one region: the others are canceled, by run.
  auto whole = Make({"--attempts=3"});
  whole->StartRun({"a", "b", "c"}, &AddressOf);
  auto cancel = whole->PartEnded(Ended("a", FAILED, "boom"));
  EXPECT_EQ(whole->state(), RESTARTING);
  EXPECT_THAT(Targets(cancel), ElementsAre("b", "c"));
  for (const PartCall& c : cancel) EXPECT_EQ(c.attempt, 1);
}

}  // namespace
}  // namespace sluice::cluster
