#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/core/durable_file.h"
#include "sluice/jobmanager/sha256.h"

namespace sluice::cluster {

/// What identifies a blob: its content hash and size.
struct BlobId {
  std::string sha256;  // 64 lower-case hex digits
  int64_t size = 0;
};

/// The JobManager's store of job binaries: one file per blob, named by its SHA-256, in a
/// directory the operator chooses (never a default under /tmp, which cron jobs clean). An
/// upload is written beside the blobs under a temporary name and renamed into place only
/// when all its bytes arrived and their hash matches the announced one, so a half upload
/// is never visible; leftovers of interrupted uploads are removed at start.
class BlobStore {
 public:
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(const std::string& dir);

  /// One upload in progress; abandoned (its bytes deleted) unless Commit() succeeds.
  class Upload {
   public:
    ~Upload();
    absl::Status Write(std::string_view data);
    /// Checks size and hash and publishes the blob (a blob already present is kept).
    absl::StatusOr<BlobId> Commit();

   private:
    friend class BlobStore;
    Upload(BlobStore* store, BlobId expected, AtomicFile file);
    BlobStore* store_;
    BlobId expected_;
    AtomicFile file_;  // published as the blob by Commit
    Sha256 hash_;
  };

  /// The largest blob taken (a job binary): an upload announcing more is refused before a
  /// byte is written, so nobody can fill the disk through the port.
  static constexpr int64_t kMaxBlobBytes = int64_t{1} << 30;

  /// Starts an upload of a blob announced as `expected`. Its name is its hash, so nothing
  /// but 64 hex digits is taken: no name can lead out of the directory.
  absl::StatusOr<std::unique_ptr<Upload>> BeginUpload(const BlobId& expected);

  /// The path of a stored blob; NOT_FOUND if there is none with that hash.
  absl::StatusOr<std::string> PathOf(const std::string& sha256) const;
  int Count() const;
  const std::string& dir() const { return dir_; }

 private:
  explicit BlobStore(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace sluice::cluster
