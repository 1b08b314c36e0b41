#pragma once

// For tests: a TaskManager gateway that records what the JobManager sends and answers with
// the failures a test arranges.

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gateway/taskmanager_gateway.h"

namespace sluice::cluster {

class FakeTaskManagerGateway final : public TaskManagerGateway {
 public:
  struct Sent {
    std::string address;
    std::string what;  // "deploy", "cancel" or the checkpoint command's kind name
    DeployJobRequest deploy;
    CheckpointCommandRequest command;
  };

  /// Calls to `address` fail with `status` from now on (OK: they succeed again).
  void FailCallsTo(const std::string& address, absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (status.ok()) {
      failing_.erase(address);
    } else {
      failing_[address] = std::move(status);
    }
  }

  absl::Status Deploy(const std::string& address, const DeployJobRequest& request) override {
    return Record({address, "deploy", request, {}});
  }
  absl::Status Cancel(const std::string& address, const CancelJobPartRequest& request) override {
    DeployJobRequest which;
    which.set_job_id(request.job_id());
    which.set_region(request.region());
    which.set_attempt(request.attempt());
    return Record({address, "cancel", which, {}});
  }
  absl::Status SendCheckpointCommand(const std::string& address,
                                     const CheckpointCommandRequest& request) override {
    return Record({address, CheckpointCommandRequest::Kind_Name(request.kind()), {}, request});
  }

  std::vector<Sent> sent() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }
  /// The addresses `what` was sent to, in order.
  std::vector<std::string> AddressesOf(const std::string& what) const {
    std::vector<std::string> out;
    for (const Sent& s : sent()) {
      if (s.what == what) out.push_back(s.address);
    }
    return out;
  }
  /// Waits (up to `timeout`) until `what` was sent `count` times in all.
  bool AwaitSent(const std::string& what, size_t count, absl::Duration timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] {
      size_t n = 0;
      for (const Sent& s : sent_) n += s.what == what;
      return n >= count;
    });
  }

 private:
  absl::Status Record(Sent sent) {
    std::lock_guard<std::mutex> lock(mu_);
    auto failing = failing_.find(sent.address);
    sent_.push_back(std::move(sent));
    cv_.notify_all();
    return failing == failing_.end() ? absl::OkStatus() : failing->second;
  }

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<Sent> sent_;
  std::map<std::string, absl::Status> failing_;
};

}  // namespace sluice::cluster
