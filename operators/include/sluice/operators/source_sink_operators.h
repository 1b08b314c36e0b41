#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "sluice/function/functions.h"
#include "sluice/operator/stream_operator.h"
#include "sluice/operators/function_traits.h"

namespace sluice::internal {

/// Runs a SourceFunction at the head of a chain: each PollNext() lets the source fill one
/// batch, which goes down the chain as a whole.
template <typename T, typename S>
class SourceOperator final : public SourceOperatorBase {
 public:
  explicit SourceOperator(S source, size_t batch_hint)
      : source_(std::move(source)), batch_hint_(batch_hint) {
    batch_.reserve(batch_hint_);
  }

  void Open() override {
    side_outputs_.CountDroppedIn(*ctx_.metrics);
    runtime_.emplace(ctx_.info, ctx_.processing_time, ctx_.metrics);
    if (restored_) {
      RunUserCode([&] { source_.RestoreState(restored_->Items(source_.StateMode())); });
      restored_.reset();
    }
    RunUserCode([&] { source_.Open(*runtime_); });
  }

  absl::Status SnapshotState(int64_t checkpoint_id, PendingOperatorSnapshot* out) override {
    RunUserCode([&] { out->snapshot.operator_state = source_.SnapshotState(checkpoint_id); });
    return absl::OkStatus();
  }
  void NotifyCheckpointComplete(int64_t id) override {
    RunUserCode([&] { NotifyFunctionCheckpointComplete(source_, id); });
  }
  void NotifyCheckpointAborted(int64_t id) override {
    RunUserCode([&] { NotifyFunctionCheckpointAborted(source_, id); });
  }

  PollResult PollNext() override {
    SourceOutput<T> out(&batch_, batch_hint_, &SourceOperator::EmitWatermarkThunk, this,
                        &SourceOperator::EmitIdleThunk, &side_outputs_);
    SourceStatus status = SourceStatus::kEndOfInput;
    RunUserCode([&] { status = source_.Poll(out); });
    Flush();
    switch (status) {
      case SourceStatus::kMoreAvailable:
        return PollResult::kMoreAvailable;
      case SourceStatus::kNothingAvailable:
        return PollResult::kNothingAvailable;
      case SourceStatus::kEndOfInput:
        return PollResult::kEndOfInput;
    }
    return PollResult::kEndOfInput;
  }

  void EmitWatermark(Timestamp watermark) override {
    Flush();
    output_->PushWatermark(watermark);
  }

  void LimitBatchSize(size_t records) override {
    batch_hint_ = std::max<size_t>(1, std::min(batch_hint_, records));
  }

  void EmitIdle(bool idle) override {
    Flush();
    output_->PushIdle(idle);
  }

  void Close() override {
    if (runtime_) RunUserCode([&] { source_.Close(); });
  }

  void SetSideOutput(const std::string& tag, std::type_index type, ErasedOutput* output) override {
    side_outputs_.Connect(tag, type, output);
  }

 protected:
  void SetOutput(ErasedOutput* output) override { output_ = static_cast<Output<T>*>(output); }

 private:
  static void EmitWatermarkThunk(void* self, Timestamp watermark) {
    static_cast<SourceOperator*>(self)->EmitWatermark(watermark);
  }
  static void EmitIdleThunk(void* self, bool idle) {
    static_cast<SourceOperator*>(self)->EmitIdle(idle);
  }
  void Flush() {
    if (!batch_.empty()) {
      records_out_ += static_cast<int64_t>(batch_.size());
      output_->Push(batch_);
      batch_.clear();
    }
    side_outputs_.Flush();
  }

  S source_;
  size_t batch_hint_;
  Batch<T> batch_;
  Output<T>* output_ = nullptr;
  SideOutputs side_outputs_;
  std::optional<RuntimeContext> runtime_;
};

/// Runs a SinkFunction at the end of a chain, a batch at a time.
template <typename T, typename S>
class SinkOperator final : public OneInputOperator<T> {
 public:
  explicit SinkOperator(S sink) : sink_(std::move(sink)) {}

  void Open() override {
    runtime_.emplace(this->ctx_.info, this->ctx_.processing_time, this->ctx_.metrics);
    if (this->restored_) {
      this->RunUserCode([&] { ThrowIfError(RestoreFunctionState(sink_, *this->restored_)); });
      this->restored_.reset();
    }
    this->RunUserCode([&] { sink_.Open(*runtime_); });
  }
  absl::Status SnapshotState(int64_t id, PendingOperatorSnapshot* out) override {
    this->RunUserCode([&] { SnapshotFunctionState(sink_, id, out->snapshot); });
    return absl::OkStatus();
  }
  void NotifyCheckpointComplete(int64_t id) override {
    this->RunUserCode([&] { NotifyFunctionCheckpointComplete(sink_, id); });
  }
  void NotifyCheckpointAborted(int64_t id) override {
    this->RunUserCode([&] { NotifyFunctionCheckpointAborted(sink_, id); });
  }
  void ProcessBatch(Batch<T>& batch) override {
    this->RunUserCode([&] {
      sink_.InvokeBatch(std::span<const Record<T>>(batch.records().data(), batch.size()),
                        sink_ctx_);
    });
  }
  void ProcessWatermark(Timestamp watermark) override { sink_ctx_.set_watermark(watermark); }
  void ProcessIdle(bool) override {}
  void Finish() override {
    this->RunUserCode([&] { sink_.Finish(); });
  }
  void Close() override {
    if (runtime_) this->RunUserCode([&] { sink_.Close(); });
  }

 protected:
  void SetOutput(ErasedOutput*) override {}

 private:
  S sink_;
  SinkContext sink_ctx_;
  std::optional<RuntimeContext> runtime_;
};

}  // namespace sluice::internal
