#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
/// when all its bytes arrived (and their hash matches the announced one, if one was), so a
/// half upload is never visible; leftovers of interrupted uploads are removed at start.
class BlobStore {
 public:
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(const std::string& dir);

  /// One upload in progress; abandoned (its bytes deleted) unless Commit() succeeds.
  class Upload {
   public:
    ~Upload();
    absl::Status Write(std::string_view data);
    /// Checks size and hash against the announced ones, if any, and publishes the blob
    /// under its hash (the same bytes uploaded again replace themselves).
    absl::StatusOr<BlobId> Commit();

   private:
    friend class BlobStore;
    Upload(BlobStore* store, std::optional<BlobId> expected, AtomicFile file);
    std::string Name() const;  // for errors: the announced hash, or "upload"
    BlobStore* store_;
    std::optional<BlobId> expected_;
    AtomicFile file_;  // published as the blob by Commit
    Sha256 hash_;
  };

  /// The largest blob taken (a job binary): an upload announcing more is refused before a
  /// byte is written, so nobody can fill the disk through the port.
  static constexpr int64_t kMaxBlobBytes = int64_t{1} << 30;

  /// Starts an upload of a blob announced as `expected`. Its name is its hash, so nothing
  /// but 64 hex digits is taken: no name can lead out of the directory.
  absl::StatusOr<std::unique_ptr<Upload>> BeginUpload(const BlobId& expected);
  /// Starts an upload whose hash is learned from its bytes (an HTTP upload), up to
  /// kMaxBlobBytes.
  absl::StatusOr<std::unique_ptr<Upload>> BeginUpload();

  struct StoredBlob {
    BlobId id;
    int64_t stored_ms = 0;  // when it was stored (unix ms)
  };
  /// Every stored blob, the newest first.
  std::vector<StoredBlob> List() const;

  /// The path of a stored blob; NOT_FOUND if there is none with that hash.
  absl::StatusOr<std::string> PathOf(const std::string& sha256) const;
  int Count() const;
  const std::string& dir() const { return dir_; }

 private:
  explicit BlobStore(std::string dir) : dir_(std::move(dir)) {}
  absl::StatusOr<std::unique_ptr<Upload>> Begin(std::optional<BlobId> expected);
  std::string dir_;
};

}  // namespace sluice::cluster
