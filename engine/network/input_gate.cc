#include "sluice/network/input_gate.h"

#include <algorithm>

namespace sluice {

InputGate::InputGate(int num_channels, int capacity_batches_per_channel)
    : capacity_(std::max(1, capacity_batches_per_channel)), channels_(num_channels) {}

bool InputGate::Push(int channel, ChannelEvent event) {
  const bool is_batch = event.kind == ChannelEvent::Kind::kBatch;
  absl::MutexLock lock(&mu_);
  if (is_batch) {
    auto has_room = [this, channel]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return canceled_ || channels_[channel].queued_batches < capacity_;
    };
    mu_.Await(absl::Condition(&has_room));
  }
  if (canceled_) return false;
  Channel& ch = channels_[channel];
  if (is_batch) {
    ch.queued_batches++;
    queued_records_ += static_cast<int64_t>(event.batch->size());
    max_queued_records_ = std::max(max_queued_records_, queued_records_);
  }
  ch.events.push_back(std::move(event));
  queued_events_++;
  return true;
}

bool InputGate::HasEvent() const { return queued_events_ > 0; }

InputGate::NextResult InputGate::Next(absl::Time deadline, int* channel, ChannelEvent* event) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return canceled_ || HasEvent(); };
  if (!mu_.AwaitWithDeadline(absl::Condition(&ready), deadline)) return NextResult::kTimeout;
  if (canceled_) return NextResult::kCanceled;
  const int n = static_cast<int>(channels_.size());
  for (int i = 0; i < n; ++i) {
    int c = (next_channel_ + i) % n;
    Channel& ch = channels_[c];
    if (ch.events.empty()) continue;
    *event = std::move(ch.events.front());
    ch.events.pop_front();
    queued_events_--;
    if (event->kind == ChannelEvent::Kind::kBatch) {
      ch.queued_batches--;
      queued_records_ -= static_cast<int64_t>(event->batch->size());
    }
    *channel = c;
    next_channel_ = (c + 1) % n;
    return NextResult::kEvent;
  }
  return NextResult::kTimeout;  // unreachable: HasEvent() held
}

void InputGate::Cancel() {
  absl::MutexLock lock(&mu_);
  canceled_ = true;
}

int64_t InputGate::max_queued_records() const {
  absl::MutexLock lock(&mu_);
  return max_queued_records_;
}

}  // namespace sluice
