#pragma once

#include "absl/time/clock.h"
#include "sluice/metrics/metrics.h"

namespace sluice::internal {

/// Where time the calling thread spends blocked on a full output channel is counted (in
/// nanoseconds); null for nowhere. Thread-local: a channel cannot know whose thread it
/// blocks, so each task sets it for its own.
void SetThreadBackPressureMeter(Meter* meter);
Meter* ThreadBackPressureMeter();

/// Counts the time until it goes as back pressure on the calling thread's meter. Made only
/// where a send is about to block, so an unblocked send reads no clock.
class ScopedBackPressure {
 public:
  ScopedBackPressure() : meter_(ThreadBackPressureMeter()) {
    if (meter_ != nullptr) start_ = absl::Now();
  }
  ~ScopedBackPressure() {
    if (meter_ != nullptr) meter_->Mark(absl::ToInt64Nanoseconds(absl::Now() - start_));
  }
  ScopedBackPressure(const ScopedBackPressure&) = delete;
  ScopedBackPressure& operator=(const ScopedBackPressure&) = delete;

 private:
  Meter* meter_;
  absl::Time start_;
};

}  // namespace sluice::internal
