#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gateway/taskmanager_gateway.h"
#include "proto/taskmanager_service.pb.h"
#include "sluice/core/mutex.h"
#include "sluice/internal/runtime/job_checkpoints.h"

namespace sluice::cluster {

/// The running parts of a job on its TaskManagers (one per TaskManager and pipelined
/// region, each of the run that deployed it), as the job's checkpoints reach them. Commands
/// go to every part, in order, from this object's own thread: the coordinator never waits
/// for the network. What the parts reported (every part waits for the final checkpoint; a
/// part ended) decides when checkpoints are taken. A region failover replaces the object.
class RemoteParticipants final : public internal::CheckpointParticipants {
 public:
  struct Member {
    std::string taskmanager_id;
    std::string address;
    int region = 0;
    int64_t attempt = 0;  // the run that deployed the part: its commands carry it
  };

  /// Commands go through `gateway` (which outlives this); `on_fail` runs on the sending
  /// thread when the checkpoints fail the run.
  RemoteParticipants(std::string job_id, std::vector<Member> members, TaskManagerGateway* gateway,
                     std::function<void(const absl::Status&)> on_fail);
  ~RemoteParticipants() override;  // drops unsent commands

  void TriggerSources(int64_t id, bool final_savepoint) override;
  void NotifyComplete(int64_t id, bool release) override;
  void NotifyAborted(int64_t id) override;
  void Stop() override;
  void Fail(const absl::Status& why) override;
  bool AllAwaitingFinalCheckpoint() override;
  bool AnyFinished() override;

  /// The part of `region` on `taskmanager_id` only waits for the final checkpoint.
  void MarkAwaitingFinal(const std::string& taskmanager_id, int region);
  /// A part of the run ended, or the run is failing: no checkpoint starts any more.
  void MarkEnded();
  /// The run failed or was canceled: commands not sent yet are dropped (a TaskManager that
  /// does not answer must not hold back the next run for its deadline).
  void Abandon();
  /// True once the stop's savepoint is written and the parts were told to end.
  bool stopping() const;

 private:
  struct Command {
    CheckpointCommandRequest request;
    absl::Status failure;  // set: the run fails (on_fail), nothing is sent
  };
  void Enqueue(CheckpointCommandRequest::Kind kind, int64_t id);
  void Send();

  const std::string job_id_;
  const std::vector<Member> members_;
  TaskManagerGateway* const gateway_;
  std::function<void(const absl::Status&)> on_fail_;

  mutable Mutex mu_;
  CondVar cv_;
  std::deque<Command> queue_ SLUICE_GUARDED_BY(mu_);
  std::set<std::pair<std::string, int>> awaiting_ SLUICE_GUARDED_BY(mu_);  // parts
  bool ended_ SLUICE_GUARDED_BY(mu_) = false;
  bool stopping_ SLUICE_GUARDED_BY(mu_) = false;
  bool closing_ SLUICE_GUARDED_BY(mu_) = false;
  bool abandoned_ SLUICE_GUARDED_BY(mu_) = false;
  std::thread sender_;
};

}  // namespace sluice::cluster
