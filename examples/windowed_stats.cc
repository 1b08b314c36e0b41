// windowed_stats --input=FILE|kafka://BOOTSTRAP/TOPIC [--group=ID]
//                --output=DIR|influx://HOST:PORT/DB?measurement=NAME[&...]|
//                         kafka://BOOTSTRAP/TOPIC[?...]
//                --window=tumbling:SIZE|sliding:SIZE:SLIDE|session:GAP
//                [--out-of-orderness=DUR] [--allowed-lateness=DUR] [--late-output=DIR]
//                [--parallelism=N]
//
// Reads `key,timestamp_ms,value` lines, assigns event time with bounded out-of-orderness and
// a watermark after every record (so the output does not depend on thread timing), keys by
// `key`, and writes one line per window firing:
//   key,window_start_ms,window_end_ms,count,sum,min,max
// or, to InfluxDB, one point per firing: measurement NAME (default windowed_stats), tags
// `key` and `start` (window start, ms), integer fields count, sum, min, max, time = window
// end (ms). A re-firing overwrites its earlier point. Further URL parameters set the sink's
// options (batch_points, flush_interval, max_retry_time, ...: see docs/connectors.md). To
// Kafka, one message per firing: key `key`, value the line above (`?delivery=exactly_once`
// for transactions; see docs/connectors.md).
// From Kafka each message value is one line; the job reads up to the end offsets it saw at
// the start and finishes; --group sets the consumer group its offsets are committed to.
// Durations: 500ms, 10s, 5m, 1h. Records later than the allowed lateness go, as
// `key,timestamp_ms,value` lines, to --late-output (or are dropped and counted). At the end
// of input every window fires. A malformed line fails the job, naming file and line.

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "sluice/sluice.h"

namespace windowed_stats {

struct Event {
  std::string key;
  int64_t timestamp_ms = 0;
  int64_t value = 0;
};
SLUICE_SERIALIZABLE(Event, key, timestamp_ms, value)

struct Stats {
  int64_t count = 0;
  int64_t sum = 0;
  int64_t min = std::numeric_limits<int64_t>::max();
  int64_t max = std::numeric_limits<int64_t>::min();
};
SLUICE_SERIALIZABLE(Stats, count, sum, min, max)

class StatsAggregate final : public sluice::AggregateFunction<Event, Stats, Stats> {
 public:
  Stats CreateAccumulator() const override { return {}; }
  void Add(const Event& e, Stats& s) const override {
    s.count++;
    s.sum += e.value;
    s.min = std::min(s.min, e.value);
    s.max = std::max(s.max, e.value);
  }
  Stats GetResult(const Stats& s) const override { return s; }
  Stats Merge(Stats a, const Stats& b) const override {
    return {a.count + b.count, a.sum + b.sum, std::min(a.min, b.min), std::max(a.max, b.max)};
  }
};

/// One window's result.
struct Firing {
  std::string key;
  int64_t start = 0;
  int64_t end = 0;
  Stats stats;
};
SLUICE_SERIALIZABLE(Firing, key, start, end, stats)

class EmitFiring final
    : public sluice::ProcessWindowFunction<Stats, Firing, std::string, sluice::TimeWindow> {
 public:
  void Process(const std::string& key, Context& ctx, const std::vector<Stats>& in,
               sluice::Collector<Firing>& out) override {
    out.Collect(Firing{key, ctx.window().start, ctx.window().end, in[0]});
  }
};

std::string FormatFiring(const Firing& f) {
  const Stats& s = f.stats;
  return absl::StrCat(f.key, ",", f.start, ",", f.end, ",", s.count, ",", s.sum, ",", s.min, ",",
                      s.max);
}

sluice::InfluxPoint FiringPoint(const Firing& f, const std::string& measurement) {
  const Stats& s = f.stats;
  return sluice::InfluxPoint(measurement)
      .Tag("key", f.key)
      .Tag("start", std::to_string(f.start))
      .Field("count", s.count)
      .Field("sum", s.sum)
      .Field("min", s.min)
      .Field("max", s.max)
      .Time(f.end, sluice::InfluxPrecision::kMilliseconds);
}

/// `key,timestamp_ms,value`, or an error naming `where` the line came from.
Event ParseEvent(const std::string& line, const std::string& where) {
  std::vector<std::string> f = absl::StrSplit(line, ',');
  Event e;
  if (f.size() != 3 || f[0].empty() || !absl::SimpleAtoi(f[1], &e.timestamp_ms) ||
      !absl::SimpleAtoi(f[2], &e.value)) {
    throw std::runtime_error(
        absl::StrCat(where, ": expected key,timestamp_ms,value but got '", line, "'"));
  }
  e.key = std::move(f[0]);
  return e;
}

/// Parses the lines of a file; a malformed line fails the job with its position.
class ParseLine final : public sluice::MapFunction<std::string, Event> {
 public:
  explicit ParseLine(std::string file) : file_(std::move(file)) {}
  Event Map(const std::string& line) override {
    ++line_number_;
    return ParseEvent(line, absl::StrCat(file_, ":", line_number_));
  }

 private:
  std::string file_;
  int64_t line_number_ = 0;  // the source has parallelism 1, so this counts file lines
};

/// The events of a file, or of Kafka messages (one line each) read to the current end.
sluice::DataStream<Event> ReadEvents(sluice::Pipeline& p, const std::string& input,
                                     const std::string& group) {
  if (!input.starts_with("kafka://")) {
    return p.Source(sluice::TextFileSource(input), "ReadLines")
        .Parallelism(1)
        .Map(ParseLine(input), "Parse")
        .Parallelism(1);
  }
  auto options = sluice::ParseKafkaUrl(input);
  if (!options.ok()) throw sluice::JobArgumentError(std::string(options.status().message()));
  options->bounded = true;
  if (!group.empty()) options->group_id = group;
  return p.Source(sluice::KafkaSource(*options), "ReadKafka")
      .Uid("kafka-source")
      .Parallelism(1)
      .Map(
          [](const sluice::KafkaRecord& r) {
            return ParseEvent(
                r.value, absl::StrCat("Kafka ", r.topic, "/", r.partition, " offset ", r.offset));
          },
          "Parse")
      .Parallelism(1);
}

template <typename Windowed>
sluice::DataStream<Firing> Finish(Windowed windowed, sluice::Pipeline& p, absl::Duration lateness,
                                  const std::string& late_dir, int parallelism) {
  sluice::OutputTag<Event> late("late-records");
  windowed.AllowedLateness(lateness);
  if (!late_dir.empty()) windowed.SideOutputLateData(late);
  auto firings = windowed.Aggregate(StatsAggregate{}, EmitFiring{}, "WindowStats");
  firings.Uid("window-stats").Parallelism(parallelism);
  if (!late_dir.empty()) {
    firings.GetSideOutput(late)
        .Map([](const Event& e) { return absl::StrCat(e.key, ",", e.timestamp_ms, ",", e.value); },
             "FormatLate")
        .Sink(sluice::TextFileSink<std::string>(late_dir), "WriteLate");
  }
  (void)p;
  return firings;
}

void Build(sluice::Pipeline& p) {
  const std::string input = p.Args().GetString("input");
  const std::string output = p.Args().GetString("output");
  const std::string window = p.Args().GetString("window");
  const absl::Duration bound = p.Args().GetDuration("out-of-orderness", absl::ZeroDuration());
  const absl::Duration lateness = p.Args().GetDuration("allowed-lateness", absl::ZeroDuration());
  const std::string late_dir = p.Args().GetString("late-output", "");
  const int parallelism =
      static_cast<int>(p.Args().GetInt("parallelism", p.config().default_parallelism));
  if (parallelism < 1) throw sluice::JobArgumentError("--parallelism must be >= 1");

  auto events = ReadEvents(p, input, p.Args().GetString("group", ""))
                    .AssignTimestampsAndWatermarks(
                        sluice::WatermarkStrategy<Event>::ForBoundedOutOfOrderness(bound)
                            .WithTimestampAssigner(&Event::timestamp_ms)
                            .WithEmitInterval(absl::ZeroDuration()))
                    .Parallelism(1);
  auto keyed = events.KeyBy(&Event::key);

  std::vector<std::string> spec = absl::StrSplit(window, ':');
  sluice::DataStream<Firing> firings = [&]() {
    if (spec[0] == "tumbling" && spec.size() == 2) {
      return Finish(keyed.Window(sluice::TumblingEventTimeWindows::Of(
                        sluice::ParseDurationArg("window", spec[1]))),
                    p, lateness, late_dir, parallelism);
    }
    if (spec[0] == "sliding" && spec.size() == 3) {
      return Finish(keyed.Window(sluice::SlidingEventTimeWindows::Of(
                        sluice::ParseDurationArg("window", spec[1]),
                        sluice::ParseDurationArg("window", spec[2]))),
                    p, lateness, late_dir, parallelism);
    }
    if (spec[0] == "session" && spec.size() == 2) {
      return Finish(keyed.Window(sluice::EventTimeSessionWindows::WithGap(
                        sluice::ParseDurationArg("window", spec[1]))),
                    p, lateness, late_dir, parallelism);
    }
    throw sluice::JobArgumentError(absl::StrCat(
        "--window: '", window, "' is not tumbling:SIZE, sliding:SIZE:SLIDE or session:GAP"));
  }();
  if (output.starts_with("influx://") || output.starts_with("influxs://")) {
    std::string measurement = "windowed_stats";
    auto sink = sluice::InfluxSinkFromUrl(output, &measurement);
    if (!sink.ok()) throw sluice::JobArgumentError(std::string(sink.status().message()));
    firings.Map([measurement](const Firing& f) { return FiringPoint(f, measurement); }, "ToPoint")
        .Parallelism(parallelism)
        .Sink(*sink, "WriteStats")
        .Parallelism(parallelism);
    return;
  }
  if (output.starts_with("kafka://")) {
    auto sink = sluice::ParseKafkaSinkUrl(output);
    if (!sink.ok()) throw sluice::JobArgumentError(std::string(sink.status().message()));
    firings
        .Map(
            [](const Firing& f) {
              sluice::KafkaMessage m;
              m.key = f.key;
              m.value = FormatFiring(f);
              return m;
            },
            "ToMessage")
        .Parallelism(parallelism)
        .Sink(sluice::KafkaSink(*sink), "WriteStats")
        .Parallelism(parallelism);
    return;
  }
  firings.Map(FormatFiring, "Format")
      .Parallelism(parallelism)
      .Sink(sluice::TextFileSink<std::string>(output), "WriteStats")
      .Parallelism(parallelism);
}

}  // namespace windowed_stats

SLUICE_JOB(windowed_stats::Build)
