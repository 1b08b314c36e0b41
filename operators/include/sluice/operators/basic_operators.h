#pragma once

#include <memory>
#include <optional>
#include <utility>

#include "sluice/operator/stream_operator.h"
#include "sluice/operators/function_traits.h"

namespace sluice::internal {

/// Common part of operators that run one user function object (`Base`: the operator's
/// input kind, one or two inputs).
template <typename Base, typename F>
class FunctionOperator : public Base {
 public:
  explicit FunctionOperator(F f) : fn_(std::move(f)) {}
  void Open() override {
    runtime_.emplace(this->ctx_.info, this->ctx_.processing_time, this->ctx_.metrics);
    if (this->restored_) {
      this->RunUserCode([&] { ThrowIfError(RestoreFunctionState(fn_, *this->restored_)); });
      this->restored_.reset();
    }
    this->RunUserCode([&] { OpenIfRich(fn_, *runtime_); });
  }
  void Close() override {
    this->RunUserCode([&] { CloseIfRich(fn_); });
  }
  absl::Status SnapshotState(int64_t id, PendingOperatorSnapshot* out) override {
    this->RunUserCode([&] { SnapshotFunctionState(fn_, id, out->snapshot); });
    return absl::OkStatus();
  }
  void NotifyCheckpointComplete(int64_t id) override {
    this->RunUserCode([&] { NotifyFunctionCheckpointComplete(fn_, id); });
  }
  void NotifyCheckpointAborted(int64_t id) override {
    this->RunUserCode([&] { NotifyFunctionCheckpointAborted(fn_, id); });
  }

 protected:
  F fn_;
  std::optional<RuntimeContext> runtime_;
};

/// A one-input operator running a user function.
template <typename In, typename Out, typename F>
class UdfOperator : public FunctionOperator<OneInputOperatorWithOutput<In, Out>, F> {
 public:
  using FunctionOperator<OneInputOperatorWithOutput<In, Out>, F>::FunctionOperator;

 protected:
  Batch<Out> out_;
};

template <typename In, typename Out, typename F>
class MapOperator final : public UdfOperator<In, Out, F> {
 public:
  using UdfOperator<In, Out, F>::UdfOperator;
  void ProcessBatch(Batch<In>& batch) override {
    this->RunUserCode([&] {
      for (const auto& r : batch) this->out_.Add(CallMap(this->fn_, r.value), r.timestamp);
    });
    this->Emit(this->out_);
  }
};

/// Keeps records in place: the surviving ones are compacted and the same batch goes on.
template <typename T, typename F>
class FilterOperator final : public UdfOperator<T, T, F> {
 public:
  using UdfOperator<T, T, F>::UdfOperator;
  void ProcessBatch(Batch<T>& batch) override {
    auto& records = batch.records();
    size_t kept = 0;
    this->RunUserCode([&] {
      for (size_t i = 0; i < records.size(); ++i) {
        if (CallFilter(this->fn_, records[i].value)) {
          if (kept != i) records[kept] = std::move(records[i]);
          ++kept;
        }
      }
    });
    records.resize(kept);
    this->Emit(batch);
  }
};

template <typename In, typename Out, typename F>
class FlatMapOperator final : public UdfOperator<In, Out, F> {
 public:
  using UdfOperator<In, Out, F>::UdfOperator;
  void ProcessBatch(Batch<In>& batch) override {
    Collector<Out> collector(&this->out_, kNoTimestamp);
    this->RunUserCode([&] {
      for (const auto& r : batch) {
        collector.set_timestamp(r.timestamp);
        CallFlatMap(this->fn_, r.value, collector);
      }
    });
    this->Emit(this->out_);
  }
};

/// Runs a ProcessFunction (non-keyed: time access, no state or timers).
template <typename In, typename Out, typename F>
class ProcessOperator final : public UdfOperator<In, Out, F> {
 public:
  using UdfOperator<In, Out, F>::UdfOperator;
  void Open() override {
    side_outputs_.CountDroppedIn(*this->ctx_.metrics);
    UdfOperator<In, Out, F>::Open();
  }
  void SetSideOutput(const std::string& tag, std::type_index type, ErasedOutput* output) override {
    side_outputs_.Connect(tag, type, output);
  }
  void ProcessBatch(Batch<In>& batch) override {
    typename ProcessFunction<In, Out>::Context ctx(this->ctx_.processing_time, &watermark_,
                                                   &side_outputs_);
    Collector<Out> collector(&this->out_, kNoTimestamp);
    this->RunUserCode([&] {
      for (const auto& r : batch) {
        ctx.set_timestamp(r.timestamp);
        collector.set_timestamp(r.timestamp);
        this->fn_.ProcessElement(r.value, ctx, collector);
      }
    });
    this->Emit(this->out_);
    side_outputs_.Flush();
  }
  void ProcessWatermark(Timestamp watermark) override {
    watermark_ = watermark;
    this->output_->PushWatermark(watermark);
  }

 private:
  Timestamp watermark_ = kMinWatermark;
  SideOutputs side_outputs_;
};

}  // namespace sluice::internal
