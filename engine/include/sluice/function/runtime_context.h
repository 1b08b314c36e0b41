#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "sluice/core/key_groups.h"
#include "sluice/core/time.h"
#include "sluice/metrics/metrics.h"
#include "sluice/state/any_keyed_backend.h"
#include "sluice/state/state_backend_kind.h"
#include "sluice/timer/timer_service.h"

namespace sluice {

/// Who a running operator instance is.
struct TaskInfo {
  std::string job_name;
  std::string operator_name;
  int subtask_index = 0;
  int parallelism = 1;
  int max_parallelism = kDefaultMaxParallelism;
  int attempt = 0;
  /// The job takes checkpoints: sinks that commit output do it when a checkpoint
  /// completes (else when their input ends).
  bool checkpointing = false;
  /// The job was started from a checkpoint or savepoint (Flink's isRestored()).
  bool restored = false;
  /// Where keyed operators keep their state, and (RocksDB) the directory for this operator
  /// instance's database.
  StateBackendKind state_backend = StateBackendKind::kHeap;
  std::string local_state_dir;
};

/// What a function sees of the task running it. Valid from Open() to Close(), task thread.
class RuntimeContext {
 public:
  RuntimeContext(TaskInfo info, ProcessingTimeService* processing_time, MetricGroup* metrics)
      : info_(std::move(info)), processing_time_(processing_time), metrics_(metrics) {}
  virtual ~RuntimeContext() = default;

  const std::string& JobName() const { return info_.job_name; }
  const std::string& OperatorName() const { return info_.operator_name; }
  int SubtaskIndex() const { return info_.subtask_index; }
  int Parallelism() const { return info_.parallelism; }
  int MaxParallelism() const { return info_.max_parallelism; }
  int AttemptNumber() const { return info_.attempt; }
  const TaskInfo& task_info() const { return info_; }
  MetricGroup& Metrics() { return *metrics_; }
  Timestamp CurrentProcessingTime() const { return processing_time_->CurrentProcessingTime(); }

 private:
  TaskInfo info_;
  ProcessingTimeService* processing_time_;
  MetricGroup* metrics_;
};

/// The runtime context of a function on a keyed stream: adds keyed state (scoped to the key
/// of the record or timer being processed) and the timer service.
template <typename K>
class KeyedRuntimeContext final : public RuntimeContext {
 public:
  KeyedRuntimeContext(TaskInfo info, ProcessingTimeService* processing_time, MetricGroup* metrics,
                      AnyKeyedBackend<K> backend, TimerService* timers)
      : RuntimeContext(std::move(info), processing_time, metrics),
        backend_(backend),
        timers_(timers) {}

  template <typename V>
  ValueState<V>& GetState(const ValueStateDescriptor<V>& d) {
    return backend_.Visit([&](auto& b) -> ValueState<V>& { return *b.GetUserState(d); });
  }
  template <typename V>
  ListState<V>& GetListState(const ListStateDescriptor<V>& d) {
    return backend_.Visit([&](auto& b) -> ListState<V>& { return *b.GetUserListState(d); });
  }
  template <typename UK, typename UV>
  MapState<UK, UV>& GetMapState(const MapStateDescriptor<UK, UV>& d) {
    return backend_.Visit([&](auto& b) -> MapState<UK, UV>& { return *b.GetUserMapState(d); });
  }
  template <typename V>
  ReducingState<V>& GetReducingState(const ReducingStateDescriptor<V>& d) {
    return backend_.Visit([&](auto& b) -> ReducingState<V>& { return *b.GetUserReducingState(d); });
  }
  template <typename In, typename Acc, typename Out>
  AggregatingState<In, Out>& GetAggregatingState(
      const AggregatingStateDescriptor<In, Acc, Out>& d) {
    return backend_.Visit(
        [&](auto& b) -> AggregatingState<In, Out>& { return *b.GetUserAggregatingState(d); });
  }
  TimerService& Timers() { return *timers_; }
  const KeyGroupRange& key_group_range() const { return backend_.key_group_range(); }

  /// The size of this operator instance's keyed state: entries, and bytes as a snapshot
  /// would take them (this walks every entry: call it now and then, not per record).
  struct StateSize {
    size_t entries = 0;
    size_t bytes = 0;
  };
  StateSize GetStateSize() const {
    return {backend_.base()->TotalEntryCount(), backend_.base()->TotalSerializedBytes()};
  }

 private:
  AnyKeyedBackend<K> backend_;
  TimerService* timers_;
};

}  // namespace sluice
