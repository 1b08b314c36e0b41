#pragma once

#include "nlohmann/json.hpp"
#include "proto/jobmanager_service.pb.h"

namespace sluice::cluster {

// The cluster's status as JSON, the same for the REST API (Flink's field names where Flink
// has the path) and `sluice status --json` / `sluice list --json`.

/// `/overview`: TaskManagers, slots, jobs by state, the engine ABI.
nlohmann::json OverviewJson(const GetClusterStatusReply& cluster);
/// `/taskmanagers`.
nlohmann::json TaskManagersJson(const GetClusterStatusReply& cluster);
/// `/jobs`: id, name and status of each.
nlohmann::json JobsJson(const GetClusterStatusReply& cluster);
/// One entry of `/jobs`.
nlohmann::json JobListEntryJson(const JobStatus& job);
/// `/jobs/ID`.
nlohmann::json JobJson(const JobStatus& job);
/// `/jobs/ID/checkpoints`: counts, the latest completed, the history kept.
nlohmann::json CheckpointsJson(const JobStatus& job);
/// `/jobs/ID/exceptions`: the failures the restart strategy counted.
nlohmann::json ExceptionsJson(const JobStatus& job);

}  // namespace sluice::cluster
