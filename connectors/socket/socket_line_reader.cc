#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sluice/connectors/internal/io.h"

namespace sluice::internal {

SocketLineReader::~SocketLineReader() { Close(); }

absl::Status SocketLineReader::Connect(const std::string& host, int port) {
  peer_ = absl::StrCat(host, ":", port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &result);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve '", host, "': ", gai_strerror(rc)));
  }
  int last_errno = 0;
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      fd_ = fd;
      break;
    }
    last_errno = errno;
    ::close(fd);
  }
  ::freeaddrinfo(result);
  if (fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", peer_, ": ", std::strerror(last_errno)));
  }
  return absl::OkStatus();
}

SocketLineReader::ReadResult SocketLineReader::Next(std::string* line, int wait_ms) {
  for (;;) {
    size_t nl = buffer_.find('\n', consumed_);
    if (nl != std::string::npos) {
      size_t len = nl - consumed_;
      if (len > 0 && buffer_[nl - 1] == '\r') --len;
      line->assign(buffer_, consumed_, len);
      consumed_ = nl + 1;
      return ReadResult::kLine;
    }
    if (closed_) {
      if (consumed_ < buffer_.size()) {
        line->assign(buffer_, consumed_, std::string::npos);
        consumed_ = buffer_.size();
        return ReadResult::kLine;
      }
      return ReadResult::kClosed;
    }
    // Compact before reading more so the buffer holds at most one partial line.
    buffer_.erase(0, consumed_);
    consumed_ = 0;
    pollfd pfd{fd_, POLLIN, 0};
    int ready = ::poll(&pfd, 1, wait_ms);
    if (ready == 0) return ReadResult::kNothingYet;
    if (ready < 0) {
      if (errno == EINTR) return ReadResult::kNothingYet;
      closed_ = true;
      continue;
    }
    char chunk[64 * 1024];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      closed_ = true;
    }
  }
}

void SocketLineReader::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace sluice::internal
