#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "sluice/jobmanager/http_endpoint.h"

namespace sluice::cluster {

/// A TaskManager's `/metrics` (`--metrics-port`), in Prometheus' text format: its own gauges
/// (slots, running job parts, the process's memory and CPU time) and every metric its tasks
/// and connectors registered in the process's MetricRegistry (records, busy, idle and
/// back-pressured time, watermarks, checkpoint durations, a connector's lag or points).
class MetricsEndpoint {
 public:
  /// `running_parts` is called on the endpoint's threads.
  MetricsEndpoint(std::string taskmanager_id, int slots, std::function<int()> running_parts,
                  const HttpsFiles& https = {});

  /// Binds `address`:`port` (0: any free port) and starts serving; returns the port.
  absl::StatusOr<int> Start(const std::string& address, int port);
  const char* scheme() const { return endpoint_.scheme(); }

  /// The text `/metrics` answers now.
  std::string Text() const;

 private:
  const std::string taskmanager_id_;
  const int slots_;
  const std::function<int()> running_parts_;
  HttpEndpoint endpoint_;
};

}  // namespace sluice::cluster
