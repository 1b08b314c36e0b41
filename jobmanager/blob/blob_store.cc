#include "sluice/jobmanager/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sluice/core/status_macros.h"

namespace sluice::cluster {

namespace {

constexpr char kIncomingPrefix[] = "incoming-";

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
  if (fd < 0) return FileError("the blob directory is not writable: cannot create", probe);
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
  if (expected.size > kMaxBlobBytes) {
    return absl::InvalidArgumentError(absl::StrCat("a blob of ", expected.size,
                                                   " bytes is larger than the limit of ",
                                                   kMaxBlobBytes, " (1 GiB)"));
  }
  return Begin(expected);
}

absl::StatusOr<std::unique_ptr<BlobStore::Upload>> BlobStore::BeginUpload() {
  return Begin(std::nullopt);
}

absl::StatusOr<std::unique_ptr<BlobStore::Upload>> BlobStore::Begin(
    std::optional<BlobId> expected) {
  static std::atomic<int64_t> next{0};
  const std::string temp = absl::StrCat(dir_, "/", kIncomingPrefix, ::getpid(), "-", next++);
  // Named by its hash at Commit when none was announced.
  SLUICE_ASSIGN_OR_RETURN(
      auto file,
      AtomicFile::Create(expected ? absl::StrCat(dir_, "/", expected->sha256) : temp, temp));
  return std::unique_ptr<Upload>(new Upload(this, std::move(expected), std::move(file)));
}

BlobStore::Upload::Upload(BlobStore* store, std::optional<BlobId> expected, AtomicFile file)
    : store_(store), expected_(std::move(expected)), file_(std::move(file)) {}

BlobStore::Upload::~Upload() = default;  // an uncommitted file goes with it

std::string BlobStore::Upload::Name() const {
  return expected_ ? absl::StrCat("blob ", expected_->sha256) : "the upload";
}

absl::Status BlobStore::Upload::Write(std::string_view data) {
  const int64_t limit = expected_ ? expected_->size : kMaxBlobBytes;
  if (file_.size() + static_cast<int64_t>(data.size()) > limit) {
    return absl::InvalidArgumentError(
        expected_ ? absl::StrCat(Name(), ": more bytes than the announced ", limit)
                  : absl::StrCat("a blob larger than the limit of ", limit, " bytes (1 GiB)"));
  }
  // ENOSPC fails the upload here (RESOURCE_EXHAUSTED); nothing half-written is published.
  if (absl::Status s = file_.Append(data); !s.ok()) {
    return absl::Status(
        s.code(), absl::StrCat("writing ", Name(), " into '", store_->dir(), "': ", s.message()));
  }
  hash_.Update(data);
  return absl::OkStatus();
}

absl::StatusOr<BlobId> BlobStore::Upload::Commit() {
  const BlobId actual{hash_.HexDigest(), file_.size()};
  if (expected_ && actual.size != expected_->size) {
    return absl::DataLossError(
        absl::StrCat(Name(), ": got ", actual.size, " of ", expected_->size, " bytes"));
  }
  if (expected_ && actual.sha256 != expected_->sha256) {
    return absl::DataLossError(absl::StrCat(Name(), " has SHA-256 ", actual.sha256, ": refused"));
  }
  if (absl::Status s = file_.CommitAs(absl::StrCat(store_->dir(), "/", actual.sha256)); !s.ok()) {
    return s;
  }
  return actual;
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

std::vector<BlobStore::StoredBlob> BlobStore::List() const {
  std::vector<StoredBlob> blobs;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    struct stat st;
    if (!IsSha256Hex(name) || ::stat(entry.path().c_str(), &st) != 0) continue;
    blobs.push_back({BlobId{name, st.st_size},
                     int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000});
  }
  std::sort(blobs.begin(), blobs.end(),
            [](const StoredBlob& a, const StoredBlob& b) { return a.stored_ms > b.stored_ms; });
  return blobs;
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
