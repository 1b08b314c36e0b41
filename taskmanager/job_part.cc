#include "job_part.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "sluice/api/job.h"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/core/status_macros.h"
#include "sluice/jobmanager/checkpoint_ack.h"
#include "sluice/jobmanager/submitted_job.h"

namespace sluice::cluster {

JobPart::JobPart(DeployJobRequest request, std::string taskmanager_id, BlobCache* blobs,
                 LocalStateStore* local_state, ExchangeServer* exchange,
                 JobManagerClient* jobmanager, Report report)
    : request_(std::move(request)),
      taskmanager_id_(std::move(taskmanager_id)),
      blobs_(blobs),
      local_state_(local_state),
      exchange_(exchange),
      jobmanager_(jobmanager),
      report_(std::move(report)) {}

JobPart::~JobPart() {
  Cancel();
  if (thread_.joinable()) thread_.join();
}

void JobPart::Start() {
  thread_ = std::thread([this] {
    absl::Status status = Run();
    JobPartReport report;
    report.set_job_id(request_.job_id());
    report.set_taskmanager_id(taskmanager_id_);
    report.set_attempt(request_.attempt());
    report.set_region(request_.region());
    {
      MutexLock lock(&mu_);
      done_ = true;
      if (first_record_at_) report.set_first_record_ms(absl::ToUnixMillis(*first_record_at_));
      *report.mutable_tasks() = std::move(final_metrics_);
      if (status.ok()) {
        // Its local copies go once the job ended (TaskManager::KeepLocalStateOf): another
        // region's part of the job here may still need them.
        report.set_state(FINISHED);
      } else if (absl::IsCancelled(status) && canceled_) {
        report.set_state(CANCELED);
      } else {
        report.set_state(FAILED);
        report.set_failure(std::string(status.message()));
      }
    }
    LOG(INFO) << "job " << request_.job_id() << ": this TaskManager's part ended: "
              << (status.ok() ? "finished" : status.ToString());
    report_(report);
  });
}

void JobPart::ReportRestore(const RestoreCounts& counts) {
  JobPartReport report;
  report.set_job_id(request_.job_id());
  report.set_taskmanager_id(taskmanager_id_);
  report.set_attempt(request_.attempt());
  report.set_region(request_.region());
  PartRestore* restore = report.mutable_restore();
  restore->set_state_files(counts.files_read);
  restore->set_state_files_local(counts.files_local);
  restore->set_state_files_skipped(counts.files_skipped);
  restore->set_rocksdb_files(counts.native_files);
  restore->set_rocksdb_files_local(counts.native_files_local);
  // Only for `sluice status`: a report lost does not stop the restore.
  if (absl::Status s = jobmanager_->ReportPartRestored(report); !s.ok()) {
    LOG(WARNING) << "job " << request_.job_id()
                 << ": reporting the restore failed: " << s.message();
  }
}

void JobPart::Cancel() {
  MutexLock lock(&mu_);
  canceled_ = true;
  if (channels_ != nullptr) channels_->Cancel();
  if (running_ != nullptr) running_->Cancel();
}

bool JobPart::done() const {
  MutexLock lock(&mu_);
  return done_;
}

void JobPart::Command(const CheckpointCommandRequest& command) {
  MutexLock lock(&mu_);
  if (command.attempt() != request_.attempt() || done_) return;  // for an earlier run
  if (running_ != nullptr) {
    Apply(command, *running_);
  } else {
    held_.push_back(command);
  }
}

namespace {

/// The subtasks' metrics `now` as reports of job `job_id`, appended to `out`.
void AppendMetrics(const std::string& job_id, const internal::LocalSubtasks& subtasks,
                   google::protobuf::RepeatedPtrField<TaskMetricsReport>* out) {
  for (const internal::TaskMetricsSnapshot& m : subtasks.MetricsNow(absl::Now())) {
    TaskMetricsReport* r = out->Add();
    r->set_job_id(job_id);
    r->set_vertex(m.vertex);
    r->set_subtask(m.subtask);
    r->set_records_in(m.records_in);
    r->set_records_sent(m.records_sent);
    r->set_records_in_per_second(m.records_in_per_second);
    r->set_records_sent_per_second(m.records_sent_per_second);
    r->set_busy(m.busy);
    r->set_idle(m.idle);
    r->set_backpressured(m.backpressured);
    r->set_input_watermark_ms(m.input_watermark_ms);
    r->set_output_watermark_ms(m.output_watermark_ms);
    for (const internal::KeyedStateSample& state : m.states) {
      StateSizeReport* size = r->add_states();
      size->set_operator_id(state.operator_id);
      size->set_state(state.state);
      size->set_entries(state.entries);
      size->set_bytes(state.bytes);
    }
  }
}

}  // namespace

void JobPart::AddMetricsTo(HeartbeatRequest* heartbeat) const {
  MutexLock lock(&mu_);
  if (running_ != nullptr) AppendMetrics(request_.job_id(), *running_, heartbeat->mutable_tasks());
}

void JobPart::Apply(const CheckpointCommandRequest& command, internal::LocalSubtasks& subtasks) {
  const int64_t id = command.checkpoint_id();
  const bool completed = command.kind() == CheckpointCommandRequest::COMPLETE ||
                         command.kind() == CheckpointCommandRequest::COMPLETE_AND_RELEASE;
  if (completed && local_state_ != nullptr) local_state_->Completed(request_.job_id(), id);
  switch (command.kind()) {
    case CheckpointCommandRequest::TRIGGER:
      return subtasks.TriggerSources(id, /*final_savepoint=*/false);
    case CheckpointCommandRequest::TRIGGER_FINAL_SAVEPOINT:
      return subtasks.TriggerSources(id, /*final_savepoint=*/true);
    case CheckpointCommandRequest::COMPLETE:
      return subtasks.NotifyComplete(id, /*release=*/false);
    case CheckpointCommandRequest::COMPLETE_AND_RELEASE:
      return subtasks.NotifyComplete(id, /*release=*/true);
    case CheckpointCommandRequest::ABORT:
      return subtasks.NotifyAborted(id);
    case CheckpointCommandRequest::STOP:
      return subtasks.Stop();
    default:
      LOG(WARNING) << "job " << command.job_id() << ": unknown checkpoint command "
                   << command.kind();
  }
}

absl::Status JobPart::RunSubtasks(internal::LocalSubtasks& subtasks, bool checkpointing) {
  bool ended = false;  // guarded by mu_
  std::thread watcher;
  if (checkpointing) {
    // A bounded job ends with a final checkpoint, which the JobManager takes once every
    // part's subtasks wait for it.
    watcher = std::thread([&] {
      UniqueMutexLock lock(&mu_);
      while (!ended_cv_.WaitFor(&mu_, absl::Milliseconds(20), [&ended] { return ended; })) {
        if (!subtasks.AllAwaitingFinalCheckpoint()) continue;
        lock.Unlock();
        JobPartReport report;
        report.set_job_id(request_.job_id());
        report.set_taskmanager_id(taskmanager_id_);
        report.set_attempt(request_.attempt());
        report.set_region(request_.region());
        report.set_state(RUNNING);
        if (absl::Status s = jobmanager_->ReportAwaitingFinalCheckpoint(report); !s.ok()) {
          LOG(WARNING) << "job " << request_.job_id() << ": " << s.message();
        }
        return;
      }
    });
  }
  absl::Status status = subtasks.Run();
  {
    MutexLock lock(&mu_);
    ended = true;
  }
  ended_cv_.SignalAll();
  if (watcher.joinable()) watcher.join();
  return status;
}

absl::Status JobPart::Run() {
  const BlobId blob{request_.job().job_binary().sha256(), request_.job().job_binary().size()};
  SLUICE_ASSIGN_OR_RETURN(auto path, blobs_->Acquire(blob));
  struct Release {
    BlobCache* blobs;
    std::string sha;
    ~Release() { blobs->Release(sha); }
  } release{blobs_, blob.sha256};

  // The JobManager scheduled the graph the client built: this must be the same one. (The
  // library in `rebuilt` outlives everything built from it.)
  auto rebuilt = RebuildSubmittedJob(path, request_.job(), "this TaskManager");
  if (!rebuilt.ok()) return rebuilt.status();
  const JobGraph* graph = rebuilt->graph.get();
  int subtasks = 0;
  for (const JobVertex& v : graph->vertices) subtasks += v.parallelism;
  if (request_.placement_size() != subtasks || request_.self() < 0 ||
      request_.self() >= request_.exchange_addresses_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a deployment with a placement of ", request_.placement_size(),
                     " subtasks for a job of ", subtasks, ", or an index ", request_.self(),
                     " outside its ", request_.exchange_addresses_size(), " TaskManagers"));
  }
  internal::Placement placement;
  placement.self = request_.self();
  int at = 0;
  for (const JobVertex& v : graph->vertices) {
    std::vector<int> where;
    for (int s = 0; s < v.parallelism; ++s) where.push_back(request_.placement(at++));
    placement.location.push_back(std::move(where));
  }

  // Checkpoints: the subtasks write their state files into the job's checkpoint directory
  // (which every process of the cluster reaches) and acknowledge to the JobManager.
  const JobConfig& config = graph->stream.config;
  const bool checkpointing = config.checkpoint_interval > absl::ZeroDuration();
  std::unique_ptr<CheckpointStorage> storage;
  if (checkpointing && !config.checkpoint_dir.empty()) {
    auto created = CheckpointStorage::Create(config.checkpoint_dir, config.job_name);
    if (!created.ok()) return created.status();
    storage = std::move(*created);
  }
  std::optional<std::map<int, std::vector<OperatorSnapshot>>> restore;
  if (!request_.restore_path().empty()) {
    // Only the state files of the subtasks placed here.
    std::map<int, std::vector<int>> here;
    for (const JobVertex& v : graph->vertices) {
      for (int s = 0; s < v.parallelism; ++s) {
        if (!placement.IsLocal(v.id, s)) continue;
        for (int node : v.nodes) here[node].push_back(s);
      }
    }
    LocalCopies local;
    if (local_state_ != nullptr) {
      local.read = [this](int64_t id, const StateHandle& handle) {
        return local_state_->Read(request_.job_id(), id, handle);
      };
      local.find_native = [this](int64_t id, std::vector<StoredFile>* files) {
        return local_state_->FindNativeCopies(request_.job_id(), id, files);
      };
    }
    RestoreCounts counts;
    auto state =
        LoadStateFor(graph->stream, request_.restore_path(), request_.allow_non_restored_state(),
                     FilesNeededBy(graph->stream, std::move(here)),
                     local_state_ != nullptr ? &local : nullptr, &counts);
    if (!state.ok()) return state.status();
    ReportRestore(counts);
    restore = std::move(*state);
  }
  internal::SubtaskCheckpointing cp;
  if (checkpointing) {
    cp.ack = [this](int64_t id, int task_index, absl::StatusOr<internal::TaskAck> ack) {
      CheckpointAck message = EncodeCheckpointAck(ack);
      message.set_job_id(request_.job_id());
      message.set_attempt(request_.attempt());
      message.set_checkpoint_id(id);
      message.set_task_index(task_index);
      // Lost, the checkpoint times out on the JobManager: nothing else to do here.
      if (absl::Status s = jobmanager_->AcknowledgeCheckpoint(message); !s.ok()) {
        LOG(WARNING) << "job " << request_.job_id() << ": checkpoint " << id << ": " << s.message();
      }
    };
    cp.storage = storage.get();
    if (local_state_ != nullptr) {
      cp.keep_local_copy = [this](int64_t id, const StateHandle& handle, std::string_view bytes) {
        local_state_->Put(request_.job_id(), id, handle, bytes);
      };
      cp.keep_native_copy = [this](int64_t id, const std::string& dir,
                                   const std::vector<StoredFile>& stored) {
        local_state_->PutNative(request_.job_id(), id, dir, stored);
      };
    }
  }
  cp.restore = restore ? &*restore : nullptr;

  ExchangeChannels channels(
      request_.job_id(), request_.attempt(), exchange_,
      {request_.exchange_addresses().begin(), request_.exchange_addresses().end()});
  absl::Status status;
  {
    internal::LocalSubtasks subtasks(graph, placement, &channels, std::make_shared<SystemClock>(),
                                     std::move(cp), {{"job_id", request_.job_id()}});
    {
      MutexLock lock(&mu_);
      running_ = &subtasks;
      channels_ = &channels;
      if (canceled_) {
        channels.Cancel();
        subtasks.Cancel();
      }
      for (const CheckpointCommandRequest& command : held_) Apply(command, subtasks);
      held_.clear();
    }
    status = RunSubtasks(subtasks, checkpointing);
    {
      MutexLock lock(&mu_);
      first_record_at_ = subtasks.FirstRecordAt();
      AppendMetrics(request_.job_id(), subtasks, &final_metrics_);
      running_ = nullptr;
      channels_ = nullptr;
    }
    channels.Close();  // inbound channels unregistered before their gates go
  }
  return status;
}

}  // namespace sluice::cluster
