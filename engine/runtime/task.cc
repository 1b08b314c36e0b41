#include "runtime/task.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <random>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"
#include "runtime/channel_wiring.h"
#include "sluice/core/status_macros.h"
#include "sluice/internal/metrics/back_pressure.h"

namespace sluice::internal {

namespace {
/// CPU time of the calling thread: what a phase cost, without the time the thread waited
/// for a core (the wall time of a short phase on a busy machine is mostly that).
absl::Duration ThreadCpuTime() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return absl::DurationFromTimespec(ts);
}

/// This process's own directory under `base`, `<pid>-<nonce>` (the nonce because a pid comes
/// back: a process killed with SIGKILL leaves its directory, and a later one with its pid
/// must not meet those files). The first call also removes the directories of processes that
/// are gone.
std::string ProcessStateDir(const std::string& base) {
  static Mutex mu;
  static std::map<std::string, std::string> by_base;
  MutexLock lock(&mu);
  auto [it, fresh] = by_base.try_emplace(base);
  if (!fresh) return it->second;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(base, ec)) {
    const std::vector<std::string> parts = absl::StrSplit(entry.path().filename().string(), '-');
    int pid = 0;
    if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &pid) && pid > 0 && pid != ::getpid() &&
        ::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code remove_ec;
      std::filesystem::remove_all(entry.path(), remove_ec);
    }
  }
  std::random_device random;
  it->second = absl::StrCat(base, "/", ::getpid(), "-",
                            absl::Hex((uint64_t{random()} << 32) | random(), absl::kZeroPad16));
  return it->second;
}
}  // namespace

namespace {

MetricLabels TaskLabels(MetricLabels labels, const std::string& job, const std::string& task,
                        int subtask) {
  labels.emplace_back("job_name", job);
  labels.emplace_back("task", task);
  labels.emplace_back("subtask", absl::StrCat(subtask));
  return labels;
}

}  // namespace

Task::Task(const JobGraph* graph, int vertex, int subtask, InputGate* gate,
           std::vector<TaskOutputEdge> outputs, std::shared_ptr<const Clock> clock,
           TaskCheckpointing checkpointing, MetricLabels run_labels)
    : graph_(graph),
      vertex_(graph->vertices[vertex]),
      subtask_(subtask),
      gate_(gate),
      output_edges_(std::move(outputs)),
      clock_(std::move(clock)),
      name_(absl::StrCat(vertex_.name, " (", subtask + 1, "/", vertex_.parallelism, ")")),
      task_metrics_(
          TaskLabels(std::move(run_labels), graph->stream.config.job_name, vertex_.name, subtask)),
      checkpointing_(std::move(checkpointing)),
      buffer_timeout_(graph->stream.config.buffer_timeout) {}

bool Task::is_source() const { return graph_->stream.nodes[vertex_.nodes[0]].is_source; }

Task::~Task() = default;

void Task::Cancel() {
  canceled_.store(true, std::memory_order_relaxed);
  if (gate_ != nullptr) gate_->Cancel();
  {
    MutexLock lock(&mail_mu_);  // a waiter in Yield checks canceled_ under it
  }
  mail_cv_.SignalAll();
}

void Task::Execute(std::function<void()> action) {
  {
    MutexLock lock(&mail_mu_);
    actions_.push_back(std::move(action));
    has_mail_.store(true, std::memory_order_release);
  }
  mail_cv_.SignalAll();
  if (gate_ != nullptr) gate_->Wake();
}

void Task::Yield(absl::Time deadline) {
  {
    MutexLock lock(&mail_mu_);
    auto stop = [&]() SLUICE_REQUIRES(mail_mu_) {
      return std::any_of(mail_.begin(), mail_.end(),
                         [](const Mail& m) { return m.kind == Mail::kStop; });
    };
    mail_cv_.WaitUntil(&mail_mu_, deadline, [&]() SLUICE_REQUIRES(mail_mu_) {
      return !actions_.empty() || canceled_.load(std::memory_order_relaxed) ||
             !async_failure_.ok() || stop();
    });
    if (!async_failure_.ok()) throw std::runtime_error(std::string(async_failure_.message()));
    if (stop()) throw TaskCanceled();
  }
  if (canceled_.load(std::memory_order_relaxed)) throw TaskCanceled();
  RunActions();
}

void Task::RunActions() {
  std::vector<std::function<void()>> actions;
  {
    MutexLock lock(&mail_mu_);
    actions.swap(actions_);
  }
  for (auto& action : actions) action();
}

void Task::ScheduleAt(Timestamp time, Target* target) { timers_.push(Scheduled{time, target}); }

const std::string& Task::LocalStateDir() {
  if (local_state_dir_.empty()) {
    // Unique per task run: a restarted task never meets the files of its earlier attempt.
    static std::atomic<int64_t> runs{0};
    const JobConfig& config = graph_->stream.config;
    const std::string base =
        config.local_state_dir.empty()
            ? (std::filesystem::temp_directory_path() / "sluice-state").string()
            : config.local_state_dir;
    local_state_dir_ =
        absl::StrCat(ProcessStateDir(base), "/", internal::SafeFileName(config.job_name), "-",
                     runs.fetch_add(1), "-", task_name_safe());
  }
  return local_state_dir_;
}

void Task::BuildChain() {
  const StreamGraph& sg = graph_->stream;
  // Operators first, so each can be wired to the inputs of its chained successors.
  std::vector<int> index_of_node(sg.nodes.size(), -1);
  for (int id : vertex_.nodes) {
    const StreamNode& node = sg.nodes[id];
    index_of_node[id] = static_cast<int>(operators_.size());
    operators_.push_back(node.factory->Create());
    // Two operators of one name in a chain keep apart.
    std::string label = node.name;
    for (int n = 2;
         std::any_of(metrics_.begin(), metrics_.end(),
                     [&](const MetricGroup* g) { return g->labels().back().second == label; });
         ++n) {
      label = absl::StrCat(node.name, " #", n);
    }
    metrics_.push_back(&task_metrics_.group().AddGroup("operator", label));
  }
  RecordWriterOptions writer_opts;
  writer_opts.subtask_index = subtask_;
  writer_opts.records_sent = &task_metrics_.records_sent;
  writer_opts.output_watermark = &task_metrics_.output_watermark;
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
    ctx.info.checkpointing = sg.config.checkpoint_interval > absl::ZeroDuration();
    ctx.info.restored = checkpointing_.job_restored;
    ctx.info.state_backend = sg.config.state_backend;
    ctx.info.local_state_dir = absl::StrCat(LocalStateDir(), "/node-", id);
    ctx.key_group_range =
        KeyGroupRangeForOperator(subtask_, node.parallelism, node.max_parallelism);
    ctx.processing_time = this;
    ctx.mailbox = this;
    ctx.metrics = metrics_[i];
    operators_[i]->Setup(std::move(ctx), output);
    if (auto it = checkpointing_.restored.find(id); it != checkpointing_.restored.end()) {
      if (i == 0) restored_input_channels_ = std::move(it->second.input_channels);
      operators_[i]->InitializeState(std::move(it->second));
    }
    for (const auto& [tag, list] : outputs) {
      if (!tag.empty()) {
        operators_[i]->SetSideOutput(tag, node.OutputFor(tag).ops->type(), combine(tag, list));
      }
    }
  }
  if (sg.nodes[vertex_.nodes[0]].is_source) {
    source_ = static_cast<SourceOperatorBase*>(operators_[0].get());
  } else {
    head_input_ = operators_[0]->AsInput();
    for (int edge : ChannelStreamEdges(*graph_, vertex_.id)) {
      ErasedOutput* input =
          sg.edges[edge].input == 1 ? operators_[0]->AsSecondInput() : head_input_;
      if (input == nullptr) {
        throw std::logic_error(
            absl::StrCat("operator '", sg.nodes[vertex_.nodes[0]].name, "' has no second input"));
      }
      channel_inputs_.push_back(input);
    }
  }
}

absl::Status Task::Run() {
  absl::Status status;
  metrics_registration_ = MetricRegistry::Process().Register(&task_metrics_.group());
  SetThreadBackPressureMeter(&task_metrics_.backpressured);
  task_metrics_.Begin(absl::Now());
  try {
    BuildChain();
    // Tail first: an operator is open before anything can reach it.
    for (auto it = operators_.rbegin(); it != operators_.rend(); ++it) (*it)->Open();
    opened_ = true;
    if (checkpointing_.job_restored) MaybeChaos(ChaosMonkey::Moment::kRestore);
    next_flush_ = absl::Now() + buffer_timeout_;
    if (source_ != nullptr) {
      RunSourceLoop();
    } else {
      RunInputLoop();
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
  if (stopped()) {
    DeliverPendingCompletions();
    if (absl::IsCancelled(status)) status = absl::CancelledError(absl::StrCat(name_, " stopped"));
  }
  // Snapshots still being written read the operators' state: they end first. After a
  // failure their acknowledgements are pointless, and the jobs skip their work.
  if (!status.ok()) canceled_.store(true, std::memory_order_relaxed);
  if (snapshot_worker_) snapshot_worker_->Stop();
  for (const auto& op : operators_) {
    if (const KeyedStateBackendBase* state = op->keyed_state()) {
      final_state_size_.first += static_cast<int64_t>(state->TotalEntryCount());
      final_state_size_.second += static_cast<int64_t>(state->TotalSerializedBytes());
    }
  }
  CloseChain();
  task_metrics_.MarkBusyUntil(absl::Now());
  SetThreadBackPressureMeter(nullptr);
  metrics_registration_ = {};  // before the operators' metrics go
  operators_.clear();          // closes RocksDB stores before their directory goes
  if (!local_state_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(local_state_dir_, ec);
  }
  finished_.store(true, std::memory_order_release);
  return status;
}

TaskStats StatsOf(const Task& task, const InputGate* gate) {
  TaskStats stats;
  stats.name = task.name();
  stats.records_in = task.records_in();
  const TaskMetrics& m = task.metrics();
  stats.records_sent = m.records_sent.count();
  stats.busy = absl::Nanoseconds(m.busy.count());
  stats.idle = absl::Nanoseconds(m.idle.count());
  stats.backpressured = absl::Nanoseconds(m.backpressured.count());
  stats.max_queued_records = gate != nullptr ? gate->max_queued_records() : 0;
  std::tie(stats.state_entries, stats.state_bytes) = task.final_state_size();
  stats.counters = task.Counters();
  return stats;
}

std::map<std::string, int64_t> Task::Counters() const {
  std::map<std::string, int64_t> out;
  for (size_t i = 0; i < metrics_.size() && i < vertex_.nodes.size(); ++i) {
    const std::string& op = graph_->stream.nodes[vertex_.nodes[i]].name;
    for (const auto& [name, value] : metrics_[i]->Values()) {
      out[absl::StrCat(op, ".", name)] += value;
    }
  }
  return out;
}

void Task::RunSourceLoop() {
  const double max_source_rate = graph_->stream.config.max_source_rate;
  const absl::Time throttle_start = absl::Now();
  // A poll emits about 10 ms worth of records, so the rate holds at a fine grain.
  if (max_source_rate > 0) source_->LimitBatchSize(static_cast<size_t>(max_source_rate / 100));
  while (!canceled_.load(std::memory_order_relaxed)) {
    HandleMailAndChaos();
    if (ended_input_ || suspended_) {
      if (released_) return;
      WaitForMail(absl::InfiniteFuture());
      continue;
    }
    if (max_source_rate > 0) {
      // The throttle: no more than the rate allows since the task started.
      const absl::Time due =
          throttle_start +
          absl::Seconds(static_cast<double>(source_->records_out()) / max_source_rate);
      if (due > absl::Now()) {
        WaitForMail(due);
        continue;
      }
    }
    SourceOperatorBase::PollResult r = source_->PollNext();
    task_metrics_.MarkBusyUntil(absl::Now());
    if (first_record_micros_.load(std::memory_order_relaxed) == 0 && source_->records_out() > 0) {
      first_record_micros_.store(absl::ToUnixMicros(absl::Now()), std::memory_order_release);
    }
    DoHousekeeping();
    if (r == SourceOperatorBase::PollResult::kEndOfInput) {
      // End of a bounded input: the final watermark makes every event-time timer fire.
      source_->EmitWatermark(kMaxWatermark);
      EndInput();
    }
  }
}

void Task::RunInputLoop() {
  const int n = gate_->num_channels();
  if (restored_input_channels_ &&
      restored_input_channels_->channels.size() == static_cast<size_t>(n)) {
    // Restored: the channels stand where they stood at the barrier, and the chain (and the
    // tasks after it) hear the watermark the task had then before anything else. Operators
    // with timers restored it themselves, so nothing fires twice.
    valve_ = std::make_unique<StatusWatermarkValve>(std::move(*restored_input_channels_));
    if (valve_->current_watermark() != kMinWatermark) {
      head_input_->PushWatermark(valve_->current_watermark());
    }
    if (valve_->idle()) head_input_->PushIdle(true);
  } else {
    valve_ = std::make_unique<StatusWatermarkValve>(n);
  }
  restored_input_channels_.reset();
  ended_.assign(n, false);
  blocked_.assign(n, false);
  barrier_seen_.assign(n, false);
  int ended_channels = 0;
  while (!(ended_input_ && released_)) {
    int channel = 0;
    ChannelEvent event;
    task_metrics_.MarkBusyUntil(absl::Now());
    const InputGate::NextResult next =
        gate_->Next(NextHousekeepingDeadline(), &channel, &event, &blocked_);
    task_metrics_.MarkIdleUntil(absl::Now());
    switch (next) {
      case InputGate::NextResult::kCanceled:
        throw TaskCanceled();
      case InputGate::NextResult::kFailed:
        throw std::runtime_error(gate_->failure());
      case InputGate::NextResult::kTimeout:
        break;  // also a wake-up for mail
      case InputGate::NextResult::kEvent:
        switch (event.kind) {
          case ChannelEvent::Kind::kBatch:
            if (records_in_ == 0) {
              first_record_micros_.store(absl::ToUnixMicros(absl::Now()),
                                         std::memory_order_release);
            }
            records_in_ += static_cast<int64_t>(event.batch->size());
            task_metrics_.records_in.Mark(static_cast<int64_t>(event.batch->size()));
            channel_inputs_[channel]->PushErased(*event.batch);
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
              if (ended_channels == n) EndInput();
            }
            break;
        }
        break;
    }
    HandleMailAndChaos();
    DoHousekeeping();
  }
}

void Task::EndInput() {
  FinishChain();
  for (auto& w : writers_) w->EndOfStream();
  ended_input_ = true;
  // With checkpoints, the task stays to take part in the job's final checkpoint (its
  // barriers follow the end of stream), so what the sinks wrote last gets committed.
  if (!checkpointing_.ack) {
    released_ = true;
  } else {
    awaiting_final_.store(true, std::memory_order_release);
  }
}

void Task::DeliverPendingCompletions() noexcept {
  std::vector<Mail> mail;
  {
    MutexLock lock(&mail_mu_);
    mail.swap(mail_);
  }
  for (const Mail& m : mail) {
    if (m.kind != Mail::kComplete) continue;
    for (auto& op : operators_) {
      try {
        op->NotifyCheckpointComplete(m.id);
      } catch (const std::exception& e) {
        LOG(WARNING) << "operator '" << op->name() << "' in " << name_
                     << " failed on completion of checkpoint " << m.id << ": " << e.what();
      }
    }
  }
}

void Task::HandleMailAndChaos() {
  if (has_mail_.load(std::memory_order_acquire)) HandleMail();
  MaybeChaos(ChaosMonkey::Moment::kAny);
}

void Task::WaitForMail(absl::Time deadline) {
  DoHousekeeping();
  task_metrics_.MarkBusyUntil(absl::Now());
  {
    MutexLock lock(&mail_mu_);
    mail_cv_.WaitUntil(&mail_mu_, std::min(deadline, NextHousekeepingDeadline()),
                       [&] { return has_mail_.load(std::memory_order_relaxed); });
  }
  task_metrics_.MarkIdleUntil(absl::Now());
}

void Task::Forward(const StatusWatermarkValve::Output& out) {
  if (out.idle_before) head_input_->PushIdle(*out.idle_before);
  if (out.watermark) {
    task_metrics_.input_watermark.Set(static_cast<double>(*out.watermark) / 1000);
    head_input_->PushWatermark(*out.watermark);
  }
  if (out.idle_after) head_input_->PushIdle(*out.idle_after);
}

void Task::OnBarrier(int channel, int64_t id) {
  if (id < aligning_id_ || id <= last_checkpoint_) return;  // a checkpoint already taken
  if (id > aligning_id_) {
    // A newer checkpoint: an older unfinished alignment is abandoned (it was aborted).
    aligning_id_ = id;
    alignment_start_ = absl::Now();
    barrier_seen_.assign(barrier_seen_.size(), false);
    blocked_.assign(blocked_.size(), false);
  }
  barrier_seen_[channel] = true;
  // Exactly-once: hold back what follows the barrier on this input until all inputs
  // delivered it. At-least-once lets it through (records may then be in two checkpoints).
  if (graph_->stream.config.checkpoint_exactly_once) blocked_[channel] = true;
  MaybeChaos(ChaosMonkey::Moment::kAlignment);
  MaybeCompleteAlignment();
}

void Task::MaybeCompleteAlignment() {
  if (aligning_id_ <= last_checkpoint_) return;
  // Ended inputs owe barriers too: their tasks stay for the final checkpoint.
  for (size_t c = 0; c < barrier_seen_.size(); ++c) {
    if (!barrier_seen_[c]) return;
  }
  task_metrics_.checkpoint_alignment.Observe(absl::ToDoubleSeconds(absl::Now() - alignment_start_));
  PerformCheckpoint(aligning_id_);
  blocked_.assign(blocked_.size(), false);
}

void Task::PerformCheckpoint(int64_t id) {
  last_checkpoint_ = id;
  const absl::Time sync_start = absl::Now();
  const absl::Duration sync_start_cpu = ThreadCpuTime();
  auto pending = std::make_shared<std::vector<std::pair<int, PendingOperatorSnapshot>>>();
  for (size_t i = 0; i < operators_.size(); ++i) {
    PendingOperatorSnapshot s;
    s.checkpoint_id = id;
    s.storage = checkpointing_.storage;
    s.canceled = &canceled_;
    if (checkpointing_.keep_native_copy) {
      s.keep_native_copy = [keep = checkpointing_.keep_native_copy, id](
                               const std::string& dir, const std::vector<StoredFile>& stored) {
        keep(id, dir, stored);
      };
    }
    absl::Status status = operators_[i]->SnapshotState(id, &s);
    if (!status.ok()) {
      throw std::runtime_error(absl::StrCat("snapshot of operator '", operators_[i]->name(),
                                            "' for checkpoint ", id,
                                            " failed: ", status.message()));
    }
    if (i == 0 && valve_) s.snapshot.input_channels = valve_->state();
    // Between two operators' snapshots: the barrier has not moved on yet.
    MaybeChaos(ChaosMonkey::Moment::kSyncSnapshot);
    // A source's state is its position even when empty (a finished file source has nothing
    // left to read): without an entry its restore would look like a fresh start and read
    // the whole input again.
    const bool position = i == 0 && source_ != nullptr;
    if (!s.snapshot.empty() || s.async_part || position) {
      pending->emplace_back(vertex_.nodes[i], std::move(s));
    }
  }
  // What the checkpoint stalls this task for: the synchronous snapshot part. (Forwarding
  // the barrier after it sends buffered records first, which may wait on back pressure like
  // any send.)
  const absl::Duration sync_duration = absl::Now() - sync_start;
  const absl::Duration sync_cpu = ThreadCpuTime() - sync_start_cpu;
  task_metrics_.checkpoint_sync.Observe(absl::ToDoubleSeconds(sync_duration));
  task_metrics_.checkpoint_time.Mark(absl::ToInt64Nanoseconds(sync_duration));
  // The barrier goes on right after the synchronous part, before the slow part.
  for (auto& w : writers_) w->BroadcastBarrier(id);
  if (!checkpointing_.ack) return;
  if (!snapshot_worker_) snapshot_worker_ = std::make_unique<SnapshotWorker>();
  snapshot_worker_->Submit(
      [this, id, pending, sync_duration, sync_cpu, records = records_processed()] {
        if (canceled_.load(std::memory_order_relaxed)) return;
        const absl::Time async_start = absl::Now();
        absl::StatusOr<TaskAck> ack = TaskAck{};
        try {
          MaybeChaos(ChaosMonkey::Moment::kAsyncSnapshot, records);
          ack = FinishSnapshot(id, std::move(*pending));
        } catch (const std::exception& e) {
          FailFromSnapshotThread(e.what());
          return;
        }
        if (canceled_.load(std::memory_order_relaxed)) return;  // given up: nobody waits
        if (ack.ok()) {
          ack->sync_duration = sync_duration;
          ack->sync_cpu = sync_cpu;
          ack->async_duration = absl::Now() - async_start;
          task_metrics_.checkpoint_async.Observe(absl::ToDoubleSeconds(ack->async_duration));
        }
        checkpointing_.ack(id, checkpointing_.task_index, std::move(ack));
        try {
          MaybeChaos(ChaosMonkey::Moment::kAfterAck, records);
        } catch (const std::exception& e) {
          FailFromSnapshotThread(e.what());
        }
      });
}

absl::StatusOr<TaskAck> Task::FinishSnapshot(
    int64_t id, std::vector<std::pair<int, PendingOperatorSnapshot>> pending) {
  TaskAck ack;
  for (auto& [node, p] : pending) {
    absl::StatusOr<OperatorSnapshot> snapshot = std::move(p).Finish();
    if (!snapshot.ok()) {
      return absl::Status(snapshot.status().code(),
                          absl::StrCat("snapshot of operator '", graph_->stream.nodes[node].name,
                                       "' in ", name_, ": ", snapshot.status().message()));
    }
    const size_t chain_index = static_cast<size_t>(
        std::find(vertex_.nodes.begin(), vertex_.nodes.end(), node) - vertex_.nodes.begin());
    state_growth_.Observe(
        absl::StrCat("operator '", graph_->stream.nodes[node].name, "' in ", name_),
        snapshot->state_sizes);
    // Each keyed state's size as of this checkpoint (per state: there are few).
    task_metrics_.SetStateSizes(OperatorStateId(graph_->stream, node), snapshot->state_sizes);
    for (const KeyedStateSize& size : snapshot->state_sizes) {
      MetricGroup& state = metrics_[chain_index]->AddGroup("state", size.name);
      state.GetGauge("state_entries", "Entries of the keyed state (RocksDB: its estimate).")
          .Set(static_cast<double>(size.entries));
      state
          .GetGauge("state_bytes",
                    "Bytes of the keyed state: on the heap as the newest checkpoint serialized "
                    "it, in RocksDB its estimate of the live data in files and memtables.")
          .Set(static_cast<double>(size.bytes));
    }
    if (checkpointing_.storage == nullptr) {
      ack.snapshots[node] = std::move(*snapshot);
      continue;
    }
    for (const StoredFile& f : snapshot->native.files) {
      if (f.path.starts_with("shared/")) ack.shared_files.push_back(f.path);
    }
    const std::string bytes = SerializeToString(*snapshot);
    uint64_t stored = bytes.size();
    for (const StoredFile& f : snapshot->native.files) stored += f.size;
    metrics_[chain_index]
        ->GetGauge("state_checkpoint_bytes",
                   "Bytes of the operator's state in the newest checkpoint it wrote (with "
                   "RocksDB's files, shared ones too).")
        .Set(static_cast<double>(stored));
    SLUICE_ASSIGN_OR_RETURN(
        auto handle,
        checkpointing_.storage->WriteState(
            id, absl::StrCat(OperatorStateId(graph_->stream, node), "-", subtask_), bytes));
    DescribeContents(*snapshot, &handle);
    if (checkpointing_.keep_local_copy) checkpointing_.keep_local_copy(id, handle, bytes);
    ack.handles[node] = handle;
  }
  return ack;
}

int64_t Task::records_processed() const {
  return source_ != nullptr ? source_->records_out() : records_in_;
}

void Task::MaybeChaos(ChaosMonkey::Moment moment, std::optional<int64_t> records) {
  if (checkpointing_.chaos == nullptr) return;
  // Not value_or: its argument is evaluated always, and the snapshot thread must not read the
  // task thread's counters (it passes the count it was given).
  checkpointing_.chaos->MaybeCrash(checkpointing_.task_index, moment, name_,
                                   records.has_value() ? *records : records_processed());
}

void Task::FailFromSnapshotThread(const std::string& why) {
  // Takes the task down, as a crash of a real snapshot thread would.
  MutexLock lock(&mail_mu_);
  async_failure_ = absl::InternalError(why);
  has_mail_.store(true, std::memory_order_release);
  mail_cv_.SignalAll();
  if (gate_ != nullptr) gate_->Wake();
}

void Task::Post(Mail mail) {
  {
    MutexLock lock(&mail_mu_);
    mail_.push_back(mail);
    has_mail_.store(true, std::memory_order_release);
  }
  mail_cv_.SignalAll();
  if (gate_ != nullptr) gate_->Wake();
}

void Task::HandleMail() {
  std::vector<Mail> mail;
  {
    MutexLock lock(&mail_mu_);
    mail.swap(mail_);
    has_mail_.store(false, std::memory_order_release);
    if (!async_failure_.ok()) throw std::runtime_error(std::string(async_failure_.message()));
  }
  RunActions();
  for (const Mail& m : mail) {
    switch (m.kind) {
      case Mail::kTrigger:
        if (m.id > last_checkpoint_) PerformCheckpoint(m.id);
        break;
      case Mail::kTriggerAndSuspend:
        if (m.id > last_checkpoint_) PerformCheckpoint(m.id);
        suspended_ = true;
        break;
      case Mail::kComplete:
        last_completed_ = std::max(last_completed_, m.id);
        for (auto& op : operators_) {
          op->NotifyCheckpointComplete(m.id);
          // After some operators committed and before the others did.
          MaybeChaos(ChaosMonkey::Moment::kNotifyComplete);
        }
        break;
      case Mail::kAbort:
        for (auto& op : operators_) op->NotifyCheckpointAborted(m.id);
        break;
      case Mail::kRelease:
        released_ = true;
        break;
      case Mail::kStop:
        throw TaskCanceled();
    }
  }
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
