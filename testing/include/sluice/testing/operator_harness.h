#pragma once

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "sluice/graph/stream_graph.h"
#include "sluice/operator/stream_operator.h"

namespace sluice::testing {

/// An Output that keeps what reaches it, for operator tests.
template <typename T>
class CollectingOutput final : public Output<T> {
 public:
  void Push(Batch<T>& batch) override {
    for (auto& r : batch) records.push_back(Record<T>{r.value, r.timestamp});
  }
  void PushWatermark(Timestamp wm) override {
    watermarks.push_back(wm);
    records_before_watermark.push_back(records.size());
  }
  void PushIdle(bool idle) override { idle_changes.push_back(idle); }

  std::vector<T> Values() const {
    std::vector<T> v;
    for (const auto& r : records) v.push_back(r.value);
    return v;
  }
  std::vector<Record<T>> records;
  std::vector<Timestamp> watermarks;
  /// For each watermark, how many records had arrived before it.
  std::vector<size_t> records_before_watermark;
  std::vector<bool> idle_changes;
};

/// The task's mailbox as a harness has it: what other threads post runs on the test's
/// thread when the test says (RunMail), or when the operator yields.
class HarnessMailbox final : public TaskMailbox {
 public:
  void Execute(std::function<void()> action) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      actions_.push_back(std::move(action));
    }
    posted_.notify_all();
  }
  void Yield(absl::Time deadline) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      posted_.wait_for(lock, absl::ToChronoNanoseconds(deadline - absl::Now()),
                       [&] { return !actions_.empty(); });
    }
    RunMail();
  }
  /// Runs what was posted so far; returns how many actions ran.
  int RunMail() {
    std::vector<std::function<void()>> actions;
    {
      std::lock_guard<std::mutex> lock(mu_);
      actions.swap(actions_);
    }
    for (auto& a : actions) a();
    return static_cast<int>(actions.size());
  }

 private:
  std::mutex mu_;
  std::condition_variable posted_;
  std::vector<std::function<void()>> actions_;
};

/// Runs one operator instance outside a task, with processing time under the test's
/// control (as Flink's OneInputStreamOperatorTestHarness; `In` is the first input of a
/// two-input operator, ProcessElement2 feeds its second). The operator comes from a node
/// of a stream graph built with the public API, so tests declare it as a job would.
template <typename In, typename Out>
class OperatorHarness final : public ProcessingTimeService {
 public:
  OperatorHarness(const StreamGraph& graph, int node_id, int subtask = 0, int parallelism = 1) {
    const StreamNode& node = graph.nodes[node_id];
    op_ = node.factory->Create();
    OperatorContext ctx;
    ctx.info.job_name = graph.config.job_name;
    ctx.info.operator_name = node.name;
    ctx.info.subtask_index = subtask;
    ctx.info.parallelism = parallelism;
    ctx.info.checkpointing = graph.config.checkpoint_interval > absl::ZeroDuration();
    ctx.info.max_parallelism =
        node.max_parallelism > 0 ? node.max_parallelism : graph.config.default_max_parallelism;
    ctx.key_group_range = KeyGroupRangeForOperator(subtask, parallelism, ctx.info.max_parallelism);
    ctx.processing_time = this;
    ctx.mailbox = &mailbox_;
    ctx.metrics = &metrics_;
    op_->Setup(std::move(ctx), &output_);
  }

  /// Connects a side output; call before Open().
  template <typename X>
  CollectingOutput<X>* SideOutput(const std::string& tag) {
    auto out = std::make_shared<CollectingOutput<X>>();
    op_->SetSideOutput(tag, std::type_index(typeid(X)), out.get());
    side_outputs_.push_back(out);
    return out.get();
  }

  void Open() { op_->Open(); }
  void ProcessElement(In value, Timestamp ts = kNoTimestamp) {
    Batch<In> b;
    b.Add(std::move(value), ts);
    op_->AsInput()->PushErased(b);
  }
  /// A record for a two-input operator's second input.
  template <typename In2>
  void ProcessElement2(In2 value, Timestamp ts = kNoTimestamp) {
    Batch<In2> b;
    b.Add(std::move(value), ts);
    op_->AsSecondInput()->PushErased(b);
  }
  void ProcessWatermark(Timestamp wm) { op_->AsInput()->PushWatermark(wm); }
  void ProcessIdle(bool idle) { op_->AsInput()->PushIdle(idle); }
  void Finish() { op_->Finish(); }
  void Close() { op_->Close(); }

  /// Moves the clock and runs the processing-time callbacks that became due, in time order.
  void SetProcessingTime(Timestamp now) {
    now_ = now;
    for (;;) {
      auto it = std::min_element(scheduled_.begin(), scheduled_.end());
      if (it == scheduled_.end() || it->first > now_) break;
      Target* target = it->second;
      scheduled_.erase(it);
      target->OnProcessingTime(now_);
    }
  }

  Timestamp CurrentProcessingTime() const override { return now_; }
  void ScheduleAt(Timestamp time, Target* target) override { scheduled_.push_back({time, target}); }

  /// Runs what other threads posted to the operator's mailbox (as its task would between
  /// records); returns how many actions ran.
  int RunMail() { return mailbox_.RunMail(); }

  CollectingOutput<Out>& output() { return output_; }
  MetricGroup& metrics() { return metrics_; }
  StreamOperator& op() { return *op_; }

 private:
  HarnessMailbox mailbox_;
  std::unique_ptr<StreamOperator> op_;
  CollectingOutput<Out> output_;
  std::vector<std::shared_ptr<ErasedOutput>> side_outputs_;
  MetricGroup metrics_;
  Timestamp now_ = 0;
  std::vector<std::pair<Timestamp, Target*>> scheduled_;
};

}  // namespace sluice::testing
