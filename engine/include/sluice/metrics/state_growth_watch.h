#pragma once

#include <map>
#include <string>
#include <vector>

#include "sluice/core/mutex.h"
#include "sluice/state/keyed_state_backend.h"

namespace sluice {

/// Watches each keyed state's entries from checkpoint to checkpoint and logs a warning when a
/// state without TTL grew at each of `checkpoints` checkpoints in a row: the shape of a state
/// leak (keys written and never cleared), which slows a job down little by little until its
/// checkpoints or its memory give out. Once per run of growth: a state that stops growing and
/// grows again for as long is reported again. Any thread.
class StateGrowthWatch {
 public:
  static constexpr int kDefaultCheckpoints = 10;
  explicit StateGrowthWatch(int checkpoints = kDefaultCheckpoints) : checkpoints_(checkpoints) {}

  /// The sizes of `owner`'s states (an operator's subtask) at one checkpoint.
  void Observe(const std::string& owner, const std::vector<KeyedStateSize>& sizes);

 private:
  struct Track {
    size_t entries = 0;
    int grew = 0;  // checkpoints in a row at which the entries grew
    bool warned = false;
  };
  const int checkpoints_;
  Mutex mu_;
  std::map<std::string, Track> tracks_ SLUICE_GUARDED_BY(mu_);  // owner + state
};

}  // namespace sluice
