// aggregator --kafka=BOOTSTRAP --topic=NAME --influx=http://HOST:PORT/DB[?OPTION=VALUE...]
//            [--dimension=stream_id|isp|platform] [--window=5m] [--out-of-orderness=10s]
//            [--allowed-lateness=1m] [--idle-timeout=30s] [--unique-users=exact|hll]
//            [--dead-letters=DIR] [--group=ID] [--bounded]
//            (and every standard job argument: --parallelism, --checkpoint-interval, ...)
//
// Streamroot's aggregator from the seeds: reads the JSON feedback events of video players
// from Kafka (schema in feedback.h), keys them by a dimension, aggregates them over event-time
// tumbling windows and writes one InfluxDB point per key and window, exactly once:
//   measurement `feedback`, tag DIMENSION=value, time = the window's end (ms),
//   integer fields unique_users, events, bytes_p2p, bytes_cdn, rebuffer_p50_ms,
//   rebuffer_p95_ms (nearest-rank percentiles), float field offload_ratio = p2p / (p2p + cdn).
//
// Event time is the event's `ts`. Watermarks are per Kafka partition (its largest `ts` minus
// --out-of-orderness), made where the partition is read and merged to the least, emitted
// after each batch the source polls rather than per record; a partition silent for
// --idle-timeout stops holding them back. Events later than the watermark still count while
// it is within --allowed-lateness of their window's end: the window fires again and its point
// is overwritten (same series, same time). Later ones, and malformed events (with the reason),
// go to the dead-letter output, `--dead-letters=DIR`: exactly-once part files of
// `TOPIC/PARTITION@OFFSET<TAB>REASON<TAB>EVENT` lines (`-` for a late event's position); without
// it they are dropped. Either way they are counted (kafka_deserialization_failures,
// aggregator_too_late). `--bounded` reads up to the end offsets seen at the start,
// then fires every window and finishes.
//
// Unique users are exact by default (every user id of a window is kept); `--unique-users=hll`
// counts them with HyperLogLog instead (16 KiB per key and window, standard error 0.81%: see
// window_aggregate.h) when there are too many to keep.

#include <string>

#include "absl/strings/str_cat.h"
#include "feedback.h"
#include "sluice/connectors/kafka.h"
#include "sluice/sluice.h"
#include "window_aggregate.h"

namespace aggregator {

namespace {

class Aggregate final
    : public sluice::AggregateFunction<Feedback, WindowAccumulator, WindowSummary> {
 public:
  explicit Aggregate(UniqueUsers mode) : mode_(mode) {}
  WindowAccumulator CreateAccumulator() const override { return {}; }
  void Add(const Feedback& e, WindowAccumulator& acc) const override { acc.Add(e, mode_); }
  WindowSummary GetResult(const WindowAccumulator& acc) const override { return Summarize(acc); }
  WindowAccumulator Merge(WindowAccumulator a, const WindowAccumulator& b) const override {
    a.Merge(b);
    return a;
  }

 private:
  UniqueUsers mode_;
};

/// Names the summary with its key and window.
class NameWindow final : public sluice::ProcessWindowFunction<WindowSummary, WindowSummary,
                                                              std::string, sluice::TimeWindow> {
 public:
  void Process(const std::string& key, Context& ctx, const std::vector<WindowSummary>& in,
               sluice::Collector<WindowSummary>& out) override {
    WindowSummary s = in[0];
    s.key = key;
    s.window_end_ms = ctx.window().end;
    out.Collect(std::move(s));
  }
};

sluice::InfluxPoint ToPoint(const WindowSummary& s, const std::string& tag) {
  return sluice::InfluxPoint("feedback")
      .Tag(tag, s.key)
      .Field("unique_users", s.unique_users)
      .Field("events", s.events)
      .Field("bytes_p2p", s.bytes_p2p)
      .Field("bytes_cdn", s.bytes_cdn)
      .Field("offload_ratio", s.offload_ratio)
      .Field("rebuffer_p50_ms", s.rebuffer_p50_ms)
      .Field("rebuffer_p95_ms", s.rebuffer_p95_ms)
      .Time(s.window_end_ms, sluice::InfluxPrecision::kMilliseconds);
}

/// `http://HOST:PORT/DB[?...]` as the sink's `influx://` URL.
sluice::InfluxSink InfluxSinkFor(const std::string& url) {
  std::string sink_url;
  if (url.starts_with("http://")) {
    sink_url = "influx://" + url.substr(7);
  } else if (url.starts_with("https://")) {
    sink_url = "influxs://" + url.substr(8);
  } else {
    throw sluice::JobArgumentError(
        absl::StrCat("--influx: '", url, "' is not http://HOST:PORT/DB (or https://)"));
  }
  auto sink = sluice::InfluxSinkFromUrl(sink_url);
  if (!sink.ok()) {
    throw sluice::JobArgumentError(absl::StrCat("--influx: ", sink.status().message()));
  }
  return std::move(*sink);
}

/// An event too late for its window as a dead letter, counted in aggregator_too_late.
class TooLate final : public sluice::MapFunction<Feedback, sluice::KafkaDeadLetter> {
 public:
  void Open(sluice::RuntimeContext& ctx) override {
    counted_ = &ctx.Metrics().GetCounter("aggregator_too_late");
  }
  sluice::KafkaDeadLetter Map(const Feedback& e) override {
    counted_->Inc();
    sluice::KafkaDeadLetter d;
    d.record.value = ToJson(e);
    d.error = "too late: its window ended longer than the allowed lateness before the watermark";
    return d;
  }

 private:
  sluice::Counter* counted_ = nullptr;
};

std::string DeadLetterLine(const sluice::KafkaDeadLetter& d) {
  const std::string position =
      d.record.topic.empty()
          ? "-"
          : absl::StrCat(d.record.topic, "/", d.record.partition, "@", d.record.offset);
  return absl::StrCat(position, "\t", d.error, "\t", d.record.value);
}

}  // namespace

void Build(sluice::Pipeline& p) {
  const sluice::JobArgs& args = p.Args();
  sluice::KafkaSourceOptions kafka;
  kafka.bootstrap_servers = args.GetString("kafka");
  kafka.topics = {args.GetString("topic")};
  kafka.group_id = args.GetString("group", "");
  kafka.bounded = args.GetBool("bounded", false);
  kafka.watermark_out_of_orderness = args.GetDuration("out-of-orderness", absl::Seconds(10));
  kafka.idle_timeout = args.GetDuration("idle-timeout", absl::Seconds(30));
  kafka.deserialization_errors = sluice::KafkaDeserializationErrors::kDeadLetter;
  auto dimension = ParseDimension(args.GetString("dimension", "stream_id"));
  if (!dimension.ok()) throw sluice::JobArgumentError(std::string(dimension.status().message()));
  const std::string unique_users = args.GetString("unique-users", "exact");
  if (unique_users != "exact" && unique_users != "hll") {
    throw sluice::JobArgumentError(
        absl::StrCat("--unique-users: '", unique_users, "' is not exact or hll"));
  }
  const UniqueUsers mode = unique_users == "hll" ? UniqueUsers::kHyperLogLog : UniqueUsers::kExact;
  const absl::Duration window = args.GetDuration("window", absl::Minutes(5), false);
  const absl::Duration lateness = args.GetDuration("allowed-lateness", absl::Minutes(1));
  const std::string dead_letters = args.GetString("dead-letters", "");
  sluice::InfluxSink sink = InfluxSinkFor(args.GetString("influx"));
  p.SetParallelism(static_cast<int>(args.GetInt("parallelism", p.config().default_parallelism)));

  auto events =
      p.Source(sluice::KafkaSource<Feedback>(
                   kafka, {"JSON feedback",
                           [](const sluice::KafkaRecord& r) { return ParseFeedback(r.value); }})
                   .WithTimestamp([](const Feedback& e) { return e.ts; }),
               "ReadFeedback")
          .Uid("kafka-feedback");
  const Dimension by = *dimension;
  sluice::OutputTag<Feedback> too_late("too-late");
  auto windowed =
      events.KeyBy([by](const Feedback& e) -> const std::string& { return DimensionOf(e, by); })
          .Window(sluice::TumblingEventTimeWindows::Of(window));
  windowed.AllowedLateness(lateness).SideOutputLateData(too_late);
  auto summaries = windowed.Aggregate(Aggregate(mode), NameWindow{}, "Aggregate");
  summaries.Uid("aggregate");
  const std::string tag = DimensionName(by);
  summaries.Map([tag](const WindowSummary& s) { return ToPoint(s, tag); }, "ToPoint")
      .Sink(std::move(sink), "WriteInflux")
      .Uid("influx-sink");

  // Dead letters: malformed events from the source, events too late for their window.
  auto late_letters = summaries.GetSideOutput(too_late).Map(TooLate{}, "TooLate");
  auto letters = events.GetSideOutput(sluice::KafkaDeadLetters()).Union(late_letters);
  if (dead_letters.empty()) {
    letters.Sink(sluice::DiscardingSink<sluice::KafkaDeadLetter>(), "DropDeadLetters");
  } else {
    letters.Map(DeadLetterLine, "FormatDeadLetter")
        .Sink(sluice::TextFileSink<std::string>(dead_letters), "WriteDeadLetters")
        .Uid("dead-letters");
  }
}

}  // namespace aggregator

SLUICE_JOB(aggregator::Build)
