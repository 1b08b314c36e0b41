#pragma once

#include <functional>

#include "absl/time/time.h"

namespace sluice {

/// Lets an operator act on its task thread when something happens on another thread (an
/// asynchronous request completed): what it posts runs on the task thread between records, in
/// the order posted, as Flink's mailbox does.
class TaskMailbox {
 public:
  virtual ~TaskMailbox() = default;
  /// Any thread, until the operator's Close() returned: runs `action` on the task thread
  /// between records (or in Yield).
  virtual void Execute(std::function<void()> action) = 0;
  /// Task thread, from inside the operator (waiting for room, or for the last results before
  /// Finish returns): runs the actions posted so far, or waits until one is posted or
  /// `deadline` passes. Throws TaskCanceled when the task is canceled meanwhile.
  virtual void Yield(absl::Time deadline) = 0;
};

}  // namespace sluice
