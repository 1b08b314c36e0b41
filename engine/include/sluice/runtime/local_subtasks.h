#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "sluice/core/time.h"
#include "sluice/graph/job_graph.h"
#include "sluice/runtime/mini_cluster.h"
#include "sluice/runtime/remote_channels.h"

namespace sluice {

namespace internal {
class Task;
struct Wiring;
}  // namespace internal

/// The subtasks of a job that a placement puts in this process — a TaskManager's share of
/// a job — with their channels to the other processes through `remote`. The same Task code
/// as the mini-cluster; one thread per subtask. Checkpoints across processes come later.
class LocalSubtasks {
 public:
  LocalSubtasks(const JobGraph* graph, Placement placement, RemoteChannels* remote,
                std::shared_ptr<const Clock> clock = std::make_shared<SystemClock>());
  ~LocalSubtasks();

  /// Runs the local subtasks to their end. The first failure (naming the operator) cancels
  /// the others and is returned.
  absl::Status Run();
  /// Any thread: ends the run (Run returns CANCELLED unless something failed first).
  void Cancel();
  /// Per local subtask, after Run.
  std::vector<TaskStats> Stats() const;
  /// The remote channels delivering into this process's gates (to unregister afterwards).
  const std::vector<int>& inbound_channels() const;

 private:
  const JobGraph* graph_;
  RemoteChannels* remote_;
  std::unique_ptr<internal::Wiring> wiring_;
  std::vector<std::unique_ptr<internal::Task>> tasks_;
  std::vector<InputGate*> task_gates_;
  std::mutex mu_;
  bool canceled_ = false;  // guarded by mu_
};

}  // namespace sluice
