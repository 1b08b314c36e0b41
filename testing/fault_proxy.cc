#include "sluice/testing/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sluice::testing {
namespace {

constexpr int kPollMs = 10;

int ListenOn(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 64) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int ConnectTo(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Closes with an RST instead of a FIN.
void Reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd);
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

FaultProxy::FaultProxy(int target_port) : target_port_(target_port) {
  Listen();
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  acceptor_.join();
  std::vector<std::thread> pumps;
  {
    MutexLock lock(&mu_);
    pumps.swap(pumps_);
  }
  for (auto& t : pumps) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void FaultProxy::Listen() {
  const int fd = ListenOn(port_);
  if (fd < 0) throw std::runtime_error(absl::StrCat("fault proxy: cannot listen on ", port_));
  if (port_ == 0) {
    sockaddr_in addr{};
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  listen_fd_ = fd;
}

std::string FaultProxy::url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void FaultProxy::Pass() {
  frozen_ = false;
  reset_after_ = 0;
  delay_us_ = 0;
}
void FaultProxy::Freeze() { frozen_ = true; }
void FaultProxy::Close() {
  closed_ = true;
  ++generation_;
}
void FaultProxy::Open() { closed_ = false; }
void FaultProxy::ResetAfter(size_t bytes) { reset_after_ = bytes; }
void FaultProxy::Delay(absl::Duration delay) { delay_us_ = absl::ToInt64Microseconds(delay); }

void FaultProxy::Respond(std::vector<std::string> responses) {
  {
    MutexLock lock(&mu_);
    for (auto& r : responses) responses_.push_back(std::move(r));
  }
  ++generation_;  // clients reconnect, and their next request meets the answers
}

int FaultProxy::responses_left() const {
  MutexLock lock(&mu_);
  return static_cast<int>(responses_.size());
}

std::vector<std::string> FaultProxy::answered_requests() const {
  MutexLock lock(&mu_);
  return answered_;
}

std::string FaultProxy::HttpResponse(int status, const std::string& reason,
                                     const std::string& headers, const std::string& body) {
  return absl::StrCat("HTTP/1.1 ", status, " ", reason, "\r\n", headers,
                      "Content-Type: application/json\r\nContent-Length: ", body.size(),
                      "\r\nConnection: close\r\n\r\n", body);
}

void FaultProxy::AcceptLoop() {
  while (!stop_) {
    if (closed_) {
      // Refuse: no listening socket while closed.
      if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
      }
      ::usleep(kPollMs * 1000);
      continue;
    }
    if (listen_fd_ < 0) {
      try {
        Listen();
      } catch (const std::exception&) {
        ::usleep(kPollMs * 1000);
        continue;
      }
    }
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, kPollMs) <= 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    ++connections_;
    std::string response;
    {
      MutexLock lock(&mu_);
      if (!responses_.empty()) {
        response = std::move(responses_.front());
        responses_.pop_front();
      }
    }
    MutexLock lock(&mu_);
    if (!response.empty()) {
      pumps_.emplace_back(
          [this, client, r = std::move(response)]() mutable { Answer(client, std::move(r)); });
    } else {
      pumps_.emplace_back([this, client, g = generation_.load()] { Pump(client, g); });
    }
  }
}

void FaultProxy::Answer(int client, std::string response) {
  // Reads the request (headers, then Content-Length bytes of body), then answers it.
  std::string request;
  size_t needed = std::string::npos;
  char buf[65536];
  while (!stop_ && request.size() < needed) {
    pollfd p{client, POLLIN, 0};
    if (::poll(&p, 1, kPollMs) <= 0) continue;
    const ssize_t n = ::recv(client, buf, sizeof(buf), 0);
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
    const size_t end = request.find("\r\n\r\n");
    if (end != std::string::npos && needed == std::string::npos) {
      size_t length = 0;
      const std::string headers = absl::AsciiStrToLower(request.substr(0, end));
      const size_t at = headers.find("content-length:");
      if (at != std::string::npos) {
        const size_t eol = headers.find("\r\n", at);
        (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(headers.substr(at + 15, eol - at - 15)),
                               &length);
      }
      needed = end + 4 + length;
    }
  }
  {
    MutexLock lock(&mu_);
    answered_.push_back(request);
  }
  WriteAll(client, response.data(), response.size());
  ::shutdown(client, SHUT_WR);
  ::close(client);
}

void FaultProxy::Pump(int client, int generation) {
  const int server = ConnectTo(target_port_);
  if (server < 0) {
    ::close(client);
    return;
  }
  size_t upstream_bytes = 0;
  char buf[65536];
  while (!stop_) {
    if (closed_ || generation_ != generation) break;
    const size_t reset_after = reset_after_;
    if (reset_after > 0 && upstream_bytes >= reset_after) {
      Reset(client);
      Reset(server);
      return;
    }
    if (frozen_) {
      ::usleep(kPollMs * 1000);
      continue;
    }
    pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (::poll(p, 2, kPollMs) <= 0) continue;
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const int from = p[i].fd, to = i == 0 ? server : client;
      size_t limit = sizeof(buf);
      if (i == 0 && reset_after > 0) limit = std::min(limit, reset_after - upstream_bytes);
      const ssize_t n = ::recv(from, buf, limit, 0);
      if (n <= 0) {
        done = true;
        break;
      }
      if (const int64_t us = delay_us_; us > 0) ::usleep(static_cast<useconds_t>(us));
      if (i == 0) upstream_bytes += static_cast<size_t>(n);
      if (!WriteAll(to, buf, static_cast<size_t>(n))) done = true;
    }
    if (done) break;
  }
  ::close(client);
  ::close(server);
}

}  // namespace sluice::testing
