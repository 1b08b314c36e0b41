#pragma once

#include <algorithm>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sluice/core/format.h"
#include "sluice/function/async_function.h"
#include "sluice/operators/basic_operators.h"
#include "sluice/serialization/struct_macro.h"

namespace sluice::internal {

/// One element of an AsyncWaitOperator's queue as a checkpoint stores it: a record whose
/// request was in flight (or answered, its results not yet emitted), or a watermark the
/// operator still held back. Restored records are requested again.
struct AsyncQueueItem {
  bool is_watermark = false;
  Timestamp timestamp = kNoTimestamp;  // the record's, or the watermark
  std::string record;                  // serialized
  int32_t parallelism = 0;             // of the subtask that stored it
};
SLUICE_SERIALIZABLE(AsyncQueueItem, is_watermark, timestamp, record, parallelism)

/// Runs an AsyncFunction (DataStream::AsyncWait): up to `capacity` requests in flight, results
/// emitted in input order or as they complete, never across a watermark. A full queue blocks
/// the task thread in ProcessBatch, answers still arriving through the task's mailbox (back
/// pressure upstream); Finish waits for every answer. Timeouts and retries are checked on the
/// task thread: by a processing-time callback while input flows, by the waits otherwise.
template <typename In, typename Out, typename F>
class AsyncWaitOperator final : public UdfOperator<In, Out, F> {
  // The operator's state is its queue; a function's own list items could not be told apart.
  static_assert(!std::is_base_of_v<CheckpointedFunctionBase, F>,
                "an AsyncFunction cannot be a CheckpointedFunction: the in-flight requests "
                "are the operator's state");

 public:
  AsyncWaitOperator(F f, AsyncOptions options)
      : UdfOperator<In, Out, F>(std::move(f)), options_(std::move(options)) {}
  ~AsyncWaitOperator() override {
    if (inbox_) inbox_->Close();
  }

  void Open() override {
    MetricGroup& m = *this->ctx_.metrics;
    in_flight_gauge_ = &m.GetGauge("async_in_flight", "Asynchronous requests in flight.");
    completed_ = &m.GetCounter("async_completed", "Asynchronous requests answered.");
    timed_out_ = &m.GetCounter("async_timed_out", "Asynchronous requests that timed out.");
    retried_ = &m.GetCounter("async_retried", "Retries of failed asynchronous requests.");
    latency_ =
        &m.GetHistogram("async_latency_seconds", "From a request's first attempt to its answer.");
    inbox_ = std::make_shared<AsyncInbox<Out>>(
        this->ctx_.mailbox,
        [this](uint64_t request, int attempt, absl::StatusOr<std::vector<Out>> result) {
          OnAnswer(request, attempt, std::move(result));
        });
    // The function opens first, then the requests the checkpoint held go out again.
    std::optional<RestoredOperatorState> restored = std::move(this->restored_);
    this->restored_.reset();
    this->runtime_.emplace(this->ctx_.info, this->ctx_.processing_time, this->ctx_.metrics);
    this->RunUserCode([&] { OpenIfRich(this->fn_, *this->runtime_); });
    if (restored) {
      for (const std::string& bytes : restored->operator_state) {
        auto item = DeserializeFromString<AsyncQueueItem>(bytes, "async queue item");
        ThrowIfError(item.status());
        if (item->is_watermark) {
          // Only where the subtask holds what it held (at another parallelism the inputs
          // were dealt out anew, and their watermarks come again from upstream).
          if (item->parallelism == this->ctx_.info.parallelism) ProcessWatermark(item->timestamp);
          continue;
        }
        auto record = DeserializeFromString<In>(item->record, "async queue record");
        ThrowIfError(record.status());
        Add(std::move(*record), item->timestamp);
      }
    }
  }

  void Close() override {
    if (inbox_) inbox_->Close();
    UdfOperator<In, Out, F>::Close();
  }

  void ProcessBatch(Batch<In>& batch) override {
    for (auto& r : batch) Add(std::move(r.value), r.timestamp);
  }

  void ProcessWatermark(Timestamp watermark) override {
    Entry e;
    e.is_watermark = true;
    e.timestamp = watermark;
    PassOrHold(std::move(e));
  }

  /// An idle-status change waits behind the records before it, as a watermark does: going
  /// idle ahead of them would let downstream watermarks pass them.
  void ProcessIdle(bool idle) override {
    Entry e;
    e.is_idle_change = true;
    e.idle = idle;
    PassOrHold(std::move(e));
  }

  void Finish() override {
    while (!queue_.empty()) Wait();
  }

  absl::Status SnapshotState(int64_t /*id*/, PendingOperatorSnapshot* out) override {
    std::vector<std::string>& items = out->snapshot.operator_state;
    items.reserve(queue_.size());
    for (const Entry& e : queue_) {
      if (e.is_idle_change) continue;  // upstream says it again after a restore
      AsyncQueueItem item;
      item.is_watermark = e.is_watermark;
      item.timestamp = e.timestamp;
      if (!e.is_watermark) item.record = SerializeToString(e.input);
      item.parallelism = this->ctx_.info.parallelism;
      items.push_back(SerializeToString(item));
    }
    return absl::OkStatus();
  }

 private:
  struct Entry {
    uint64_t request = 0;
    bool is_watermark = false;
    bool is_idle_change = false;
    bool idle = false;  // of an idle-status change
    Timestamp timestamp = kNoTimestamp;
    In input{};
    int attempt = 0;         // the attempt whose answer counts (Timeout() makes one too)
    int invocations = 0;     // AsyncInvoke calls
    bool answered = false;   // results are in `results`
    bool timed_out = false;  // Timeout() was called: its answer is final
    std::vector<Out> results;
    absl::Time started;                            // first attempt
    absl::Time deadline;                           // Timeout() is due
    absl::Time retry_at = absl::InfiniteFuture();  // the next attempt is due
    std::optional<Backoff> backoff;
    bool is_marker() const { return is_watermark || is_idle_change; }
  };

  /// Takes one record: waits while all capacity is taken, then starts its request.
  void Add(In value, Timestamp timestamp) {
    while (in_flight_ >= std::max(1, options_.capacity)) Wait();
    Entry e;
    e.request = next_request_++;
    e.input = std::move(value);
    e.timestamp = timestamp;
    e.started = absl::Now();
    e.deadline = e.started + options_.timeout;
    auto it = queue_.insert(queue_.end(), std::move(e));
    by_request_[it->request] = it;
    ++in_flight_;
    in_flight_gauge_->Set(static_cast<double>(in_flight_));
    Invoke(*it);
    ScheduleCheck(it->deadline);
  }

  void Invoke(Entry& e) {
    ++e.invocations;
    ResultFuture<Out> future(inbox_, e.request, e.attempt);
    this->RunUserCode([&] { this->fn_.AsyncInvoke(e.input, std::move(future)); });
  }

  /// Task thread: an answer arrived through the mailbox.
  void OnAnswer(uint64_t request, int attempt, absl::StatusOr<std::vector<Out>> result) {
    auto found = by_request_.find(request);
    if (found == by_request_.end()) return;  // emitted already
    Entry& e = *found->second;
    if (e.answered || attempt != e.attempt) return;  // an attempt given up on
    if (!result.ok()) {
      const bool retry = !e.timed_out && e.attempt + 1 < options_.retry.max_attempts &&
                         (!options_.retry.retry_if || options_.retry.retry_if(result.status()));
      if (retry) {
        if (!e.backoff) e.backoff.emplace(options_.retry.backoff);
        e.retry_at = absl::Now() + e.backoff->Next();
        ++e.attempt;  // answers of the failed attempt no longer count
        retried_->Inc();
        ScheduleCheck(e.retry_at);
        return;
      }
      throw OperatorFailure(
          this->name(),
          absl::StrCat("asynchronous request for record '", ToString(e.input), "' failed",
                       e.timed_out ? " (timed out)" : "",
                       e.invocations > 1 ? absl::StrCat(" after ", e.invocations, " attempts")
                                         : std::string(),
                       ": ", result.status().ToString()));
    }
    e.answered = true;
    e.results = std::move(*result);
    --in_flight_;
    in_flight_gauge_->Set(static_cast<double>(in_flight_));
    completed_->Inc();
    latency_->Observe(absl::ToDoubleSeconds(absl::Now() - e.started));
    EmitReady();
  }

  /// Emits what may go: in order, the answered head of the queue and the watermarks (and idle
  /// changes) after it; unordered, every answered record before the first watermark, and that
  /// watermark once nothing is before it.
  void EmitReady() {
    auto it = queue_.begin();
    while (it != queue_.end()) {
      if (it->is_marker()) {
        if (it != queue_.begin()) break;  // records before it are still out
        EmitMarker(*it);
        it = queue_.erase(it);
        continue;
      }
      if (!it->answered) {
        if (options_.ordered) break;
        ++it;
        continue;
      }
      for (Out& r : it->results) this->out_.Add(std::move(r), it->timestamp);
      this->Emit(this->out_);
      by_request_.erase(it->request);
      it = queue_.erase(it);
    }
  }

  /// A watermark or idle change goes on at once if no record is out, else after them.
  void PassOrHold(Entry marker) {
    if (queue_.empty()) {
      EmitMarker(marker);
    } else {
      queue_.push_back(std::move(marker));
    }
  }

  void EmitMarker(const Entry& marker) {
    if (marker.is_watermark) {
      this->output_->PushWatermark(marker.timestamp);
    } else {
      this->output_->PushIdle(marker.idle);
    }
  }

  /// Task thread: calls Timeout() for requests past their deadline and starts the retries
  /// that are due.
  void CheckDue() {
    const absl::Time now = absl::Now();
    for (Entry& e : queue_) {
      if (e.is_marker() || e.answered) continue;
      if (!e.timed_out && now >= e.deadline) {
        e.timed_out = true;
        e.retry_at = absl::InfiniteFuture();
        ++e.attempt;  // the late answer of the attempt in flight no longer counts
        timed_out_->Inc();
        ResultFuture<Out> future(inbox_, e.request, e.attempt);
        this->RunUserCode([&] { this->fn_.Timeout(e.input, std::move(future)); });
      } else if (now >= e.retry_at) {
        e.retry_at = absl::InfiniteFuture();
        Invoke(e);
      }
    }
  }

  /// The earliest moment a check is due (a deadline or a retry).
  absl::Time NextDue() const {
    absl::Time next = absl::InfiniteFuture();
    for (const Entry& e : queue_) {
      if (e.is_marker() || e.answered) continue;
      next = std::min(next, e.timed_out ? e.retry_at : std::min(e.deadline, e.retry_at));
    }
    return next;
  }

  /// Blocks the task thread until an answer arrives or a check is due, and handles either.
  void Wait() {
    // Bounded, so that a clock jump or a lost wake-up costs at most a moment.
    this->ctx_.mailbox->Yield(std::min(NextDue(), absl::Now() + absl::Milliseconds(100)));
    CheckDue();
  }

  /// Asks the task for a processing-time callback at `due` (or earlier), to check requests
  /// while the task thread is not waiting in this operator.
  void ScheduleCheck(absl::Time due) {
    if (check_pending_ && due >= scheduled_check_) return;
    scheduled_check_ = due;
    check_pending_ = true;
    ProcessingTimeService* pts = this->ctx_.processing_time;
    const Timestamp at =
        pts->CurrentProcessingTime() + absl::ToInt64Milliseconds(due - absl::Now()) + 1;
    pts->ScheduleAt(at, &check_);
  }

  class Check final : public ProcessingTimeService::Target {
   public:
    explicit Check(AsyncWaitOperator* op) : op_(op) {}
    void OnProcessingTime(Timestamp /*now*/) override {
      // A callback that an earlier one replaced: the one scheduled now is still to come.
      if (absl::Now() < op_->scheduled_check_) return;
      op_->check_pending_ = false;
      op_->CheckDue();
      const absl::Time next = op_->NextDue();
      if (next != absl::InfiniteFuture()) op_->ScheduleCheck(next);
    }

   private:
    AsyncWaitOperator* op_;
  };

  const AsyncOptions options_;
  std::shared_ptr<AsyncInbox<Out>> inbox_;
  std::list<Entry> queue_;  // input order, watermarks included
  absl::flat_hash_map<uint64_t, typename std::list<Entry>::iterator> by_request_;
  uint64_t next_request_ = 0;
  int in_flight_ = 0;                                  // records of the queue not yet answered
  absl::Time scheduled_check_ = absl::InfinitePast();  // of the pending check callback
  bool check_pending_ = false;
  Check check_{this};
  Gauge* in_flight_gauge_ = nullptr;
  Counter* completed_ = nullptr;
  Counter* timed_out_ = nullptr;
  Counter* retried_ = nullptr;
  Histogram* latency_ = nullptr;
};

}  // namespace sluice::internal
