#include "rest/rest_server.h"

#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "rest/dashboard_files.h"
#include "rest/prometheus_text.h"
#include "sluice/jobmanager/status_json.h"

namespace sluice::cluster {

namespace {

using nlohmann::json;

constexpr size_t kMaxRequestBody = 1 << 20;  // the actions' JSON

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void Error(httplib::Response& res, int status, const std::string& message) {
  Reply(res, status, json{{"errors", json::array({message})}});
}

/// The HTTP status of a failed action.
int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    default:
      return 500;
  }
}

/// The token of an `Authorization: Bearer TOKEN` header, if the request has one.
std::optional<std::string_view> BearerToken(const httplib::Request& req) {
  constexpr std::string_view kBearer = "Bearer ";
  auto it = req.headers.find("Authorization");
  if (it == req.headers.end() || !std::string_view(it->second).starts_with(kBearer)) {
    return std::nullopt;
  }
  return std::string_view(it->second).substr(kBearer.size());
}

}  // namespace

RestServer::RestServer(ClusterStatus status, Actions actions, const HttpsFiles& https)
    : status_(std::move(status)), actions_(std::move(actions)), endpoint_(kMaxRequestBody, https) {
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
  // Actions: the token first, then the body, then the dispatcher.
  auto authorized = [this](const httplib::Request& req, httplib::Response& res, const char* what) {
    const std::optional<std::string_view> token = BearerToken(req);
    const absl::Status s = actions_.credentials->CheckPresented(token ? &*token : nullptr, what);
    if (!s.ok()) Error(res, 401, std::string(s.message()));
    return s.ok();
  };
  auto body_of = [](const httplib::Request& req, httplib::Response& res, json* body) {
    *body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
    if (body->is_discarded() || !body->is_object()) {
      Error(res, 400, "the request body is not a JSON object");
      return false;
    }
    return true;
  };
  s.Patch(R"(/jobs/([^/]+))",
          [this, authorized](const httplib::Request& req, httplib::Response& res) {
            if (!authorized(req, res, "a cancellation")) return;
            if (req.get_param_value("mode") != "cancel") {
              return Error(res, 400, "PATCH /jobs/ID takes ?mode=cancel");
            }
            auto job = actions_.cancel(req.matches[1]);
            if (!job.ok())
              return Error(res, HttpStatusOf(job.status()), std::string(job.status().message()));
            Reply(res, 202, JobJson(*job));
          });
  auto savepoint = [this, authorized, body_of](bool stop) {
    return [=, this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res, stop ? "a stop with savepoint" : "a savepoint")) return;
      json body;
      if (!body_of(req, res, &body)) return;
      TriggerSavepointRequest request;
      request.set_job_id(req.matches[1]);
      // Flink's fields: target-directory and cancel-job (savepoints), targetDirectory (stop).
      request.set_dir(body.value(stop ? "targetDirectory" : "target-directory", ""));
      request.set_stop(stop || body.value("cancel-job", false));
      auto path = actions_.savepoint(request);
      if (!path.ok()) {
        return Error(res, HttpStatusOf(path.status()), std::string(path.status().message()));
      }
      Reply(res, 200,
            json{{"status", {{"id", "COMPLETED"}}}, {"operation", {{"location", *path}}}});
    };
  };
  s.Post(R"(/jobs/([^/]+)/savepoints)", savepoint(false));
  s.Post(R"(/jobs/([^/]+)/stop)", savepoint(true));
  auto refuse = [](const httplib::Request& req, httplib::Response& res) {
    Error(res, 405, absl::StrCat(req.method, " ", req.path, " is not served here"));
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
