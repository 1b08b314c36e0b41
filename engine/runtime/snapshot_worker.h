#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <utility>

#include "sluice/core/mutex.h"

namespace sluice::internal {

/// The thread of a task that runs the asynchronous part of its checkpoints (serializing
/// frozen state, writing files, acknowledging), in order, while the task thread goes on
/// processing. Started on first use.
class SnapshotWorker {
 public:
  SnapshotWorker() = default;
  SnapshotWorker(const SnapshotWorker&) = delete;
  SnapshotWorker& operator=(const SnapshotWorker&) = delete;
  ~SnapshotWorker() { Stop(); }

  void Submit(std::function<void()> job) {
    {
      MutexLock lock(&mu_);
      if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
      jobs_.push_back(std::move(job));
    }
    cv_.SignalAll();
  }

  /// Runs what was submitted, then ends the thread. Jobs must see for themselves whether
  /// the task was canceled (and then skip their work).
  void Stop() {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
    }
    cv_.SignalAll();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    UniqueMutexLock lock(&mu_);
    while (true) {
      cv_.Wait(&mu_, [&]() SLUICE_REQUIRES(mu_) { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping and drained
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.Unlock();
      job();
      lock.Lock();
    }
  }

  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> jobs_ SLUICE_GUARDED_BY(mu_);
  bool stopping_ SLUICE_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sluice::internal
