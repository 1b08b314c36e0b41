#include "runtime/task.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace sluice::internal {

Task::Task(const JobGraph* graph, int vertex, int subtask, InputGate* gate,
           std::vector<TaskOutputEdge> outputs, std::shared_ptr<const Clock> clock, int task_index,
           SnapshotCallback on_snapshot, std::map<int, RestoredOperatorState> restored)
    : graph_(graph),
      vertex_(graph->vertices[vertex]),
      subtask_(subtask),
      gate_(gate),
      output_edges_(std::move(outputs)),
      clock_(std::move(clock)),
      name_(absl::StrCat(vertex_.name, " (", subtask + 1, "/", vertex_.parallelism, ")")),
      task_index_(task_index),
      on_snapshot_(std::move(on_snapshot)),
      restored_(std::move(restored)),
      buffer_timeout_(graph->stream.config.buffer_timeout) {}

bool Task::is_source() const { return graph_->stream.nodes[vertex_.nodes[0]].is_source; }

Task::~Task() = default;

void Task::Cancel() {
  canceled_.store(true, std::memory_order_relaxed);
  if (gate_ != nullptr) gate_->Cancel();
}

void Task::ScheduleAt(Timestamp time, Target* target) { timers_.push(Scheduled{time, target}); }

void Task::BuildChain() {
  const StreamGraph& sg = graph_->stream;
  // Operators first, so each can be wired to the inputs of its chained successors.
  std::vector<int> index_of_node(sg.nodes.size(), -1);
  for (int id : vertex_.nodes) {
    const StreamNode& node = sg.nodes[id];
    index_of_node[id] = static_cast<int>(operators_.size());
    operators_.push_back(node.factory->Create());
    metrics_.push_back(std::make_unique<MetricGroup>());
  }
  RecordWriterOptions writer_opts;
  writer_opts.subtask_index = subtask_;
  for (size_t i = 0; i < vertex_.nodes.size(); ++i) {
    const int id = vertex_.nodes[i];
    const StreamNode& node = sg.nodes[id];
    // Outputs by tag: "" is the main output, others are side outputs.
    std::map<std::string, std::vector<ErasedOutput*>> outputs;
    for (const auto& e : sg.edges) {
      if (e.source != id) continue;
      int target_index = index_of_node[e.target];
      bool chained = target_index >= 0 && graph_->vertex_of_node[e.target] == vertex_.id &&
                     e.partition == PartitionKind::kForward;
      if (chained) outputs[e.side_output].push_back(operators_[target_index]->AsInput());
    }
    for (const auto& out : output_edges_) {
      const StreamEdge& e = sg.edges[out.stream_edge];
      if (e.source != id) continue;
      const OutputInfo& info = node.OutputFor(e.side_output);
      std::shared_ptr<const RecordWriterFactory> factory;
      switch (e.partition) {
        case PartitionKind::kForward:
          factory = info.forward_writer;
          break;
        case PartitionKind::kRebalance:
          factory = info.rebalance_writer;
          break;
        case PartitionKind::kBroadcast:
          factory = info.broadcast_writer;
          break;
        case PartitionKind::kKeyGroup:
          factory = e.writer_factory;
          break;
      }
      writer_opts.buffer_records = std::clamp<size_t>(
          sg.config.buffer_bytes / std::max<size_t>(1, info.ops->RecordSize()), 16, 4096);
      writer_opts.target_max_parallelism = sg.nodes[e.target].max_parallelism;
      auto [output, writer] = factory->Create(out.targets, writer_opts);
      outputs[e.side_output].push_back(output);
      writers_.push_back(std::move(writer));
    }
    auto combine = [&](const std::string& tag,
                       const std::vector<ErasedOutput*>& list) -> ErasedOutput* {
      if (list.empty()) return nullptr;
      if (list.size() == 1) return list[0];
      fan_outs_.push_back(node.OutputFor(tag).ops->CreateFanOut(list));
      return fan_outs_.back().get();
    };
    ErasedOutput* output = combine("", outputs[""]);
    OperatorContext ctx;
    ctx.info.job_name = sg.config.job_name;
    ctx.info.operator_name = node.name;
    ctx.info.subtask_index = subtask_;
    ctx.info.parallelism = node.parallelism;
    ctx.info.max_parallelism = node.max_parallelism;
    ctx.key_group_range =
        KeyGroupRangeForOperator(subtask_, node.parallelism, node.max_parallelism);
    ctx.processing_time = this;
    ctx.metrics = metrics_[i].get();
    operators_[i]->Setup(std::move(ctx), output);
    if (auto it = restored_.find(id); it != restored_.end()) {
      operators_[i]->InitializeState(std::move(it->second));
    }
    for (const auto& [tag, list] : outputs) {
      if (!tag.empty()) operators_[i]->SetSideOutput(tag, combine(tag, list));
    }
  }
  if (sg.nodes[vertex_.nodes[0]].is_source) {
    source_ = static_cast<SourceOperatorBase*>(operators_[0].get());
  } else {
    head_input_ = operators_[0]->AsInput();
  }
}

absl::Status Task::Run() {
  absl::Status status;
  try {
    BuildChain();
    // Tail first: an operator is open before anything can reach it.
    for (auto it = operators_.rbegin(); it != operators_.rend(); ++it) (*it)->Open();
    opened_ = true;
    next_flush_ = absl::Now() + buffer_timeout_;
    if (source_ != nullptr) {
      RunSourceLoop();
    } else {
      RunInputLoop();
    }
    if (!canceled_.load(std::memory_order_relaxed)) {
      FinishChain();
      for (auto& w : writers_) w->EndOfStream();
    }
  } catch (const TaskCanceled&) {
    status = absl::CancelledError(absl::StrCat(name_, " canceled"));
  } catch (const OperatorFailure& e) {
    status = absl::AbortedError(absl::StrCat("operator '", e.operator_name(), "' (subtask ",
                                             subtask_ + 1, "/", vertex_.parallelism,
                                             ") failed: ", e.what()));
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat("task ", name_, " failed: ", e.what()));
  }
  if (status.ok() && canceled_.load(std::memory_order_relaxed)) {
    status = absl::CancelledError(absl::StrCat(name_, " canceled"));
  }
  for (const auto& op : operators_) {
    if (const KeyedStateBackendBase* state = op->keyed_state()) {
      final_state_size_.first += static_cast<int64_t>(state->TotalEntryCount());
      final_state_size_.second += static_cast<int64_t>(state->TotalSerializedBytes());
    }
  }
  CloseChain();
  finished_.store(true, std::memory_order_release);
  return status;
}

void Task::RunSourceLoop() {
  while (!canceled_.load(std::memory_order_relaxed)) {
    const int64_t triggered = trigger_id_.load(std::memory_order_acquire);
    if (triggered > last_checkpoint_) PerformCheckpoint(triggered);
    SourceOperatorBase::PollResult r = source_->PollNext();
    DoHousekeeping();
    if (r == SourceOperatorBase::PollResult::kEndOfInput) {
      // End of a bounded input: the final watermark makes every event-time timer fire.
      source_->EmitWatermark(kMaxWatermark);
      return;
    }
  }
}

void Task::RunInputLoop() {
  const int n = gate_->num_channels();
  valve_ = std::make_unique<StatusWatermarkValve>(n);
  ended_.assign(n, false);
  blocked_.assign(n, false);
  barrier_seen_.assign(n, false);
  int ended_channels = 0;
  while (ended_channels < n) {
    int channel = 0;
    ChannelEvent event;
    switch (gate_->Next(NextHousekeepingDeadline(), &channel, &event, &blocked_)) {
      case InputGate::NextResult::kCanceled:
        throw TaskCanceled();
      case InputGate::NextResult::kTimeout:
        break;
      case InputGate::NextResult::kEvent:
        switch (event.kind) {
          case ChannelEvent::Kind::kBatch:
            records_in_ += static_cast<int64_t>(event.batch->size());
            head_input_->PushErased(*event.batch);
            break;
          case ChannelEvent::Kind::kWatermark:
            Forward(valve_->OnWatermark(channel, event.watermark));
            break;
          case ChannelEvent::Kind::kIdleStatus:
            Forward(valve_->OnIdleStatus(channel, event.idle));
            break;
          case ChannelEvent::Kind::kBarrier:
            OnBarrier(channel, event.checkpoint_id);
            break;
          case ChannelEvent::Kind::kEndOfStream:
            if (!ended_[channel]) {
              ended_[channel] = true;
              ended_channels++;
              Forward(valve_->OnEndOfStream(channel));
              MaybeCompleteAlignment();  // an ended input no longer owes a barrier
            }
            break;
        }
        break;
    }
    DoHousekeeping();
  }
}

void Task::Forward(const StatusWatermarkValve::Output& out) {
  if (out.idle_before) head_input_->PushIdle(*out.idle_before);
  if (out.watermark) head_input_->PushWatermark(*out.watermark);
  if (out.idle_after) head_input_->PushIdle(*out.idle_after);
}

void Task::OnBarrier(int channel, int64_t id) {
  if (id < aligning_id_ || id <= last_checkpoint_) return;  // a checkpoint already taken
  if (id > aligning_id_) {
    // A newer checkpoint: an older unfinished alignment is abandoned (it was aborted).
    aligning_id_ = id;
    barrier_seen_.assign(barrier_seen_.size(), false);
    blocked_.assign(blocked_.size(), false);
  }
  barrier_seen_[channel] = true;
  // Exactly-once: hold back what follows the barrier on this input until all inputs
  // delivered it. At-least-once lets it through (records may then be in two checkpoints).
  if (graph_->stream.config.checkpoint_exactly_once) blocked_[channel] = true;
  MaybeCompleteAlignment();
}

void Task::MaybeCompleteAlignment() {
  if (aligning_id_ <= last_checkpoint_) return;
  for (size_t c = 0; c < barrier_seen_.size(); ++c) {
    if (!barrier_seen_[c] && !ended_[c]) return;
  }
  PerformCheckpoint(aligning_id_);
  blocked_.assign(blocked_.size(), false);
}

void Task::PerformCheckpoint(int64_t id) {
  last_checkpoint_ = id;
  TaskSnapshot snapshot;
  for (size_t i = 0; i < operators_.size(); ++i) {
    OperatorSnapshot s;
    absl::Status status = operators_[i]->SnapshotState(id, &s);
    if (!status.ok()) {
      throw std::runtime_error(absl::StrCat("snapshot of operator '", operators_[i]->name(),
                                            "' for checkpoint ", id,
                                            " failed: ", status.message()));
    }
    if (!s.empty()) snapshot[vertex_.nodes[i]] = std::move(s);
  }
  // The barrier goes on right after the synchronous part, before the snapshot is stored.
  for (auto& w : writers_) w->BroadcastBarrier(id);
  if (on_snapshot_) on_snapshot_(id, task_index_, std::move(snapshot));
}

absl::Time Task::NextHousekeepingDeadline() const {
  absl::Time deadline = next_flush_;
  if (!timers_.empty()) {
    Timestamp wait_ms = timers_.top().time - clock_->NowMillis();
    deadline =
        std::min(deadline, absl::Now() + absl::Milliseconds(std::max<Timestamp>(0, wait_ms)));
  }
  return deadline;
}

void Task::DoHousekeeping() {
  if (!timers_.empty()) {
    const Timestamp now = clock_->NowMillis();
    while (!timers_.empty() && timers_.top().time <= now) {
      Target* target = timers_.top().target;
      timers_.pop();
      target->OnProcessingTime(now);
    }
  }
  absl::Time now = absl::Now();
  if (now >= next_flush_) {
    for (auto& w : writers_) w->FlushAll();
    next_flush_ = now + buffer_timeout_;
  }
}

void Task::FinishChain() {
  for (auto& op : operators_) op->Finish();
}

void Task::CloseChain() noexcept {
  // Also after a failed Open(): operators must tolerate Close() without a successful Open().
  for (auto& op : operators_) {
    try {
      op->Close();
    } catch (const std::exception& e) {
      LOG(WARNING) << "closing operator '" << op->name() << "' in " << name_ << ": " << e.what();
    } catch (...) {
      LOG(WARNING) << "closing operator '" << op->name() << "' in " << name_ << " threw";
    }
  }
}

}  // namespace sluice::internal
