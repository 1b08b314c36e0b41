#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

namespace sluice::cluster {

/// A certificate and its key (PEM files): an endpoint given them serves HTTPS only.
struct HttpsFiles {
  std::string cert;
  std::string key;
};

/// An HTTP server on threads of its own (cpp-httplib), for the JobManager's REST API and a
/// TaskManager's metrics: request bodies bounded before a byte of them is read (a body
/// needs a Content-Length within its path's limit: httplib itself would take chunked or
/// unannounced bodies of any size), an error nobody answered (unknown path, body too large)
/// answered as JSON `{"errors": [...]}`.
class HttpEndpoint {
 public:
  explicit HttpEndpoint(size_t max_request_body, const HttpsFiles& https = {});
  ~HttpEndpoint();  // stops serving
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  /// Where the routes go, before Start.
  httplib::Server& routes() { return *server_; }
  /// Lets requests to `path` (exactly) carry up to `max_body` bytes, before Start.
  void AllowBodiesUpTo(const std::string& path, size_t max_body);
  /// Binds `address`:`port` (0: any free port) and starts serving; returns the port. `what`
  /// names the endpoint in the error.
  absl::StatusOr<int> Start(const std::string& what, const std::string& address, int port);
  /// "https" or "http".
  const char* scheme() const { return https_ ? "https" : "http"; }

 private:
  /// Why a request's body is not taken (empty: it is), from its headers alone.
  std::string RefusedBody(const httplib::Request& req, int* status) const;

  const bool https_;
  const size_t max_request_body_;
  std::map<std::string, size_t> larger_bodies_;  // by path
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace sluice::cluster
