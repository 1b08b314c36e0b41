// Checkpoints on the mini-cluster: barriers from the sources, alignment at tasks with
// several inputs, per-operator snapshots collected by the coordinator and stored. The
// central check: the state in every completed checkpoint is exactly the state after the
// records the sources had emitted before their barrier - no record missing, none twice.

#include <map>
#include <mutex>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/sluice.h"
#include "sluice/testing/operator_harness.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using KV = std::pair<int64_t, int64_t>;  // key, value (sum after the reduce)
constexpr int64_t kKeys = 97;

struct Job {
  Pipeline p{"checkpointed-sum"};
  int source = -1;
  int reduce = -1;
  explicit Job(bool exactly_once, uint64_t count = 3'000'000) {
    p.SetParallelism(2);
    p.EnableCheckpointing(absl::Milliseconds(5), exactly_once);
    auto src = p.Source(Generator(
        [](uint64_t i) {
          return KV{static_cast<int64_t>(i) % kKeys, static_cast<int64_t>(i)};
        },
        {.count = count}));
    source = src.nodes()[0];
    auto sums = src.KeyBy(&KV::first)
                    .Reduce([](const KV& a, const KV& b) {
                      return KV{a.first, a.second + b.second};
                    })
                    .Uid("sum");
    reduce = sums.nodes()[0];
    sums.Sink(DiscardingSink<KV>{});
  }
};

/// The per-key sums a restored reduce holds: feed one zero per key and read what it emits.
std::map<int64_t, int64_t> RestoredSums(Job& job, const CompletedCheckpoint& c) {
  testing::OperatorHarness<KV, KV> h(job.p.graph(), job.reduce);
  h.op().InitializeState(RedistributeState(c.operators.at(job.reduce), 0, 1, 128));
  h.Open();
  for (int64_t k = 0; k < kKeys; ++k) h.ProcessElement({k, 0});
  std::map<int64_t, int64_t> sums;
  for (const auto& [k, v] : h.output().Values()) sums[k] = v;
  return sums;
}

/// The sums over exactly the records the generator subtasks emitted before the barrier.
std::map<int64_t, int64_t> ExpectedSums(const Job& job, const CompletedCheckpoint& c) {
  std::map<int64_t, int64_t> sums;
  for (int64_t k = 0; k < kKeys; ++k) sums[k] = 0;
  const auto& positions = c.operators.at(job.source);
  for (size_t s = 0; s < positions.size(); ++s) {
    auto pos =
        DeserializeFromString<std::pair<uint64_t, uint64_t>>(positions[s].operator_state.at(0));
    EXPECT_OK(pos);
    for (uint64_t i = s; i < pos->first; i += pos->second) {
      sums[static_cast<int64_t>(i) % kKeys] += static_cast<int64_t>(i);
    }
  }
  return sums;
}

/// Runs the job, keeping every completed checkpoint.
absl::StatusOr<JobResult> RunCollectingCheckpoints(Job& job,
                                                   std::vector<CompletedCheckpoint>* out) {
  auto mu = std::make_shared<std::mutex>();
  return ExecuteLocally(
      job.p, {.clock = nullptr, .on_checkpoint_complete = [mu, out](const CompletedCheckpoint& c) {
                std::lock_guard<std::mutex> lock(*mu);
                out->push_back(c);
              }});
}

TEST(CheckpointTest, AlignedSnapshotsAreExactlyTheStateAtTheBarrier) {
  Job job(/*exactly_once=*/true);
  std::vector<CompletedCheckpoint> completed;
  auto r = RunCollectingCheckpoints(job, &completed);
  ASSERT_OK(r);
  ASSERT_GE(completed.size(), 2u) << "the job must take several checkpoints";
  EXPECT_EQ(r->completed_checkpoints, static_cast<int64_t>(completed.size()));
  int64_t previous = 0;
  for (const CompletedCheckpoint& c : completed) {
    SCOPED_TRACE("checkpoint " + std::to_string(c.id));
    EXPECT_GT(c.id, previous);
    previous = c.id;
    EXPECT_EQ(RestoredSums(job, c), ExpectedSums(job, c));
  }
}

TEST(CheckpointTest, AtLeastOnceModeCompletesCheckpointsAndLosesNothing) {
  Job job(/*exactly_once=*/false, 1'000'000);
  std::vector<CompletedCheckpoint> completed;
  auto r = RunCollectingCheckpoints(job, &completed);
  ASSERT_OK(r);
  ASSERT_GE(completed.size(), 1u);
  for (const CompletedCheckpoint& c : completed) {
    // Without alignment a snapshot may include records after the barrier, never fewer.
    auto restored = RestoredSums(job, c);
    auto expected = ExpectedSums(job, c);
    for (const auto& [k, v] : expected) EXPECT_GE(restored[k], v) << "key " << k;
  }
}

TEST(CheckpointTest, CompletedCheckpointsAreStoredAndRetained) {
  testing::TempDir dir;
  Job job(/*exactly_once=*/true);
  job.p.SetCheckpointDir(dir.path());
  std::mutex mu;
  std::map<int64_t, CompletedCheckpoint> by_id;
  auto r = ExecuteLocally(
      job.p, {.clock = nullptr, .on_checkpoint_complete = [&](const CompletedCheckpoint& c) {
                std::lock_guard<std::mutex> lock(mu);
                by_id[c.id] = c;
              }});
  ASSERT_OK(r);
  auto storage = CheckpointStorage::Create(dir.path(), "checkpointed-sum");
  ASSERT_OK(storage);
  auto ids = (*storage)->CompletedIds();
  ASSERT_FALSE(ids.empty());
  EXPECT_LE(ids.size(), 2u) << "only the retained checkpoints stay on disk";
  auto latest = (*storage)->LatestValid();
  ASSERT_OK(latest);
  ASSERT_TRUE(latest->has_value());
  const CheckpointMetadata& m = **latest;
  ASSERT_EQ(m.operators.count("sum"), 1u) << "state is stored under the operator's uid";
  ASSERT_EQ(m.operators.at("sum").size(), 2u);
  // What is on disk is what the coordinator completed.
  for (int subtask = 0; subtask < 2; ++subtask) {
    auto bytes = (*storage)->ReadState(m.checkpoint_id, m.operators.at("sum")[subtask]);
    ASSERT_OK(bytes);
    auto snapshot = DeserializeFromString<OperatorSnapshot>(*bytes);
    ASSERT_OK(snapshot);
    EXPECT_EQ(snapshot->key_groups,
              by_id.at(m.checkpoint_id).operators.at(job.reduce)[subtask].key_groups);
  }
}

}  // namespace
}  // namespace sluice
