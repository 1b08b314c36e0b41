#include "rest/rest_server.h"

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "rest/prometheus_text.h"
#include "sluice/api/job.h"

namespace sluice::cluster {

namespace {

using nlohmann::json;

constexpr size_t kMaxRequestBody = 1 << 20;  // nothing takes a body yet

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void Error(httplib::Response& res, int status, const std::string& message) {
  Reply(res, status, json{{"errors", json::array({message})}});
}

std::string StateName(JobState state) { return JobState_Name(state); }

json Overview(const GetClusterStatusReply& c) {
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

json TaskManagers(const GetClusterStatusReply& c) {
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

json CheckpointJson(const CheckpointRecord& r) {
  return json{{"id", r.id()},
              {"status", r.failed() ? "FAILED" : "COMPLETED"},
              {"end_to_end_duration", r.duration_ms()},
              {"max_sync_duration", r.max_sync_ms()},
              {"max_async_duration", r.max_async_ms()},
              {"state_size", r.state_bytes()}};
}

json Job(const JobStatus& j) {
  json vertices = json::array();
  for (const JobVertexInfo& v : j.vertices()) {
    vertices.push_back({{"name", v.name()}, {"parallelism", v.parallelism()}});
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

json Checkpoints(const JobStatus& j) {
  json history = json::array();
  json latest = nullptr;
  for (const CheckpointRecord& r : j.checkpoint_history()) {
    history.push_back(CheckpointJson(r));
    if (!r.failed()) latest = CheckpointJson(r);
  }
  return json{
      {"counts", {{"completed", j.completed_checkpoints()}, {"failed", j.failed_checkpoints()}}},
      {"latest", {{"completed", latest}}},
      {"history", history}};
}

json Exceptions(const JobStatus& j) {
  json entries = json::array();
  for (const JobFailure& f : j.failures()) {
    entries.push_back({{"timestamp", f.at_ms()},
                       {"taskManagerId", f.taskmanager_id()},
                       {"message", f.message()}});
  }
  return json{{"exceptionHistory", {{"entries", entries}}}, {"failure", j.failure()}};
}

}  // namespace

RestServer::RestServer(ClusterStatus status)
    : status_(std::move(status)), server_(std::make_unique<httplib::Server>()) {
  httplib::Server& s = *server_;
  s.set_payload_max_length(kMaxRequestBody);
  s.Get("/overview", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, Overview(status_()));
  });
  s.Get("/taskmanagers", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, TaskManagers(status_()));
  });
  s.Get("/jobs", [this](const httplib::Request&, httplib::Response& res) {
    json jobs = json::array();
    const GetClusterStatusReply cluster = status_();
    for (const JobStatus& j : cluster.jobs()) {
      jobs.push_back(
          {{"id", j.job_id()}, {"name", j.job_name()}, {"status", StateName(j.state())}});
    }
    Reply(res, 200, json{{"jobs", jobs}});
  });
  s.Get(R"(/jobs/([^/]+)(/checkpoints|/exceptions)?)",
        [this](const httplib::Request& req, httplib::Response& res) {
          const std::string id = req.matches[1];
          const std::string what = req.matches[2];
          const GetClusterStatusReply cluster = status_();
          for (const JobStatus& j : cluster.jobs()) {
            if (j.job_id() != id) continue;
            if (what.empty()) return Reply(res, 200, Job(j));
            if (what == "/checkpoints") return Reply(res, 200, Checkpoints(j));
            return Reply(res, 200, Exceptions(j));
          }
          Error(res, 404, absl::StrCat("no job '", id, "' (see /jobs)"));
        });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(PrometheusText(status_()), "text/plain; version=0.0.4; charset=utf-8");
  });
  auto refuse = [](const httplib::Request& req, httplib::Response& res) {
    Error(res, 405, absl::StrCat(req.method, " is not served here: the API only reads so far"));
  };
  s.Post(".*", refuse);
  s.Put(".*", refuse);
  s.Delete(".*", refuse);
  s.Patch(".*", refuse);
  // Errors the handlers did not answer themselves (httplib calls this for every status
  // from 400 on): an unknown path, a body over the limit.
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    Error(res, res.status,
          res.status == 404   ? absl::StrCat("no such path: ", req.path)
          : res.status == 413 ? std::string("request body too large")
          : res.status == 400 ? std::string("bad request")
                              : absl::StrCat("HTTP ", res.status));
  });
}

RestServer::~RestServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<int> RestServer::Start(const std::string& address, int port) {
  int bound = port;
  if (port == 0) {
    bound = server_->bind_to_any_port(address);
  } else if (!server_->bind_to_port(address, port)) {
    bound = -1;
  }
  if (bound <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot serve the REST API on ", address, ":", port,
                     " (in use, or not an address of this machine)"));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return bound;
}

}  // namespace sluice::cluster
