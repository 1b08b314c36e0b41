#include "sluice/jobmanager/status_json.h"

#include "sluice/api/job.h"

namespace sluice::cluster {

using nlohmann::json;

namespace {

std::string StateName(JobState state) { return JobState_Name(state); }

json CheckpointJson(const CheckpointRecord& r) {
  return json{{"id", r.id()},
              {"status", r.failed() ? "FAILED" : "COMPLETED"},
              {"end_to_end_duration", r.duration_ms()},
              {"max_sync_duration", r.max_sync_ms()},
              {"max_async_duration", r.max_async_ms()},
              {"state_size", r.state_bytes()}};
}

}  // namespace

json OverviewJson(const GetClusterStatusReply& c) {
  int running = 0, finished = 0, canceled = 0, failed = 0;
  for (const JobStatus& j : c.jobs()) {
    running += j.state() == RUNNING || j.state() == RESTARTING || j.state() == CREATED;
    finished += j.state() == FINISHED;
    canceled += j.state() == CANCELED;
    failed += j.state() == FAILED;
  }
  return json{{"taskmanagers", c.taskmanagers_size()},
              {"slots-total", c.total_slots()},
              {"slots-available", c.free_slots()},
              {"jobs-running", running},
              {"jobs-finished", finished},
              {"jobs-cancelled", canceled},
              {"jobs-failed", failed},
              {"engine-abi", EngineAbi()}};
}

json TaskManagersJson(const GetClusterStatusReply& c) {
  json list = json::array();
  for (const TaskManagerStatus& tm : c.taskmanagers()) {
    list.push_back({{"id", tm.taskmanager_id()},
                    {"host", tm.host()},
                    {"pid", tm.pid()},
                    {"slotsNumber", tm.slots()},
                    {"freeSlots", tm.free_slots()},
                    {"timeSinceLastHeartbeat", tm.last_heartbeat_ms_ago()}});
  }
  return json{{"taskmanagers", list}};
}

json JobJson(const JobStatus& j) {
  json vertices = json::array();
  for (const JobVertexInfo& v : j.vertices()) {
    json inputs = json::array();
    for (const VertexInput& in : v.inputs()) {
      inputs.push_back({{"id", in.vertex()},
                        {"ship_strategy", in.partitioning()},
                        {"side-output", in.side_output()}});
    }
    json states = json::array();
    for (const StateSizeReport& state : v.states()) {
      states.push_back({{"operator", state.operator_id()},
                        {"state", state.state()},
                        {"entries", state.entries()},
                        {"bytes", state.bytes()}});
    }
    vertices.push_back({{"id", vertices.size()},
                        {"name", v.name()},
                        {"parallelism", v.parallelism()},
                        {"inputs", inputs},
                        {"keyed-states", states},
                        {"metrics",
                         {{"subtasks-reporting", v.subtasks_reporting()},
                          {"read-records", v.records_in()},
                          {"write-records", v.records_sent()},
                          {"read-records-per-second", v.records_in_per_second()},
                          {"write-records-per-second", v.records_sent_per_second()},
                          {"busy-ratio-max", v.busy_max()},
                          {"backpressured-ratio-max", v.backpressured_max()},
                          {"input-watermark", v.input_watermark_ms()},
                          {"output-watermark", v.output_watermark_ms()}}}});
  }
  json parts = json::array();
  for (const RunningPart& p : j.running_parts()) {
    parts.push_back(
        {{"taskmanager", p.taskmanager_id()}, {"region", p.region()}, {"run", p.attempt()}});
  }
  return json{{"jid", j.job_id()},
              {"name", j.job_name()},
              {"state", StateName(j.state())},
              {"start-time", j.submitted_ms()},
              {"duration", j.duration_ms()},
              {"failure", j.failure()},
              {"restart-strategy", j.restart_strategy()},
              {"restarts", j.restarts()},
              {"region-restarts", j.region_restarts()},
              {"regions", j.regions()},
              {"restored-from", j.restored_from()},
              {"taskmanagers", j.taskmanagers()},
              {"running-parts", parts},
              {"vertices", vertices},
              {"checkpoints-completed", j.completed_checkpoints()},
              {"checkpoints-failed", j.failed_checkpoints()}};
}

json CheckpointsJson(const JobStatus& j) {
  json history = json::array();
  json latest = nullptr;
  for (const CheckpointRecord& r : j.checkpoint_history()) {
    history.push_back(CheckpointJson(r));
    if (!r.failed()) latest = CheckpointJson(r);
  }
  return json{{"counts",
               {{"completed", j.completed_checkpoints()},
                {"failed", j.failed_checkpoints()},
                {"in_progress", j.checkpoints_in_progress()}}},
              {"latest", {{"completed", latest}}},
              {"history", history}};
}

json ExceptionsJson(const JobStatus& j) {
  json entries = json::array();
  for (const JobFailure& f : j.failures()) {
    entries.push_back({{"timestamp", f.at_ms()},
                       {"taskManagerId", f.taskmanager_id()},
                       {"message", f.message()}});
  }
  return json{{"exceptionHistory", {{"entries", entries}}}, {"failure", j.failure()}};
}

json JobListEntryJson(const JobStatus& j) {
  return {{"id", j.job_id()}, {"name", j.job_name()}, {"status", StateName(j.state())}};
}

json JobsJson(const GetClusterStatusReply& c) {
  json jobs = json::array();
  for (const JobStatus& j : c.jobs()) jobs.push_back(JobListEntryJson(j));
  return json{{"jobs", jobs}};
}

}  // namespace sluice::cluster
