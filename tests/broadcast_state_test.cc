// Broadcast state end to end: a stream of transactions keyed by account connected to a
// broadcast stream of rule versions. Each transaction is judged, at event time, by the rule
// versions in force at its timestamp (broadcast state read on the data side, written on the
// broadcast side), against a model over the whole input; then the same job stopped with a
// savepoint mid-stream and resumed at other parallelisms: the rules it read before the stop
// come back from the savepoint in every new subtask.

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/checkpoint/checkpoint_inspection.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice_broadcast_test {

struct Tx {
  int64_t id = 0;
  int64_t account = 0;
  int64_t amount = 0;
  int64_t ts = 0;
};
SLUICE_SERIALIZABLE(Tx, id, account, amount, ts)

/// Version of rule `rule` in force from `effective`: amounts above `limit` raise an alert.
struct Rule {
  int64_t rule = 0;
  int64_t effective = 0;
  int64_t limit = 0;
};
SLUICE_SERIALIZABLE(Rule, rule, effective, limit)

}  // namespace sluice_broadcast_test

namespace sluice {
namespace {

using sluice_broadcast_test::Rule;
using sluice_broadcast_test::Tx;
using ::testing::UnorderedElementsAreArray;

constexpr int64_t kTransactions = 6000;
constexpr int64_t kRuleVersions = 600;

Tx TxOf(uint64_t i) {
  const auto n = static_cast<int64_t>(i);
  return {n, (n * 7919) % 37, (n * 104729) % 1000, 1000 + n * 10};
}
/// Three rules (n mod 3), each version with a new limit; the versions come in event-time
/// order, spread over the transactions' time.
Rule RuleOf(uint64_t i) {
  const auto n = static_cast<int64_t>(i);
  return {n % 3, 1000 + n * (kTransactions * 10 / kRuleVersions), 500 + (n * 211) % 500};
}

const MapStateDescriptor<int64_t, std::map<int64_t, int64_t>> kRules("rules");

/// Holds each transaction until the watermark of both inputs passed it (so every rule
/// version in force at its time has arrived), then alerts for every rule whose version at
/// that time the amount exceeds, numbering each account's alerts in keyed state.
class JudgeTransactions final
    : public KeyedBroadcastProcessFunction<int64_t, Tx, Rule, std::string> {
 public:
  void Open(KeyedRuntimeContext<int64_t>& ctx) override {
    pending_ = &ctx.GetMapState(MapStateDescriptor<int64_t, Tx>("pending"));
    alerts_ = &ctx.GetState(ValueStateDescriptor<int64_t>("alerts"));
  }
  void ProcessElement(const Tx& tx, ReadOnlyContext& ctx, Collector<std::string>&) override {
    pending_->Put(tx.ts, tx);
    ctx.Timers().RegisterEventTimeTimer(tx.ts);
  }
  void ProcessBroadcastElement(const Rule& rule, Context& ctx, Collector<std::string>&) override {
    BroadcastState<int64_t, std::map<int64_t, int64_t>>& rules = ctx.GetBroadcastState(kRules);
    std::map<int64_t, int64_t> versions;
    if (const auto* known = rules.Get(rule.rule)) versions = *known;
    versions[rule.effective] = rule.limit;
    rules.Put(rule.rule, std::move(versions));
  }
  void OnTimer(Timestamp ts, OnTimerContext& ctx, Collector<std::string>& out) override {
    std::optional<Tx> tx = pending_->Get(ts);
    if (!tx) return;
    pending_->Remove(ts);
    for (const auto& [rule, versions] : ctx.GetBroadcastState(kRules).Entries()) {
      auto in_force = versions.upper_bound(ts);
      if (in_force == versions.begin()) continue;
      if (tx->amount > std::prev(in_force)->second) {
        const int64_t n = alerts_->Value().value_or(0) + 1;
        alerts_->Update(n);
        out.Collect(absl::StrCat(tx->id, " rule ", rule, " alert #", n, " of ", tx->account));
      }
    }
  }

 private:
  MapState<int64_t, Tx>* pending_ = nullptr;
  ValueState<int64_t>* alerts_ = nullptr;
};

/// The model: the same judgement over the whole input, in event-time order per account.
std::vector<std::string> ExpectedAlerts() {
  std::map<int64_t, std::map<int64_t, int64_t>> versions;
  for (uint64_t i = 0; i < kRuleVersions; ++i) {
    const Rule r = RuleOf(i);
    versions[r.rule][r.effective] = r.limit;
  }
  std::map<int64_t, int64_t> alerts;
  std::vector<std::string> out;
  for (uint64_t i = 0; i < kTransactions; ++i) {
    const Tx tx = TxOf(i);
    for (const auto& [rule, by_time] : versions) {
      auto in_force = by_time.upper_bound(tx.ts);
      if (in_force == by_time.begin()) continue;
      if (tx.amount > std::prev(in_force)->second) {
        out.push_back(absl::StrCat(tx.id, " rule ", rule, " alert #", ++alerts[tx.account], " of ",
                                   tx.account));
      }
    }
  }
  return out;
}

Pipeline AlertsJob(const std::string& out, int parallelism, StateBackendKind backend, double rate) {
  Pipeline p("alerts");
  p.SetParallelism(parallelism);
  p.EnableCheckpointing(absl::Milliseconds(30));
  p.mutable_config().state_backend = backend;
  p.mutable_config().max_source_rate = rate;
  auto txs = p.Source(Generator(TxOf, {.count = kTransactions}))
                 .Parallelism(1)
                 .Uid("transactions")
                 .AssignTimestampsAndWatermarks(
                     WatermarkStrategy<Tx>::ForBoundedOutOfOrderness(absl::Milliseconds(50))
                         .WithTimestampAssigner(&Tx::ts))
                 .Uid("tx-time")
                 .Parallelism(1);
  auto rules = p.Source(Generator(RuleOf, {.count = kRuleVersions}))
                   .Parallelism(1)
                   .Uid("rules")
                   .AssignTimestampsAndWatermarks(
                       WatermarkStrategy<Rule>::ForMonotonousTimestamps().WithTimestampAssigner(
                           &Rule::effective))
                   .Uid("rule-time")
                   .Parallelism(1);
  txs.KeyBy(&Tx::account)
      .Connect(rules.Broadcast(kRules))
      .Process(JudgeTransactions{})
      .Uid("judge")
      .Sink(TextFileSink<std::string>(out))
      .Uid("sink");
  return p;
}

class BroadcastStateTest : public ::testing::TestWithParam<StateBackendKind> {};

TEST_P(BroadcastStateTest, RulesReadAtEventTimeMatchTheModel) {
  for (int parallelism : {1, 3}) {
    SCOPED_TRACE(parallelism);
    testing::TempDir dir;
    ASSERT_OK(ExecuteLocally(AlertsJob(dir.Join("out"), parallelism, GetParam(), 0)));
    EXPECT_THAT(testing::ReadPartFileLines(dir.Join("out")),
                UnorderedElementsAreArray(ExpectedAlerts()));
  }
}

TEST_P(BroadcastStateTest, BroadcastStateComesBackAtAnyParallelism) {
  for (auto [before, after] : {std::pair{2, 3}, std::pair{3, 1}}) {
    SCOPED_TRACE(absl::StrCat(before, " -> ", after));
    testing::TempDir dir;
    auto graph = AlertsJob(dir.Join("first"), before, GetParam(), 4000).BuildJobGraph();
    ASSERT_OK(graph);
    // Stopped after a few checkpoints, while rules and transactions are still coming (both
    // throttled): the rules read so far come back from the savepoint, the rest from the
    // restored rules source.
    auto savepoint = testing::StopWithSavepointAfter(*graph, dir.Join("sp"), 3);
    ASSERT_OK(savepoint);
    const std::vector<std::string> first = testing::ReadPartFileLines(dir.Join("first"));
    ASSERT_LT(first.size(), ExpectedAlerts().size()) << "stopped before the end of its input";
    // `sluice savepoint inspect` lists the broadcast state with its entries (one per rule
    // read so far, at most the three rules).
    auto inspection = InspectCheckpoint(*savepoint, 0);
    ASSERT_OK(inspection);
    bool listed = false;
    for (const OperatorInspection& op : inspection->operators) {
      for (const StateInspection& state : op.states) {
        if (op.uid != "judge" || state.name != "rules") continue;
        listed = true;
        EXPECT_EQ(state.kind, "broadcast-map");
        EXPECT_EQ(state.key_type, "i64");
        EXPECT_GE(state.keys, 1);
        EXPECT_LE(state.keys, 3);
      }
    }
    EXPECT_TRUE(listed) << "no broadcast state 'rules' in the savepoint";

    Pipeline resumed = AlertsJob(dir.Join("second"), after, GetParam(), 0);
    resumed.mutable_config().restore_from = *savepoint;
    ASSERT_OK(ExecuteLocally(resumed));
    std::vector<std::string> all = first;
    for (const std::string& line : testing::ReadPartFileLines(dir.Join("second"))) {
      all.push_back(line);
    }
    // Exactly once across the stop, each alert judged by the rules read before it.
    EXPECT_THAT(all, UnorderedElementsAreArray(ExpectedAlerts()));
  }
}

TEST_P(BroadcastStateTest, ExactlyOnceUnderTheChaosOption) {
  // Up to three simulated crashes (any task, any moment), each restart from the latest checkpoint:
  // the broadcast state, the transactions waiting in keyed state and the alert counts come
  // back, and the exactly-once part files hold every alert once.
  for (int parallelism : {2, 3}) {
    const uint64_t seed = std::random_device()();
    SCOPED_TRACE(absl::StrCat("parallelism ", parallelism, ", chaos seed ", seed));
    testing::TempDir dir;
    Pipeline p = AlertsJob(dir.Join("out"), parallelism, GetParam(), 0);
    testing::CrashThreeTimes(p.mutable_config(), dir.Join("ck"), seed);
    auto result = ExecuteLocally(p);
    ASSERT_OK(result);
    // The first attempt's victim (any task, drawn from the seed) reaches its records: every
    // task sees more than the chaos option's 450 at most.
    EXPECT_GE(result->restarts, 1);
    EXPECT_THAT(testing::ReadPartFileLines(dir.Join("out")),
                UnorderedElementsAreArray(ExpectedAlerts()));
  }
}

/// Emits 0..count-1 once `*ready` reached `wait_for` (so that every record meets the whole
/// broadcast state); gives up after 20 s.
class WaitingNumbers final : public SourceFunction<int64_t> {
 public:
  WaitingNumbers(int64_t count, std::shared_ptr<std::atomic<int>> ready, int wait_for)
      : count_(count), ready_(std::move(ready)), wait_for_(wait_for) {}
  SourceStatus Poll(SourceOutput<int64_t>& out) override {
    if (deadline_ == absl::InfinitePast()) deadline_ = absl::Now() + absl::Seconds(20);
    if (ready_->load() < wait_for_ && absl::Now() < deadline_) {
      absl::SleepFor(absl::Milliseconds(1));
      return SourceStatus::kNothingAvailable;
    }
    for (; next_ < count_ && out.collected() < out.batch_hint(); ++next_) out.Collect(next_);
    return next_ < count_ ? SourceStatus::kMoreAvailable : SourceStatus::kEndOfInput;
  }
  bool IsParallel() const override { return false; }

 private:
  int64_t count_;
  std::shared_ptr<std::atomic<int>> ready_;
  int wait_for_;
  int64_t next_ = 0;
  absl::Time deadline_ = absl::InfinitePast();
};

TEST(BroadcastProcessTest, TheDataSideReadsWhatTheBroadcastSideWrote) {
  // Divisors arrive on the broadcast side; each number is tagged with the divisors that
  // divide it. The numbers wait until every subtask stored every divisor.
  const MapStateDescriptor<int64_t, std::string> divisors("divisors");
  struct Tag final : BroadcastProcessFunction<int64_t, int64_t, std::string> {
    MapStateDescriptor<int64_t, std::string> divisors{"divisors"};
    std::shared_ptr<std::atomic<int>> stored;
    void ProcessElement(const int64_t& n, ReadOnlyContext& ctx,
                        Collector<std::string>& out) override {
      std::string tags;
      for (const auto& [d, name] : ctx.GetBroadcastState(divisors).Entries()) {
        if (n % d == 0) absl::StrAppend(&tags, " ", name);
      }
      out.Collect(absl::StrCat(n, ":", tags));
    }
    void ProcessBroadcastElement(const int64_t& d, Context& ctx, Collector<std::string>&) override {
      ctx.GetBroadcastState(divisors).Put(d, absl::StrCat("by", d));
      ++*stored;
    }
  };
  for (int parallelism : {1, 3}) {
    SCOPED_TRACE(parallelism);
    auto stored = std::make_shared<std::atomic<int>>(0);
    Pipeline p("tag-divisors");
    p.SetParallelism(parallelism);
    auto numbers = p.Source(WaitingNumbers(3000, stored, 4 * parallelism));
    auto rules = p.Source(CollectionSource<int64_t>({2, 3, 5, 7}));
    auto out = std::make_shared<CollectedRecords<std::string>>();
    Tag tag;
    tag.stored = stored;
    numbers.Rebalance()
        .Connect(rules.Broadcast(divisors))
        .Process(tag)
        .Sink(CollectSink<std::string>(out));
    ASSERT_OK(ExecuteLocally(p).status());
    std::vector<std::string> expected;
    for (int64_t n = 0; n < 3000; ++n) {
      std::string tags;
      for (int64_t d : {2, 3, 5, 7}) {
        if (n % d == 0) absl::StrAppend(&tags, " by", d);
      }
      expected.push_back(absl::StrCat(n, ":", tags));
    }
    EXPECT_THAT(out->Values(), UnorderedElementsAreArray(expected));
  }
}

TEST(BroadcastProcessTest, AnUndeclaredBroadcastStateIsAnError) {
  struct Reads final : BroadcastProcessFunction<int64_t, int64_t, int64_t> {
    void ProcessElement(const int64_t&, ReadOnlyContext&, Collector<int64_t>&) override {}
    void ProcessBroadcastElement(const int64_t& v, Context& ctx, Collector<int64_t>&) override {
      ctx.GetBroadcastState(MapStateDescriptor<int64_t, int64_t>("undeclared")).Put(v, v);
    }
  };
  Pipeline p("undeclared");
  auto numbers = p.Source(CollectionSource<int64_t>({1, 2}));
  auto rules = p.Source(CollectionSource<int64_t>({1}));
  numbers.Connect(rules.Broadcast(MapStateDescriptor<int64_t, int64_t>("declared")))
      .Process(Reads{})
      .Print();
  auto result = ExecuteLocally(p);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::HasSubstr("broadcast state 'undeclared' was not declared"));
}

/// examples/fraud_rules on its bundled data, against a model of its rules written here.
TEST(FraudRulesExampleTest, AlertsMatchTheModel) {
  const std::string data = std::string(SLUICE_SOURCE_DIR) + "/examples/data/";
  struct ModelRule {
    std::string kind;
    int64_t limit = 0;
  };
  std::map<int64_t, std::map<int64_t, ModelRule>> rules;
  const std::vector<std::string> rule_lines =
      absl::StrSplit(testing::ReadFile(data + "rules.csv"), '\n');
  for (const std::string& line : rule_lines) {
    if (line.empty()) continue;
    std::vector<std::string> f = absl::StrSplit(line, ',');
    rules[std::stoll(f[0])][std::stoll(f[1])] = {f[2], std::stoll(f[3])};
  }
  std::map<std::string, std::vector<int64_t>> times;  // per account, all so far
  std::vector<std::string> expected;
  const std::vector<std::string> tx_lines =
      absl::StrSplit(testing::ReadFile(data + "transactions.csv"), '\n');
  for (const std::string& line : tx_lines) {
    if (line.empty()) continue;
    std::vector<std::string> f = absl::StrSplit(line, ',');
    const int64_t amount = std::stoll(f[2]), ts = std::stoll(f[3]);
    std::vector<int64_t>& seen = times[f[1]];
    seen.push_back(ts);
    const auto last_minute =
        std::count_if(seen.begin(), seen.end(), [ts](int64_t t) { return t > ts - 60'000; });
    for (const auto& [id, versions] : rules) {
      auto next = versions.upper_bound(ts);
      if (next == versions.begin()) continue;
      const ModelRule& rule = std::prev(next)->second;
      if (rule.limit <= 0) continue;
      if (rule.kind == "max-amount" ? amount > rule.limit : last_minute > rule.limit) {
        expected.push_back(absl::StrCat(f[0], ",", f[1], ",", id, ",", rule.kind));
      }
    }
  }
  ASSERT_GT(expected.size(), 50u);
  testing::TempDir dir;
  for (int parallelism : {1, 3}) {
    const std::string out = dir.Join(absl::StrCat("alerts-", parallelism));
    const testing::CommandResult run = testing::RunCommand(
        absl::StrCat(testing::BuildDir(), "/examples/fraud_rules --transactions=", data,
                     "transactions.csv --rules=", data, "rules.csv --output=", out,
                     " --parallelism=", parallelism));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_THAT(testing::ReadPartFileLines(out), UnorderedElementsAreArray(expected));
  }
}

TEST(FraudRulesExampleTest, AMalformedLineFailsNamingItsFileAndLine) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("tx.csv"), "1,acct-1,100,1000\n2,acct-2,lots,1001\n");
  testing::WriteFile(dir.Join("rules.csv"), "1,0,max-amount,50\n");
  const testing::CommandResult run = testing::RunCommand(
      absl::StrCat(testing::BuildDir(), "/examples/fraud_rules --transactions=", dir.Join("tx.csv"),
                   " --rules=", dir.Join("rules.csv"), " --output=", dir.Join("out"), " 2>&1"));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.output,
              ::testing::HasSubstr(dir.Join("tx.csv") + ":2: expected "
                                                        "id,account,amount,timestamp_ms but got "
                                                        "'2,acct-2,lots,1001'"));
  testing::WriteFile(dir.Join("tx.csv"), "1,acct-1,100,1000\n");
  testing::WriteFile(dir.Join("rules.csv"), "1,0,min-amount,50\n");  // no such kind
  const testing::CommandResult bad_rule = testing::RunCommand(
      absl::StrCat(testing::BuildDir(), "/examples/fraud_rules --transactions=", dir.Join("tx.csv"),
                   " --rules=", dir.Join("rules.csv"), " --output=", dir.Join("out2"), " 2>&1"));
  EXPECT_NE(bad_rule.exit_code, 0);
  EXPECT_THAT(bad_rule.output, ::testing::HasSubstr(":1: expected rule_id,effective_ms"));
}

TEST(BroadcastProcessTest, TwoBroadcastStatesWithOneNameAreRefused) {
  Pipeline p("twice");
  auto rules = p.Source(CollectionSource<int64_t>({1}));
  EXPECT_THROW(rules.Broadcast(MapStateDescriptor<int64_t, int64_t>("same"),
                               MapStateDescriptor<int64_t, std::string>("same")),
               std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Backends, BroadcastStateTest,
                         ::testing::Values(StateBackendKind::kHeap, StateBackendKind::kRocksDb),
                         [](const auto& info) {
                           return info.param == StateBackendKind::kHeap ? "Heap" : "RocksDb";
                         });

}  // namespace
}  // namespace sluice
