#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "checkpoint/remote_participants.h"
#include "gateway/taskmanager_gateway.h"
#include "proto/taskmanager_service.pb.h"
#include "sluice/internal/runtime/job_checkpoints.h"
#include "sluice/jobmanager/submitted_job.h"
#include "sluice/runtime/restart_strategy.h"

namespace sluice::cluster {

/// A deployment or cancellation of a job's part to send to a TaskManager. Job masters decide
/// them under the dispatcher's lock; the dispatcher sends them after letting go of it.
struct PartCall {
  std::string taskmanager_id;
  std::string address;
  DeployJobRequest deploy;  // empty for a cancellation
};

/// One submitted job on the cluster, over all its runs: its state (CREATED -> RUNNING ->
/// FINISHED / FAILED / CANCELED, RESTARTING between runs), the run's TaskManagers and slots,
/// the restart attempts and delay, and the job's checkpoints (the engine's coordinator) with
/// the current run's participants. Not thread-safe: the dispatcher calls it under its lock,
/// except that the run's sending thread calls `on_checkpoints_failed_run`.
class JobMaster {
 public:
  using Clock = std::function<absl::Time()>;
  /// Called (from a run's own thread, without any lock) when the job's checkpoints fail run
  /// `attempt`; the owner then calls FailRun under its lock if that run is still current.
  using RunFailedCallback = std::function<void(int64_t attempt, const absl::Status& why)>;

  /// `checkpoints` is null for a job without a checkpoint interval. `gateway` carries the
  /// checkpoint commands of every run and outlives this.
  JobMaster(std::string id, JobSubmission request, SubmittedJob job,
            std::unique_ptr<internal::JobCheckpoints> checkpoints, TaskManagerGateway* gateway,
            RunFailedCallback on_checkpoints_failed_run,
            const std::optional<RestartStrategyConfig>& default_restart_strategy = {},
            Clock now = &absl::Now);
  /// Ends the run's checkpoints first (the run's thread may still call back).
  ~JobMaster();
  JobMaster(const JobMaster&) = delete;
  JobMaster& operator=(const JobMaster&) = delete;

  const std::string& id() const { return status_.job_id(); }
  JobState state() const { return status_.state(); }
  int64_t attempt() const { return attempt_; }
  int slots_needed() const { return status_.slots_needed(); }
  const JobConfig& config() const;
  /// Null without a checkpoint interval; lives as long as the job master.
  internal::JobCheckpoints* checkpoints() const { return checkpoints_.get(); }

  /// A JobManager started again recovered this job, whose latest run was `last_attempt`: its
  /// runs are numbered after that one and restore the newest valid checkpoint on disk.
  void Recovered(int64_t last_attempt);
  const JobSubmission& submission() const { return request_; }
  bool ended() const { return state() == FINISHED || state() == FAILED || state() == CANCELED; }

  /// True while the job waits for slots: CREATED, or RESTARTING once its parts ended and
  /// the restart delay passed (it then becomes CREATED).
  bool WaitsForSlots();
  /// RESTARTING: when the next run may start (once its parts ended).
  absl::Time restart_at() const { return restart_at_; }
  /// Since when it waits for slots (submission or the restart).
  absl::Time waiting_since() const { return waiting_since_; }

  /// Starts a run in the given slots (`slot_owners[i]` is the TaskManager of slot i,
  /// `address_of` its address): RUNNING, and the deployments to send.
  std::vector<PartCall> StartRun(const std::vector<std::string>& slot_owners,
                                 const std::function<std::string(const std::string&)>& address_of);
  /// Every part of run `attempt` was deployed: its checkpoints may start.
  void RunDeployed(int64_t attempt);
  /// Deploying run `attempt`'s part to `taskmanager_id` failed: the run fails.
  std::vector<PartCall> DeployFailed(const std::string& taskmanager_id, int64_t attempt,
                                     const std::string& why);
  /// The run failed (on `taskmanager_id`, if on one): the job restarts if its restart
  /// strategy lets it, else fails with the history of its failures. Returns the parts to
  /// cancel.
  std::vector<PartCall> FailRun(const std::string& why, const std::string& taskmanager_id = "");
  /// The job ends as `state` (FAILED, CANCELED): the parts to cancel.
  std::vector<PartCall> End(JobState state, const std::string& failure);
  /// The current run's part on `taskmanager_id` ended as `state` (its first record
  /// processed at `first_record_ms`, unix ms, 0: none).
  std::vector<PartCall> PartEnded(const std::string& taskmanager_id, JobState state,
                                  const std::string& failure, int64_t first_record_ms = 0);
  /// `taskmanager_id` was lost: if it ran a part, the run fails.
  std::vector<PartCall> TaskManagerLost(const std::string& taskmanager_id, const std::string& why);
  /// The current run's part on `taskmanager_id` only waits for the final checkpoint.
  void PartAwaitsFinalCheckpoint(const std::string& taskmanager_id);
  /// The run's part on `taskmanager_id` restored its state (JobStatus.restores).
  void PartRestored(const std::string& taskmanager_id, const PartRestore& restore);
  /// Once no part of an ended run is left: ends the run's checkpoints and hands its
  /// participants out (to destroy outside the lock: that joins their thread).
  std::unique_ptr<RemoteParticipants> RetireRun();
  /// The JobManager stops: ends the run's checkpoints and hands its participants out.
  std::unique_ptr<RemoteParticipants> TakeRunForShutdown();
  /// Once no part runs: the slots to give back (each only once).
  std::vector<std::string> TakeReleasableSlots();
  /// The TaskManager of each slot of the latest run (a restart asks for the same ones: their
  /// subtasks' local state is there).
  const std::vector<std::string>& last_slot_owners() const { return last_slot_owners_; }

  JobStatus Status() const;

 private:
  void SetState(JobState state, const std::string& detail);
  std::vector<PartCall> RunningParts() const;
  /// The checkpoint or savepoint a new run restores from (empty: none).
  std::string RestorePath(bool* allow_non_restored) const;

  const JobSubmission request_;
  const Clock now_;
  TaskManagerGateway* const gateway_;
  const RunFailedCallback on_checkpoints_failed_run_;
  JobStatus status_;
  absl::Time submitted_;
  absl::Time ended_ = absl::InfiniteFuture();
  absl::Time waiting_since_;
  absl::Time restart_at_;                             // RESTARTING: when the next run may start
  int64_t attempt_ = 0;                               // the number of the current (or last) run
  bool recovered_ = false;                            // by a JobManager started again
  std::vector<std::string> last_slot_owners_;         // of the latest run (kept after it)
  std::vector<std::string> slot_owners_;              // TaskManager of each slot, while held
  std::map<std::string, std::string> parts_running_;  // TaskManager -> address
  // Declared in the order they must outlive each other (destroyed in reverse).
  SubmittedJob job_;                                       // the graph holds the binary's code
  RestartStrategy restart_strategy_;                       // from the job's configuration
  std::unique_ptr<RemoteParticipants> run_;                // the current run's; null between runs
  std::unique_ptr<internal::JobCheckpoints> checkpoints_;  // null without a checkpoint interval
};

}  // namespace sluice::cluster
