#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sluice/core/backoff.h"
#include "sluice/function/functions.h"
#include "sluice/operator/task_mailbox.h"

namespace sluice {

namespace internal {

/// Where the results of an operator's asynchronous requests go: to its task thread through
/// the task's mailbox, until the operator closes (later results are dropped). Shared by the
/// operator and every ResultFuture it handed out, which may outlive it.
template <typename Out>
class AsyncInbox : public std::enable_shared_from_this<AsyncInbox<Out>> {
 public:
  using Handler =
      std::function<void(uint64_t request, int attempt, absl::StatusOr<std::vector<Out>>)>;
  AsyncInbox(TaskMailbox* mailbox, Handler handler)
      : mailbox_(mailbox), handler_(std::move(handler)) {}

  /// Any thread: hands the result of `attempt` of `request` to the operator's task thread.
  void Deliver(uint64_t request, int attempt, absl::StatusOr<std::vector<Out>> result) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    mailbox_->Execute(
        [self = this->shared_from_this(), request, attempt, result = std::move(result)]() mutable {
          // On the task thread, where the operator closes: what was posted before it closed
          // and runs after is dropped here.
          if (!self->closed_) self->handler_(request, attempt, std::move(result));
        });
  }
  /// Task thread, when the operator closes: nothing is delivered any more.
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }

 private:
  std::mutex mu_;
  bool closed_ = false;  // written under mu_ on the task thread, which may read it without
  TaskMailbox* const mailbox_;
  const Handler handler_;
};

}  // namespace internal

/// The handle through which an asynchronous request completes: call Complete (with zero or
/// more results) or CompleteExceptionally once, from any thread, at any time; later calls
/// are ignored, as are calls after the request timed out or the job ended. Copyable: the
/// copies complete the same request.
template <typename Out>
class ResultFuture {
 public:
  ResultFuture(std::shared_ptr<internal::AsyncInbox<Out>> inbox, uint64_t request, int attempt)
      : state_(std::make_shared<State>(std::move(inbox), request, attempt)) {}

  void Complete(std::vector<Out> results) { Finish(std::move(results)); }
  void Complete(Out result) {
    std::vector<Out> one;
    one.push_back(std::move(result));
    Finish(std::move(one));
  }
  /// The request failed: it is retried if the operator's retry policy allows, else the task
  /// fails with `error`, naming the record.
  void CompleteExceptionally(absl::Status error) { Finish(std::move(error)); }
  bool done() const { return state_->done.load(std::memory_order_acquire); }

 private:
  struct State {
    State(std::shared_ptr<internal::AsyncInbox<Out>> i, uint64_t r, int a)
        : inbox(std::move(i)), request(r), attempt(a) {}
    std::shared_ptr<internal::AsyncInbox<Out>> inbox;
    uint64_t request;
    int attempt;
    std::atomic<bool> done{false};
  };
  void Finish(absl::StatusOr<std::vector<Out>> result) {
    if (state_->done.exchange(true, std::memory_order_acq_rel)) return;
    state_->inbox->Deliver(state_->request, state_->attempt, std::move(result));
  }
  std::shared_ptr<State> state_;
};

/// Enriches each record by a request to something outside the job (a REST service, a
/// database) without waiting for it on the task thread: AsyncInvoke starts the request and
/// returns; the result arrives later through the ResultFuture, from any thread. Used with
/// DataStream::AsyncWait, which keeps up to `capacity` requests in flight per subtask.
///
/// AsyncInvoke must not block (a blocking client belongs on a thread pool of the function's
/// own, which then completes the future). Each subtask works on its own copy of the function.
template <typename In, typename Out>
class AsyncFunction : public RichFunction {
 public:
  using InputType = In;
  using OutputType = Out;
  /// Task thread: start the request for `input`; complete `result` when it is answered.
  virtual void AsyncInvoke(const In& input, ResultFuture<Out> result) = 0;
  /// Task thread: the request for `input` did not complete within the timeout (its own late
  /// answer is then ignored). Complete `result` with a fallback (or with nothing, to drop the
  /// record) or fail it. Default: the task fails, naming the record.
  virtual void Timeout(const In& /*input*/, ResultFuture<Out> result) {
    result.CompleteExceptionally(absl::DeadlineExceededError("no answer within the timeout"));
  }
};

/// Retrying failed requests: a request completed exceptionally is invoked again after a
/// backoff, up to `max_attempts` attempts in all (1: no retries). Retries stay within the
/// request's timeout, which counts from its first attempt.
struct AsyncRetryPolicy {
  int max_attempts = 1;
  BackoffPolicy backoff{absl::Milliseconds(100), absl::Seconds(10), 2.0, 0.2};
  /// Which errors are worth another attempt (null: all).
  std::function<bool(const absl::Status&)> retry_if;
};

/// How AsyncWait runs its function. Sizing: to sustain a throughput of R records/s per
/// subtask against a service answering in L seconds, `capacity` must be at least R x L (Little's
/// law; e.g. 5,000/s at 20 ms needs 100), and `timeout` well above the service's slowest
/// normal answer (its p99.9), not its average: a timeout fails the job unless the function's
/// Timeout() handles it.
struct AsyncOptions {
  /// Requests in flight per subtask; when all are taken the operator stops taking input
  /// (back pressure upstream) until one completes.
  int capacity = 100;
  /// From the first attempt of a request to its Timeout() call.
  absl::Duration timeout = absl::Seconds(30);
  /// Results in input order (a slow request holds back those behind it), or as they
  /// complete. Either way no result crosses a watermark: those of records before it are
  /// emitted before it, those after it after it.
  bool ordered = true;
  AsyncRetryPolicy retry;
};

}  // namespace sluice
