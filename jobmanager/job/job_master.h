#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
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

/// A deployment or cancellation of a job's part (its share of one pipelined region on one
/// TaskManager) to send to a TaskManager. Job masters decide them under the dispatcher's
/// lock; the dispatcher sends them after letting go of it.
struct PartCall {
  std::string taskmanager_id;
  std::string address;
  DeployJobRequest deploy;  // empty for a cancellation
  int region = 0;
  int64_t attempt = 0;  // the run that deployed the part
};

/// One submitted job on the cluster, over all its runs: its state (CREATED -> RUNNING ->
/// FINISHED / FAILED / CANCELED, RESTARTING between runs), its parts (one per TaskManager and
/// pipelined region) and slots, the restart strategy, and the job's checkpoints (the engine's
/// coordinator) with the running parts as participants. A failure restarts only the
/// pipelined regions it touched (region failover) while the others run on and the job stays
/// RUNNING; one that touches every region restarts the whole job (RESTARTING). Runs are
/// numbered over the job; each region runs the parts of one run. Not thread-safe: the
/// dispatcher calls it under its lock, except that the sending thread of the participants
/// calls `on_checkpoints_failed_run`.
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
  /// When a restart (of the job, or of failed regions) is due, if one waits.
  std::optional<absl::Time> restart_due() const;
  /// True when failed regions may start again: their parts ended and the restart delay
  /// passed. They then need `lost_slots()` slots in place of those of lost TaskManagers.
  bool RegionsAwaitRestart();
  int lost_slots() const;
  /// Starts the failed regions' next run: `replacements` take the lost slots in order.
  std::vector<PartCall> RestartRegions(
      const std::vector<std::string>& replacements,
      const std::function<std::string(const std::string&)>& address_of);
  /// Whether a report of run `attempt` about `region` is of the parts running now.
  bool IsCurrent(int region, int64_t attempt) const;
  /// Whether an acknowledgement of run `attempt` by task `task_index` comes from a part
  /// that does not run now. (A task the job does not have is not stale: the checkpoints
  /// refuse it, naming it.)
  bool IsStaleTask(int task_index, int64_t attempt) const;
  /// Since when it waits for slots (submission or the restart).
  absl::Time waiting_since() const { return waiting_since_; }

  /// Starts a run in the given slots (`slot_owners[i]` is the TaskManager of slot i,
  /// `address_of` its address): RUNNING, and the deployments to send.
  std::vector<PartCall> StartRun(const std::vector<std::string>& slot_owners,
                                 const std::function<std::string(const std::string&)>& address_of);
  /// Every part of run `attempt` was deployed: checkpoints of the running parts may start.
  void RunDeployed(int64_t attempt);
  /// Deploying `failed` failed; `not_sent` (of the same run) were not sent: the regions
  /// fail. Returns the parts to cancel.
  std::vector<PartCall> DeployFailed(const PartCall& failed, const std::vector<PartCall>& not_sent,
                                     const std::string& why);
  /// Regions failed (on `taskmanager_id`, if on one; `regions` empty: all of them): they
  /// restart if the restart strategy lets them, else the job fails with the history of its
  /// failures. Returns the parts to cancel.
  std::vector<PartCall> FailRun(const std::string& why, const std::string& taskmanager_id = "",
                                const std::set<int>& regions = {});
  /// The job ends as `state` (FAILED, CANCELED): the parts to cancel.
  std::vector<PartCall> End(JobState state, const std::string& failure);
  /// A part ended (reports of parts not running now change nothing).
  std::vector<PartCall> PartEnded(const JobPartReport& report);
  /// `taskmanager_id` was lost: the regions of its parts fail, its slots are lost.
  std::vector<PartCall> TaskManagerLost(const std::string& taskmanager_id, const std::string& why);
  /// The part of `region` on `taskmanager_id` only waits for the final checkpoint.
  void PartAwaitsFinalCheckpoint(const std::string& taskmanager_id, int region);
  /// A part restored its state (JobStatus.restores).
  void PartRestored(const std::string& taskmanager_id, int region, const PartRestore& restore);
  /// The participants of ended runs, and of runs a region failover replaced: to destroy
  /// outside the lock (that joins their thread). A run whose parts all ended also ends its
  /// checkpoints here.
  std::vector<std::unique_ptr<RemoteParticipants>> TakeEndedRuns();
  /// The JobManager stops: ends the run's checkpoints and hands its participants out.
  std::unique_ptr<RemoteParticipants> TakeRunForShutdown();
  /// Once no part runs: the slots to give back (each only once).
  std::vector<std::string> TakeReleasableSlots();
  /// The TaskManager of each slot of the latest run (a restart asks for the same ones: their
  /// subtasks' local state is there).
  const std::vector<std::string>& last_slot_owners() const { return last_slot_owners_; }

  JobStatus Status() const;
  /// A subtask's latest metrics, from its TaskManager's heartbeat (per-vertex metrics in
  /// Status()).
  void RecordTaskMetrics(const TaskMetricsReport& report);

 private:
  /// Sums, maxima and the least watermarks over `vertex`'s subtasks' latest reports.
  void AddVertexMetrics(int vertex, int parallelism, JobVertexInfo* info) const;
  struct PartId {
    std::string taskmanager_id;
    int region = 0;
    auto operator<=>(const PartId&) const = default;
  };

  void SetState(JobState state, const std::string& detail);
  /// The running parts of `regions` (empty: all), to cancel.
  std::vector<PartCall> RunningParts(const std::set<int>& regions = {}) const;
  /// The checkpoint or savepoint a new run restores from (empty: none).
  std::string RestorePath(bool* allow_non_restored) const;
  /// Run `attempt_`'s deployments of `regions` into the held slots, as running parts.
  std::vector<PartCall> DeployRegions(
      const std::set<int>& regions,
      const std::function<std::string(const std::string&)>& address_of);
  /// New participants over every running part (the checkpoints begin with RunDeployed).
  void NewParticipants();

  const JobSubmission request_;
  const Clock now_;
  TaskManagerGateway* const gateway_;
  const RunFailedCallback on_checkpoints_failed_run_;
  JobStatus status_;
  absl::Time submitted_;
  absl::Time ended_ = absl::InfiniteFuture();
  absl::Time waiting_since_;
  absl::Time restart_at_;                      // RESTARTING: when the next run may start
  int64_t attempt_ = 0;                        // the number of the current (or last) run
  bool recovered_ = false;                     // by a JobManager started again
  std::vector<std::string> last_slot_owners_;  // of the latest run (kept after it)
  std::vector<std::string> slot_owners_;       // TaskManager of each slot, while held; "": lost
  std::vector<int> region_of_task_;            // PipelinedRegions of the graph
  int regions_ = 1;
  std::vector<int64_t> region_attempt_;          // the run each region's parts belong to
  std::map<PartId, std::string> parts_running_;  // -> the TaskManager's address
  std::map<std::pair<int, int>, TaskMetricsReport> task_metrics_;  // (vertex, subtask) ->
  std::set<PartId> awaiting_final_;   // parts waiting for the final checkpoint
  std::set<int> regions_restarting_;  // failed regions not deployed again yet
  absl::Time region_restart_at_;
  bool regions_waiting_ = false;  // the failed regions' parts ended: waiting_since_ is set
  std::vector<std::unique_ptr<RemoteParticipants>> replaced_runs_;  // by region failovers
  // Declared in the order they must outlive each other (destroyed in reverse).
  SubmittedJob job_;                                       // the graph holds the binary's code
  RestartStrategy restart_strategy_;                       // from the job's configuration
  std::unique_ptr<RemoteParticipants> run_;                // the current run's; null between runs
  std::unique_ptr<internal::JobCheckpoints> checkpoints_;  // null without a checkpoint interval
};

}  // namespace sluice::cluster
