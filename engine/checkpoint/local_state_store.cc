#include "sluice/checkpoint/local_state_store.h"

#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "sluice/core/durable_file.h"

namespace sluice {
namespace {

constexpr char kCheckpointPrefix[] = "chk-";

/// Where a stored RocksDB file's copy goes: its stored name (owner-name, unique per database).
std::string NativeCopyName(const StoredFile& f) {
  return std::filesystem::path(f.path).filename().string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalStateStore>> LocalStateStore::Create(std::string root) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the local state directory '", root, "': ", ec.message()));
  }
  return std::unique_ptr<LocalStateStore>(new LocalStateStore(std::move(root)));
}

std::string LocalStateStore::CheckpointDir(const std::string& job, int64_t id) const {
  return absl::StrCat(root_, "/", internal::SafeFileName(job), "/", kCheckpointPrefix, id);
}

bool LocalStateStore::Superseded(const std::string& job, int64_t id) {
  MutexLock lock(&mu_);
  auto completed = completed_.find(job);
  return completed != completed_.end() && id < completed->second;
}

void LocalStateStore::Put(const std::string& job, int64_t id, const StateHandle& handle,
                          std::string_view bytes) {
  if (Superseded(job, id)) return;
  const std::string dir = CheckpointDir(job, id);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  absl::Status s = ec ? FileError("cannot create", dir)
                      : WriteFileAtomically(absl::StrCat(dir, "/", handle.file), bytes);
  if (!s.ok()) {
    LOG(WARNING) << "no local copy of " << handle.file << " of checkpoint " << id << " of " << job
                 << " (its restore will read checkpoint storage): " << s.message();
  }
}

void LocalStateStore::PutNative(const std::string& job, int64_t id, const std::string& native_dir,
                                const std::vector<StoredFile>& stored) {
  if (Superseded(job, id)) return;
  const std::string dir = absl::StrCat(CheckpointDir(job, id), "/native");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  for (const StoredFile& f : stored) {
    const std::string from = absl::StrCat(native_dir, "/", f.name);
    const std::string to = absl::StrCat(dir, "/", NativeCopyName(f));
    std::filesystem::remove(to, ec);
    std::filesystem::create_hard_link(from, to, ec);
    if (ec) std::filesystem::copy_file(from, to, ec);
    if (ec) {
      LOG(WARNING) << "no local copy of " << f.name << " of checkpoint " << id << " of " << job
                   << " (its restore will read checkpoint storage): " << ec.message();
      return;
    }
  }
}

int LocalStateStore::FindNativeCopies(const std::string& job, int64_t id,
                                      std::vector<StoredFile>* files) const {
  const std::string dir = absl::StrCat(CheckpointDir(job, id), "/native");
  int found = 0;
  for (StoredFile& f : *files) {
    const std::string copy = absl::StrCat(dir, "/", NativeCopyName(f));
    std::error_code ec;
    if (std::filesystem::file_size(copy, ec) == f.size && !ec) {
      f.local_path = copy;
      ++found;
    }
  }
  return found;
}

std::optional<std::string> LocalStateStore::Read(const std::string& job, int64_t id,
                                                 const StateHandle& handle) {
  const std::string dir = CheckpointDir(job, id);
  std::error_code ec;
  if (!std::filesystem::exists(absl::StrCat(dir, "/", handle.file), ec)) return std::nullopt;
  absl::StatusOr<std::string> bytes = ReadStateFile(dir, handle);
  if (bytes.ok()) return std::move(*bytes);
  LOG(WARNING) << "the local copy of " << handle.file << " of checkpoint " << id << " of " << job
               << " is not used, checkpoint storage's is: " << bytes.status().message();
  std::filesystem::remove(absl::StrCat(dir, "/", handle.file), ec);
  return std::nullopt;
}

void LocalStateStore::Completed(const std::string& job, int64_t id) {
  MutexLock lock(&mu_);
  int64_t& completed = completed_[job];
  completed = std::max(completed, id);
  std::error_code ec;
  const std::string job_dir = absl::StrCat(root_, "/", internal::SafeFileName(job));
  for (const auto& entry : std::filesystem::directory_iterator(job_dir, ec)) {
    const std::string name = entry.path().filename().string();
    int64_t older = 0;
    if (name.starts_with(kCheckpointPrefix) &&
        absl::SimpleAtoi(name.substr(sizeof(kCheckpointPrefix) - 1), &older) && older < completed) {
      std::filesystem::remove_all(entry.path(), ec);
    }
  }
}

void LocalStateStore::ForgetAllBut(const std::set<std::string>& jobs) {
  std::set<std::string> kept;
  for (const std::string& job : jobs) kept.insert(internal::SafeFileName(job));
  MutexLock lock(&mu_);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root_, ec)) {
    if (!kept.contains(entry.path().filename().string())) {
      std::filesystem::remove_all(entry.path(), ec);
    }
  }
  for (auto it = completed_.begin(); it != completed_.end();) {
    it = jobs.contains(it->first) ? std::next(it) : completed_.erase(it);
  }
}

}  // namespace sluice
