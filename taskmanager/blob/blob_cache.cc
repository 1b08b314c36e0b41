#include "blob/blob_cache.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "sluice/core/status_macros.h"

namespace sluice::cluster {

absl::StatusOr<std::unique_ptr<BlobCache>> BlobCache::Open(const std::string& dir, Fetch fetch) {
  std::error_code ec;
  // Blobs left by an earlier run are not in use by anything now.
  std::filesystem::remove_all(dir, ec);
  SLUICE_ASSIGN_OR_RETURN(auto store, BlobStore::Open(dir));
  return std::unique_ptr<BlobCache>(new BlobCache(std::move(store), std::move(fetch)));
}

absl::StatusOr<std::string> BlobCache::Acquire(const BlobId& id) {
  MutexLock lock(&mu_);
  if (auto it = uses_.find(id.sha256); it != uses_.end()) {
    ++it->second;
    return store_->PathOf(id.sha256);
  }
  SLUICE_ASSIGN_OR_RETURN(auto upload, store_->BeginUpload(id));
  absl::Status fetched = fetch_(id, [&](std::string_view data) { return (upload)->Write(data); });
  if (!fetched.ok()) {
    return absl::Status(fetched.code(), absl::StrCat("fetching job binary ", id.sha256,
                                                     " from the JobManager: ", fetched.message()));
  }
  auto committed = (upload)->Commit();
  if (!committed.ok()) return committed.status();
  uses_[id.sha256] = 1;
  return store_->PathOf(id.sha256);
}

void BlobCache::Release(const std::string& sha256) {
  MutexLock lock(&mu_);
  auto it = uses_.find(sha256);
  if (it == uses_.end()) return;
  if (--it->second > 0) return;
  uses_.erase(it);
  std::error_code ec;
  std::filesystem::remove(absl::StrCat(store_->dir(), "/", sha256), ec);
}

int BlobCache::Uses(const std::string& sha256) const {
  MutexLock lock(&mu_);
  auto it = uses_.find(sha256);
  return it == uses_.end() ? 0 : it->second;
}

}  // namespace sluice::cluster
