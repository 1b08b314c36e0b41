#include "sluice/jobmanager/http_endpoint.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace sluice::cluster {

namespace {

std::string ErrorJson(const std::string& message) {
  return nlohmann::json{{"errors", nlohmann::json::array({message})}}.dump();
}

}  // namespace

HttpEndpoint::HttpEndpoint(size_t max_request_body, const HttpsFiles& https)
    : https_(!https.cert.empty()),
      max_request_body_(max_request_body),
      server_(https_ ? std::make_unique<httplib::SSLServer>(https.cert.c_str(), https.key.c_str())
                     : std::make_unique<httplib::Server>()) {
  server_->set_payload_max_length(max_request_body);
  // Before the body is read: a client that asked first (Expect: 100-continue, as curl does
  // for large bodies) is refused before it sends one, the others before it is read.
  server_->set_expect_100_continue_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        int status = 100;
        if (const std::string why = RefusedBody(req, &status); !why.empty()) {
          res.status = status;
          res.set_content(ErrorJson(why), "application/json");
        }
        return status;
      });
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    int status = 0;
    const std::string why = RefusedBody(req, &status);
    if (why.empty()) return httplib::Server::HandlerResponse::Unhandled;
    res.status = status;
    res.set_header("Connection", "close");  // its unread body must not read as a request
    res.set_content(ErrorJson(why), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
  // httplib calls this for every status from 400 on; handlers that answered keep theirs.
  server_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message = res.status == 404   ? absl::StrCat("no such path: ", req.path)
                                : res.status == 400 ? std::string("bad request")
                                                    : absl::StrCat("HTTP ", res.status);
    res.set_content(ErrorJson(message), "application/json");
  });
}

void HttpEndpoint::AllowBodiesUpTo(const std::string& path, size_t max_body) {
  larger_bodies_[path] = max_body;
  server_->set_payload_max_length(std::max(max_request_body_, max_body));
}

std::string HttpEndpoint::RefusedBody(const httplib::Request& req, int* status) const {
  const std::string& m = req.method;
  if (m != "POST" && m != "PUT" && m != "PATCH" && m != "DELETE") return "";
  auto larger = larger_bodies_.find(req.path);
  const size_t limit = larger == larger_bodies_.end() ? max_request_body_ : larger->second;
  if (req.has_header("Transfer-Encoding")) {
    *status = 411;
    return absl::StrCat("a ", m, " body needs a Content-Length: chunked bodies are not taken");
  }
  if (!req.has_header("Content-Length")) {
    if (m == "DELETE") return "";  // one without a body
    *status = 411;
    return absl::StrCat("bad request: a ", m, " needs a Content-Length, even of 0 (curl: -d '')");
  }
  uint64_t length = 0;
  if (!absl::SimpleAtoi(req.get_header_value("Content-Length"), &length)) {
    *status = 400;
    return "the Content-Length is not a number";
  }
  if (length > limit) {
    *status = 413;
    return absl::StrCat("request body too large: ", length, " bytes, ", req.path, " takes up to ",
                        limit);
  }
  return "";
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
