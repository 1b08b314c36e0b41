#include "dispatcher/dispatcher.h"

#include "gateway/fake_taskmanager_gateway.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/api/job.h"
#include "sluice/jobmanager/sha256.h"
#include "sluice/testing/test_util.h"

namespace sluice::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

/// A dispatcher without its scheduling thread (the test runs scheduling passes), over a
/// fake gateway, a real blob store holding the word_count job binary, and a test clock.
class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = BlobStore::Open(dir_.Join("blobs"));
    ASSERT_OK(store);
    store_ = std::move(*store);
    const std::string binary = testing::BuildDir() + "/examples/word_count.so";
    auto hash = Sha256OfFile(binary);
    ASSERT_OK(hash);
    const std::string bytes = testing::ReadFile(binary);
    auto upload = store_->BeginUpload({*hash, static_cast<int64_t>(bytes.size())});
    ASSERT_OK(upload);
    ASSERT_OK((*upload)->Write(bytes));
    ASSERT_OK((*upload)->Commit());
    binary_hash_ = *hash;
    binary_path_ = binary;
    DispatcherOptions options;
    options.scheduler.slot_wait = absl::Seconds(30);
    options.scheduling_thread = false;
    dispatcher_ =
        std::make_unique<Dispatcher>(store_.get(), &gateway_, options, [this] { return now_; });
  }

  /// A word count at `parallelism` (needing that many slots), as the CLI submits it.
  JobSubmission WordCount(int parallelism, std::vector<std::string> extra_args = {}) {
    JobSubmission request;
    request.mutable_job_binary()->set_sha256(binary_hash_);
    request.set_job_name("word_count");
    request.add_args("--input=" + dir_.Join("words.txt"));
    for (const std::string& a : extra_args) request.add_args(a);
    request.set_parallelism(parallelism);
    auto library = JobLibrary::Load(binary_path_);
    EXPECT_OK(library);
    JobSpec spec;
    spec.job_name = "word_count";
    spec.args.assign(request.args().begin(), request.args().end());
    spec.parallelism = parallelism;
    auto graph = BuildJob((*library)->build(), spec);
    EXPECT_OK(graph);
    for (const JobVertex& v : graph->vertices) request.add_vertex_parallelism(v.parallelism);
    return request;
  }

  void AddTaskManager(const std::string& id, int slots) {
    RegisterTaskManagerRequest r;
    r.set_taskmanager_id(id);
    r.set_address(id + ":7000");
    r.set_slots(slots);
    dispatcher_->TaskManagerRegistered(r, ++registrations_);
    registration_of_[id] = registrations_;
  }

  void Report(const std::string& job_id, const std::string& tm, int64_t attempt, JobState state,
              const std::string& failure = "") {
    JobPartReport report;
    report.set_job_id(job_id);
    report.set_taskmanager_id(tm);
    report.set_attempt(attempt);
    report.set_state(state);
    report.set_failure(failure);
    dispatcher_->PartEnded(report);
  }

  JobStatus StatusOf(const std::string& job_id) {
    auto status = dispatcher_->Job(job_id);
    EXPECT_OK(status);
    return status.ok() ? *status : JobStatus();
  }

  testing::TempDir dir_;
  std::unique_ptr<BlobStore> store_;
  std::string binary_hash_, binary_path_;
  FakeTaskManagerGateway gateway_;
  absl::Time now_ = absl::FromUnixSeconds(10000);
  int64_t registrations_ = 0;
  std::map<std::string, int64_t> registration_of_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST_F(DispatcherTest, AJobRunsOnFreeSlotsFinishesAndGivesThemBack) {
  AddTaskManager("a", 2);
  AddTaskManager("b", 2);
  auto id = dispatcher_->Submit(WordCount(2));
  ASSERT_OK(id);
  EXPECT_EQ(*id, "job-1");
  EXPECT_EQ(StatusOf(*id).state(), CREATED);
  dispatcher_->SchedulePass();
  EXPECT_EQ(StatusOf(*id).state(), RUNNING);
  EXPECT_THAT(gateway_.AddressesOf("deploy"), ElementsAre("a:7000", "b:7000"));
  EXPECT_EQ(dispatcher_->FreeSlotsOf("a"), 1);
  EXPECT_EQ(dispatcher_->FreeSlotsOf("b"), 1);
  Report(*id, "a", 1, FINISHED);
  Report(*id, "b", 1, FINISHED);
  EXPECT_EQ(StatusOf(*id).state(), FINISHED);
  EXPECT_EQ(dispatcher_->FreeSlotsOf("a"), 2);
  EXPECT_EQ(dispatcher_->FreeSlotsOf("b"), 2);
  EXPECT_EQ(dispatcher_->FreeSlotsOf("nobody"), std::nullopt);
  EXPECT_THAT(gateway_.AddressesOf("cancel"), ElementsAre());
}

TEST_F(DispatcherTest, AJobWithoutEnoughSlotsWaitsThenFailsSayingSo) {
  AddTaskManager("a", 1);
  auto id = dispatcher_->Submit(WordCount(3));
  ASSERT_OK(id);
  dispatcher_->SchedulePass();
  EXPECT_EQ(StatusOf(*id).state(), CREATED);
  now_ += absl::Seconds(29);
  dispatcher_->SchedulePass();
  EXPECT_EQ(StatusOf(*id).state(), CREATED) << "it waits for the slot wait";
  now_ += absl::Seconds(1);
  dispatcher_->SchedulePass();
  const JobStatus status = StatusOf(*id);
  EXPECT_EQ(status.state(), FAILED);
  EXPECT_EQ(status.failure(),
            "not enough slots: the job needs 3 (its highest parallelism); the cluster has 1 "
            "slots in 1 TaskManagers, 1 free (1 TaskManagers) — waited 30s");
  EXPECT_THAT(gateway_.sent(), ElementsAre());
}

TEST_F(DispatcherTest, ALostTaskManagerRestartsTheJobOnTheSlotsLeft) {
  AddTaskManager("a", 2);
  AddTaskManager("b", 2);
  AddTaskManager("c", 2);
  auto id = dispatcher_->Submit(WordCount(2, {"--restart-attempts=1", "--restart-delay=1s"}));
  ASSERT_OK(id);
  dispatcher_->SchedulePass();
  const JobStatus first = StatusOf(*id);
  EXPECT_THAT(first.taskmanagers(), ElementsAre("a", "b"));
  dispatcher_->TaskManagerLost("b", registration_of_["b"], "TaskManager 'b' was lost");
  EXPECT_EQ(StatusOf(*id).state(), RESTARTING);
  EXPECT_THAT(gateway_.AddressesOf("cancel"), ElementsAre("a:7000"));
  EXPECT_EQ(dispatcher_->FreeSlotsOf("b"), std::nullopt) << "its slots left with it";
  now_ += absl::Seconds(5);
  dispatcher_->SchedulePass();
  EXPECT_EQ(StatusOf(*id).state(), RESTARTING) << "a's part has not ended yet";
  Report(*id, "a", 1, CANCELED);
  dispatcher_->SchedulePass();  // retires the run
  dispatcher_->SchedulePass();  // places the new one
  const JobStatus status = StatusOf(*id);
  EXPECT_EQ(status.state(), RUNNING);
  EXPECT_EQ(status.restarts(), 1);
  EXPECT_THAT(status.taskmanagers(), ElementsAre("a", "c"));
  const auto sent = gateway_.sent();
  EXPECT_EQ(sent.back().deploy.attempt(), 2);
  Report(*id, "a", 1, FAILED, "an old run's late report");
  EXPECT_EQ(StatusOf(*id).state(), RUNNING);
}

TEST_F(DispatcherTest, AFailedDeploymentFailsTheJobNamingTheTaskManager) {
  AddTaskManager("a", 1);
  AddTaskManager("b", 1);
  gateway_.FailCallsTo("b:7000", absl::UnavailableError("connection refused"));
  auto id = dispatcher_->Submit(WordCount(2));
  ASSERT_OK(id);
  dispatcher_->SchedulePass();
  const JobStatus status = StatusOf(*id);
  EXPECT_EQ(status.state(), FAILED);
  EXPECT_EQ(status.failure(), "deploying to TaskManager 'b' at b:7000 failed: connection refused");
  EXPECT_THAT(gateway_.AddressesOf("cancel"), ElementsAre("a:7000"));
  Report(*id, "a", 1, CANCELED);
  EXPECT_EQ(dispatcher_->FreeSlotsOf("a"), 1);
  EXPECT_EQ(dispatcher_->FreeSlotsOf("b"), 1);
}

TEST_F(DispatcherTest, MistakesAreNamed) {
  JobSubmission unknown_binary = WordCount(1);
  unknown_binary.mutable_job_binary()->set_sha256(std::string(64, 'f'));
  EXPECT_THAT(std::string(dispatcher_->Submit(unknown_binary).status().message()),
              HasSubstr("is not in the blob store: upload it first"));
  JobSubmission other_graph = WordCount(1);
  other_graph.set_vertex_parallelism(0, 9);
  EXPECT_THAT(std::string(dispatcher_->Submit(other_graph).status().message()),
              HasSubstr("the job binary builds another graph on the JobManager"));
  EXPECT_EQ(dispatcher_->Job("job-9").status().message(), "no job 'job-9' (see sluice list)");
  EXPECT_EQ(dispatcher_->Cancel("job-9").status().code(), absl::StatusCode::kNotFound);
  auto id = dispatcher_->Submit(WordCount(1));
  ASSERT_OK(id);
  TriggerSavepointRequest savepoint;
  savepoint.set_job_id(*id);
  EXPECT_EQ(dispatcher_->TriggerSavepoint(savepoint).status().message(),
            "job job-1 is CREATED: only a running job takes a savepoint");
  auto canceled = dispatcher_->Cancel(*id);
  ASSERT_OK(canceled);
  EXPECT_EQ(canceled->state(), CANCELED);
  EXPECT_EQ(dispatcher_->Jobs().size(), 1u);
}

}  // namespace
}  // namespace sluice::cluster
