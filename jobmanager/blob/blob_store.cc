#include "jobmanager/blob/blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sluice::cluster {

namespace {

constexpr char kIncomingPrefix[] = "incoming-";

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("blob directory '", dir, "' cannot be created: ", ec.message()));
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (absl::StartsWith(entry.path().filename().string(), kIncomingPrefix)) {
      std::filesystem::remove(entry.path(), ec);  // an upload a crash interrupted
    }
  }
  const std::string probe = absl::StrCat(dir, "/", kIncomingPrefix, "probe");
  const int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) return Errno(absl::StrCat("blob directory '", dir, "' is not writable"));
  ::close(fd);
  ::unlink(probe.c_str());
  return std::unique_ptr<BlobStore>(new BlobStore(dir));
}

absl::StatusOr<std::unique_ptr<BlobStore::Upload>> BlobStore::BeginUpload(const BlobId& expected) {
  if (!IsSha256Hex(expected.sha256)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", expected.sha256, "' is not a SHA-256 (64 lower-case hex digits)"));
  }
  if (expected.size < 0) return absl::InvalidArgumentError("negative blob size");
  static std::atomic<int64_t> next{0};
  const std::string temp = absl::StrCat(dir_, "/", kIncomingPrefix, ::getpid(), "-", next++);
  const int fd = ::open(temp.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(absl::StrCat("cannot create '", temp, "'"));
  return std::unique_ptr<Upload>(new Upload(this, expected, temp, fd));
}

BlobStore::Upload::Upload(BlobStore* store, BlobId expected, std::string temp_path, int fd)
    : store_(store), expected_(std::move(expected)), temp_path_(std::move(temp_path)), fd_(fd) {}

BlobStore::Upload::~Upload() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

absl::Status BlobStore::Upload::Write(std::string_view data) {
  if (written_ + static_cast<int64_t>(data.size()) > expected_.size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "blob ", expected_.sha256, ": more bytes than the announced ", expected_.size));
  }
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      // ENOSPC lands here: the upload fails, nothing half-written is ever published.
      return Errno(absl::StrCat("writing blob ", expected_.sha256, " into '", store_->dir(), "'"));
    }
    done += static_cast<size_t>(n);
  }
  hash_.Update(data);
  written_ += static_cast<int64_t>(data.size());
  return absl::OkStatus();
}

absl::StatusOr<BlobId> BlobStore::Upload::Commit() {
  if (written_ != expected_.size) {
    return absl::DataLossError(absl::StrCat("blob ", expected_.sha256, ": got ", written_, " of ",
                                            expected_.size, " bytes"));
  }
  const std::string actual = hash_.HexDigest();
  if (actual != expected_.sha256) {
    return absl::DataLossError(
        absl::StrCat("blob announced as ", expected_.sha256, " has SHA-256 ", actual, ": refused"));
  }
  if (::fsync(fd_) != 0) return Errno("fsync of an uploaded blob");
  ::close(fd_);
  fd_ = -1;
  const std::string final_path = absl::StrCat(store_->dir(), "/", expected_.sha256);
  if (::rename(temp_path_.c_str(), final_path.c_str()) != 0) {
    return Errno(absl::StrCat("publishing blob '", final_path, "'"));
  }
  committed_ = true;
  return expected_;
}

absl::StatusOr<std::string> BlobStore::PathOf(const std::string& sha256) const {
  if (!IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat("'", sha256, "' is not a SHA-256"));
  }
  const std::string path = absl::StrCat(dir_, "/", sha256);
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat("no blob ", sha256, " in '", dir_, "'"));
  }
  return path;
}

int BlobStore::Count() const {
  int n = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    if (IsSha256Hex(entry.path().filename().string())) ++n;
  }
  return n;
}

}  // namespace sluice::cluster
