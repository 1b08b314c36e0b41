#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cluster/blob/blob_cache.h"
#include "cluster/client/jobmanager_client.h"

namespace sluice::cluster {

struct TaskManagerOptions {
  std::string jobmanager;  // HOST:PORT
  int slots = 1;
  std::string id;         // unique in the cluster
  std::string cache_dir;  // local copies of job binaries
  /// Gives up when the JobManager cannot be reached this long at the start.
  absl::Duration registration_timeout = absl::Seconds(30);
};

/// A TaskManager process: registers its slots with the JobManager, keeps sending heartbeats
/// (and registers again if the JobManager forgot it), fetches job binaries into its cache.
class TaskManager {
 public:
  explicit TaskManager(TaskManagerOptions options);

  /// Runs until Stop() or a fatal error (the JobManager refused it, or could not be reached
  /// within the registration timeout at the start).
  absl::Status Run();
  /// Any thread (a signal handler's helper).
  void Stop() { stopping_.store(true); }

 private:
  /// Registers, retrying while the JobManager is unreachable, for at most `patience`.
  absl::Status RegisterWithin(absl::Duration patience);

  TaskManagerOptions options_;
  JobManagerClient jobmanager_;
  std::unique_ptr<BlobCache> blobs_;
  std::atomic<bool> stopping_{false};
  absl::Duration heartbeat_interval_ = absl::Seconds(1);
};

}  // namespace sluice::cluster
