#include "sluice/runtime/local_subtasks.h"

#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "runtime/channel_wiring.h"
#include "runtime/task.h"

namespace sluice {

LocalSubtasks::LocalSubtasks(const JobGraph* graph, Placement placement, RemoteChannels* remote,
                             std::shared_ptr<const Clock> clock)
    : graph_(graph),
      remote_(remote),
      wiring_(
          std::make_unique<internal::Wiring>(internal::WireChannels(*graph, placement, remote))) {
  for (size_t v = 0; v < graph->vertices.size(); ++v) {
    for (int s = 0; s < graph->vertices[v].parallelism; ++s) {
      if (!placement.IsLocal(static_cast<int>(v), s)) continue;
      InputGate* gate = wiring_->gates[v].empty() ? nullptr : wiring_->gates[v][s].get();
      tasks_.push_back(std::make_unique<internal::Task>(graph, static_cast<int>(v), s, gate,
                                                        std::move(wiring_->outputs[v][s]), clock));
      task_gates_.push_back(gate);
    }
  }
}

LocalSubtasks::~LocalSubtasks() = default;

void LocalSubtasks::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    canceled_ = true;
  }
  for (auto& t : tasks_) t->Cancel();
  for (InputGate* g : task_gates_) {
    if (g != nullptr) g->Cancel();
  }
}

absl::Status LocalSubtasks::Run() {
  std::mutex failure_mu;
  absl::Status first_failure;  // guarded by failure_mu
  std::vector<std::thread> threads;
  for (auto& task : tasks_) {
    threads.emplace_back([&, t = task.get()] {
      absl::Status s = t->Run();
      if (s.ok()) return;
      if (absl::IsCancelled(s)) {
        std::lock_guard<std::mutex> lock(mu_);
        if (canceled_) return;  // we canceled it
        // A writer found its channel gone: a connection to another process broke.
        const absl::Status why = remote_ != nullptr ? remote_->status() : absl::OkStatus();
        s = absl::UnavailableError(
            absl::StrCat(t->name(), ": a channel to another TaskManager failed",
                         why.ok() ? std::string() : absl::StrCat(": ", why.message())));
      }
      {
        std::lock_guard<std::mutex> lock(failure_mu);
        if (!first_failure.ok()) return;
        first_failure = s;
      }
      Cancel();
    });
  }
  for (auto& t : threads) t.join();
  std::lock_guard<std::mutex> lock(failure_mu);
  if (!first_failure.ok()) return first_failure;
  std::lock_guard<std::mutex> cancel_lock(mu_);
  if (canceled_) return absl::CancelledError("the job's subtasks here were canceled");
  return absl::OkStatus();
}

std::vector<TaskStats> LocalSubtasks::Stats() const {
  std::vector<TaskStats> out;
  for (size_t i = 0; i < tasks_.size(); ++i) {
    out.push_back(internal::StatsOf(*tasks_[i], task_gates_[i]));
  }
  return out;
}

const std::vector<int>& LocalSubtasks::inbound_channels() const {
  return wiring_->inbound_channels;
}

}  // namespace sluice
