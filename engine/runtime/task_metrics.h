#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "sluice/core/mutex.h"
#include "sluice/internal/runtime/local_subtasks.h"
#include "sluice/metrics/metrics.h"
#include "sluice/state/keyed_state_backend.h"

namespace sluice::internal {

/// What every task measures of itself, in its metric group (job, task, subtask); its
/// operators' groups sit below it (operator). Written on the task thread, except the
/// asynchronous checkpoint phase's histogram, written on the snapshot thread.
class TaskMetrics {
 public:
  explicit TaskMetrics(MetricLabels labels);

  /// The task thread starts its work: time is counted from now.
  void Begin(absl::Time now) { mark_ = now; }
  /// The task thread's time since the last mark was work (less what it spent blocked on
  /// back pressure meanwhile) / waiting for input or mail.
  void MarkBusyUntil(absl::Time now);
  void MarkIdleUntil(absl::Time now);
  /// Its values and rates now (any thread); vertex and subtask are the caller's to fill.
  TaskMetricsSnapshot Snapshot(absl::Time now) const;
  /// The keyed states of operator `operator_id` as its newest checkpoint found them (the
  /// snapshot thread).
  void SetStateSizes(const std::string& operator_id, const std::vector<KeyedStateSize>& sizes);

 private:
  MetricGroup group_;  // first: the members below are made in it

 public:
  MetricGroup& group() { return group_; }
  Meter& records_in;
  Meter& records_sent;
  Meter& busy;           // nanoseconds
  Meter& idle;           // nanoseconds
  Meter& backpressured;  // nanoseconds, marked by ScopedBackPressure on the task thread
  Gauge& input_watermark;
  Gauge& output_watermark;
  Meter& checkpoint_time;  // nanoseconds of synchronous snapshot work
  Histogram& checkpoint_sync;
  Histogram& checkpoint_async;
  Histogram& checkpoint_alignment;

 private:
  absl::Time mark_ = absl::Now();
  int64_t backpressured_at_mark_ = 0;
  mutable Mutex states_mu_;
  std::map<std::pair<std::string, std::string>, KeyedStateSample> states_
      SLUICE_GUARDED_BY(states_mu_);
};

}  // namespace sluice::internal
