#pragma once

#include <string>

#include "proto/jobmanager_service.pb.h"

namespace sluice::cluster {

/// The JobManager's metrics in Prometheus' text format (version 0.0.4), from the cluster's
/// status: TaskManagers and slots, and per job (labels job_id and job_name; no per-key or
/// per-record labels, so the number of series grows with jobs only) its state, uptime,
/// restarts and checkpoints.
std::string PrometheusText(const GetClusterStatusReply& cluster);

}  // namespace sluice::cluster
