#include "runtime/task_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sluice::internal {

namespace {
constexpr double kNanos = 1e-9;

/// A watermark gauge (seconds) in milliseconds; the final watermark stays the largest.
int64_t Millis(double seconds) {
  const double ms = seconds * 1000;
  if (ms >= static_cast<double>(std::numeric_limits<int64_t>::max())) {
    return std::numeric_limits<int64_t>::max();
  }
  return std::llround(ms);
}
}  // namespace

TaskMetrics::TaskMetrics(MetricLabels labels)
    : group_(std::move(labels)),
      records_in(group_.GetMeter("task_records_in", "Records the task took from its input.")),
      records_sent(group_.GetMeter(
          "task_records_sent",
          "Records the task sent downstream, once per outgoing edge (a broadcast once).")),
      busy(group_.GetMeter("task_busy_seconds",
                           "Time the task worked (neither idle nor back-pressured).", kNanos)),
      idle(group_.GetMeter("task_idle_seconds", "Time the task waited for input.", kNanos)),
      backpressured(group_.GetMeter("task_backpressured_seconds",
                                    "Time the task was blocked sending: its consumers had no room.",
                                    kNanos)),
      input_watermark(
          group_.GetGauge("task_input_watermark_seconds",
                          "The task's input watermark (the least over its inputs), Unix seconds.")),
      output_watermark(group_.GetGauge("task_output_watermark_seconds",
                                       "The watermark the task sent last, Unix seconds.")),
      checkpoint_time(group_.GetMeter(
          "task_checkpoint_seconds",
          "Time the task spent in the synchronous part of snapshots (its checkpoint overhead).",
          kNanos)),
      checkpoint_sync(group_.GetHistogram("task_checkpoint_sync_duration_seconds",
                                          "The synchronous part of the task's snapshots.")),
      checkpoint_async(group_.GetHistogram(
          "task_checkpoint_async_duration_seconds",
          "The asynchronous part of the task's snapshots (serialize and write).")),
      checkpoint_alignment(group_.GetHistogram("task_checkpoint_alignment_duration_seconds",
                                               "First barrier to the last on the task's inputs.")) {
}

TaskMetricsSnapshot TaskMetrics::Snapshot(absl::Time now) const {
  TaskMetricsSnapshot s;
  s.records_in = records_in.count();
  s.records_sent = records_sent.count();
  s.records_in_per_second = records_in.Rate(now);
  s.records_sent_per_second = records_sent.Rate(now);
  s.busy = busy.Rate(now);
  s.idle = idle.Rate(now);
  s.backpressured = backpressured.Rate(now);
  s.input_watermark_ms = Millis(input_watermark.value());
  s.output_watermark_ms = Millis(output_watermark.value());
  MutexLock lock(&states_mu_);
  for (const auto& [id, sample] : states_) s.states.push_back(sample);
  return s;
}

void TaskMetrics::SetStateSizes(const std::string& operator_id,
                                const std::vector<KeyedStateSize>& sizes) {
  MutexLock lock(&states_mu_);
  for (const KeyedStateSize& size : sizes) {
    states_[{operator_id, size.name}] = {operator_id, size.name, static_cast<int64_t>(size.entries),
                                         static_cast<int64_t>(size.bytes)};
  }
}

void TaskMetrics::MarkBusyUntil(absl::Time now) {
  const int64_t backpressured_now = backpressured.count();
  const int64_t nanos = absl::ToInt64Nanoseconds(now - mark_);
  busy.Mark(std::max<int64_t>(0, nanos - (backpressured_now - backpressured_at_mark_)));
  mark_ = now;
  backpressured_at_mark_ = backpressured_now;
}

void TaskMetrics::MarkIdleUntil(absl::Time now) {
  idle.Mark(std::max<int64_t>(0, absl::ToInt64Nanoseconds(now - mark_)));
  mark_ = now;
  backpressured_at_mark_ = backpressured.count();
}

}  // namespace sluice::internal
