// Savepoints and checkpoint settings on the mini-cluster: stop with a savepoint and resume
// at another parallelism with identical results, state matched by Uid, refusal (or
// dropping) of state nobody claims, checkpoint timeouts against the tolerable-failure
// setting, and operator state of user functions (CheckpointedFunction) under the chaos
// option; `sluice savepoint inspect` against what a job left.

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using KV = std::pair<int64_t, int64_t>;
constexpr uint64_t kRecords = 20'000;

struct JobShape {
  int parallelism = 2;
  bool extra_map = false;  // an operator added before the keyed sum
  bool with_sum = true;    // false: the keyed sum removed
  double source_rate = 0;  // records/s, 0: unthrottled
  StateBackendKind backend = StateBackendKind::kHeap;
};

/// Rolling per-key sums written by the exactly-once file sink: the output (as a multiset
/// of lines) does not depend on timing or parallelism, only on every record counting once.
Pipeline SumJob(const std::string& out, const JobShape& shape) {
  Pipeline p("sums");
  p.SetParallelism(shape.parallelism);
  p.EnableCheckpointing(absl::Milliseconds(20));
  p.mutable_config().max_source_rate = shape.source_rate;
  p.mutable_config().state_backend = shape.backend;
  auto src = p.Source(Generator(
                          [](uint64_t i) {
                            return KV{static_cast<int64_t>(i % 101), i};
                          },
                          {.count = kRecords}))
                 .Parallelism(1)
                 .Uid("source");
  // (Parallelism 1, chained to the source: records of a key keep their order.)
  if (shape.extra_map) {
    src = src.Map([](const KV& kv) { return kv; }, "Extra").Parallelism(1).Uid("extra");
  }
  if (shape.with_sum) {
    src = src.KeyBy(&KV::first)
              .Reduce([](const KV& a, const KV& b) {
                return KV{a.first, a.second + b.second};
              })
              .Uid("sum");
  }
  src.Sink(TextFileSink<KV>(out)).Uid("sink");
  return p;
}

std::vector<std::string> SortedLines(const std::string& dir) {
  auto lines = testing::ReadPartFileLines(dir);
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// Runs the job until its first checkpoint completed, then takes a savepoint (and stops
/// the job if `stop`); returns the savepoint's path.
std::string SavepointOfRunningJob(const Pipeline& p, const std::string& savepoint_dir, bool stop,
                                  absl::StatusOr<JobResult>* result) {
  std::atomic<int> completed{0};
  MiniCluster cluster({.clock = nullptr,
                       .on_checkpoint_complete = [&](const CompletedCheckpoint&) { ++completed; }});
  auto graph = p.BuildJobGraph();
  EXPECT_OK(graph);
  std::thread runner([&] { *result = cluster.Execute(*graph); });
  EXPECT_TRUE(testing::WaitFor([&] { return completed > 0; }, 20'000));
  auto path = cluster.TriggerSavepoint(savepoint_dir, stop);
  runner.join();
  EXPECT_OK(path);
  return path.ok() ? *path : "";
}

class RescaleTest : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(RescaleTest, StopWithSavepointThenResumeAtAnotherParallelism) {
  const auto [from, to] = GetParam();
  testing::TempDir dir;
  ASSERT_OK(ExecuteLocally(SumJob(dir.Join("plain"), {.parallelism = from})));
  const auto expected = SortedLines(dir.Join("plain"));
  ASSERT_EQ(expected.size(), kRecords);

  const std::string out = dir.Join("out");
  absl::StatusOr<JobResult> first = absl::UnknownError("not run");
  const std::string savepoint = SavepointOfRunningJob(
      SumJob(out, {.parallelism = from, .source_rate = 10'000}), dir.Join("sp"), true, &first);
  ASSERT_OK(first);
  EXPECT_TRUE(first->stopped);
  EXPECT_EQ(first->final_savepoint, savepoint);
  EXPECT_LT(SortedLines(out).size(), kRecords) << "stopped before the end of its input";

  Pipeline resumed = SumJob(out, {.parallelism = to});
  resumed.mutable_config().restore_from = savepoint;
  auto second = ExecuteLocally(resumed);
  ASSERT_OK(second);
  EXPECT_FALSE(second->stopped);
  EXPECT_EQ(SortedLines(out), expected);
}

/// Copies a text file's lines with a parallel file source into the exactly-once sink.
Pipeline CopyLinesJob(const std::string& input, const std::string& out, int parallelism,
                      double source_rate = 0) {
  Pipeline p("copy");
  p.SetParallelism(parallelism);
  p.EnableCheckpointing(absl::Milliseconds(20));
  p.mutable_config().max_source_rate = source_rate;
  p.Source(TextFileSource(input)).Uid("lines").Sink(TextFileSink<std::string>(out)).Uid("sink");
  return p;
}

// A parallel file source keeps the ranges it has left, not a position in its own split: at
// another parallelism every line is still read exactly once.
TEST_P(RescaleTest, AParallelFileSourceReadsEveryLineOnceAtAnotherParallelism) {
  const auto [from, to] = GetParam();
  testing::TempDir dir;
  std::string text;
  std::vector<std::string> expected;
  for (int i = 0; i < 20'000; ++i) {
    expected.push_back(absl::StrCat("line ", i));
    absl::StrAppend(&text, expected.back(), "\n");
  }
  std::sort(expected.begin(), expected.end());
  const std::string input = dir.Join("lines.txt");
  testing::WriteFile(input, text);
  const std::string out = dir.Join("out");
  absl::StatusOr<JobResult> first = absl::UnknownError("not run");
  const std::string savepoint =
      SavepointOfRunningJob(CopyLinesJob(input, out, from, 5'000), dir.Join("sp"), true, &first);
  ASSERT_OK(first);
  EXPECT_LT(SortedLines(out).size(), expected.size()) << "stopped before the end of its input";

  Pipeline resumed = CopyLinesJob(input, out, to);
  resumed.mutable_config().restore_from = savepoint;
  ASSERT_OK(ExecuteLocally(resumed));
  EXPECT_EQ(SortedLines(out), expected);
}

// Savepoints are backend-independent: one taken on the heap resumes on RocksDB and the other
// way round, at another parallelism.
TEST(SavepointTest, ResumesOnTheOtherStateBackend) {
  for (const auto& [from, to] :
       {std::make_pair(StateBackendKind::kHeap, StateBackendKind::kRocksDb),
        std::make_pair(StateBackendKind::kRocksDb, StateBackendKind::kHeap)}) {
    testing::TempDir dir;
    ASSERT_OK(ExecuteLocally(SumJob(dir.Join("plain"), {.parallelism = 2})));
    const std::string out = dir.Join("out");
    absl::StatusOr<JobResult> first = absl::UnknownError("not run");
    const std::string savepoint = SavepointOfRunningJob(
        SumJob(out, {.parallelism = 2, .source_rate = 10'000, .backend = from}), dir.Join("sp"),
        true, &first);
    ASSERT_OK(first);
    Pipeline resumed = SumJob(out, {.parallelism = 3, .backend = to});
    resumed.mutable_config().restore_from = savepoint;
    ASSERT_OK(ExecuteLocally(resumed));
    EXPECT_EQ(SortedLines(out), SortedLines(dir.Join("plain")));
  }
}

INSTANTIATE_TEST_SUITE_P(Savepoints, RescaleTest,
                         ::testing::Values(std::make_pair(2, 3), std::make_pair(4, 1)));

TEST(SavepointTest, SavepointOfARunningJobLetsItFinish) {
  testing::TempDir dir;
  absl::StatusOr<JobResult> result = absl::UnknownError("not run");
  const std::string path = SavepointOfRunningJob(SumJob(dir.Join("out"), {.source_rate = 20'000}),
                                                 dir.Join("sp"), false, &result);
  ASSERT_OK(result);
  EXPECT_FALSE(result->stopped);
  EXPECT_EQ(SortedLines(dir.Join("out")).size(), kRecords);
  auto loaded = LoadCheckpoint(path);
  ASSERT_OK(loaded);
  EXPECT_TRUE(loaded->metadata.savepoint);
  EXPECT_EQ(loaded->operators.count("sum"), 1u);
  EXPECT_EQ(loaded->operators.count("source"), 1u);
}

TEST(SavepointTest, StateIsMatchedByUidInAChangedJob) {
  testing::TempDir dir;
  ASSERT_OK(ExecuteLocally(SumJob(dir.Join("plain"), {})));
  absl::StatusOr<JobResult> first = absl::UnknownError("not run");
  const std::string out = dir.Join("out");
  const std::string savepoint =
      SavepointOfRunningJob(SumJob(out, {.source_rate = 10'000}), dir.Join("sp"), true, &first);
  ASSERT_OK(first);
  // An operator more before the sum: every node id after it shifts, the uids do not.
  Pipeline changed = SumJob(out, {.extra_map = true});
  changed.mutable_config().restore_from = savepoint;
  ASSERT_OK(ExecuteLocally(changed));
  EXPECT_EQ(SortedLines(out), SortedLines(dir.Join("plain")));
}

TEST(SavepointTest, StateOfARemovedOperatorIsRefusedUnlessAllowed) {
  testing::TempDir dir;
  absl::StatusOr<JobResult> first = absl::UnknownError("not run");
  const std::string savepoint = SavepointOfRunningJob(
      SumJob(dir.Join("out"), {.source_rate = 10'000}), dir.Join("sp"), true, &first);
  ASSERT_OK(first);

  Pipeline without_sum = SumJob(dir.Join("out2"), {.with_sum = false});
  without_sum.mutable_config().restore_from = savepoint;
  auto refused = ExecuteLocally(without_sum);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("operator 'sum'"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--allow-non-restored-state"));

  without_sum.mutable_config().allow_non_restored_state = true;
  ASSERT_OK(ExecuteLocally(without_sum));
  // The source resumed from its saved position: the records before it are not read again.
  const auto lines = SortedLines(dir.Join("out2"));
  EXPECT_GT(lines.size(), 0u);
  EXPECT_LT(lines.size(), kRecords);
}

TEST(SavepointTest, MissingSavepointIsAClearError) {
  testing::TempDir dir;
  Pipeline p = SumJob(dir.Join("out"), {});
  p.mutable_config().restore_from = dir.Join("nowhere");
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no checkpoint or savepoint at"));
}

/// A sink whose first snapshots are slow (a stalled disk, say): those checkpoints time out.
class SlowSnapshotSink final : public SinkFunction<KV>,
                               public CheckpointedFunction<int64_t>,
                               public CheckpointListener {
 public:
  static inline std::atomic<int> slow_left{0};
  static inline std::atomic<int> aborted{0};
  void Invoke(const KV&, const SinkContext&) override {}
  std::vector<int64_t> SnapshotState(int64_t) override {
    if (slow_left.fetch_sub(1) > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the slowness under test
    }
    return {};
  }
  void RestoreState(std::vector<int64_t>) override {}
  void NotifyCheckpointComplete(int64_t) override {}
  void NotifyCheckpointAborted(int64_t) override { ++aborted; }
};

Pipeline SlowSnapshotJob(int tolerable_failures) {
  Pipeline p("slow-snapshots");
  p.EnableCheckpointing(absl::Milliseconds(20));
  p.mutable_config().checkpoint_timeout = absl::Milliseconds(50);
  p.mutable_config().checkpoint_tolerable_failures = tolerable_failures;
  p.mutable_config().max_source_rate = 20'000;
  p.SetRestartStrategy(RestartStrategyConfig::None());  // the failure is what is tested
  p.Source(Generator(
               [](uint64_t i) {
                 return KV{static_cast<int64_t>(i), 1};
               },
               {.count = kRecords}))
      .Sink(SlowSnapshotSink{});
  return p;
}

TEST(CheckpointSettingsTest, TimeoutsBeyondTheToleranceFailTheJob) {
  SlowSnapshotSink::slow_left = 1000;
  auto r = ExecuteLocally(SlowSnapshotJob(1));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("checkpoints failed 2 times in a row (tolerable: 1)"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("timed out after 50ms"));
}

TEST(CheckpointSettingsTest, TolerableTimeoutsAreAbortedAndTheJobGoesOn) {
  SlowSnapshotSink::slow_left = 2;
  SlowSnapshotSink::aborted = 0;
  auto r = ExecuteLocally(SlowSnapshotJob(-1));
  ASSERT_OK(r);
  int failed = 0;
  for (const auto& c : r->checkpoints) failed += c.failed;
  EXPECT_GE(failed, 1);
  EXPECT_GE(r->completed_checkpoints, 1);
  EXPECT_GE(SlowSnapshotSink::aborted.load(), 1) << "tasks hear of aborted checkpoints";
}

/// Counts what it sees in operator state; the counts of all subtasks add up to the input
/// exactly once, whatever crashes happen.
class CountingSink final : public SinkFunction<KV>,
                           public CheckpointedFunction<int64_t>,
                           public CheckpointListener {
 public:
  static inline std::atomic<int64_t> total{0};
  static inline std::atomic<int> completions{0};
  void Invoke(const KV&, const SinkContext&) override { ++count_; }
  void Finish() override { total += count_; }
  std::vector<int64_t> SnapshotState(int64_t) override { return {count_}; }
  void RestoreState(std::vector<int64_t> items) override {
    count_ = 0;
    for (int64_t c : items) count_ += c;
  }
  void NotifyCheckpointComplete(int64_t) override { ++completions; }

 private:
  int64_t count_ = 0;
};

TEST(CheckpointedFunctionTest, OperatorStateSurvivesCrashesExactlyOnce) {
  CountingSink::total = 0;
  CountingSink::completions = 0;
  Pipeline p("counting");
  p.SetParallelism(3);
  p.EnableCheckpointing(absl::Milliseconds(20));
  JobConfig& c = p.mutable_config();
  c.max_source_rate = 10'000;
  c.chaos_kill_every_records = 1000;  // per subtask ~6,700 records: three crashes
  c.chaos_max_failures = 3;
  c.chaos_seed = 9;
  p.Source(Generator(
               [](uint64_t i) {
                 return KV{static_cast<int64_t>(i), 1};
               },
               {.count = kRecords}))
      .Sink(CountingSink{});
  auto r = ExecuteLocally(p);
  ASSERT_OK(r);
  EXPECT_EQ(r->restarts, 3);
  EXPECT_EQ(CountingSink::total.load(), static_cast<int64_t>(kRecords));
  EXPECT_GT(CountingSink::completions.load(), 0);
}

// --- sluice savepoint inspect ---

struct Profile {
  std::string name;
  int64_t visits = 0;
  std::vector<std::string> tags;
};
SLUICE_SERIALIZABLE(Profile, name, visits, tags)

/// Per user: a profile (ValueState) and its visit numbers (ListState with a TTL); users big1
/// and big2 get one long tag each (1,000 and 500 bytes): the largest entries.
class KeepProfiles final : public KeyedProcessFunction<std::string, std::string, std::string> {
 public:
  void Open(KeyedRuntimeContext<std::string>& ctx) override {
    profile_ = &ctx.GetState(ValueStateDescriptor<Profile>("profile"));
    ListStateDescriptor<int64_t> recent("recent");
    recent.EnableTimeToLive(StateTtlConfig::Of(absl::Hours(1)));
    recent_ = &ctx.GetListState(recent);
  }
  void ProcessElement(const std::string& user, Context&, Collector<std::string>&) override {
    Profile p = profile_->ValueOr(Profile{});
    p.name = user;
    ++p.visits;
    if (user == "big1") p.tags.push_back(std::string(1000, 'x'));
    if (user == "big2") p.tags.push_back(std::string(500, 'y'));
    profile_->Update(p);
    recent_->Add(p.visits);
  }

 private:
  ValueState<Profile>* profile_ = nullptr;
  ListState<int64_t>* recent_ = nullptr;
};

/// `sluice ARGS...`: its exit code and what it printed.
testing::CommandResult Sluice(const std::string& args) {
  return testing::RunCommand(testing::BuildDir() + "/bin/sluice " + args + " 2>&1");
}

// What a checkpoint holds, from its files alone: per operator uid each state's kind, keys,
// bytes, types, TTL and largest entries, against what the job (102 users) must have left.
TEST(SavepointInspectTest, ShowsEachStateOfEachOperator) {
  testing::TempDir dir;
  std::vector<std::string> users;
  for (int round = 0; round < 3; ++round) {
    for (int u = 0; u < 100; ++u) users.push_back(absl::StrCat("u", u));
  }
  users.push_back("big1");
  users.push_back("big2");
  Pipeline p("profiles");
  p.EnableCheckpointing(absl::Milliseconds(50));
  p.SetCheckpointDir(dir.Join("ck"));
  p.SetParallelism(2);
  p.Source(CollectionSource<std::string>(users))
      .Uid("users")
      .KeyBy([](const std::string& u) { return u; })
      .Process(KeepProfiles())
      .Uid("profiles")
      .Sink(DiscardingSink<std::string>())
      .Uid("discard");
  ASSERT_OK(ExecuteLocally(p));  // its final checkpoint stays

  const auto json = Sluice("savepoint inspect --json --top=2 " + dir.Join("ck/profiles"));
  ASSERT_EQ(json.exit_code, 0) << json.output;
  const auto doc = nlohmann::json::parse(json.output);
  EXPECT_FALSE(doc["savepoint"].get<bool>());
  nlohmann::json profiles;
  for (const auto& op : doc["operators"]) {
    if (op["uid"] == "profiles") profiles = op;
  }
  ASSERT_FALSE(profiles.is_null()) << json.output;
  EXPECT_EQ(profiles["parallelism"], 2);
  EXPECT_EQ(profiles["max_parallelism"], 128);
  std::set<int> key_groups;
  for (const std::string& u : users) key_groups.insert(KeyGroupFor(u, 128));
  EXPECT_EQ(profiles["key_groups"], key_groups.size()) << "key groups holding entries";
  ASSERT_EQ(profiles["states"].size(), 2u) << profiles.dump();
  const auto& profile = profiles["states"][0];
  EXPECT_EQ(profile["name"], "profile");
  EXPECT_EQ(profile["kind"], "value");
  EXPECT_EQ(profile["ttl"], false);
  EXPECT_EQ(profile["keys"], 102);
  EXPECT_EQ(profile["key_type"], "string");
  EXPECT_EQ(profile["namespace_type"], "void");
  EXPECT_EQ(profile["value_type"], "Profile{name:string,visits:i64,tags:list<string>}");
  ASSERT_EQ(profile["top"].size(), 2u);
  EXPECT_EQ(profile["top"][0]["key"], "\"big1\"");
  EXPECT_EQ(profile["top"][1]["key"], "\"big2\"");
  // Key (1 + 4), name (1 + 4), visits (8), one tag (1 + 2 + 1,000): 1,021 bytes.
  EXPECT_EQ(profile["top"][0]["bytes"], 1 + 4 + 1 + 4 + 8 + 1 + 2 + 1000);
  const auto& recent = profiles["states"][1];
  EXPECT_EQ(recent["name"], "recent");
  EXPECT_EQ(recent["kind"], "list");
  EXPECT_EQ(recent["ttl"], true);
  EXPECT_EQ(recent["keys"], 102);

  const auto text = Sluice("savepoint inspect " + dir.Join("ck/profiles"));
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_THAT(text.output, HasSubstr("operator profiles: parallelism 2, max parallelism 128"));
  EXPECT_THAT(text.output, ::testing::ContainsRegex("recent +list +102 keys +[0-9]+ bytes  ttl"));

  // A RocksDB job's incremental checkpoint: its keyed state is in the database's files.
  p.mutable_config().state_backend = StateBackendKind::kRocksDb;
  p.SetCheckpointDir(dir.Join("ck-rocksdb"));
  ASSERT_OK(ExecuteLocally(p));
  const auto native = Sluice("savepoint inspect --json " + dir.Join("ck-rocksdb/profiles"));
  ASSERT_EQ(native.exit_code, 0) << native.output;
  const auto native_doc = nlohmann::json::parse(native.output);
  bool native_listed = false;
  for (const auto& op : native_doc["operators"]) {
    if (op["uid"] != "profiles") continue;
    EXPECT_GT(op["native_files"].get<int>(), 0) << op.dump();
    // Its states, read through a copy of the database, as the heap job's.
    ASSERT_EQ(op["states"].size(), 2u) << op.dump();
    EXPECT_EQ(op["states"][0]["name"], "profile");
    EXPECT_EQ(op["states"][0]["keys"], 102);
    EXPECT_EQ(op["states"][1]["name"], "recent");
    EXPECT_EQ(op["states"][1]["keys"], 102);
    native_listed = true;
  }
  EXPECT_TRUE(native_listed) << native.output;

  // A damaged state file: an error naming it, no output.
  std::string state_file;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.Join("ck/profiles"))) {
    if (e.path().filename().string().starts_with("profiles")) state_file = e.path().string();
  }
  ASSERT_FALSE(state_file.empty());
  testing::DamageFile(state_file, 20);
  const auto damaged = Sluice("savepoint inspect " + dir.Join("ck/profiles"));
  EXPECT_EQ(damaged.exit_code, 1) << damaged.output;
  EXPECT_THAT(damaged.output, HasSubstr(std::filesystem::path(state_file).filename().string()));
  EXPECT_THAT(Sluice("savepoint inspect " + dir.Join("nowhere")).output,
              HasSubstr(dir.Join("nowhere")));
}

// --- sluice savepoint rewrite ---

/// The profiles job of the inspect test over `users`, with checkpoints into `checkpoint_dir`;
/// restored from `restore_from` if given, with a new source (the old one's position dropped:
/// it reads all of `users`).
Pipeline ProfilesJob(const std::vector<std::string>& users, const std::string& checkpoint_dir,
                     StateBackendKind backend = StateBackendKind::kHeap,
                     const std::string& restore_from = "") {
  Pipeline p("profiles");
  p.EnableCheckpointing(absl::Milliseconds(50));
  p.SetCheckpointDir(checkpoint_dir);
  p.SetParallelism(2);
  p.mutable_config().state_backend = backend;
  p.mutable_config().restore_from = restore_from;
  p.mutable_config().allow_non_restored_state = !restore_from.empty();
  p.Source(CollectionSource<std::string>(users))
      .Uid(restore_from.empty() ? "users" : "more-users")
      .KeyBy([](const std::string& u) { return u; })
      .Process(KeepProfiles())
      .Uid("profiles")
      .Sink(DiscardingSink<std::string>())
      .Uid("discard");
  return p;
}

/// Users u0..u99 three times each, big1 and big2 once.
std::vector<std::string> ProfileUsers() {
  std::vector<std::string> users;
  for (int round = 0; round < 3; ++round) {
    for (int u = 0; u < 100; ++u) users.push_back(absl::StrCat("u", u));
  }
  users.push_back("big1");
  users.push_back("big2");
  return users;
}

/// `sluice savepoint inspect --json --top=1 PATH`'s state `name` of operator "profiles".
nlohmann::json InspectedState(const std::string& path, const std::string& name) {
  const auto r = Sluice("savepoint inspect --json --top=1 " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code != 0) return {};
  const auto doc = nlohmann::json::parse(r.output);
  for (const auto& op : doc["operators"]) {
    if (op["uid"] != "profiles") continue;
    for (const auto& state : op["states"]) {
      if (state["name"] == name) return state;
    }
  }
  return {};
}

class SavepointRewriteTest : public ::testing::TestWithParam<StateBackendKind> {};

TEST_P(SavepointRewriteTest, DropsAStateAndLeavesTheOriginalAsItWas) {
  testing::TempDir dir;
  ASSERT_OK(ExecuteLocally(ProfilesJob(ProfileUsers(), dir.Join("ck"), GetParam())));
  const std::string original = dir.Join("ck/profiles");
  const auto before = Sluice("savepoint inspect --json " + original).output;

  const auto r = Sluice("savepoint rewrite " + original + " " + dir.Join("out") +
                        " --drop-state=profiles/recent");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("profiles/recent: removed (102 entries)"));
  EXPECT_TRUE(InspectedState(dir.Join("out"), "recent").is_null());
  EXPECT_EQ(InspectedState(dir.Join("out"), "profile")["keys"], 102);
  EXPECT_EQ(Sluice("savepoint inspect --json " + original).output, before) << "read only";

  // The rewritten savepoint restores: the job goes on from it with its profiles.
  ASSERT_OK(
      ExecuteLocally(ProfilesJob({"u1", "new"}, dir.Join("ck2"), GetParam(), dir.Join("out"))));
  EXPECT_EQ(InspectedState(dir.Join("ck2/profiles"), "profile")["keys"], 103);
  EXPECT_EQ(InspectedState(dir.Join("ck2/profiles"), "recent")["keys"], 2);

  const auto again = Sluice("savepoint rewrite " + original + " " + dir.Join("out") +
                            " --drop-state=profiles/recent");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.output, HasSubstr("exists"));
  const auto unknown = Sluice("savepoint rewrite " + original + " " + dir.Join("out2") +
                              " --drop-state=profiles/nothing");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.output, HasSubstr("has no keyed state 'nothing' of operator 'profiles' "
                                        "(its states: profiles/profile, profiles/recent)"));
  EXPECT_FALSE(std::filesystem::exists(dir.Join("out2")));
}

TEST_P(SavepointRewriteTest, ARepairLibraryKeepsChangesAndDropsEntries) {
  testing::TempDir dir;
  ASSERT_OK(ExecuteLocally(ProfilesJob(ProfileUsers(), dir.Join("ck"), GetParam())));
  const auto r = Sluice("savepoint rewrite " + dir.Join("ck/profiles") + " " + dir.Join("out") +
                        " --with=" + testing::BuildDir() + "/tests/profile_repair.so");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // big2's tag (500 bytes) dropped it, big1's (1,000) was cleared; the others have none.
  EXPECT_THAT(r.output, HasSubstr("profiles/profile: 102 entries, 1 dropped, 1 changed"));
  const auto profile = InspectedState(dir.Join("out"), "profile");
  EXPECT_EQ(profile["keys"], 101);
  // The largest left: big1 without its tag: key (1 + 4), name (1 + 4), visits (8), tags (1).
  EXPECT_EQ(profile["top"][0]["key"], "\"big1\"");
  EXPECT_EQ(profile["top"][0]["bytes"], 1 + 4 + 1 + 4 + 8 + 1);
  EXPECT_EQ(Sluice("savepoint inspect --json " + dir.Join("ck/profiles")).exit_code, 0);
  EXPECT_EQ(InspectedState(dir.Join("out"), "recent")["keys"], 102) << "not named: unchanged";

  const auto wrong =
      Sluice("savepoint rewrite " + dir.Join("ck/profiles") + " " + dir.Join("out2") +
             " --with=" + testing::BuildDir() + "/tests/profile_repair_wrong_key.so");
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.output,
              HasSubstr("the repair of state 'profile' of operator 'profiles' reads key=i64;"));
  EXPECT_THAT(wrong.output, HasSubstr("but the state is key=string;"));
  const auto not_a_library =
      Sluice("savepoint rewrite " + dir.Join("ck/profiles") + " " + dir.Join("out3") +
             " --with=" + testing::BuildDir() + "/tests/fail_once.so");
  EXPECT_EQ(not_a_library.exit_code, 1);
  EXPECT_THAT(not_a_library.output, HasSubstr("has no SLUICE_STATE_REPAIR entry point"));
}

// Entries not accessed for a while go; states without a TTL keep theirs (no timestamps).
TEST_P(SavepointRewriteTest, DropsKeysNotAccessedForADuration) {
  testing::TempDir dir;
  ASSERT_OK(ExecuteLocally(ProfilesJob(ProfileUsers(), dir.Join("ck"), GetParam())));
  const absl::Time first_done = absl::Now();
  // A second run, a clear second later, touches two users only.
  ASSERT_TRUE(testing::WaitFor([&] { return absl::Now() > first_done + absl::Seconds(1); }, 5'000));
  const absl::Time second_start = absl::Now();
  ASSERT_OK(ExecuteLocally(
      ProfilesJob({"u1", "u2"}, dir.Join("ck2"), GetParam(), dir.Join("ck/profiles"))));
  // Older than the middle of the gap: the first run's accesses.
  const absl::Duration age = absl::Now() - (first_done + (second_start - first_done) / 2);
  const auto r =
      Sluice(absl::StrCat("savepoint rewrite ", dir.Join("ck2/profiles"), " ", dir.Join("out"),
                          " --drop-keys-older-than=", absl::ToInt64Milliseconds(age), "ms"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("profiles/recent: 102 entries, 100 dropped, 0 changed"));
  EXPECT_THAT(r.output, HasSubstr("profiles/profile: 102 entries, 0 dropped, 0 changed (no TTL"));
  EXPECT_EQ(InspectedState(dir.Join("out"), "recent")["keys"], 2);
}

TEST(SavepointRewriteArgumentsTest, BadArgumentsAndAMissingSavepointAreNamed) {
  testing::TempDir dir;
  const std::string out = dir.Join("out");
  const auto no_rule = Sluice("savepoint rewrite " + dir.Join("sp") + " " + out);
  EXPECT_EQ(no_rule.exit_code, 2);
  EXPECT_THAT(no_rule.output, HasSubstr("say what to change"));
  const auto bad_state =
      Sluice("savepoint rewrite " + dir.Join("sp") + " " + out + " --drop-state=profiles");
  EXPECT_EQ(bad_state.exit_code, 2);
  EXPECT_THAT(bad_state.output, HasSubstr("--drop-state wants UID/NAME, got 'profiles'"));
  const auto bad_age =
      Sluice("savepoint rewrite " + dir.Join("sp") + " " + out + " --drop-keys-older-than=7d");
  EXPECT_EQ(bad_age.exit_code, 2);
  EXPECT_THAT(bad_age.output, HasSubstr("--drop-keys-older-than wants a duration"));
  const auto missing =
      Sluice("savepoint rewrite " + dir.Join("sp") + " " + out + " --drop-state=profiles/recent");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr(dir.Join("sp")));
  EXPECT_FALSE(std::filesystem::exists(out));
}

INSTANTIATE_TEST_SUITE_P(Backends, SavepointRewriteTest,
                         ::testing::Values(StateBackendKind::kHeap, StateBackendKind::kRocksDb),
                         [](const auto& info) {
                           return info.param == StateBackendKind::kHeap ? "Heap" : "RocksDb";
                         });

}  // namespace
}  // namespace sluice
