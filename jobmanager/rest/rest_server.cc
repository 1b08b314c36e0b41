#include "rest/rest_server.h"

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "rest/dashboard_files.h"
#include "rest/prometheus_text.h"
#include "sluice/jobmanager/status_json.h"

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

}  // namespace

RestServer::RestServer(ClusterStatus status, const HttpsFiles& https)
    : status_(std::move(status)), endpoint_(kMaxRequestBody, https) {
  httplib::Server& s = endpoint_.routes();
  for (size_t i = 0; i < kDashboardFileCount; ++i) {
    const DashboardFile& file = kDashboardFiles[i];
    const std::string path =
        std::string(file.name) == "index.html" ? "/" : "/" + std::string(file.name);
    s.Get(path, [&file](const httplib::Request&, httplib::Response& res) {
      res.set_content(file.content, file.content_type);
    });
  }
  s.Get("/overview", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, OverviewJson(status_()));
  });
  s.Get("/taskmanagers", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, TaskManagersJson(status_()));
  });
  s.Get("/jobs", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, JobsJson(status_()));
  });
  s.Get(R"(/jobs/([^/]+)(/checkpoints|/exceptions)?)",
        [this](const httplib::Request& req, httplib::Response& res) {
          const std::string id = req.matches[1];
          const std::string what = req.matches[2];
          const GetClusterStatusReply cluster = status_();
          for (const JobStatus& j : cluster.jobs()) {
            if (j.job_id() != id) continue;
            if (what.empty()) return Reply(res, 200, JobJson(j));
            if (what == "/checkpoints") return Reply(res, 200, CheckpointsJson(j));
            return Reply(res, 200, ExceptionsJson(j));
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
}

absl::StatusOr<int> RestServer::Start(const std::string& address, int port) {
  return endpoint_.Start("the REST API", address, port);
}

}  // namespace sluice::cluster
