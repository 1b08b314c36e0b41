#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "sluice/core/mutex.h"
#include "sluice/core/record.h"
#include "sluice/core/time.h"
#include "sluice/internal/network/channel_event.h"
#include "sluice/internal/network/channel_sink.h"

namespace sluice::internal {

/// The inputs of one task: one bounded queue per input channel (one per upstream subtask),
/// all under one mutex so the task can wait for any of them. Producers block while their
/// channel holds `capacity` batches: that is back pressure, and it bounds memory. Control
/// events never block (they are few and must not deadlock a draining consumer).
///
/// Thread-safety: Push() from any producer thread, Next() from the owning task thread only.
/// Uses Mutex rather than absl::Mutex: Debian's Abseil is not built for ThreadSanitizer,
/// so TSan cannot see the ordering an absl::Mutex provides and reports false races.
class InputGate final : public ChannelSink {
 public:
  enum class NextResult { kEvent, kTimeout, kCanceled, kFailed };

  InputGate(int num_channels, int capacity_batches_per_channel);

  /// Appends to `channel`, blocking while it is full. Returns false if the gate was
  /// canceled (the event is dropped: the job is going down).
  bool Push(int channel, ChannelEvent event) override;
  /// Called (on the consumer's thread, outside the gate's lock) each time the consumer took
  /// a batch from `channel`: a remote producer may send another (its credit). Set before use.
  void SetBatchConsumedCallback(std::function<void(int channel)> callback) {
    batch_consumed_ = std::move(callback);
  }

  /// Takes the next event from any channel (round robin among non-empty ones), waiting
  /// until `deadline` at most. Channels marked in `blocked` (barrier alignment) are left
  /// alone: their events stay queued, and their producers feel back pressure.
  NextResult Next(absl::Time deadline, int* channel, ChannelEvent* event,
                  const std::vector<bool>* blocked = nullptr);

  /// Makes the current (or next) Next() return kTimeout at once: the task has other work
  /// (a checkpoint notification). Any thread.
  void Wake();
  /// Wakes every waiter; all later calls return at once.
  void Cancel();
  /// An input can never deliver the rest of its stream (its producer's process died): the
  /// consumer's Next() returns kFailed from now on, and failure() says why. Any thread.
  void Fail(std::string why);
  std::string failure() const;

  int num_channels() const { return num_channels_; }
  /// The most records that were ever queued in this gate at once.
  int64_t max_queued_records() const;

 private:
  struct Channel {
    std::deque<ChannelEvent> events;
    int queued_batches = 0;
  };
  const int capacity_;
  const int num_channels_;
  mutable Mutex mu_;
  CondVar has_event_;  // the consumer waits here
  CondVar has_room_;   // producers of full channels wait here
  std::vector<Channel> channels_ SLUICE_GUARDED_BY(mu_);
  int next_channel_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t queued_records_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t max_queued_records_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t queued_events_ SLUICE_GUARDED_BY(mu_) = 0;
  bool canceled_ SLUICE_GUARDED_BY(mu_) = false;
  bool woken_ SLUICE_GUARDED_BY(mu_) = false;
  std::string failure_ SLUICE_GUARDED_BY(mu_);
  std::function<void(int)> batch_consumed_;  // set before use, then read only
};

}  // namespace sluice::internal
