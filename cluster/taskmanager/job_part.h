#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "cluster/blob/blob_cache.h"
#include "cluster/exchange/exchange_channels.h"
#include "cluster/exchange/exchange_server.h"
#include "proto/cluster.pb.h"
#include "sluice/runtime/local_subtasks.h"

namespace sluice::cluster {

/// One job's share on a TaskManager: fetches the job binary (verified, cached), loads it
/// (the engine ABI is checked here too), builds the job graph from the job's arguments,
/// checks it is the graph the JobManager scheduled, and runs the subtasks placed here, with
/// their remote channels over the exchange. Runs on its own thread; reports how it ended.
class JobPart {
 public:
  using Report = std::function<void(const JobPartReport&)>;

  JobPart(DeployJobRequest request, BlobCache* blobs, ExchangeServer* exchange, Report report);
  ~JobPart();  // cancels and joins

  void Start();
  /// Any thread: ends the subtasks (reported as CANCELED unless they failed first).
  void Cancel();
  bool done() const;

 private:
  absl::Status Run();

  const DeployJobRequest request_;
  BlobCache* blobs_;
  ExchangeServer* exchange_;
  Report report_;
  std::thread thread_;
  mutable std::mutex mu_;
  bool canceled_ = false;                 // guarded by mu_
  bool done_ = false;                     // guarded by mu_
  LocalSubtasks* running_ = nullptr;      // guarded by mu_, while Run runs them
  ExchangeChannels* channels_ = nullptr;  // guarded by mu_
};

}  // namespace sluice::cluster
