#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sluice {

/// An answer of an HTTP server (any status code).
struct HttpResponse {
  long status = 0;  // 200, 404, 503, ...
  std::string body;
};

struct AsyncHttpClientOptions {
  /// Requests under way at once, each on a connection of its own; requests beyond wait in
  /// the client's queue. Idle connections are kept open and reused (up to this many).
  int max_connections = 32;
  absl::Duration connect_timeout = absl::Seconds(5);
  /// From the moment the request goes out (after its wait in the queue) to its last byte.
  absl::Duration request_timeout = absl::Seconds(30);
  std::string user_agent = "sluice";
};

/// An HTTP client for many concurrent requests on one thread (libcurl's multi interface):
/// Get() hands a request to the client's event loop and returns at once; the callback runs on
/// that loop thread when the answer is in or the request failed. For AsyncFunctions: complete
/// the ResultFuture from the callback, and keep the callback short (it holds up the loop).
class AsyncHttpClient {
 public:
  using Callback = std::function<void(absl::StatusOr<HttpResponse>)>;

  explicit AsyncHttpClient(AsyncHttpClientOptions options = {});
  /// Cancels what is still in flight (its callbacks get CANCELLED) and stops the loop.
  ~AsyncHttpClient();
  AsyncHttpClient(const AsyncHttpClient&) = delete;
  AsyncHttpClient& operator=(const AsyncHttpClient&) = delete;

  /// Any thread. `done` gets the response, whatever its status code, or an error naming the
  /// URL: UNAVAILABLE (could not connect, connection lost), DEADLINE_EXCEEDED (the request
  /// timeout), INVALID_ARGUMENT (a malformed URL), CANCELLED (the client closed).
  void Get(std::string url, Callback done);

  /// Requests handed in and not yet answered.
  int in_flight() const;

  /// `text` percent-encoded for a query parameter (RFC 3986 unreserved characters kept).
  static std::string UrlEncode(std::string_view text);

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace sluice
