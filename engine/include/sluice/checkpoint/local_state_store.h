#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/core/mutex.h"

namespace sluice {

/// A TaskManager's own copies of the snapshots its subtasks wrote (task-local recovery): a
/// subtask restarted on the same TaskManager restores from them instead of reading checkpoint
/// storage, which may be a remote mount. A copy is used only if it verifies against the state
/// handle the checkpoint's metadata holds; anything else comes from storage.
///
///   <root>/<job>/chk-<id>/<state file>             a copy of the state file
///   <root>/<job>/chk-<id>/native/<stored name>     a RocksDB file the snapshot stored (a hard
///                                                  link to the database's where possible)
///
/// Per job, the newest completed checkpoint's copies are kept, and those of newer checkpoints
/// still in progress; older ones go when a checkpoint completes. Losing a copy costs only
/// time, so writing one that fails (a full disk) is logged, not an error. Thread-safe.
class LocalStateStore {
 public:
  /// Creates `root` if needed; copies a crashed predecessor left there are kept (a restarted
  /// TaskManager process may still restore from them).
  static absl::StatusOr<std::unique_ptr<LocalStateStore>> Create(std::string root);

  /// Keeps a copy of state file `handle` of checkpoint `id` of `job`, whose content is `bytes`.
  void Put(const std::string& job, int64_t id, const StateHandle& handle, std::string_view bytes);
  /// Keeps the files of a RocksDB native checkpoint in `native_dir` that checkpoint storage
  /// stored as `stored` (linked where the file system allows, else copied).
  void PutNative(const std::string& job, int64_t id, const std::string& native_dir,
                 const std::vector<StoredFile>& stored);

  /// The content of state file `handle` of checkpoint `id`, if a copy is here and verifies
  /// (a damaged copy is deleted, logged, and reported as none).
  std::optional<std::string> Read(const std::string& job, int64_t id, const StateHandle& handle);
  /// Sets the `local_path` of each of `files` (RocksDB files of checkpoint `id`) that has a
  /// copy here of the right size; it is verified when fetched (FetchStoredFiles). Returns how
  /// many it found.
  int FindNativeCopies(const std::string& job, int64_t id, std::vector<StoredFile>* files) const;
  /// Checkpoint `id` of `job` completed: copies of older checkpoints go.
  void Completed(const std::string& job, int64_t id);
  /// The copies of every job not in `jobs` go.
  void ForgetAllBut(const std::set<std::string>& jobs);

  const std::string& root() const { return root_; }

 private:
  explicit LocalStateStore(std::string root) : root_(std::move(root)) {}
  std::string CheckpointDir(const std::string& job, int64_t id) const;
  /// A newer checkpoint of `job` completed: a copy of checkpoint `id` would never be read.
  bool Superseded(const std::string& job, int64_t id);

  const std::string root_;
  Mutex mu_;
  /// Job -> its newest completed checkpoint: copies of older ones are no longer written.
  std::map<std::string, int64_t> completed_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice
