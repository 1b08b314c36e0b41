#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sluice/jobmanager/jobmanager_client.h"

namespace sluice::cluster {

/// How a TaskManager's control stream to its JobManager ended.
enum class ControlStreamEnd {
  kStopping,  // the TaskManager stops
  kUnknown,   // the JobManager does not know this registration: register again
  kBroken,    // the stream broke: the JobManager's process ended or the connection failed
  kSilent,    // no answer for the heartbeat timeout: a host down, a partition
};

struct ControlStreamOptions {
  std::string taskmanager_id;
  int64_t registration_number = 0;
  absl::Duration heartbeat_interval = absl::Milliseconds(500);
  /// The JobManager is given up after this long without an answer.
  absl::Duration heartbeat_timeout = absl::Seconds(4);
};

/// Keeps one control stream to the JobManager (its Heartbeats RPC) for one registration:
/// sends a heartbeat every interval (`every_interval` is called first and may add to it) and
/// reads the answers on
/// its own thread (each given to `on_answer` there), until the stream breaks, the JobManager
/// goes silent or forgets the registration, or `stopping` becomes true (checked at least every
/// interval). `why` says what happened.
ControlStreamEnd RunControlStream(JobManagerClient* jobmanager, const ControlStreamOptions& options,
                                  const std::atomic<bool>& stopping,
                                  const std::function<void(HeartbeatRequest*)>& every_interval,
                                  const std::function<void(const HeartbeatReply&)>& on_answer,
                                  std::string* why);

}  // namespace sluice::cluster
