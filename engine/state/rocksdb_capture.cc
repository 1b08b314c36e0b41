#include "sluice/state/internal/rocksdb_capture.h"

#include <iterator>
#include <utility>

namespace sluice::internal {

RocksDbCapture::RocksDbCapture(std::shared_ptr<RocksDbStore> store) : store_(std::move(store)) {}

RocksDbCapture::~RocksDbCapture() { (void)Run(""); }

void RocksDbCapture::AddBatch(std::function<absl::Status()> write) {
  batches_.push_back(std::move(write));
}

absl::Status RocksDbCapture::Run(const std::string& native_dir) {
  MutexLock lock(&mu_);
  if (done_) return status_;
  for (auto& write : batches_) {
    status_ = write();
    if (!status_.ok()) break;
  }
  if (status_.ok()) {
    if (native_dir.empty()) {
      view_ = store_->TakeSnapshot();
    } else {
      status_ = store_->CreateNativeCheckpoint(native_dir);
    }
  }
  batches_.clear();
  done_ = true;
  done_cv_.SignalAll();
  return status_;
}

bool RocksDbCapture::done() {
  MutexLock lock(&mu_);
  return done_;
}

absl::Status RocksDbCapture::Wait() {
  MutexLock lock(&mu_);
  done_cv_.Wait(&mu_, [&]() SLUICE_REQUIRES(mu_) { return done_; });
  return status_;
}

StoredFileLog::StoredFileLog(std::string owner) : owner_(std::move(owner)) {}

std::map<std::string, StoredFile> StoredFileLog::Reusable() const {
  MutexLock lock(&mu_);
  return reusable_;
}

void StoredFileLog::Stored(int64_t id, std::vector<StoredFile> files) {
  MutexLock lock(&mu_);
  stored_[id] = std::move(files);
}

void StoredFileLog::Completed(int64_t id) {
  MutexLock lock(&mu_);
  auto it = stored_.find(id);
  if (it == stored_.end()) return;
  SetReusable(it->second);
  stored_.erase(stored_.begin(), std::next(it));
}

void StoredFileLog::Restored(const std::vector<StoredFile>& files) {
  MutexLock lock(&mu_);
  SetReusable(files);
}

void StoredFileLog::SetReusable(const std::vector<StoredFile>& files) {
  reusable_.clear();
  for (const StoredFile& f : files) reusable_[f.name] = f;
}

}  // namespace sluice::internal
