#include "rest/rest_server.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
    case absl::StatusCode::kResourceExhausted:
      return 507;  // the JobManager's disk is full
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

/// The job name an uploaded file's name gives (as JobLibrary::JobName: no directory, no
/// ".so"), with every character but letters, digits and ._- replaced: it becomes part of
/// the binary's id, which goes into URLs.
std::string JobNameOfFile(const std::string& filename) {
  std::string name = std::filesystem::path(filename).filename().string();
  if (name.ends_with(".so")) name.resize(name.size() - 3);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  }
  return name;
}

/// A job binary's id as the upload answers it: its SHA-256, then `_` and the job name the
/// uploaded file's name gives, if it had one.
std::string BinaryId(const BlobId& blob, const std::string& name) {
  return name.empty() ? blob.sha256 : absl::StrCat(blob.sha256, "_", name);
}

/// Flink's run arguments: `programArgsList` (each an argument), else `programArgs` (split at
/// spaces).
std::vector<std::string> ProgramArgs(const json& body) {
  if (body.contains("programArgsList")) return body["programArgsList"];
  std::vector<std::string> args =
      absl::StrSplit(body.value("programArgs", ""), ' ', absl::SkipEmpty());
  return args;
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
  endpoint_.AllowBodiesUpTo("/jars/upload", BlobStore::kMaxBlobBytes + (64 << 10));  // + form
  s.Post("/jars/upload", [this, authorized](const httplib::Request& req, httplib::Response& res,
                                            const httplib::ContentReader& read) {
    if (!authorized(req, res, "an upload")) {
      res.set_header("Connection", "close");  // its body is not read
      return;
    }
    auto upload = actions_.blobs->BeginUpload();
    if (!upload.ok()) return Error(res, 500, std::string(upload.status().message()));
    std::string head;  // its first bytes: is it an ELF file at all?
    absl::Status written;
    auto write = [&](const char* data, size_t n) {
      head.append(data, std::min(n, 4 - std::min<size_t>(head.size(), 4)));
      written = (*upload)->Write(std::string_view(data, n));
      return written.ok();
    };
    // Flink's form (curl -F jarfile=@JOB.so) or the bare binary as the body.
    const bool form = req.is_multipart_form_data();
    std::string name;
    int files = 0;
    bool in_file = false;
    const bool complete =
        form ? read(
                   [&](const httplib::MultipartFormData& part) {
                     in_file = part.name == "jarfile";
                     if (!in_file) return true;
                     name = JobNameOfFile(part.filename);
                     if (++files == 1) return true;
                     written = absl::InvalidArgumentError("one 'jarfile' per upload");
                     return false;
                   },
                   [&](const char* data, size_t n) { return !in_file || write(data, n); })
             : read(write);
    if (!written.ok()) return Error(res, HttpStatusOf(written), std::string(written.message()));
    if (!complete) return Error(res, 400, "the upload broke off, or its form is malformed");
    if (form && files == 0) {
      return Error(res, 400,
                   "the form has no 'jarfile' field (curl -F jarfile=@JOB.so URL/jars/upload)");
    }
    if (head !=
        "\x7f"
        "ELF") {
      return Error(res, 400,
                   "not a job binary: a job is a shared object built with sluice_add_job (an "
                   "ELF file); nothing was stored");
    }
    auto blob = (*upload)->Commit();
    if (!blob.ok())
      return Error(res, HttpStatusOf(blob.status()), std::string(blob.status().message()));
    const std::string id = BinaryId(*blob, name);
    Reply(res, 200,
          json{{"filename", id},
               {"id", id},
               {"sha256", blob->sha256},
               {"size", blob->size},
               {"status", "success"}});
  });
  s.Get("/jars", [this](const httplib::Request&, httplib::Response& res) {
    json files = json::array();
    for (const BlobStore::StoredBlob& b : actions_.blobs->List()) {
      files.push_back({{"id", b.id.sha256}, {"size", b.id.size}, {"uploaded", b.stored_ms}});
    }
    Reply(res, 200, json{{"files", std::move(files)}});
  });
  s.Post(R"(/jars/([0-9a-f]{64})(?:_([A-Za-z0-9._-]+))?/run)",
         [this, authorized, body_of](const httplib::Request& req, httplib::Response& res) {
           if (!authorized(req, res, "a job submission")) return;
           json body;
           if (!body_of(req, res, &body)) return;
           JobSubmission request;
           request.mutable_job_binary()->set_sha256(req.matches[1]);
           try {
             request.set_job_name(body.value("jobName", std::string(req.matches[2])));
             for (const std::string& a : ProgramArgs(body)) request.add_args(a);
             request.set_parallelism(body.value("parallelism", 0));
             request.set_restore_from(body.value("savepointPath", ""));
             request.set_allow_non_restored_state(body.value("allowNonRestoredState", false));
           } catch (const json::exception& e) {
             return Error(
                 res, 400,
                 absl::StrCat("a field of the run request has the wrong type: ", e.what()));
           }
           if (request.parallelism() < 0) return Error(res, 400, "parallelism must be positive");
           if (!request.restore_from().empty() && !request.restore_from().starts_with('/')) {
             return Error(res, 400,
                          "savepointPath must be an absolute path the JobManager and every "
                          "TaskManager can reach");
           }
           auto id = actions_.run(request);
           if (!id.ok()) {
             return Error(res, HttpStatusOf(id.status()), std::string(id.status().message()));
           }
           Reply(res, 200, json{{"jobid", *id}});
         });
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
