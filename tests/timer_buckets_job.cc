// timer_buckets --inputs=FILE[,FILE...] --bucket=DUR --out-of-orderness=DUR --output=DIR
//               --side-output=DIR [--parallelism=N] [--rebalance-parallelism=N]
//
// The failure harness's second job (chaos_harness_test): a keyed process function that
// keeps a tumbling "bucket" of each key by hand, in every kind of keyed state and with event
// timers, over several sources joined by a union and a rebalance edge. Each file is one
// source of `key,timestamp_ms,value` lines with its own bounded out-of-orderness watermarks;
// the union goes round-robin (--rebalance-parallelism subtasks, 0: no rebalance edge) to a
// parse step, then by key to the function (--parallelism subtasks). When the watermark passes
// a bucket's end, the function writes one line
//   key,bucket_start,count,sum,min,max,digest,buckets_fired,sum_fired,max_abs_fired
// where digest folds the bucket's sorted values and the last three run over the key's fired
// buckets in order; buckets with a negative sum also go, as `key,bucket_start`, to
// --side-output. State: the open buckets' partial sums (map state), their values (list
// state), the count of fired buckets (value state), the running sum (reducing state) and the
// largest |value| (aggregating state). Each record also sets a reminder timer that the
// bucket's firing deletes: a reminder that fires writes `REMINDER,...`, which no correct run
// does. Output is exactly-once part files; the result does not depend on thread timing as
// long as no record is later than the out-of-orderness bound.

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "sluice/sluice.h"

namespace timer_buckets {

struct Event {
  std::string key;
  int64_t ts = 0;
  int64_t value = 0;
};
SLUICE_SERIALIZABLE(Event, key, ts, value)

struct Partial {
  int64_t count = 0;
  int64_t sum = 0;
  int64_t min = 0;
  int64_t max = 0;
};
SLUICE_SERIALIZABLE(Partial, count, sum, min, max)

struct Entry {
  int64_t bucket = 0;
  int64_t value = 0;
};
SLUICE_SERIALIZABLE(Entry, bucket, value)

class MaxAbs final : public sluice::AggregateFunction<int64_t, int64_t, int64_t> {
 public:
  int64_t CreateAccumulator() const override { return 0; }
  void Add(const int64_t& v, int64_t& acc) const override { acc = std::max(acc, v < 0 ? -v : v); }
  int64_t GetResult(const int64_t& acc) const override { return acc; }
  int64_t Merge(int64_t a, const int64_t& b) const override { return std::max(a, b); }
};

/// The bucket digest (the test's model computes the same): a polynomial over the sorted values.
uint64_t Digest(std::vector<int64_t> values) {
  std::sort(values.begin(), values.end());
  uint64_t h = 1469598103934665603ULL;
  for (int64_t v : values) h = h * 1099511628211ULL + static_cast<uint64_t>(v);
  return h;
}

class Buckets final : public sluice::KeyedProcessFunction<std::string, Event, std::string> {
 public:
  Buckets(int64_t bucket_ms, sluice::OutputTag<std::string> negative)
      : bucket_ms_(bucket_ms), negative_(std::move(negative)) {}

  void Open(sluice::KeyedRuntimeContext<std::string>& ctx) override {
    partials_ = &ctx.GetMapState(sluice::MapStateDescriptor<int64_t, Partial>("partials"));
    values_ = &ctx.GetListState(sluice::ListStateDescriptor<Entry>("values"));
    fired_ = &ctx.GetState(sluice::ValueStateDescriptor<int64_t>("fired"));
    sum_fired_ = &ctx.GetReducingState(sluice::ReducingStateDescriptor<int64_t>(
        "sum-fired", [](const int64_t& a, const int64_t& b) { return a + b; }));
    max_abs_ = &ctx.GetAggregatingState(
        sluice::AggregatingStateDescriptor<int64_t, int64_t, int64_t>("max-abs", MaxAbs{}));
  }

  void ProcessElement(const Event& e, Context& ctx, sluice::Collector<std::string>&) override {
    const int64_t bucket = Start(e.ts);
    Partial p = partials_->Get(bucket).value_or(Partial{0, 0, e.value, e.value});
    p.count++;
    p.sum += e.value;
    p.min = std::min(p.min, e.value);
    p.max = std::max(p.max, e.value);
    partials_->Put(bucket, p);
    values_->Add(Entry{bucket, e.value});
    ctx.Timers().RegisterEventTimeTimer(bucket + bucket_ms_ - 1);
    ctx.Timers().RegisterEventTimeTimer(Reminder(bucket));
  }

  void OnTimer(sluice::Timestamp t, OnTimerContext& ctx,
               sluice::Collector<std::string>& out) override {
    const bool reminder = ((t + 1) % bucket_ms_ + bucket_ms_) % bucket_ms_ != 0;
    const int64_t bucket = reminder ? 0 : t + 1 - bucket_ms_;
    const std::optional<Partial> p = reminder ? std::nullopt : partials_->Get(bucket);
    if (!p) {
      out.Collect(absl::StrCat("REMINDER,", ctx.CurrentKey(), ",", t));
      return;
    }
    ctx.Timers().DeleteEventTimeTimer(Reminder(bucket));
    std::vector<int64_t> mine;
    std::vector<Entry> rest;
    for (const Entry& entry : values_->Get()) {
      if (entry.bucket == bucket) {
        mine.push_back(entry.value);
      } else {
        rest.push_back(entry);
      }
    }
    values_->Update(std::move(rest));
    partials_->Remove(bucket);
    for (int64_t v : mine) max_abs_->Add(v);
    sum_fired_->Add(p->sum);
    const int64_t fired = fired_->ValueOr(0) + 1;
    fired_->Update(fired);
    out.Collect(absl::StrCat(ctx.CurrentKey(), ",", bucket, ",", p->count, ",", p->sum, ",", p->min,
                             ",", p->max, ",", Digest(std::move(mine)), ",", fired, ",",
                             *sum_fired_->Get(), ",", *max_abs_->Get()));
    if (p->sum < 0) ctx.Output(negative_, absl::StrCat(ctx.CurrentKey(), ",", bucket));
  }

 private:
  int64_t Start(int64_t ts) const {
    const int64_t r = ts % bucket_ms_;
    return r < 0 ? ts - (r + bucket_ms_) : ts - r;
  }
  // Half a bucket after the firing (never a firing time itself): the firing deletes it first.
  int64_t Reminder(int64_t bucket) const { return bucket + bucket_ms_ + bucket_ms_ / 2; }

  int64_t bucket_ms_;
  sluice::OutputTag<std::string> negative_;
  sluice::MapState<int64_t, Partial>* partials_ = nullptr;
  sluice::ListState<Entry>* values_ = nullptr;
  sluice::ValueState<int64_t>* fired_ = nullptr;
  sluice::ReducingState<int64_t>* sum_fired_ = nullptr;
  sluice::AggregatingState<int64_t, int64_t>* max_abs_ = nullptr;
};

Event Parse(const std::string& line) {
  std::vector<std::string> f = absl::StrSplit(line, ',');
  Event e;
  if (f.size() != 3 || !absl::SimpleAtoi(f[1], &e.ts) || !absl::SimpleAtoi(f[2], &e.value)) {
    throw std::runtime_error(absl::StrCat("expected key,timestamp_ms,value but got '", line, "'"));
  }
  e.key = std::move(f[0]);
  return e;
}

void Build(sluice::Pipeline& p) {
  const std::vector<std::string> inputs = absl::StrSplit(p.Args().GetString("inputs"), ',');
  const absl::Duration bucket = p.Args().GetDuration("bucket");
  const absl::Duration bound = p.Args().GetDuration("out-of-orderness");
  const int parallelism = static_cast<int>(p.Args().GetInt("parallelism", 1));
  const int rebalance = static_cast<int>(p.Args().GetInt("rebalance-parallelism", 0));
  if (bucket < absl::Milliseconds(3) || parallelism < 1 || rebalance < 0) {
    throw sluice::JobArgumentError("--bucket must be >= 3ms, --parallelism >= 1");
  }

  std::vector<sluice::DataStream<Event>> sources;
  for (size_t i = 0; i < inputs.size(); ++i) {
    sources.push_back(p.Source(sluice::TextFileSource(inputs[i]), absl::StrCat("Read", i))
                          .Uid(absl::StrCat("read-", i))
                          .Parallelism(1)
                          .Map(Parse, absl::StrCat("Parse", i))
                          .Parallelism(1)
                          .AssignTimestampsAndWatermarks(
                              sluice::WatermarkStrategy<Event>::ForBoundedOutOfOrderness(bound)
                                  .WithTimestampAssigner(&Event::ts)
                                  .WithEmitInterval(absl::ZeroDuration()))
                          .Uid(absl::StrCat("watermarks-", i))
                          .Parallelism(1));
  }
  sluice::DataStream<Event> events = sources[0];
  for (size_t i = 1; i < sources.size(); ++i) events = events.Union(sources[i]);
  if (rebalance > 0) {
    // A stateless hop over a round-robin edge: records of one key reach the function through
    // several channels in an order that depends on timing.
    events = events.Rebalance()
                 .Map([](const Event& e) { return e; }, "Hop")
                 .Uid("hop")
                 .Parallelism(rebalance);
  }
  sluice::OutputTag<std::string> negative("negative-buckets");
  auto lines = events.KeyBy(&Event::key)
                   .Process(Buckets(absl::ToInt64Milliseconds(bucket), negative), "Buckets")
                   .Uid("buckets")
                   .Parallelism(parallelism);
  lines.GetSideOutput(negative)
      .Sink(sluice::TextFileSink<std::string>(p.Args().GetString("side-output")), "WriteNegative")
      .Parallelism(parallelism);
  lines.Sink(sluice::TextFileSink<std::string>(p.Args().GetString("output")), "WriteBuckets")
      .Parallelism(parallelism);
}

}  // namespace timer_buckets

SLUICE_JOB(timer_buckets::Build)
