#include "checkpoint/remote_participants.h"

#include "glog/logging.h"

namespace sluice::cluster {

RemoteParticipants::RemoteParticipants(std::string job_id, std::vector<Member> members,
                                       TaskManagerGateway* gateway,
                                       std::function<void(const absl::Status&)> on_fail)
    : job_id_(std::move(job_id)),
      members_(std::move(members)),
      gateway_(gateway),
      on_fail_(std::move(on_fail)) {
  sender_ = std::thread([this] { Send(); });
}

RemoteParticipants::~RemoteParticipants() {
  {
    MutexLock lock(&mu_);
    closing_ = true;
  }
  cv_.SignalAll();
  sender_.join();
}

void RemoteParticipants::Enqueue(CheckpointCommandRequest::Kind kind, int64_t id) {
  Command c;
  c.request.set_job_id(job_id_);
  c.request.set_kind(kind);
  c.request.set_checkpoint_id(id);
  {
    MutexLock lock(&mu_);
    queue_.push_back(std::move(c));
  }
  cv_.SignalAll();
}

void RemoteParticipants::TriggerSources(int64_t id, bool final_savepoint) {
  Enqueue(final_savepoint ? CheckpointCommandRequest::TRIGGER_FINAL_SAVEPOINT
                          : CheckpointCommandRequest::TRIGGER,
          id);
}

void RemoteParticipants::NotifyComplete(int64_t id, bool release) {
  Enqueue(
      release ? CheckpointCommandRequest::COMPLETE_AND_RELEASE : CheckpointCommandRequest::COMPLETE,
      id);
}

void RemoteParticipants::NotifyAborted(int64_t id) { Enqueue(CheckpointCommandRequest::ABORT, id); }

void RemoteParticipants::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  Enqueue(CheckpointCommandRequest::STOP, 0);
}

void RemoteParticipants::Fail(const absl::Status& why) {
  {
    MutexLock lock(&mu_);
    ended_ = true;
    queue_.push_back(Command{{}, why});
  }
  cv_.SignalAll();
}

bool RemoteParticipants::AllAwaitingFinalCheckpoint() {
  MutexLock lock(&mu_);
  return awaiting_.size() == members_.size();
}

bool RemoteParticipants::AnyFinished() {
  MutexLock lock(&mu_);
  return ended_;
}

void RemoteParticipants::MarkAwaitingFinal(const std::string& taskmanager_id, int region) {
  MutexLock lock(&mu_);
  awaiting_.insert({taskmanager_id, region});
}

void RemoteParticipants::MarkEnded() {
  MutexLock lock(&mu_);
  ended_ = true;
}

void RemoteParticipants::Abandon() {
  MutexLock lock(&mu_);
  ended_ = true;
  abandoned_ = true;
}

bool RemoteParticipants::stopping() const {
  MutexLock lock(&mu_);
  return stopping_;
}

void RemoteParticipants::Send() {
  while (true) {
    Command c;
    {
      MutexLock lock(&mu_);
      cv_.Wait(&mu_, [this]() SLUICE_REQUIRES(mu_) { return closing_ || !queue_.empty(); });
      if (closing_) return;
      c = std::move(queue_.front());
      queue_.pop_front();
      if (abandoned_ && c.failure.ok()) continue;
    }
    if (!c.failure.ok()) {
      on_fail_(c.failure);
    } else {
      for (const Member& member : members_) {
        c.request.set_region(member.region);
        c.request.set_attempt(member.attempt);
        absl::Status s = gateway_->SendCheckpointCommand(member.address, c.request);
        // A TaskManager that missed a trigger makes the checkpoint time out; a lost one
        // fails the run through its heartbeats.
        if (!s.ok()) {
          LOG(WARNING) << job_id_ << ": checkpoint command " << c.request.kind() << " for "
                       << c.request.checkpoint_id() << " did not reach TaskManager '"
                       << member.taskmanager_id << "': " << s.message();
        }
      }
    }
  }
}

}  // namespace sluice::cluster
