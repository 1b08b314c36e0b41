#pragma once

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "sluice/core/mutex.h"

namespace sluice::internal {

/// What the chaos option was asked for (JobConfig's chaos_* settings).
struct ChaosOptions {
  /// A crash about this often (jittered 0.5x-1.5x), chosen by a thread of the monkey...
  absl::Duration every = absl::ZeroDuration();
  /// ...or, when positive, once per attempt after about this many records of the chosen
  /// task (jittered the same way): the same seed on the same input crashes the same task at
  /// the same kind of moment after the same number of records, so a failing run replays.
  int64_t every_records = 0;
  int max_failures = 3;
  uint64_t seed = 0;
};

/// The chaos option (--chaos-kill-task-every, --chaos-kill-task-every-records,
/// --chaos-max-failures, --chaos-seed): picks a task and a kind of moment, and that task
/// crashes (throws) when it next reaches such a moment — between records, during barrier
/// alignment, in the synchronous or asynchronous snapshot phase, after acknowledging a
/// checkpoint (before it completes), while checkpoint completion is delivered (sinks
/// commit), or right after a restore. Stops after `max_failures` crashes. Every choice comes
/// from the seed. Lets users check that their job's output survives failures.
class ChaosMonkey {
 public:
  enum class Moment {
    kAny,
    kAlignment,
    kSyncSnapshot,
    kAsyncSnapshot,
    kAfterAck,
    kNotifyComplete,
    kRestore,
  };
  static constexpr int kMoments = 7;

  explicit ChaosMonkey(ChaosOptions options);
  ~ChaosMonkey();

  /// One task the monkey may pick: its name (for the log) and whether it has inputs (only
  /// those align barriers).
  struct Target {
    std::string name;
    bool has_inputs = false;
  };

  /// Arms the monkey for one attempt of the job over `tasks` (task i is tasks[i]); `restored`
  /// tells whether the attempt starts from a checkpoint (only then can a restore crash).
  /// EndAttempt() before the tasks go away.
  void BeginAttempt(std::vector<Target> tasks, bool restored);
  void EndAttempt();

  /// Called by task `task_index`, which has processed `records` records in this attempt, at
  /// a moment of kind `moment`: throws the simulated crash if the monkey chose this task and
  /// moment and the task is far enough. Cheap when it did not.
  void MaybeCrash(int task_index, Moment moment, const std::string& task_name, int64_t records);

  int failures() const { return failures_.load(std::memory_order_relaxed); }
  int max_failures() const { return options_.max_failures; }

 private:
  /// Draws the next victim from the seed (under the caller's exclusivity).
  void ChooseVictim(const std::vector<Target>& tasks, bool restored, int64_t after_records);
  void Loop(std::vector<Target> tasks);

  const ChaosOptions options_;
  std::mt19937_64 rng_;
  std::atomic<int> failures_{0};
  // The chosen victim: task index * kMoments + moment, or -1; and the records it must reach.
  std::atomic<int> victim_{-1};
  std::atomic<int64_t> victim_records_{0};
  Mutex mu_;
  CondVar cv_;
  bool stop_ SLUICE_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sluice::internal
