#include "sluice/jobmanager/http_endpoint.h"

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace sluice::cluster {

namespace {

/// Why httplib refused a request before any handler saw it.
std::string BadRequest(const httplib::Request& req) {
  if ((req.method == "POST" || req.method == "PATCH" || req.method == "PUT") &&
      !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
    return absl::StrCat("bad request: a ", req.method,
                        " needs a Content-Length, even of 0 (curl: -d '')");
  }
  return "bad request";
}

}  // namespace

HttpEndpoint::HttpEndpoint(size_t max_request_body, const HttpsFiles& https)
    : https_(!https.cert.empty()),
      server_(https_ ? std::make_unique<httplib::SSLServer>(https.cert.c_str(), https.key.c_str())
                     : std::make_unique<httplib::Server>()) {
  server_->set_payload_max_length(max_request_body);
  // httplib calls this for every status from 400 on; handlers that answered keep theirs.
  server_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message = res.status == 404   ? absl::StrCat("no such path: ", req.path)
                                : res.status == 413 ? std::string("request body too large")
                                : res.status == 400 ? BadRequest(req)
                                                    : absl::StrCat("HTTP ", res.status);
    res.set_content(nlohmann::json{{"errors", nlohmann::json::array({message})}}.dump(),
                    "application/json");
  });
}

HttpEndpoint::~HttpEndpoint() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<int> HttpEndpoint::Start(const std::string& what, const std::string& address,
                                        int port) {
  if (!server_->is_valid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot serve ", what,
                     " over HTTPS: its certificate or key (--tls-cert, "
                     "--tls-key) is unreadable or not a matching PEM pair"));
  }
  int bound = port;
  if (port == 0) {
    bound = server_->bind_to_any_port(address);
  } else if (!server_->bind_to_port(address, port)) {
    bound = -1;
  }
  if (bound <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot serve ", what, " on ", address, ":", port,
                     " (in use, or not an address of this machine)"));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return bound;
}

}  // namespace sluice::cluster
