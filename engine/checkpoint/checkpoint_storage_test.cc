#include "sluice/checkpoint/checkpoint_storage.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

/// Writes a checkpoint with one operator of two subtasks whose state is `payload`.
void WriteCheckpoint(CheckpointStorage& s, int64_t id, const std::string& payload) {
  CheckpointMetadata m;
  m.checkpoint_id = id;
  m.job_name = "job";
  for (int subtask = 0; subtask < 2; ++subtask) {
    auto h = s.WriteState(id, "count-words-" + std::to_string(subtask),
                          payload + std::to_string(subtask));
    ASSERT_OK(h);
    m.operators["count-words"].push_back(*h);
  }
  m.max_parallelism["count-words"] = 128;
  ASSERT_OK(s.Commit(m));
}

void Damage(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(3);
  f.put('\x7f');
}

TEST(CheckpointStorageTest, RoundTripsMetadataAndState) {
  testing::TempDir dir;
  auto s = CheckpointStorage::Create(dir.path(), "my job");
  ASSERT_OK(s);
  WriteCheckpoint(**s, 1, "state-of-one-");
  auto m = (*s)->ReadMetadata(1);
  ASSERT_OK(m);
  EXPECT_EQ(m->checkpoint_id, 1);
  ASSERT_EQ(m->operators["count-words"].size(), 2u);
  auto state = (*s)->ReadState(1, m->operators["count-words"][1]);
  ASSERT_OK(state);
  EXPECT_EQ(*state, "state-of-one-1");
  EXPECT_EQ((*s)->job_dir(), dir.path() + "/my_job");
  // Nothing half-written is left behind.
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    EXPECT_THAT(e.path().string(), ::testing::Not(HasSubstr("inprogress")));
  }
}

TEST(CheckpointStorageTest, LatestValidSkipsIncompleteButRefusesADamagedNewestCheckpoint) {
  testing::TempDir dir;
  auto s = *CheckpointStorage::Create(dir.path(), "job");
  WriteCheckpoint(*s, 1, "a");
  WriteCheckpoint(*s, 2, "b");
  WriteCheckpoint(*s, 3, "c");
  ASSERT_OK(s->WriteState(4, "unfinished", "no metadata yet"));  // an incomplete checkpoint
  EXPECT_THAT(s->CompletedIds(), ElementsAre(3, 2, 1));
  auto latest = s->LatestValid();
  ASSERT_OK(latest);
  EXPECT_EQ((*latest)->checkpoint_id, 3) << "the incomplete checkpoint 4 is passed over";

  // Checkpoint 3 completed, so sinks may have committed its output: an older one would
  // write that output again. The damage is named instead.
  Damage(s->CheckpointDir(3) + "/count-words-1.state");
  latest = s->LatestValid();
  EXPECT_EQ(latest.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(latest.status().message()),
              HasSubstr("the newest completed checkpoint 3"));
  EXPECT_THAT(std::string(latest.status().message()), HasSubstr("count-words-1.state"));
  auto read = s->ReadState(3, s->ReadMetadata(3)->operators["count-words"][1]);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("is damaged"));

  ASSERT_OK(s->Discard(3));
  Damage(s->CheckpointDir(2) + "/_metadata");
  latest = s->LatestValid();
  EXPECT_EQ(latest.status().code(), absl::StatusCode::kDataLoss) << "damaged metadata too";
}

TEST(CheckpointStorageTest, RetainKeepsTheDirectoryBounded) {
  testing::TempDir dir;
  auto s = *CheckpointStorage::Create(dir.path(), "job");
  for (int64_t id = 1; id <= 50; ++id) {
    WriteCheckpoint(*s, id, std::string(1000, 'x'));
    ASSERT_OK(s->Retain(3));
  }
  EXPECT_THAT(s->CompletedIds(), ElementsAre(50, 49, 48));
  int dirs = 0;
  for (const auto& e : std::filesystem::directory_iterator(s->job_dir())) {
    if (e.path().filename().string().rfind("chk-", 0) == 0) ++dirs;
  }
  EXPECT_EQ(dirs, 3);
}

TEST(CheckpointStorageTest, UnwritableDirectoryIsAClearError) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("file"), "x");
  auto s = CheckpointStorage::Create(dir.Join("file"), "job");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("cannot create checkpoint directory"));
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

/// A checkpoint whose state files hold real (serialized) operator snapshots.
void WriteLoadableCheckpoint(CheckpointStorage& s, int64_t id, const std::string& item) {
  CheckpointMetadata m;
  m.checkpoint_id = id;
  m.job_name = "job";
  OperatorSnapshot snapshot;
  snapshot.operator_state = {item};
  auto h = s.WriteState(id, "source-0", SerializeToString(snapshot));
  ASSERT_OK(h);
  m.operators["source"].push_back(*h);
  ASSERT_OK(s.Commit(m));
}

TEST(CheckpointLoaderTest, JobDirectoryRefusesADamagedNewestCheckpoint) {
  testing::TempDir dir;
  auto s = *CheckpointStorage::Create(dir.path(), "job");
  WriteLoadableCheckpoint(*s, 1, "position-1");
  WriteLoadableCheckpoint(*s, 2, "position-2");
  auto newest = LoadCheckpoint(s->job_dir());
  ASSERT_OK(newest);
  EXPECT_EQ(newest->metadata.checkpoint_id, 2);
  EXPECT_EQ(newest->operators.at("source")[0].operator_state[0], "position-2");

  Damage(s->CheckpointDir(2) + "/source-0.state");
  auto refused = LoadCheckpoint(s->job_dir());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("source-0.state"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--from-savepoint="));
  // The way back the message names: the older checkpoint, asked for directly.
  auto older = LoadCheckpoint(s->CheckpointDir(1));
  ASSERT_OK(older);
  EXPECT_EQ(older->operators.at("source")[0].operator_state[0], "position-1");
  // Asked for directly, the damaged checkpoint is an error naming the file.
  auto direct = LoadCheckpoint(s->CheckpointDir(2));
  ASSERT_FALSE(direct.ok());
  EXPECT_THAT(std::string(direct.status().message()), HasSubstr("source-0.state' is damaged"));
}

TEST(CheckpointLoaderTest, StateIsMatchedToOperatorsByUid) {
  testing::TempDir dir;
  auto s = *CheckpointStorage::Create(dir.path(), "job");
  WriteLoadableCheckpoint(*s, 1, "position");
  auto loaded = LoadCheckpoint(s->job_dir());
  ASSERT_OK(loaded);
  StreamGraph graph;
  graph.nodes.resize(2);
  graph.nodes[1].uid = "source";
  auto matched = MatchToGraph(*loaded, graph, false);
  ASSERT_OK(matched);
  EXPECT_EQ(matched->count(1), 1u);

  graph.nodes[1].uid = "renamed";
  auto refused = MatchToGraph(*loaded, graph, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("operator 'source'"));
  auto dropped = MatchToGraph(*loaded, graph, true);
  ASSERT_OK(dropped);
  EXPECT_TRUE(dropped->empty());
}

}  // namespace
}  // namespace sluice
