// State schema evolution on the mini-cluster: two versions of a job, the second with a field
// added to its state struct, one removed and the rest reordered, resume from the first's
// savepoint on either backend and every visit counts once; a third version that changed a
// field's type is refused before it runs, naming operator, state, field and both types.

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace evolution_v1 {
struct Profile {
  std::string name;
  int64_t visits = 0;
  std::string last_seen;  // removed in version 2
};
SLUICE_SERIALIZABLE(Profile, name, visits, last_seen)
}  // namespace evolution_v1

namespace evolution_v2 {
struct Profile {
  int64_t visits = 0;  // before name now
  double score = 0;    // added
  std::string name;
};
SLUICE_SERIALIZABLE(Profile, visits, score, name)
}  // namespace evolution_v2

namespace evolution_v3 {
struct Profile {
  std::string visits;  // was i64
  double score = 0;
  std::string name;
};
SLUICE_SERIALIZABLE(Profile, visits, score, name)
}  // namespace evolution_v3

namespace sluice {
namespace {

using ::testing::HasSubstr;
constexpr uint64_t kEvents = 6'000;
constexpr int kUsers = 40;

std::string UserOf(uint64_t i) { return absl::StrCat("user", i % kUsers); }

/// Version 1 counts visits; it writes "user,visits,name,score" (no score yet: "-").
class CountV1 final : public KeyedProcessFunction<std::string, std::string, std::string> {
 public:
  void Open(KeyedRuntimeContext<std::string>& ctx) override {
    profile_ = &ctx.GetState(ValueStateDescriptor<evolution_v1::Profile>("profile"));
  }
  void ProcessElement(const std::string& user, Context&, Collector<std::string>& out) override {
    evolution_v1::Profile p = profile_->ValueOr({});
    p.name = user;
    ++p.visits;
    p.last_seen = "now";
    profile_->Update(p);
    out.Collect(absl::StrCat(user, ",", p.visits, ",", p.name, ",-"));
  }

 private:
  ValueState<evolution_v1::Profile>* profile_ = nullptr;
};

/// Version 2 also scores (0.5 a visit) and never writes the name: what it prints is what
/// version 1 left.
template <typename Profile>
class CountV2 final : public KeyedProcessFunction<std::string, std::string, std::string> {
 public:
  void Open(KeyedRuntimeContext<std::string>& ctx) override {
    profile_ = &ctx.GetState(ValueStateDescriptor<Profile>("profile"));
  }
  void ProcessElement(const std::string& user, Context&, Collector<std::string>& out) override {
    Profile p = profile_->ValueOr({});
    if constexpr (std::is_same_v<Profile, evolution_v2::Profile>) {
      ++p.visits;
      p.score += 0.5;
      profile_->Update(p);
      out.Collect(absl::StrCat(user, ",", p.visits, ",", p.name, ",", p.score));
    }
  }

 private:
  ValueState<Profile>* profile_ = nullptr;
};

template <typename Function>
Pipeline VisitsJob(const std::string& out, StateBackendKind backend, double rate,
                   const std::string& checkpoint_dir = "") {
  Pipeline p("visits");
  p.SetParallelism(2);
  p.EnableCheckpointing(absl::Milliseconds(30));
  if (!checkpoint_dir.empty()) p.SetCheckpointDir(checkpoint_dir);
  p.mutable_config().state_backend = backend;
  p.mutable_config().max_source_rate = rate;
  p.Source(Generator([](uint64_t i) { return UserOf(i); }, {.count = kEvents}))
      .Parallelism(1)
      .Uid("events")
      .KeyBy([](const std::string& u) { return u; })
      .Process(Function())
      .Uid("visits")
      .Sink(TextFileSink<std::string>(out))
      .Uid("sink");
  return p;
}

std::string StopWithSavepoint(const Pipeline& p, const std::string& dir) {
  auto graph = p.BuildJobGraph();
  EXPECT_OK(graph);
  if (!graph.ok()) return "";
  auto path = testing::StopWithSavepointAfter(*graph, dir, 0);
  EXPECT_OK(path);
  return path.ok() ? *path : "";
}

class StateEvolutionJobTest : public ::testing::TestWithParam<StateBackendKind> {};

TEST_P(StateEvolutionJobTest, ANewerStructResumesFromTheOldVersionsSavepoint) {
  testing::TempDir dir;
  const std::string v1_out = dir.Join("v1"), v2_out = dir.Join("v2");
  const std::string savepoint =
      StopWithSavepoint(VisitsJob<CountV1>(v1_out, GetParam(), 3'000), dir.Join("sp"));
  ASSERT_FALSE(savepoint.empty());
  const auto v1_lines = testing::ReadPartFileLines(v1_out);
  ASSERT_GT(v1_lines.size(), 0u);
  ASSERT_LT(v1_lines.size(), kEvents) << "stopped before the end of its input";

  Pipeline v2 = VisitsJob<CountV2<evolution_v2::Profile>>(v2_out, GetParam(), 0);
  v2.mutable_config().restore_from = savepoint;
  ASSERT_OK(ExecuteLocally(v2));

  // The model: user u's i-th event prints visit i, once, across both versions; version 2
  // prints the name version 1 stored (empty for users it never saw) and 0.5 a visit of its
  // own, from 0 (the added field's default).
  std::map<std::string, int64_t> events;
  for (uint64_t i = 0; i < kEvents; ++i) ++events[UserOf(i)];
  std::map<std::string, std::multiset<int64_t>> visits;
  std::map<std::string, int64_t> v1_visits;
  for (const std::string& line : v1_lines) {
    const std::vector<std::string> f = absl::StrSplit(line, ',');
    ASSERT_EQ(f.size(), 4u) << line;
    visits[f[0]].insert(std::stoll(f[1]));
    v1_visits[f[0]] = std::max<int64_t>(v1_visits[f[0]], std::stoll(f[1]));
  }
  for (const std::string& line : testing::ReadPartFileLines(v2_out)) {
    const std::vector<std::string> f = absl::StrSplit(line, ',');
    ASSERT_EQ(f.size(), 4u) << line;
    const int64_t visit = std::stoll(f[1]);
    visits[f[0]].insert(visit);
    EXPECT_EQ(f[2], v1_visits.contains(f[0]) ? f[0] : "") << line;
    EXPECT_DOUBLE_EQ(std::stod(f[3]), 0.5 * static_cast<double>(visit - v1_visits[f[0]])) << line;
  }
  ASSERT_EQ(visits.size(), events.size());
  for (const auto& [user, n] : events) {
    std::multiset<int64_t> expected;
    for (int64_t i = 1; i <= n; ++i) expected.insert(i);
    EXPECT_EQ(visits[user], expected) << user;
  }
}

TEST_P(StateEvolutionJobTest, AChangedFieldTypeIsRefusedBeforeTheJobRuns) {
  testing::TempDir dir;
  // Its final checkpoint stays: for RocksDB the database's own files (incremental).
  ASSERT_OK(ExecuteLocally(VisitsJob<CountV1>(dir.Join("v1"), GetParam(), 0, dir.Join("ck"))));
  Pipeline v3 = VisitsJob<CountV2<evolution_v3::Profile>>(dir.Join("v3"), GetParam(), 0);
  v3.mutable_config().restore_from = dir.Join("ck/visits");
  v3.mutable_config().restart_strategy = RestartStrategyConfig::None();
  auto result = ExecuteLocally(v3);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      std::string(result.status().message()),
      HasSubstr("operator 'visits' (KeyedProcess): state 'profile' cannot be restored: field "
                "'visits' was i64 and is now string"));
  EXPECT_FALSE(std::filesystem::exists(dir.Join("v3"))) << "nothing ran";
}

INSTANTIATE_TEST_SUITE_P(Backends, StateEvolutionJobTest,
                         ::testing::Values(StateBackendKind::kHeap, StateBackendKind::kRocksDb),
                         [](const auto& info) {
                           return info.param == StateBackendKind::kHeap ? "Heap" : "RocksDb";
                         });

}  // namespace
}  // namespace sluice
