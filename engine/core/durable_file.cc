#include "sluice/core/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "sluice/core/status_macros.h"

namespace sluice {

absl::Status FileError(const std::string& what, const std::string& path) {
  const int err = errno;
  std::string message = absl::StrCat(what, " '", path, "': ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

absl::StatusOr<AtomicFile> AtomicFile::Create(std::string path, std::string temp_path) {
  if (temp_path.empty()) temp_path = path + ".inprogress";
  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return FileError("cannot create", temp_path);
  return AtomicFile(std::move(path), std::move(temp_path), fd);
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      committed_(std::exchange(other.committed_, true)) {}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

absl::Status AtomicFile::Append(std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError("cannot write", temp_path_);
    }
    done += static_cast<size_t>(n);
  }
  size_ += static_cast<int64_t>(data.size());
  return absl::OkStatus();
}

absl::Status AtomicFile::CommitAs(const std::string& path) {
  if (::fsync(fd_) != 0) return FileError("cannot sync", temp_path_);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) return FileError("cannot close", temp_path_);
  if (absl::Status s = RenameDurably(temp_path_, path); !s.ok()) return s;
  committed_ = true;
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  SLUICE_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  if (absl::Status s = file.Append(bytes); !s.ok()) return s;
  return file.Commit();
}

absl::Status RenameDurably(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return FileError("cannot rename into place", to);
  const std::string dir = std::filesystem::path(to).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return FileError("cannot open the directory of", to);
  const int synced = ::fsync(dfd);
  ::close(dfd);
  if (synced != 0) return FileError("cannot sync the directory of", to);
  return absl::OkStatus();
}

}  // namespace sluice
