// The checkpoint coordinator against a fake set of participants (the listener records what
// the tasks would be told) and a clock the test moves: duplicate, stale and late
// acknowledgements, declined and expired checkpoints, tolerable failures, notification order.

#include "runtime/checkpoint_coordinator.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sluice::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

/// One stateful operator with two subtasks, and what the coordinator told "the tasks".
class CoordinatorTest : public ::testing::Test {
 protected:
  CoordinatorTest() {
    graph_.stream.config.job_name = "coordinated";
    graph_.stream.config.checkpoint_timeout = absl::Seconds(10);
    graph_.stream.config.checkpoint_min_pause = absl::ZeroDuration();
    graph_.stream.config.checkpoint_max_concurrent = 2;
    graph_.stream.config.checkpoint_tolerable_failures = 1;
    graph_.stream.nodes.resize(1);
    graph_.stream.nodes[0].id = 0;
    graph_.stream.nodes[0].uid = "counter";
    graph_.stream.nodes[0].parallelism = 2;
    graph_.stream.nodes[0].max_parallelism = 128;
  }
  std::unique_ptr<CheckpointCoordinator> Make() {
    CheckpointCoordinator::Listener listener;
    listener.on_complete = [this](const CompletedCheckpoint& c) {
      events_.push_back("complete " + std::to_string(c.id));
      completed_.push_back(c);
    };
    listener.on_abort = [this](int64_t id) { events_.push_back("abort " + std::to_string(id)); };
    listener.on_too_many_failures = [this](const absl::Status& s) {
      events_.push_back("job fails");
      job_failure_ = s;
    };
    return std::make_unique<CheckpointCoordinator>(&graph_,
                                                   std::vector<std::pair<int, int>>{{0, 0}, {0, 1}},
                                                   nullptr, std::move(listener), clock_);
  }
  /// Task `task`'s snapshot, with `marker` as its one operator-state item.
  static TaskAck Ack(const std::string& marker) {
    TaskAck ack;
    ack.snapshots[0].operator_state = {marker};
    return ack;
  }

  JobGraph graph_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(1'000'000);
  std::vector<std::string> events_;
  std::vector<CompletedCheckpoint> completed_;
  absl::Status job_failure_;
};

TEST_F(CoordinatorTest, CompletesOnceEveryTaskAcknowledgedAndKeepsEachSubtasksState) {
  auto c = Make();
  EXPECT_EQ(c->in_progress_count(), 0);
  const int64_t id = c->MaybeStart();
  ASSERT_EQ(id, 1);
  EXPECT_EQ(c->in_progress_count(), 1);
  ASSERT_TRUE(c->Acknowledge(id, 1, Ack("second")).ok());
  EXPECT_THAT(events_, IsEmpty());
  EXPECT_EQ(c->in_progress_count(), 1) << "one of two tasks acknowledged";
  ASSERT_TRUE(c->Acknowledge(id, 0, Ack("first")).ok());
  EXPECT_THAT(events_, ElementsAre("complete 1"));
  ASSERT_EQ(completed_.size(), 1u);
  const auto& subtasks = completed_[0].operators.at(0);
  ASSERT_EQ(subtasks.size(), 2u);
  EXPECT_THAT(subtasks[0].operator_state, ElementsAre("first"));
  EXPECT_THAT(subtasks[1].operator_state, ElementsAre("second"));
  EXPECT_EQ(c->completed_count(), 1);
  EXPECT_EQ(c->in_progress_count(), 0);
}

TEST_F(CoordinatorTest, ADuplicateAcknowledgementCountsOnceAndChangesNothing) {
  auto c = Make();
  const int64_t id = c->MaybeStart();
  ASSERT_TRUE(c->Acknowledge(id, 0, Ack("first")).ok());
  ASSERT_TRUE(c->Acknowledge(id, 0, Ack("retried")).ok());  // a retried RPC
  EXPECT_THAT(events_, IsEmpty()) << "one task's two acks must not complete the checkpoint";
  ASSERT_TRUE(c->Acknowledge(id, 1, Ack("second")).ok());
  ASSERT_EQ(completed_.size(), 1u);
  EXPECT_THAT(completed_[0].operators.at(0)[0].operator_state, ElementsAre("first"));
  // Once complete, another ack for it is ignored: nothing completes twice.
  ASSERT_TRUE(c->Acknowledge(id, 1, Ack("late")).ok());
  EXPECT_THAT(events_, ElementsAre("complete 1"));
}

TEST_F(CoordinatorTest, AcknowledgementsOfAbortedOrUnknownCheckpointsAreIgnored) {
  auto c = Make();
  const int64_t id = c->MaybeStart();
  c->AbortPending();  // the job restarts
  ASSERT_TRUE(c->Acknowledge(id, 0, Ack("stale")).ok());
  ASSERT_TRUE(c->Acknowledge(id, 1, Ack("stale")).ok());
  ASSERT_TRUE(c->Acknowledge(42, 0, Ack("unknown")).ok());
  EXPECT_THAT(events_, IsEmpty());
  EXPECT_EQ(c->completed_count(), 0);
  // A task the job does not have is refused with a message.
  absl::Status wrong = c->Acknowledge(c->MaybeStart(), 7, Ack("x"));
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("by task 7, but the job has 2 tasks"));
}

TEST_F(CoordinatorTest, ADeclinedCheckpointIsAbortedAndCountsAsAFailure) {
  auto c = Make();
  const int64_t first = c->MaybeStart();
  ASSERT_TRUE(c->Acknowledge(first, 0, absl::InternalError("disk full")).ok());
  EXPECT_THAT(events_, ElementsAre("abort 1"));
  EXPECT_THAT(std::string(c->last_error().message()), HasSubstr("disk full"));
  // One failure is tolerated; the second in a row fails the job.
  const int64_t second = c->MaybeStart();
  ASSERT_TRUE(c->Acknowledge(second, 1, absl::InternalError("disk still full")).ok());
  EXPECT_THAT(events_, ElementsAre("abort 1", "abort 2", "job fails"));
  EXPECT_THAT(std::string(job_failure_.message()), HasSubstr("failed 2 times in a row"));
}

TEST_F(CoordinatorTest, ACompletedCheckpointResetsTheFailureCount) {
  auto c = Make();
  ASSERT_TRUE(c->Acknowledge(c->MaybeStart(), 0, absl::InternalError("once")).ok());
  const int64_t ok = c->MaybeStart();
  ASSERT_TRUE(c->Acknowledge(ok, 0, Ack("a")).ok());
  ASSERT_TRUE(c->Acknowledge(ok, 1, Ack("b")).ok());
  ASSERT_TRUE(c->Acknowledge(c->MaybeStart(), 0, absl::InternalError("again once")).ok());
  EXPECT_THAT(events_, ElementsAre("abort 1", "complete 2", "abort 3"));
}

TEST_F(CoordinatorTest, ACheckpointExpiresAfterItsTimeoutOnTheInjectedClock) {
  auto c = Make();
  const int64_t id = c->MaybeStart();
  ASSERT_TRUE(c->Acknowledge(id, 0, Ack("a")).ok());
  clock_->Advance(9'999);
  EXPECT_EQ(c->MaybeStart(), 2);  // still within the timeout: a second may run alongside
  EXPECT_THAT(events_, IsEmpty());
  clock_->Advance(1);
  c->MaybeStart();  // checkpoint 1 is 10 s old now
  EXPECT_THAT(events_, ElementsAre("abort 1"));
  EXPECT_THAT(std::string(c->last_error().message()), HasSubstr("timed out after 10s"));
  // Its last acknowledgement, arriving late, completes nothing.
  ASSERT_TRUE(c->Acknowledge(id, 1, Ack("b")).ok());
  EXPECT_EQ(c->completed_count(), 0);
}

TEST_F(CoordinatorTest, MinPauseAndMaxConcurrentHoldOnTheInjectedClock) {
  graph_.stream.config.checkpoint_max_concurrent = 1;
  graph_.stream.config.checkpoint_min_pause = absl::Milliseconds(500);
  auto c = Make();
  const int64_t id = c->MaybeStart();
  EXPECT_EQ(c->MaybeStart(), 0) << "one at a time";
  ASSERT_TRUE(c->Acknowledge(id, 0, Ack("a")).ok());
  ASSERT_TRUE(c->Acknowledge(id, 1, Ack("b")).ok());
  clock_->Advance(499);
  EXPECT_EQ(c->MaybeStart(), 0) << "the pause after a checkpoint ended";
  EXPECT_EQ(c->MaybeStart(/*force=*/true), 2) << "a savepoint does not wait for the pause";
}

TEST_F(CoordinatorTest, ANewerCompletedCheckpointSubsumesOlderPendingOnesBeforeNotifying) {
  auto c = Make();
  const int64_t older = c->MaybeStart();
  const int64_t newer = c->MaybeStart();
  ASSERT_TRUE(c->Acknowledge(older, 0, Ack("a")).ok());
  ASSERT_TRUE(c->Acknowledge(newer, 0, Ack("a")).ok());
  ASSERT_TRUE(c->Acknowledge(newer, 1, Ack("b")).ok());
  // The tasks hear of the subsumed one before the completion (which covers it).
  EXPECT_THAT(events_, ElementsAre("abort 1", "complete 2"));
  ASSERT_TRUE(c->Acknowledge(older, 1, Ack("b")).ok());
  EXPECT_EQ(c->completed_count(), 1);
}

// A job runs for months: the stats of its checkpoints are bounded, the counts are not.
TEST_F(CoordinatorTest, KeepsTheStatsOfTheNewestCheckpointsOnlyAndCountsThemAll) {
  graph_.stream.config.checkpoint_tolerable_failures = -1;  // declines never fail the job
  auto c = Make();
  const int64_t total = static_cast<int64_t>(kCheckpointStatsKept) + 50;
  for (int64_t i = 0; i < total; ++i) {
    const int64_t id = c->MaybeStart();
    ASSERT_GT(id, 0);
    if (i % 10 == 0) {
      ASSERT_TRUE(c->Acknowledge(id, 0, absl::InternalError("declined")).ok());
      continue;
    }
    ASSERT_TRUE(c->Acknowledge(id, 0, Ack("a")).ok());
    ASSERT_TRUE(c->Acknowledge(id, 1, Ack("b")).ok());
  }
  const int64_t declined = (total + 9) / 10;  // i = 0, 10, 20, ...
  EXPECT_EQ(c->failed_count(), declined);
  EXPECT_EQ(c->completed_count(), total - declined);
  const std::vector<CheckpointStats> stats = c->stats();
  ASSERT_EQ(stats.size(), kCheckpointStatsKept);
  EXPECT_EQ(stats.back().id, total);
  EXPECT_EQ(stats.front().id, total - static_cast<int64_t>(kCheckpointStatsKept) + 1);
}

}  // namespace
}  // namespace sluice::internal
