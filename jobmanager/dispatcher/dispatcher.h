#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gateway/taskmanager_gateway.h"
#include "job/job_master.h"
#include "proto/jobmanager_service.pb.h"
#include "recovery/job_store.h"
#include "scheduler/scheduler.h"
#include "sluice/core/mutex.h"
#include "sluice/jobmanager/blob_store.h"

namespace sluice::cluster {

struct DispatcherOptions {
  SchedulerOptions scheduler;
  /// How often the scheduling thread looks at waiting jobs without being woken (restart
  /// delays, slot waits); false: no thread, the owner calls SchedulePass (tests).
  absl::Duration scheduling_period = absl::Milliseconds(200);
  bool scheduling_thread = true;
  /// The restart strategy of jobs that name none (unset: by checkpointing, see
  /// RestartStrategy::ConfigOf).
  std::optional<RestartStrategyConfig> default_restart_strategy;
  /// Keeps the jobs that have not ended (--recovery-dir); null: they live in memory only.
  JobStore* job_store = nullptr;
};

/// The JobManager's job table: submissions (each job's binary is loaded here too, to build
/// the graph its checkpoints work on), a JobMaster per job, the scheduler with the slot pool
/// of the registered TaskManagers, and what TaskManagers and clients report and ask about
/// jobs. One lock (`mu_`) guards the table, the job masters and the scheduler; calls to
/// TaskManagers (through the gateway) and the joining of a run's thread happen outside it.
/// A scheduling thread places waiting and restarting jobs.
class Dispatcher {
 public:
  using Clock = std::function<absl::Time()>;

  /// `blobs` and `gateway` outlive the dispatcher.
  Dispatcher(BlobStore* blobs, TaskManagerGateway* gateway, DispatcherOptions options,
             Clock now = &absl::Now);
  ~Dispatcher();

  /// With a job store: takes up the jobs it holds (a JobManager started again), each to run
  /// from its newest valid checkpoint once there are slots, and continues its job numbers.
  /// Before serving.
  absl::Status Recover();
  /// Checks and accepts a job (its binary in the blob store); returns its id.
  absl::StatusOr<std::string> Submit(const JobSubmission& request);
  /// The same for a binary uploaded through the REST API, whose graph no client built: the
  /// JobManager builds it to complete the submission (DescribeSubmission).
  absl::StatusOr<std::string> SubmitUploaded(JobSubmission request);
  /// Checks a submission as Submit does (its graph builds; the state it would restore from
  /// suits it) without starting anything.
  absl::Status Check(const JobSubmission& request);
  absl::StatusOr<JobStatus> Job(const std::string& job_id) const;
  /// What a job was submitted with.
  absl::StatusOr<JobSubmission> Submission(const std::string& job_id) const;
  std::vector<JobStatus> Jobs() const;
  /// The ids of the jobs that have not ended.
  std::vector<std::string> LiveJobIds() const;
  /// Subtasks' metrics from a TaskManager's heartbeat, each to its job (unknown jobs ignored).
  void RecordTaskMetrics(const google::protobuf::RepeatedPtrField<TaskMetricsReport>& tasks);
  absl::StatusOr<JobStatus> Cancel(const std::string& job_id);
  /// A TaskManager's part of a job ended (reports of earlier runs are ignored).
  void PartEnded(const JobPartReport& report);
  void PartAwaitsFinalCheckpoint(const JobPartReport& report);
  /// A TaskManager's part of the current run restored its state (what from).
  void PartRestored(const JobPartReport& report);
  absl::Status AcknowledgeCheckpoint(const CheckpointAck& ack);
  /// Takes a savepoint of a running job (and stops it with `stop`); returns its path.
  absl::StatusOr<std::string> TriggerSavepoint(const TriggerSavepointRequest& request);

  /// A TaskManager registered (again) and offers its slots.
  void TaskManagerRegistered(const RegisterTaskManagerRequest& registration,
                             int64_t registration_number);
  /// A TaskManager is gone: its slots leave the pool, runs with a part on it fail.
  void TaskManagerLost(const std::string& taskmanager_id, int64_t registration_number,
                       const std::string& why);
  /// The free slots of a TaskManager in the pool (nothing if it is not).
  std::optional<int> FreeSlotsOf(const std::string& taskmanager_id) const;

  /// Retires ended runs, lets restarting jobs wait for slots, places waiting jobs and deploys
  /// them. The scheduling thread calls it; tests without the thread call it directly.
  void SchedulePass();

 private:
  /// Builds the job's graph from its binary and checks what would otherwise only fail on
  /// the TaskManagers (chaos option, checkpoint directory, the savepoint to restore).
  absl::Status Prepare(const JobSubmission& request, SubmittedJob* job,
                       std::unique_ptr<internal::JobCheckpoints>* checkpoints);
  /// The job's checkpoints failed run `attempt` (too many checkpoint failures, a failed
  /// stop): as any failure of a run.
  void CheckpointsFailedRun(const std::string& job_id, int64_t attempt, const absl::Status& why);
  /// Under mu_: gives back the slots of a job no part of which runs any more.
  void ReleaseSlotsOf(JobMaster& job) SLUICE_REQUIRES(mu_);
  /// A job master for a prepared job (and its checkpoints), under id `id`.
  std::unique_ptr<JobMaster> MakeJobMaster(const std::string& id, const JobSubmission& request,
                                           SubmittedJob job,
                                           std::unique_ptr<internal::JobCheckpoints> checkpoints);
  /// Writes what the job store must know after a scheduling pass: runs started, jobs ended.
  void UpdateJobStore(const std::vector<RecoveredJob>& started,
                      const std::vector<std::string>& ended);
  void Cancel(const std::string& job_id, const std::vector<PartCall>& parts);
  void Deploy(const std::string& job_id, const std::vector<PartCall>& calls);
  void ScheduleLoop();
  /// Destroys ended runs handed over by SchedulePass: joining a run's sending thread may wait
  /// for a call to a TaskManager that does not answer (--checkpoint-command-timeout), which
  /// must not hold back the scheduling of the next run.
  void RetireLoop();
  static absl::Status NoSuchJob(const std::string& job_id);

  BlobStore* const blobs_;
  TaskManagerGateway* const gateway_;
  const DispatcherOptions options_;
  const Clock now_;

  mutable Mutex mu_;
  std::map<std::string, std::unique_ptr<JobMaster>> jobs_ SLUICE_GUARDED_BY(mu_);
  Scheduler scheduler_ SLUICE_GUARDED_BY(mu_);
  int64_t next_job_ SLUICE_GUARDED_BY(mu_) = 1;
  std::set<std::string> stored_ SLUICE_GUARDED_BY(mu_);  // jobs in the job store
  bool stopping_ SLUICE_GUARDED_BY(mu_) = false;
  CondVar schedule_cv_;
  std::thread scheduling_thread_;
  Mutex retire_mu_;
  CondVar retire_cv_;
  std::vector<std::unique_ptr<RemoteParticipants>> to_retire_ SLUICE_GUARDED_BY(retire_mu_);
  bool retire_stopping_ SLUICE_GUARDED_BY(retire_mu_) = false;
  std::thread retire_thread_;
};

}  // namespace sluice::cluster
