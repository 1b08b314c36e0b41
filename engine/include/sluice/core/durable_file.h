#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sluice {

// The one way files are published durably (checkpoint files, job binaries in the blob store,
// committed part files): written under a temporary name, synced, renamed into place and the
// directory synced, so a crash or power loss leaves the old state or the new, never a part.
// Errors name the file; a full disk (ENOSPC, EDQUOT) is RESOURCE_EXHAUSTED.

/// A file being written to `path` under `temp_path`; abandoned (the temporary removed)
/// unless Commit() succeeds. Not thread-safe.
class AtomicFile {
 public:
  /// Creates the temporary file (default `path` + ".inprogress").
  static absl::StatusOr<AtomicFile> Create(std::string path, std::string temp_path = "");
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  ~AtomicFile();

  absl::Status Append(std::string_view data);
  /// Syncs and closes the file and renames it to its path durably.
  absl::Status Commit() { return CommitAs(path_); }
  /// The same, to `path` instead: for a file named by its content, known only at the end.
  absl::Status CommitAs(const std::string& path);
  const std::string& path() const { return path_; }
  int64_t size() const { return size_; }

 private:
  AtomicFile(std::string path, std::string temp_path, int fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  int64_t size_ = 0;
  bool committed_ = false;
};

/// Writes `bytes` as the whole new content of `path`, atomically and durably.
absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes);

/// Renames `from` to `to` and syncs the directory, so the rename survives a power loss.
absl::Status RenameDurably(const std::string& from, const std::string& to);

/// `what` 'path': strerror(errno), RESOURCE_EXHAUSTED for a full disk, else INTERNAL.
absl::Status FileError(const std::string& what, const std::string& path);

}  // namespace sluice
