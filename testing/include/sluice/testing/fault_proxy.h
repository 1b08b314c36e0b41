#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "sluice/core/mutex.h"

namespace sluice::testing {

/// A TCP proxy on a free loopback port in front of a server (the seed's TcpCrusher, in C++),
/// for the faults a network does to a client: it can pass traffic, freeze it (connections
/// stay open, nothing moves), close every connection and refuse new ones, reset connections
/// (TCP RST) in the middle of a request body, delay traffic, and answer requests itself with
/// a given HTTP response (a 500, or a 503 with Retry-After) instead of the server.
class FaultProxy {
 public:
  explicit FaultProxy(int target_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }
  /// http://127.0.0.1:PORT
  std::string url() const;

  /// Forwards everything (the start state); undoes Freeze, ResetAfter and Delay.
  void Pass();
  /// Stops moving bytes in both directions; connections stay open.
  void Freeze();
  /// Closes every connection and refuses new ones (connection refused) until Open().
  void Close();
  void Open();
  /// Resets (RST) a connection once `bytes` have gone from client to server on it, until
  /// Pass().
  void ResetAfter(size_t bytes);
  /// Holds each chunk for `delay` before forwarding it.
  void Delay(absl::Duration delay);
  /// The next requests get these raw HTTP responses (one each, in order, each on a
  /// connection of its own) instead of reaching the server; open connections are closed so
  /// that clients reconnect.
  void Respond(std::vector<std::string> responses);
  /// A raw HTTP response with `status`, `reason`, extra header lines and a body.
  static std::string HttpResponse(int status, const std::string& reason, const std::string& headers,
                                  const std::string& body);

  int connections() const { return connections_.load(); }
  int responses_left() const;
  /// The requests (head and body) that got Respond()'s answers, in order.
  std::vector<std::string> answered_requests() const;

 private:
  void Listen();
  void AcceptLoop();
  void Pump(int client, int generation);
  void Answer(int client, std::string response);

  const int target_port_;
  int port_ = 0;
  std::atomic<int> listen_fd_{-1};
  std::atomic<bool> stop_{false};
  std::atomic<bool> frozen_{false};
  std::atomic<bool> closed_{false};
  std::atomic<int> generation_{0};  // bumped to close every open connection
  std::atomic<size_t> reset_after_{0};
  std::atomic<int64_t> delay_us_{0};
  std::atomic<int> connections_{0};
  mutable Mutex mu_;
  std::deque<std::string> responses_ SLUICE_GUARDED_BY(mu_);
  std::vector<std::string> answered_ SLUICE_GUARDED_BY(mu_);
  std::thread acceptor_;
  std::vector<std::thread> pumps_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::testing
