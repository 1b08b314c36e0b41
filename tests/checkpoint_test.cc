// Checkpoints on the mini-cluster: barriers from the sources, alignment at tasks with
// several inputs, per-operator snapshots collected by the coordinator and stored. The
// central check: the state in every completed checkpoint is exactly the state after the
// records the sources had emitted before their barrier - no record missing, none twice.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/metrics/state_growth_watch.h"
#include "sluice/sluice.h"
#include "sluice/testing/log_capture.h"
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
using StateByNode = std::map<int, std::vector<OperatorSnapshot>>;

std::map<int64_t, int64_t> RestoredSums(Job& job, const StateByNode& c) {
  testing::OperatorHarness<KV, KV> h(job.p.graph(), job.reduce);
  h.op().InitializeState(RedistributeState(c.at(job.reduce), 0, 1, 128));
  h.Open();
  for (int64_t k = 0; k < kKeys; ++k) h.ProcessElement({k, 0});
  std::map<int64_t, int64_t> sums;
  for (const auto& [k, v] : h.output().Values()) sums[k] = v;
  return sums;
}

/// The sums over exactly the records the generator subtasks emitted before the barrier.
std::map<int64_t, int64_t> ExpectedSums(const Job& job, const StateByNode& c) {
  std::map<int64_t, int64_t> sums;
  for (int64_t k = 0; k < kKeys; ++k) sums[k] = 0;
  const auto& positions = c.at(job.source);
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
    EXPECT_EQ(RestoredSums(job, c.operators), ExpectedSums(job, c.operators));
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
    auto restored = RestoredSums(job, c.operators);
    auto expected = ExpectedSums(job, c.operators);
    for (const auto& [k, v] : expected) EXPECT_GE(restored[k], v) << "key " << k;
  }
}

/// Two sources into one task: a fast one (kFast records) and one standing for a slow external
/// system, which blocks in Poll() after its first record until the task has taken every fast
/// record (or `patience` passed). Blocked, that source cannot pass on a checkpoint barrier: a
/// task that aligns barriers stops taking the fast input at the first barrier and waits.
class AlignmentProbe {
 public:
  static constexpr int64_t kFast = 20'000;
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    int64_t fast_seen = 0;
    absl::Duration patience;
    bool ran_out_of_patience = false;
  };

  explicit AlignmentProbe(absl::Duration patience) : shared_(std::make_shared<Shared>()) {
    shared_->patience = patience;
  }

  class SlowSource final : public SourceFunction<int64_t> {
   public:
    explicit SlowSource(std::shared_ptr<Shared> s) : s_(std::move(s)) {}
    SourceStatus Poll(SourceOutput<int64_t>& out) override;
    bool IsParallel() const override { return false; }

   private:
    std::shared_ptr<Shared> s_;
    int emitted_ = 0;
  };

  /// Runs the job; true if the slow source ran out of patience (the fast records were held).
  bool RunAndReportStall(bool exactly_once) {
    Pipeline p("alignment-probe");
    auto& c = p.mutable_config();
    c.checkpoint_interval = absl::Milliseconds(20);
    c.checkpoint_exactly_once = exactly_once;
    c.max_source_rate = 20'000;  // the fast input lasts about a second: checkpoints start
    auto fast =
        p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }, {.count = kFast}))
            .Parallelism(1);
    auto slow = p.Source(SlowSource(shared_)).Parallelism(1);
    auto s = shared_;
    fast.Union(slow)
        .Map(
            [s](const int64_t& v) {
              if (v >= 0) {
                std::lock_guard<std::mutex> lock(s->mu);
                if (++s->fast_seen == kFast) s->cv.notify_all();
              }
              return v;
            },
            "Take")
        .Parallelism(1)
        .Sink(DiscardingSink<int64_t>{});
    auto r = ExecuteLocally(p);
    EXPECT_OK(r);
    std::lock_guard<std::mutex> lock(shared_->mu);
    EXPECT_EQ(shared_->fast_seen, kFast) << "every fast record arrives in the end";
    return shared_->ran_out_of_patience;
  }

 private:
  std::shared_ptr<Shared> shared_;
};

SourceStatus AlignmentProbe::SlowSource::Poll(SourceOutput<int64_t>& out) {
  if (emitted_ == 0) {
    out.Collect(-1);
  } else if (emitted_ == 1) {
    std::unique_lock<std::mutex> lock(s_->mu);
    s_->ran_out_of_patience = !s_->cv.wait_for(lock, absl::ToChronoMilliseconds(s_->patience),
                                               [&] { return s_->fast_seen == kFast; });
    out.Collect(-2);
  } else {
    return SourceStatus::kEndOfInput;
  }
  ++emitted_;
  return SourceStatus::kMoreAvailable;
}

// At-least-once does not align: the fast input keeps flowing past a barrier while the other
// input's barrier is held up, so the slow source never waits out its patience.
TEST(CheckpointTest, AtLeastOnceDoesNotHoldAnInputBackAtABarrier) {
  AlignmentProbe probe(absl::Seconds(60));
  EXPECT_FALSE(probe.RunAndReportStall(/*exactly_once=*/false))
      << "the fast input was held back at a barrier";
}

// The contrast, which shows the probe sees alignment: exactly-once holds the fast input at
// the first barrier until the slow source's barrier arrives, after its patience.
TEST(CheckpointTest, ExactlyOnceHoldsAnInputBackUntilTheBarrierOfEveryInput) {
  AlignmentProbe probe(absl::Seconds(2));
  EXPECT_TRUE(probe.RunAndReportStall(/*exactly_once=*/true));
}

// RocksDB's working files live under <local state dir>/<pid>-<nonce>/. A process killed with
// SIGKILL leaves its directory behind and its pid comes back later: the next job removes the
// directories of processes that are gone (before, a job whose pid matched a killed one's
// found "RocksDB directory ... exists already" and failed), and keeps those of live ones.
TEST(CheckpointTest, LocalStateOfProcessesThatAreGoneIsRemovedAndNeverReused) {
  testing::TempDir dir;
  const std::string base = dir.Join("local-state");
  testing::ChildProcess gone({"/bin/true"}, dir.Join("gone.log"));
  const int gone_pid = gone.pid();
  ASSERT_EQ(gone.Wait(), 0);
  testing::ChildProcess alive({"/bin/sleep", "60"}, dir.Join("alive.log"));
  const std::string dead_dir = absl::StrCat(base, "/", gone_pid, "-00000000000000aa");
  const std::string live_dir = absl::StrCat(base, "/", alive.pid(), "-00000000000000bb");
  for (const std::string& d : {dead_dir, live_dir}) {
    std::filesystem::create_directories(d + "/checkpointed-sum-0-sum-1");
    testing::WriteFile(d + "/checkpointed-sum-0-sum-1/CURRENT", "left behind");
  }
  Job job(/*exactly_once=*/true, 200'000);
  job.p.mutable_config().state_backend = StateBackendKind::kRocksDb;
  job.p.mutable_config().local_state_dir = base;
  ASSERT_OK(ExecuteLocally(job.p));
  EXPECT_FALSE(std::filesystem::exists(dead_dir)) << "a dead process's state stays forever";
  EXPECT_TRUE(std::filesystem::exists(live_dir + "/checkpointed-sum-0-sum-1/CURRENT"))
      << "a running process's state was removed";
  int own = 0;
  for (const auto& e : std::filesystem::directory_iterator(base)) {
    own += e.path().filename().string().starts_with(absl::StrCat(::getpid(), "-"));
  }
  EXPECT_EQ(own, 1) << "this process's own directory";
  alive.Signal(SIGKILL);
  alive.Wait();
}

TEST(CheckpointTest, CompletedCheckpointsAreStoredAndRetained) {
  testing::TempDir dir;
  Job job(/*exactly_once=*/true);
  job.p.SetCheckpointDir(dir.path());
  std::mutex mu;
  std::vector<int64_t> completed;
  auto r = ExecuteLocally(
      job.p, {.clock = nullptr, .on_checkpoint_complete = [&](const CompletedCheckpoint& c) {
                std::lock_guard<std::mutex> lock(mu);
                EXPECT_TRUE(c.stored);
                completed.push_back(c.id);
              }});
  ASSERT_OK(r);
  ASSERT_GE(completed.size(), 3u);
  auto storage = CheckpointStorage::Create(dir.path(), "checkpointed-sum");
  ASSERT_OK(storage);
  auto ids = (*storage)->CompletedIds();
  EXPECT_EQ(ids, (std::vector<int64_t>{completed.back(), completed[completed.size() - 2]}))
      << "only the retained (newest two) checkpoints stay on disk";
  std::vector<std::string> entries;
  for (const auto& e : std::filesystem::directory_iterator((*storage)->job_dir())) {
    entries.push_back(e.path().filename().string());
  }
  std::vector<std::string> retained = {absl::StrCat("chk-", completed[completed.size() - 2]),
                                       absl::StrCat("chk-", completed.back()), "shared"};
  std::sort(entries.begin(), entries.end());
  std::sort(retained.begin(), retained.end());
  EXPECT_EQ(entries, retained) << "nothing else grows in the directory";
  auto loaded = LoadCheckpoint((*storage)->job_dir());
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->metadata.checkpoint_id, completed.back());
  ASSERT_EQ(loaded->operators.count("sum"), 1u) << "state is stored under the operator's uid";
  ASSERT_EQ(loaded->operators.at("sum").size(), 2u);
  auto graph = job.p.BuildJobGraph();
  ASSERT_OK(graph);
  auto state = MatchToGraph(*loaded, graph->stream, false);
  ASSERT_OK(state);
  // The final checkpoint of the bounded job holds every record's contribution.
  const auto sums = RestoredSums(job, *state);
  EXPECT_EQ(sums, ExpectedSums(job, *state));
  int64_t total = 0;
  for (const auto& [k, v] : sums) total += v;
  const int64_t n = 3'000'000;
  EXPECT_EQ(total, n * (n - 1) / 2);
}

/// Remembers every key it sees (with a TTL or without): its state grows with each new key.
class RememberKeys final : public KeyedProcessFunction<int64_t, int64_t, int64_t> {
 public:
  explicit RememberKeys(bool ttl) : ttl_(ttl) {}
  void Open(KeyedRuntimeContext<int64_t>& ctx) override {
    ValueStateDescriptor<int64_t> d("seen");
    if (ttl_) d.EnableTimeToLive(StateTtlConfig::Of(absl::Hours(1)));
    seen_ = &ctx.GetState(d);
  }
  void ProcessElement(const int64_t& v, Context&, Collector<int64_t>&) override {
    seen_->Update(v);
  }

 private:
  bool ttl_;
  ValueState<int64_t>* seen_ = nullptr;
};

/// The log of a job whose keyed state gains keys for about three seconds, with a checkpoint
/// every 20 ms (dozens of checkpoints, each with more entries than the one before).
std::string LogOfGrowingState(bool ttl) {
  testing::LogCapture log;
  Pipeline p("growing-state");
  p.EnableCheckpointing(absl::Milliseconds(20), true);
  p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); },
                     {.count = 30'000, .records_per_second = 10'000}))
      .KeyBy([](const int64_t& v) { return v; })
      .Process(RememberKeys(ttl), "RememberKeys")
      .Sink(DiscardingSink<int64_t>());
  auto r = ExecuteLocally(p);
  EXPECT_OK(r);
  EXPECT_GE(r->completed_checkpoints, StateGrowthWatch::kDefaultCheckpoints + 2);
  return log.text();
}

// A keyed state without TTL that grows at checkpoint after checkpoint looks like a leak: the
// task says so in its log, naming operator and state; with a TTL it stays quiet.
TEST(CheckpointTest, AStateGrowingAtEveryCheckpointWithoutTtlIsReportedAsALeak) {
  EXPECT_THAT(LogOfGrowingState(/*ttl=*/false),
              ::testing::HasSubstr("keyed state 'seen' of operator 'RememberKeys' in "));
  EXPECT_THAT(LogOfGrowingState(/*ttl=*/true), ::testing::Not(::testing::HasSubstr("keyed state")));
}

}  // namespace
}  // namespace sluice
