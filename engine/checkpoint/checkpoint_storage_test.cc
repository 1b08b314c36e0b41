#include "sluice/checkpoint/checkpoint_storage.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/checkpoint/operator_snapshot.h"
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

TEST(CheckpointStorageTest, OnlyCheckpointsWithMetadataAreCompletedAndDamageIsNamed) {
  testing::TempDir dir;
  auto s = *CheckpointStorage::Create(dir.path(), "job");
  WriteCheckpoint(*s, 1, "a");
  WriteCheckpoint(*s, 2, "b");
  WriteCheckpoint(*s, 3, "c");
  ASSERT_OK(s->WriteState(4, "unfinished", "no metadata yet"));  // an incomplete checkpoint
  EXPECT_THAT(s->CompletedIds(), ElementsAre(3, 2, 1));

  testing::DamageFile(s->CheckpointDir(3) + "/count-words-1.state");
  auto read = s->ReadState(3, s->ReadMetadata(3)->operators["count-words"][1]);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("is damaged"));
  testing::DamageFile(s->CheckpointDir(2) + "/_metadata");
  auto metadata = s->ReadMetadata(2);
  EXPECT_EQ(metadata.status().code(), absl::StatusCode::kDataLoss) << "damaged metadata too";
}

// A task canceled while its snapshot uploads RocksDB's files gives the upload up, so that a
// restart does not wait for files nobody will use.
TEST(CheckpointStorageTest, AnUploadOfACanceledTaskGivesUp) {
  testing::TempDir dir;
  auto s = *CheckpointStorage::Create(dir.Join("storage"), "job");
  const std::string native = dir.Join("db.chk-1");
  std::filesystem::create_directories(native);
  testing::WriteFile(native + "/000007.sst", std::string(3 << 20, 'x'));
  std::atomic<bool> canceled{true};
  auto stored = s->StoreNativeCheckpoint(1, "op-0-abc", native, {}, &canceled);
  EXPECT_EQ(stored.status().code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(std::filesystem::exists(s->job_dir() + "/shared/op-0-abc-000007.sst"))
      << "nothing half-copied is published";
  canceled = false;
  ASSERT_OK(s->StoreNativeCheckpoint(1, "op-0-abc", native, {}, &canceled));
  EXPECT_TRUE(std::filesystem::exists(s->job_dir() + "/shared/op-0-abc-000007.sst"));
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

  testing::DamageFile(s->CheckpointDir(2) + "/source-0.state");
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

/// A checkpoint as the tasks write it: a keyed operator "window" at parallelism 4 whose
/// subtasks hold their key groups (value "kg<N>"), and a source of 2 subtasks with operator
/// state (value "offset-<i>").
CheckpointMetadata WriteKeyedCheckpoint(CheckpointStorage& s, int64_t id) {
  CheckpointMetadata m;
  m.checkpoint_id = id;
  m.job_name = "job";
  for (int i = 0; i < 4; ++i) {
    OperatorSnapshot snapshot;
    const KeyGroupRange range = KeyGroupRangeForOperator(i, 4, 16);
    for (int kg = range.start; kg <= range.end; ++kg) {
      snapshot.key_groups[kg] = absl::StrCat("kg", kg);
    }
    auto h = s.WriteState(id, absl::StrCat("window-", i), SerializeToString(snapshot));
    EXPECT_OK(h);
    DescribeContents(snapshot, &*h);
    m.operators["window"].push_back(*h);
  }
  m.max_parallelism["window"] = 16;
  for (int i = 0; i < 2; ++i) {
    OperatorSnapshot snapshot;
    snapshot.operator_state = {absl::StrCat("offset-", i)};
    auto h = s.WriteState(id, absl::StrCat("source-", i), SerializeToString(snapshot));
    EXPECT_OK(h);
    DescribeContents(snapshot, &*h);
    m.operators["source"].push_back(*h);
  }
  EXPECT_OK(s.Commit(m));
  return m;
}

/// The graph of that job: node 0 "source", node 1 "window" (max parallelism 16).
StreamGraph KeyedGraph(int window_parallelism) {
  StreamGraph graph;
  graph.nodes.resize(2);
  graph.nodes[0].uid = "source";
  graph.nodes[0].parallelism = 2;
  graph.nodes[0].max_parallelism = 16;
  graph.nodes[1].uid = "window";
  graph.nodes[1].parallelism = window_parallelism;
  graph.nodes[1].max_parallelism = 16;
  return graph;
}

std::vector<std::string> KeyGroupValues(const std::vector<OperatorSnapshot>& old, int index,
                                        int parallelism) {
  std::vector<std::string> values;
  for (const auto& [kg, value] : RedistributeState(old, index, parallelism, 16).key_groups) {
    values.push_back(value);
  }
  return values;
}

// Operator state at the same parallelism goes back to the subtask that wrote it (a subtask
// restarted alone must not take over what its running peers hold); rescaled, it is shared
// out evenly; in union mode every subtask gets all of it.
TEST(CheckpointLoaderTest, OperatorStateGoesBackToItsSubtaskUnlessRescaled) {
  std::vector<OperatorSnapshot> old(2);
  old[0].operator_state = {"a", "b", "c"};
  old[1].operator_state = {};  // subtask 1 had nothing left
  EXPECT_THAT(RedistributeState(old, 0, 2, 16).operator_state, ElementsAre("a", "b", "c"));
  EXPECT_THAT(RedistributeState(old, 1, 2, 16).operator_state, ElementsAre());
  EXPECT_THAT(RedistributeState(old, 1, 2, 16).operator_state_union, ElementsAre("a", "b", "c"));
  EXPECT_THAT(RedistributeState(old, 0, 3, 16).operator_state, ElementsAre("a"));
  EXPECT_THAT(RedistributeState(old, 1, 3, 16).operator_state, ElementsAre("b"));
  EXPECT_THAT(RedistributeState(old, 0, 1, 16).operator_state, ElementsAre("a", "b", "c"));
}

// Broadcast state is the same in every subtask: each new subtask takes one old copy, at any
// parallelism, the next old one that has any if its own had none; a snapshot written before
// broadcast state existed reads with none.
TEST(CheckpointLoaderTest, EachSubtaskTakesOneCopyOfTheBroadcastState) {
  std::vector<OperatorSnapshot> old(3);
  old[0].broadcast_states = {{"rules", "copy-0"}};
  old[2].broadcast_states = {{"rules", "copy-2"}};  // subtask 1 wrote none
  EXPECT_EQ(RedistributeState(old, 0, 2, 16).broadcast_states.at("rules"), "copy-0");
  EXPECT_EQ(RedistributeState(old, 1, 2, 16).broadcast_states.at("rules"), "copy-2");
  EXPECT_EQ(RedistributeState(old, 2, 5, 16).broadcast_states.at("rules"), "copy-2");
  EXPECT_EQ(RedistributeState(old, 3, 5, 16).broadcast_states.at("rules"), "copy-0");
  StateHandle handle;
  DescribeContents(old[0], &handle);
  EXPECT_TRUE(handle.operator_state) << "every restore must read a file with broadcast state";

  const std::string bytes = SerializeToString(old[0]);
  auto read = DeserializeFromString<OperatorSnapshot>(bytes);
  ASSERT_OK(read);
  EXPECT_EQ(read->broadcast_states, old[0].broadcast_states);
  OperatorSnapshot none;
  std::string older = SerializeToString(none);
  older.pop_back();  // without the broadcast states: as written before they existed
  auto read_older = DeserializeFromString<OperatorSnapshot>(older);
  ASSERT_OK(read_older);
  EXPECT_TRUE(read_older->broadcast_states.empty());
}

// A TaskManager restoring some subtasks reads the files that hold their key groups (and
// operator state, which every subtask's share comes from), not the whole job's state: a
// damaged file of another subtask is not even opened.
TEST(CheckpointLoaderTest, ARestoreReadsOnlyTheFilesOfItsOwnKeyGroups) {
  testing::TempDir dir;
  auto s = *CheckpointStorage::Create(dir.path(), "job");
  WriteKeyedCheckpoint(*s, 1);
  testing::DamageFile(s->CheckpointDir(1) + "/window-0.state");
  auto whole = LoadCheckpoint(s->job_dir());
  EXPECT_EQ(whole.status().code(), absl::StatusCode::kDataLoss) << "the whole job reads it";

  const StreamGraph same = KeyedGraph(4);
  auto loaded = LoadCheckpoint(s->job_dir(), FilesNeededBy(same, {{0, {0}}, {1, {1, 3}}}));
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->counts.files_read, 4) << "window-1, window-3 and both source files";
  EXPECT_EQ(loaded->counts.files_skipped, 2);
  const auto& window = loaded->operators.at("window");
  EXPECT_THAT(KeyGroupValues(window, 1, 4), ElementsAre("kg4", "kg5", "kg6", "kg7"));
  EXPECT_THAT(KeyGroupValues(window, 3, 4), ElementsAre("kg12", "kg13", "kg14", "kg15"));
  EXPECT_THAT(RedistributeState(loaded->operators.at("source"), 0, 2, 16).operator_state_union,
              ElementsAre("offset-0", "offset-1"));

  // Rescaled to 2, subtask 1 (key groups 8-15) needs old subtasks 2 and 3; subtask 0 needs
  // the damaged file, and the error names it.
  const StreamGraph rescaled = KeyedGraph(2);
  auto upper = LoadStateFor(rescaled, s->job_dir(), false, FilesNeededBy(rescaled, {{1, {1}}}));
  ASSERT_OK(upper);
  EXPECT_THAT(KeyGroupValues(upper->at(1), 1, 2),
              ElementsAre("kg8", "kg9", "kg10", "kg11", "kg12", "kg13", "kg14", "kg15"));
  auto lower = LoadStateFor(rescaled, s->job_dir(), false, FilesNeededBy(rescaled, {{1, {0}}}));
  EXPECT_EQ(lower.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(lower.status().message()), HasSubstr("window-0.state"));

  // Operator state is everyone's: a damaged source file fails any restore of the source.
  testing::DamageFile(s->CheckpointDir(1) + "/source-1.state");
  auto source = LoadCheckpoint(s->job_dir(), FilesNeededBy(same, {{0, {0}}}));
  EXPECT_EQ(source.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(source.status().message()), HasSubstr("source-1.state"));
}

// Metadata an earlier Sluice wrote (SLUICE-CHECKPOINT-1, handles without contents) still
// restores; not knowing what its files hold, a restore reads every file of its operators.
struct HandleOfVersion1 {
  std::string file;
  uint64_t checksum = 0;
  uint64_t size = 0;
};
SLUICE_SERIALIZABLE(HandleOfVersion1, file, checksum, size)
struct MetadataOfVersion1 {
  int64_t checkpoint_id = 0;
  int64_t timestamp_ms = 0;
  std::string job_name;
  bool savepoint = false;
  std::map<std::string, std::vector<HandleOfVersion1>> operators;
  std::map<std::string, int32_t> max_parallelism;
  std::vector<std::string> shared_files;
};
SLUICE_SERIALIZABLE(MetadataOfVersion1, checkpoint_id, timestamp_ms, job_name, savepoint, operators,
                    max_parallelism, shared_files)

TEST(CheckpointLoaderTest, MetadataOfTheFirstFormatRestoresReadingEveryFile) {
  testing::TempDir dir;
  auto s = *CheckpointStorage::Create(dir.path(), "job");
  const CheckpointMetadata written = WriteKeyedCheckpoint(*s, 1);
  MetadataOfVersion1 v1;
  v1.checkpoint_id = 1;
  v1.job_name = "job";
  for (const auto& [op, handles] : written.operators) {
    for (const StateHandle& h : handles) v1.operators[op].push_back({h.file, h.checksum, h.size});
  }
  v1.max_parallelism = written.max_parallelism;
  const std::string payload = SerializeToString(v1);
  std::string file = "SLUICE-CHECKPOINT-1";
  ByteWriter w(&file);
  w.WriteBytes(payload);
  w.WriteRaw(internal::Checksum(payload));
  testing::WriteFile(s->CheckpointDir(1) + "/_metadata", file);

  const StreamGraph graph = KeyedGraph(4);
  auto loaded = LoadCheckpoint(s->job_dir(), FilesNeededBy(graph, {{1, {1}}}));
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->counts.files_read, 4) << "every file of the window (and none of the source)";
  EXPECT_THAT(KeyGroupValues(loaded->operators.at("window"), 1, 4),
              ElementsAre("kg4", "kg5", "kg6", "kg7"));
}

}  // namespace
}  // namespace sluice
