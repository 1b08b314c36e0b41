#include "sluice/runtime/mini_cluster.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "runtime/checkpoint_coordinator.h"
#include "runtime/task.h"

namespace sluice {

int64_t JobResult::MaxQueuedRecords() const {
  int64_t m = 0;
  for (const auto& t : tasks) m = std::max(m, t.max_queued_records);
  return m;
}

MiniCluster::MiniCluster(MiniClusterOptions options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = std::make_shared<SystemClock>();
}

namespace {

/// Where each producer subtask of a job edge writes in each consumer's gate.
struct Wiring {
  // gates[vertex][subtask]
  std::vector<std::vector<std::unique_ptr<InputGate>>> gates;
  // outputs[vertex][subtask]
  std::vector<std::vector<std::vector<internal::TaskOutputEdge>>> outputs;
};

Wiring WireChannels(const JobGraph& g) {
  Wiring w;
  const size_t nv = g.vertices.size();
  w.outputs.resize(nv);
  for (size_t v = 0; v < nv; ++v) w.outputs[v].resize(g.vertices[v].parallelism);

  // Channel layout of each consumer gate: per incoming job edge, one channel per producer
  // subtask (all-to-all), or one channel for a pointwise forward edge.
  std::vector<int> channels_per_gate(nv, 0);
  std::vector<int> first_channel(g.edges.size(), 0);
  for (size_t i = 0; i < g.edges.size(); ++i) {
    const JobEdge& e = g.edges[i];
    const bool pointwise = g.stream.edges[e.stream_edge].partition == PartitionKind::kForward;
    first_channel[i] = channels_per_gate[e.target_vertex];
    channels_per_gate[e.target_vertex] += pointwise ? 1 : g.vertices[e.source_vertex].parallelism;
  }
  w.gates.resize(nv);
  for (size_t v = 0; v < nv; ++v) {
    if (channels_per_gate[v] == 0) continue;
    for (int s = 0; s < g.vertices[v].parallelism; ++s) {
      w.gates[v].push_back(
          std::make_unique<InputGate>(channels_per_gate[v], g.stream.config.channel_capacity));
    }
  }
  for (size_t i = 0; i < g.edges.size(); ++i) {
    const JobEdge& e = g.edges[i];
    const bool pointwise = g.stream.edges[e.stream_edge].partition == PartitionKind::kForward;
    const int producers = g.vertices[e.source_vertex].parallelism;
    const int consumers = g.vertices[e.target_vertex].parallelism;
    for (int p = 0; p < producers; ++p) {
      internal::TaskOutputEdge out;
      out.stream_edge = e.stream_edge;
      if (pointwise) {
        out.targets.push_back({w.gates[e.target_vertex][p].get(), first_channel[i]});
      } else {
        for (int c = 0; c < consumers; ++c) {
          out.targets.push_back({w.gates[e.target_vertex][c].get(), first_channel[i] + p});
        }
      }
      w.outputs[e.source_vertex][p].push_back(std::move(out));
    }
  }
  return w;
}

}  // namespace

namespace {

/// The restored state of each operator of task (vertex, subtask), from a checkpoint.
std::map<int, RestoredOperatorState> RestoredStateFor(const JobGraph& graph, int vertex,
                                                      int subtask,
                                                      const CompletedCheckpoint* checkpoint) {
  std::map<int, RestoredOperatorState> out;
  if (checkpoint == nullptr) return out;
  for (int node : graph.vertices[vertex].nodes) {
    auto it = checkpoint->operators.find(node);
    if (it == checkpoint->operators.end()) continue;
    const StreamNode& n = graph.stream.nodes[node];
    out[node] = RedistributeState(it->second, subtask, n.parallelism, n.max_parallelism);
  }
  return out;
}

}  // namespace

absl::Status MiniCluster::RunAttempt(const JobGraph& graph,
                                     internal::CheckpointCoordinator* coordinator,
                                     const CompletedCheckpoint* restore_from, JobResult* result) {
  const JobConfig& config = graph.stream.config;
  Wiring wiring = WireChannels(graph);
  internal::SnapshotCallback on_snapshot;
  if (coordinator != nullptr) {
    on_snapshot = [coordinator](int64_t id, int task, internal::TaskSnapshot snapshot) {
      coordinator->Acknowledge(id, task, std::move(snapshot));
    };
  }

  std::vector<std::unique_ptr<internal::Task>> tasks;
  std::vector<InputGate*> task_gates;
  for (size_t v = 0; v < graph.vertices.size(); ++v) {
    for (int s = 0; s < graph.vertices[v].parallelism; ++s) {
      InputGate* gate = wiring.gates[v].empty() ? nullptr : wiring.gates[v][s].get();
      tasks.push_back(std::make_unique<internal::Task>(
          &graph, static_cast<int>(v), s, gate, std::move(wiring.outputs[v][s]), options_.clock,
          static_cast<int>(tasks.size()), on_snapshot,
          RestoredStateFor(graph, static_cast<int>(v), s, restore_from)));
      task_gates.push_back(gate);
    }
  }

  std::mutex mu;
  absl::Status first_failure;  // guarded by mu
  auto cancel_all = [&tasks, &wiring]() {
    for (auto& t : tasks) t->Cancel();
    for (auto& per_vertex : wiring.gates) {
      for (auto& g : per_vertex) g->Cancel();
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(tasks.size());
  for (auto& task : tasks) {
    threads.emplace_back([&, t = task.get()]() {
      absl::Status s = t->Run();
      if (s.ok() || absl::IsCancelled(s)) return;
      bool first = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (first_failure.ok()) {
          first_failure = s;
          first = true;
        }
      }
      if (first) {
        LOG(ERROR) << "job '" << config.job_name << "' failed: " << s.message();
        cancel_all();
      }
    });
  }
  // The checkpoint trigger: every interval, barriers start at the sources. Checkpoints
  // stop once a task has finished (a finished task cannot take part any more).
  std::mutex trigger_mu;
  std::condition_variable trigger_cv;
  bool stop_trigger = false;
  std::thread trigger;
  if (coordinator != nullptr) {
    trigger = std::thread([&] {
      std::unique_lock<std::mutex> lock(trigger_mu);
      const auto interval = absl::ToChronoMilliseconds(config.checkpoint_interval);
      while (!trigger_cv.wait_for(lock, interval, [&] { return stop_trigger; })) {
        bool any_finished = false;
        for (const auto& t : tasks) any_finished |= t->finished();
        if (any_finished) continue;
        const int64_t id = coordinator->MaybeStart(config.checkpoint_timeout);
        if (id == 0) continue;
        for (auto& t : tasks) {
          if (t->is_source()) t->TriggerCheckpoint(id);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  if (trigger.joinable()) {
    {
      std::lock_guard<std::mutex> lock(trigger_mu);
      stop_trigger = true;
    }
    trigger_cv.notify_all();
    trigger.join();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!first_failure.ok()) return first_failure;
  }
  result->tasks.clear();
  for (size_t i = 0; i < tasks.size(); ++i) {
    TaskStats stats;
    stats.name = tasks[i]->name();
    stats.records_in = tasks[i]->records_in();
    stats.max_queued_records = task_gates[i] ? task_gates[i]->max_queued_records() : 0;
    std::tie(stats.state_entries, stats.state_bytes) = tasks[i]->final_state_size();
    result->tasks.push_back(std::move(stats));
  }
  return absl::OkStatus();
}

absl::StatusOr<JobResult> MiniCluster::Execute(const JobGraph& graph) {
  const absl::Time start = absl::Now();
  const JobConfig& config = graph.stream.config;

  // One coordinator across restarts: checkpoint ids keep rising, and the latest completed
  // checkpoint is what a restart restores.
  std::unique_ptr<internal::CheckpointCoordinator> coordinator;
  std::mutex latest_mu;
  std::optional<CompletedCheckpoint> latest;  // guarded by latest_mu
  if (config.checkpoint_interval > absl::ZeroDuration()) {
    std::unique_ptr<CheckpointStorage> storage;
    if (!config.checkpoint_dir.empty()) {
      auto created = CheckpointStorage::Create(config.checkpoint_dir, config.job_name);
      if (!created.ok()) return created.status();
      storage = std::move(*created);
    }
    std::vector<std::pair<int, int>> task_ids;
    for (size_t v = 0; v < graph.vertices.size(); ++v) {
      for (int s = 0; s < graph.vertices[v].parallelism; ++s) {
        task_ids.push_back({static_cast<int>(v), s});
      }
    }
    coordinator = std::make_unique<internal::CheckpointCoordinator>(
        &graph, std::move(task_ids), std::move(storage), [&](const CompletedCheckpoint& c) {
          {
            std::lock_guard<std::mutex> lock(latest_mu);
            if (!latest || c.id > latest->id) latest = c;
          }
          if (options_.on_checkpoint_complete) options_.on_checkpoint_complete(c);
        });
  }

  JobResult result;
  for (int attempt = 0;; ++attempt) {
    std::optional<CompletedCheckpoint> restore_from;
    {
      std::lock_guard<std::mutex> lock(latest_mu);
      restore_from = latest;
    }
    absl::Status status =
        RunAttempt(graph, coordinator.get(), restore_from ? &*restore_from : nullptr, &result);
    if (status.ok()) break;
    if (coordinator) coordinator->AbortPending();
    if (attempt >= config.restart_attempts) return status;
    LOG(WARNING) << "job '" << config.job_name << "' restarts (attempt " << attempt + 1 << " of "
                 << config.restart_attempts << ") from "
                 << (restore_from ? absl::StrCat("checkpoint ", restore_from->id)
                                  : std::string("the beginning"))
                 << " after: " << status.message();
    result.restarts++;
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(config.restart_delay));
  }
  result.duration = absl::Now() - start;
  if (coordinator) result.completed_checkpoints = coordinator->completed_count();
  return result;
}

}  // namespace sluice
