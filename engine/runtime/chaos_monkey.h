#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"

namespace sluice::internal {

/// The chaos option (--chaos-kill-task-every, --chaos-max-failures): every so often (a
/// random time around `every`) it picks a random task and a kind of moment — any point
/// between records, during barrier alignment, or during the asynchronous snapshot phase —
/// and that task crashes (throws) when it next reaches such a moment. Stops after
/// `max_failures` crashes. Lets users check that their job's output survives failures.
class ChaosMonkey {
 public:
  enum class Moment { kAny, kAlignment, kAsyncSnapshot };

  ChaosMonkey(absl::Duration every, int max_failures, uint64_t seed);
  ~ChaosMonkey();

  /// Arms the monkey for one attempt of the job; `has_inputs[i]` tells whether task i has
  /// inputs (only those align barriers). EndAttempt() before the tasks go away.
  void BeginAttempt(std::vector<bool> has_inputs);
  void EndAttempt();

  /// Called by task `task_index` at a moment of kind `moment`: throws the simulated crash
  /// if the monkey chose this task and moment. Cheap when it did not.
  void MaybeCrash(int task_index, Moment moment, const std::string& task_name);

  int failures() const { return failures_.load(std::memory_order_relaxed); }
  int max_failures() const { return max_failures_; }

 private:
  void Loop(std::vector<bool> has_inputs);

  const absl::Duration every_;
  const int max_failures_;
  std::mt19937_64 rng_;
  std::atomic<int> failures_{0};
  // The chosen victim: task index * 4 + moment, or -1.
  std::atomic<int> victim_{-1};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sluice::internal
