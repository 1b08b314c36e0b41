// joins --inputs=LEFT,RIGHT --out-of-orderness=DUR --interval=DUR --window=DUR --output=DIR
//       --side-output=DIR [--parallelism=N]
//
// The failure harness's join job (chaos_harness_test): two sources of `key,timestamp_ms,value`
// lines, each with its own bounded out-of-orderness watermarks, joined two ways:
// - an interval join by key, a left record at t with the right records at [t - interval,
//   t + interval]: one `key,left_ts,left_value,right_ts,right_value` line per pair (--output);
// - a co-group by key in tumbling event-time windows of --window: one
//   `key,window_start,left_count,right_count,left_sum,right_sum` line per key and window
//   (--side-output).
// Output is exactly-once part files; the result does not depend on thread timing as long as
// no record is later than the out-of-orderness bound (then no record is late for the joins).

#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "sluice/sluice.h"

namespace joins_job {

struct Event {
  std::string key;
  int64_t ts = 0;
  int64_t value = 0;
};
SLUICE_SERIALIZABLE(Event, key, ts, value)

Event Parse(const std::string& line) {
  std::vector<std::string> f = absl::StrSplit(line, ',');
  Event e;
  if (f.size() != 3 || !absl::SimpleAtoi(f[1], &e.ts) || !absl::SimpleAtoi(f[2], &e.value)) {
    throw std::runtime_error(absl::StrCat("expected key,timestamp_ms,value but got '", line, "'"));
  }
  e.key = std::move(f[0]);
  return e;
}

class Pair final : public sluice::ProcessJoinFunction<Event, Event, std::string> {
 public:
  void ProcessElement(const Event& l, const Event& r, Context&,
                      sluice::Collector<std::string>& out) override {
    out.Collect(absl::StrCat(l.key, ",", l.ts, ",", l.value, ",", r.ts, ",", r.value));
  }
};

class CountBoth final : public sluice::CoGroupFunction<Event, Event, std::string> {
 public:
  explicit CountBoth(int64_t window_ms) : window_ms_(window_ms) {}
  void CoGroup(const std::vector<Event>& left, const std::vector<Event>& right,
               sluice::Collector<std::string>& out) override {
    const Event& any = left.empty() ? right.front() : left.front();
    int64_t left_sum = 0, right_sum = 0;
    for (const Event& e : left) left_sum += e.value;
    for (const Event& e : right) right_sum += e.value;
    const int64_t start = any.ts - ((any.ts % window_ms_) + window_ms_) % window_ms_;
    out.Collect(absl::StrCat(any.key, ",", start, ",", left.size(), ",", right.size(), ",",
                             left_sum, ",", right_sum));
  }

 private:
  int64_t window_ms_;
};

void Build(sluice::Pipeline& p) {
  const std::vector<std::string> inputs = absl::StrSplit(p.Args().GetString("inputs"), ',');
  const absl::Duration bound = p.Args().GetDuration("out-of-orderness");
  const absl::Duration interval = p.Args().GetDuration("interval");
  const absl::Duration window = p.Args().GetDuration("window");
  const int parallelism = static_cast<int>(p.Args().GetInt("parallelism", 1));
  if (inputs.size() != 2 || parallelism < 1 || window < absl::Milliseconds(1)) {
    throw sluice::JobArgumentError("--inputs=LEFT,RIGHT, --parallelism >= 1, --window >= 1ms");
  }
  auto side = [&](int i) {
    return p.Source(sluice::TextFileSource(inputs[i]), absl::StrCat("Read", i))
        .Uid(absl::StrCat("read-", i))
        .Parallelism(1)
        .Map(Parse, absl::StrCat("Parse", i))
        .Parallelism(1)
        .AssignTimestampsAndWatermarks(
            sluice::WatermarkStrategy<Event>::ForBoundedOutOfOrderness(bound)
                .WithTimestampAssigner(&Event::ts)
                .WithEmitInterval(absl::ZeroDuration()))
        .Uid(absl::StrCat("watermarks-", i))
        .Parallelism(1);
  };
  auto left = side(0);
  auto right = side(1);
  left.KeyBy(&Event::key)
      .IntervalJoin(right.KeyBy(&Event::key))
      .Between(-interval, interval)
      .Process(Pair{}, "IntervalJoin")
      .Uid("interval-join")
      .Parallelism(parallelism)
      .Sink(sluice::TextFileSink<std::string>(p.Args().GetString("output")), "WritePairs")
      .Uid("write-pairs")
      .Parallelism(parallelism);
  left.CoGroup(right)
      .Where(&Event::key)
      .EqualTo(&Event::key)
      .Window(sluice::TumblingEventTimeWindows::Of(window))
      .Apply(CountBoth(absl::ToInt64Milliseconds(window)), "CoGroup")
      .Uid("co-group")
      .Parallelism(parallelism)
      .Sink(sluice::TextFileSink<std::string>(p.Args().GetString("side-output")), "WriteGroups")
      .Uid("write-groups")
      .Parallelism(parallelism);
}

}  // namespace joins_job

SLUICE_JOB(joins_job::Build)
