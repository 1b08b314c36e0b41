#pragma once

// The windowed job of window_bench, shared with its job binary (window_job.so, for runs on a
// cluster): Generator -> timestamps/watermarks (monotonous) -> KeyBy -> 1 s tumbling
// event-time window with an aggregate (count, sum) -> discarding sink.

#include <cstdint>

#include "bench_util.h"
#include "sluice/sluice.h"

namespace sluice::bench {

struct Event {
  int64_t key;
  int64_t ts;
  int64_t value;
};
SLUICE_SERIALIZABLE(Event, key, ts, value)

struct CountSum {
  int64_t count = 0;
  int64_t sum = 0;
};
SLUICE_SERIALIZABLE(CountSum, count, sum)

class CountSumAggregate final : public sluice::AggregateFunction<Event, CountSum, CountSum> {
 public:
  CountSum CreateAccumulator() const override { return {}; }
  void Add(const Event& e, CountSum& acc) const override {
    acc.count++;
    acc.sum += e.value;
  }
  CountSum GetResult(const CountSum& acc) const override { return acc; }
  CountSum Merge(CountSum a, const CountSum& b) const override {
    return {a.count + b.count, a.sum + b.sum};
  }
};

inline void BuildWindowJob(Pipeline& p, int64_t events, int64_t keys) {
  p.Source(Generator(
               [keys](uint64_t i) {
                 return Event{KeyOf(i, keys), static_cast<int64_t>(i / 1000),
                              static_cast<int64_t>(i & 0xff)};
               },
               {.count = static_cast<uint64_t>(events)}),
           "Generator")
      .AssignTimestampsAndWatermarks(
          WatermarkStrategy<Event>::ForMonotonousTimestamps().WithTimestampAssigner(&Event::ts))
      .KeyBy(&Event::key)
      .Window(TumblingEventTimeWindows::Of(absl::Seconds(1)))
      .Aggregate(CountSumAggregate{}, "Window")
      .Map([](const CountSum&) { return int64_t{1}; }, "One")
      .Sink(DiscardingSink<int64_t>{}, "Discard");
}

}  // namespace sluice::bench
