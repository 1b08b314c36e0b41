#include "sluice/internal/network/input_gate.h"

#include <algorithm>

#include "sluice/internal/metrics/back_pressure.h"

namespace sluice::internal {

InputGate::InputGate(int num_channels, int capacity_batches_per_channel)
    : capacity_(std::max(1, capacity_batches_per_channel)),
      num_channels_(num_channels),
      channels_(num_channels) {}

bool InputGate::Push(int channel, ChannelEvent event) {
  const bool is_batch = event.kind == ChannelEvent::Kind::kBatch;
  UniqueMutexLock lock(&mu_);
  Channel& ch = channels_[channel];
  auto has_room = [&]() SLUICE_REQUIRES(mu_) { return canceled_ || ch.queued_batches < capacity_; };
  if (is_batch && !has_room()) {
    ScopedBackPressure blocked;
    has_room_.Wait(&mu_, has_room);
  }
  if (canceled_) return false;
  if (is_batch) {
    ch.queued_batches++;
    queued_records_ += static_cast<int64_t>(event.batch->size());
    max_queued_records_ = std::max(max_queued_records_, queued_records_);
  }
  ch.events.push_back(std::move(event));
  queued_events_++;
  lock.Unlock();
  has_event_.Signal();
  return true;
}

InputGate::NextResult InputGate::Next(absl::Time deadline, int* channel, ChannelEvent* event,
                                      const std::vector<bool>* blocked) {
  UniqueMutexLock lock(&mu_);
  const int n = num_channels_;
  auto available = [&](int c) SLUICE_REQUIRES(mu_) {
    return !channels_[c].events.empty() && (blocked == nullptr || !(*blocked)[c]);
  };
  auto ready = [&]() SLUICE_REQUIRES(mu_) {
    if (canceled_ || woken_ || !failure_.empty()) return true;
    if (queued_events_ == 0) return false;
    for (int c = 0; c < n; ++c) {
      if (available(c)) return true;
    }
    return false;
  };
  if (!has_event_.WaitUntil(&mu_, deadline, ready)) return NextResult::kTimeout;
  if (canceled_) return NextResult::kCanceled;
  if (!failure_.empty()) return NextResult::kFailed;
  if (woken_) {
    woken_ = false;
    return NextResult::kTimeout;
  }
  for (int i = 0; i < n; ++i) {
    int c = (next_channel_ + i) % n;
    if (!available(c)) continue;
    Channel& ch = channels_[c];
    *event = std::move(ch.events.front());
    ch.events.pop_front();
    queued_events_--;
    *channel = c;
    next_channel_ = (c + 1) % n;
    if (event->kind == ChannelEvent::Kind::kBatch) {
      ch.queued_batches--;
      queued_records_ -= static_cast<int64_t>(event->batch->size());
      lock.Unlock();
      // Producers of different channels share the condition: wake them all, it is once
      // per buffer, not per record.
      has_room_.SignalAll();
      if (batch_consumed_) batch_consumed_(c);
    }
    return NextResult::kEvent;
  }
  return NextResult::kTimeout;  // unreachable: ready() found an event
}

void InputGate::Wake() {
  {
    MutexLock lock(&mu_);
    woken_ = true;
  }
  has_event_.SignalAll();
}

void InputGate::Cancel() {
  {
    MutexLock lock(&mu_);
    canceled_ = true;
  }
  has_event_.SignalAll();
  has_room_.SignalAll();
}

void InputGate::Fail(std::string why) {
  {
    MutexLock lock(&mu_);
    if (failure_.empty()) failure_ = std::move(why);
  }
  has_event_.SignalAll();
}

std::string InputGate::failure() const {
  MutexLock lock(&mu_);
  return failure_;
}

int64_t InputGate::max_queued_records() const {
  MutexLock lock(&mu_);
  return max_queued_records_;
}

}  // namespace sluice::internal
