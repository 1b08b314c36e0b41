// fraud_rules --transactions=CSV --rules=CSV [--output=DIR] [--parallelism=N]
//
// Broadcast state: transactions keyed by account, connected to a stream of rules that every
// subtask receives. Transactions are `id,account,amount,timestamp_ms` lines, rules
// `rule_id,effective_ms,kind,limit` lines (both in time order), where a kind is
//   max-amount  a transaction above `limit` is suspicious;
//   velocity    more than `limit` transactions of one account within 60 s are.
// A rule line replaces the rule with the same id from its effective time on (a limit of 0
// switches it off). Each transaction is judged by the rules in force at its timestamp, once
// the watermark of both inputs passed it, so the result does not depend on how the two
// files' reading interleaves. One `tx_id,account,rule_id,kind` line per alert.

#include <deque>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sluice/sluice.h"

namespace example {

struct Transaction {
  int64_t id = 0;
  std::string account;
  int64_t amount = 0;
  int64_t timestamp_ms = 0;
};
SLUICE_SERIALIZABLE(Transaction, id, account, amount, timestamp_ms)

struct Rule {
  int64_t rule_id = 0;
  int64_t effective_ms = 0;
  std::string kind;
  int64_t limit = 0;
};
SLUICE_SERIALIZABLE(Rule, rule_id, effective_ms, kind, limit)

/// Reads `T` from a CSV file in time order: each line's time is also the watermark. A
/// malformed line fails the job naming the file and line.
template <typename T>
class CsvSource final : public sluice::SourceFunction<T> {
 public:
  using Parse = bool (*)(const std::vector<std::string>&, T*);
  CsvSource(std::string path, Parse parse, int64_t T::*time, const char* format)
      : path_(std::move(path)), parse_(parse), time_(time), format_(format) {}
  CsvSource(const CsvSource& o) : CsvSource(o.path_, o.parse_, o.time_, o.format_) {}

  void Open(sluice::RuntimeContext& ctx) override {
    lines_ = std::make_unique<sluice::TextFileSource>(path_);
    lines_->Open(ctx);
  }
  sluice::SourceStatus Poll(sluice::SourceOutput<T>& out) override {
    sluice::Batch<std::string> batch;
    sluice::SourceOutput<std::string> line_out(&batch, out.batch_hint(), &IgnoreWatermark, nullptr);
    sluice::SourceStatus status = lines_->Poll(line_out);
    for (auto& r : batch) {
      ++line_number_;
      T value;
      if (!parse_(absl::StrSplit(r.value, ','), &value)) {
        throw std::runtime_error(absl::StrCat(path_, ":", line_number_, ": expected ", format_,
                                              " but got '", r.value, "'"));
      }
      const int64_t ts = value.*time_;
      out.CollectWithTimestamp(std::move(value), ts);
      out.EmitWatermark(ts - 1);
    }
    return status;
  }
  bool IsParallel() const override { return false; }

 private:
  static void IgnoreWatermark(void*, sluice::Timestamp) {}
  std::string path_;
  Parse parse_;
  int64_t T::*time_;
  const char* format_;
  std::unique_ptr<sluice::TextFileSource> lines_;
  int64_t line_number_ = 0;
};

bool ParseTransaction(const std::vector<std::string>& f, Transaction* t) {
  return f.size() == 4 && absl::SimpleAtoi(f[0], &t->id) && !f[1].empty() &&
         absl::SimpleAtoi(f[2], &t->amount) && absl::SimpleAtoi(f[3], &t->timestamp_ms) &&
         (t->account = f[1], true);
}
bool ParseRule(const std::vector<std::string>& f, Rule* r) {
  return f.size() == 4 && absl::SimpleAtoi(f[0], &r->rule_id) &&
         absl::SimpleAtoi(f[1], &r->effective_ms) && (f[2] == "max-amount" || f[2] == "velocity") &&
         absl::SimpleAtoi(f[3], &r->limit) && (r->kind = f[2], true);
}

/// Every version of every rule, by rule id, then by the time it takes effect.
const sluice::MapStateDescriptor<int64_t, std::map<int64_t, Rule>> kRules("rules");

class JudgeTransactions final
    : public sluice::KeyedBroadcastProcessFunction<std::string, Transaction, Rule, std::string> {
 public:
  void Open(sluice::KeyedRuntimeContext<std::string>& ctx) override {
    waiting_ =
        &ctx.GetMapState(sluice::MapStateDescriptor<int64_t, std::vector<Transaction>>("waiting"));
    recent_ = &ctx.GetListState(sluice::ListStateDescriptor<int64_t>("recent"));
  }
  // Held until the watermark passes it: by then every rule in force at its time has arrived.
  void ProcessElement(const Transaction& t, ReadOnlyContext& ctx,
                      sluice::Collector<std::string>&) override {
    std::vector<Transaction> at =
        waiting_->Get(t.timestamp_ms).value_or(std::vector<Transaction>{});
    at.push_back(t);
    waiting_->Put(t.timestamp_ms, std::move(at));
    ctx.Timers().RegisterEventTimeTimer(t.timestamp_ms);
  }
  void ProcessBroadcastElement(const Rule& rule, Context& ctx,
                               sluice::Collector<std::string>&) override {
    auto& rules = ctx.GetBroadcastState(kRules);
    std::map<int64_t, Rule> versions;
    if (const auto* known = rules.Get(rule.rule_id)) versions = *known;
    versions[rule.effective_ms] = rule;
    rules.Put(rule.rule_id, std::move(versions));
  }
  void OnTimer(sluice::Timestamp ts, OnTimerContext& ctx,
               sluice::Collector<std::string>& out) override {
    std::optional<std::vector<Transaction>> due = waiting_->Get(ts);
    if (!due) return;
    waiting_->Remove(ts);
    // The account's transactions of the last 60 s, this batch included.
    std::deque<int64_t> recent;
    for (int64_t time : recent_->Get()) {
      if (time > ts - 60'000) recent.push_back(time);
    }
    for (const Transaction& t : *due) {
      recent.push_back(t.timestamp_ms);
      for (const auto& [id, versions] : ctx.GetBroadcastState(kRules).Entries()) {
        auto next = versions.upper_bound(ts);
        if (next == versions.begin()) continue;  // not in force yet
        const Rule& rule = std::prev(next)->second;
        if (rule.limit <= 0) continue;  // switched off
        const bool hit = rule.kind == "max-amount"
                             ? t.amount > rule.limit
                             : static_cast<int64_t>(recent.size()) > rule.limit;
        if (hit) out.Collect(absl::StrCat(t.id, ",", t.account, ",", id, ",", rule.kind));
      }
    }
    recent_->Update(std::vector<int64_t>(recent.begin(), recent.end()));
  }

 private:
  sluice::MapState<int64_t, std::vector<Transaction>>* waiting_ = nullptr;
  sluice::ListState<int64_t>* recent_ = nullptr;
};

void Build(sluice::Pipeline& p) {
  const std::string transactions = p.Args().GetString("transactions");
  const std::string rules = p.Args().GetString("rules");
  const std::string output = p.Args().GetString("output", "");
  p.SetParallelism(
      static_cast<int>(p.Args().GetInt("parallelism", p.config().default_parallelism)));

  auto txs =
      p.Source(CsvSource<Transaction>(transactions, ParseTransaction, &Transaction::timestamp_ms,
                                      "id,account,amount,timestamp_ms"),
               "ReadTransactions")
          .Uid("transactions");
  auto rule_stream = p.Source(CsvSource<Rule>(rules, ParseRule, &Rule::effective_ms,
                                              "rule_id,effective_ms,max-amount|velocity,limit"),
                              "ReadRules")
                         .Uid("rules");
  auto alerts = txs.KeyBy(&Transaction::account)
                    .Connect(rule_stream.Broadcast(kRules))
                    .Process(JudgeTransactions{}, "JudgeTransactions")
                    .Uid("judge");
  if (output.empty()) {
    alerts.Print();
  } else {
    alerts.Sink(sluice::TextFileSink<std::string>(output), "WriteAlerts").Uid("alerts");
  }
}

}  // namespace example

SLUICE_JOB(example::Build)
