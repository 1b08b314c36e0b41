#pragma once

#include "sluice/core/time.h"

namespace sluice {

/// What a keyed function uses to read time and to set timers for the current key.
/// Timers are per key (and namespace) and timestamp: registering the same one twice fires
/// it once. Event-time timers fire when the watermark reaches their time; processing-time
/// timers when the task's clock does. Task thread only.
class TimerService {
 public:
  virtual ~TimerService() = default;
  virtual Timestamp CurrentProcessingTime() const = 0;
  virtual Timestamp CurrentWatermark() const = 0;
  virtual void RegisterEventTimeTimer(Timestamp time) = 0;
  virtual void RegisterProcessingTimeTimer(Timestamp time) = 0;
  virtual void DeleteEventTimeTimer(Timestamp time) = 0;
  virtual void DeleteProcessingTimeTimer(Timestamp time) = 0;
};

/// Schedules processing-time callbacks on the task's own thread. Implemented by the task:
/// the task wakes at the earliest requested time and calls the target.
class ProcessingTimeService {
 public:
  class Target {
   public:
    virtual ~Target() = default;
    /// Called on the task thread once the clock has reached a requested time.
    virtual void OnProcessingTime(Timestamp now) = 0;
  };
  virtual ~ProcessingTimeService() = default;
  virtual Timestamp CurrentProcessingTime() const = 0;
  /// Asks for `target->OnProcessingTime()` once the clock reaches `time`.
  virtual void ScheduleAt(Timestamp time, Target* target) = 0;
};

}  // namespace sluice
