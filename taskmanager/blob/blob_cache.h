#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/core/mutex.h"
#include "sluice/jobmanager/blob_store.h"

namespace sluice::cluster {

/// A TaskManager's local copies of job binaries. A blob is fetched from the JobManager by
/// hash into the cache directory (through a BlobStore, so it is verified before it becomes
/// visible and a broken download leaves nothing), counted per use, and deleted when its
/// last use ends.
class BlobCache {
 public:
  /// Streams a blob's bytes into `write`.
  using Fetch = std::function<absl::Status(
      const BlobId& id, const std::function<absl::Status(std::string_view)>& write)>;

  static absl::StatusOr<std::unique_ptr<BlobCache>> Open(const std::string& dir, Fetch fetch);

  /// The local path of the blob, fetched first if it is not here; counts one use.
  absl::StatusOr<std::string> Acquire(const BlobId& id);
  /// Ends one use; the file goes when no use is left.
  void Release(const std::string& sha256);
  /// Uses of a blob (0 if it is not cached).
  int Uses(const std::string& sha256) const;

 private:
  BlobCache(std::unique_ptr<BlobStore> store, Fetch fetch)
      : store_(std::move(store)), fetch_(std::move(fetch)) {}

  std::unique_ptr<BlobStore> store_;
  Fetch fetch_;
  mutable Mutex mu_;  // held across a fetch: one download per blob at a time
  std::map<std::string, int> uses_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::cluster
