#pragma once

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sluice/core/status_macros.h"
#include "sluice/eventtime/watermark_strategy.h"
#include "sluice/operator/stream_operator.h"
#include "sluice/serialization/serializer.h"

namespace sluice::internal {

/// What a checkpoint keeps of one subtask's watermark generation.
struct WatermarkGeneratorPosition {
  Timestamp max_timestamp = kMinWatermark;  // of the bounded-out-of-orderness generator
  Timestamp pending = kMinWatermark;        // the highest a user generator emitted
  Timestamp emitted = kMinWatermark;        // the last watermark sent downstream
  std::string generator;                    // a user generator's own state
};
SLUICE_SERIALIZABLE(WatermarkGeneratorPosition, max_timestamp, pending, emitted, generator)

/// Assigns event timestamps and generates watermarks (and idleness) for one subtask's
/// stream, as Flink's TimestampsAndWatermarksOperator: upstream watermarks are dropped, except
/// the final one at end of input. Periodic emission and idleness checks run as
/// processing-time callbacks on the task thread.
template <typename T>
class TimestampsAndWatermarksOperator final : public OneInputOperatorWithOutput<T, T>,
                                              private ProcessingTimeService::Target,
                                              private WatermarkOutput {
 public:
  explicit TimestampsAndWatermarksOperator(WatermarkStrategy<T> strategy)
      : strategy_(std::move(strategy)) {}

  void Open() override {
    if (strategy_.generator_factory()) {
      this->RunUserCode([&] { generator_ = strategy_.generator_factory()(); });
    } else if (strategy_.bound_ms()) {
      bounded_.emplace(*strategy_.bound_ms());
    }
    interval_ms_ = absl::ToInt64Milliseconds(strategy_.emit_interval());
    if (strategy_.idle_timeout()) {
      idle_timeout_ms_ = std::max<int64_t>(1, absl::ToInt64Milliseconds(*strategy_.idle_timeout()));
    }
    last_record_time_ = Now();
    if (this->restored_) {
      Restore(this->restored_->operator_state);
      this->restored_.reset();
    }
    ScheduleTick();
  }

  /// Where the generator stood at the barrier: without it a restored job would start from no
  /// watermark, and records the failure-free run dropped as late would count again (and
  /// windows fire with other contents).
  absl::Status SnapshotState(int64_t, PendingOperatorSnapshot* out) override {
    SavedPosition saved;
    saved.max_timestamp = bounded_ ? bounded_->max_timestamp() : kMinWatermark;
    saved.pending = pending_;
    saved.emitted = emitted_;
    if (generator_) this->RunUserCode([&] { saved.generator = generator_->SnapshotState(); });
    out->snapshot.operator_state.push_back(SerializeToString(saved));
    return absl::OkStatus();
  }

  void ProcessBatch(Batch<T>& batch) override {
    if (batch.empty()) return;
    last_record_time_ = Now();
    if (idle_) {
      idle_ = false;
      this->output_->PushIdle(false);
    }
    const bool per_record = interval_ms_ == 0 && !strategy_.no_watermarks();
    auto& records = batch.records();
    size_t sent = 0;  // records before this index already went downstream
    this->RunUserCode([&] {
      for (size_t i = 0; i < records.size(); ++i) {
        Record<T>& r = records[i];
        if (strategy_.timestamp_fn()) r.timestamp = strategy_.timestamp_fn()(r.value, r.timestamp);
        if (r.timestamp == kNoTimestamp) [[unlikely]] {
          throw std::runtime_error(
              "record has no timestamp: give the WatermarkStrategy a timestamp assigner "
              "(WithTimestampAssigner) or emit timestamps from the source");
        }
        if (bounded_) {
          bounded_->OnTimestamp(r.timestamp);
        } else if (generator_) {
          generator_->OnEvent(r.value, r.timestamp, *this);
        }
        if (per_record) {
          if (generator_) generator_->OnPeriodicEmit(*this);
          if (bounded_ ? bounded_->Current() > emitted_ : pending_ > emitted_) {
            // Records up to this one precede the watermark downstream.
            ForwardRange(records, sent, i + 1);
            sent = i + 1;
            EmitPending();
          }
        }
      }
    });
    if (sent == 0) {
      this->output_->Push(batch);
    } else {
      ForwardRange(records, sent, records.size());
    }
    if (!per_record && generator_ && pending_ > emitted_) {
      EmitPending();  // a per-event generator emitted during OnEvent
    }
  }

  void ProcessWatermark(Timestamp watermark) override {
    // Only the final watermark passes: this operator is the stream's watermark source.
    if (watermark == kMaxWatermark && emitted_ != kMaxWatermark) {
      emitted_ = kMaxWatermark;
      this->output_->PushWatermark(kMaxWatermark);
    }
  }
  void ProcessIdle(bool) override {}  // this operator decides idleness itself

 private:
  using SavedPosition = WatermarkGeneratorPosition;

  /// Each subtask saved one item, and at the same parallelism gets its own back. Rescaled,
  /// a subtask continues from the lowest of the items it gets (never dropping a record an
  /// old subtask would have taken) and a user generator starts afresh.
  void Restore(const std::vector<std::string>& items) {
    if (items.empty()) return;
    SavedPosition merged{kMaxWatermark, kMaxWatermark, kMaxWatermark, {}};
    for (const std::string& item : items) {
      absl::StatusOr<SavedPosition> read =
          DeserializeFromString<SavedPosition>(item, "the watermark generator's state");
      ThrowIfError(read.status());
      SavedPosition& saved = *read;
      merged.max_timestamp = std::min(merged.max_timestamp, saved.max_timestamp);
      merged.pending = std::min(merged.pending, saved.pending);
      merged.emitted = std::min(merged.emitted, saved.emitted);
      if (items.size() == 1) merged.generator = std::move(saved.generator);
    }
    if (bounded_) bounded_->set_max_timestamp(merged.max_timestamp);
    pending_ = merged.pending;
    emitted_ = merged.emitted;
    if (generator_ && !merged.generator.empty()) {
      this->RunUserCode([&] { generator_->RestoreState(merged.generator); });
    }
    // The chain after this operator hears the restored watermark first.
    if (emitted_ != kMinWatermark) this->output_->PushWatermark(emitted_);
  }

  Timestamp Now() const { return this->ctx_.processing_time->CurrentProcessingTime(); }

  void ScheduleTick() {
    int64_t every = interval_ms_;
    if (idle_timeout_ms_ > 0)
      every = every > 0 ? std::min(every, idle_timeout_ms_) : idle_timeout_ms_;
    if (every <= 0 || (strategy_.no_watermarks() && idle_timeout_ms_ == 0)) return;
    this->ctx_.processing_time->ScheduleAt(Now() + every, this);
  }

  // Periodic emission and idleness, on the task thread.
  void OnProcessingTime(Timestamp now) override {
    if (interval_ms_ > 0 && !strategy_.no_watermarks()) {
      this->RunUserCode([&] {
        if (generator_) generator_->OnPeriodicEmit(*this);
      });
      EmitPending();
    }
    if (idle_timeout_ms_ > 0 && !idle_ && now - last_record_time_ >= idle_timeout_ms_) {
      idle_ = true;
      this->output_->PushIdle(true);
    }
    ScheduleTick();
  }

  // WatermarkOutput, for user generators.
  void EmitWatermark(Timestamp watermark) override { pending_ = std::max(pending_, watermark); }

  void EmitPending() {
    Timestamp wm = bounded_ ? bounded_->Current() : pending_;
    if (wm > emitted_ && emitted_ != kMaxWatermark) {
      emitted_ = wm;
      this->output_->PushWatermark(wm);
    }
  }

  void ForwardRange(std::vector<Record<T>>& records, size_t from, size_t to) {
    if (from >= to) return;
    part_.clear();
    for (size_t j = from; j < to; ++j) part_.Add(std::move(records[j]));
    this->output_->Push(part_);
    part_.clear();
  }

  WatermarkStrategy<T> strategy_;
  std::unique_ptr<WatermarkGenerator<T>> generator_;
  std::optional<BoundedOutOfOrdernessGenerator> bounded_;
  int64_t interval_ms_ = 200;
  int64_t idle_timeout_ms_ = 0;
  Timestamp last_record_time_ = 0;
  Timestamp pending_ = kMinWatermark;  // the highest a user generator emitted
  Timestamp emitted_ = kMinWatermark;  // the last watermark sent downstream
  bool idle_ = false;
  Batch<T> part_;
};

}  // namespace sluice::internal
