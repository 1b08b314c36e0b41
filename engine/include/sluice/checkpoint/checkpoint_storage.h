#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sluice/serialization/serializer.h"

namespace sluice {

/// One state file of a checkpoint, as the metadata refers to it.
struct StateHandle {
  std::string file;  // relative to the checkpoint's directory
  uint64_t checksum = 0;
  uint64_t size = 0;
  /// What the file holds, so that a restore reads only the files its subtasks need: the key
  /// groups of its keyed state (an empty range: none) and whether it holds operator state
  /// (which every subtask's restore needs). Metadata written before these were recorded reads
  /// as "all key groups, and operator state": every restore reads such a file.
  int32_t key_group_start = 0;
  int32_t key_group_end = std::numeric_limits<int32_t>::max();
  bool operator_state = true;
};
SLUICE_SERIALIZABLE(StateHandle, file, checksum, size, key_group_start, key_group_end,
                    operator_state)

/// A file of a RocksDB native checkpoint as stored.
struct StoredFile {
  std::string name;       // its name in the database directory
  std::string path;       // relative to the job directory: shared/... or chk-<id>/...
  uint64_t checksum = 0;  // of the kind its snapshot names (FileChecksum)
  uint64_t size = 0;
  /// Not stored: a TaskManager's local copy of the file (task-local recovery), tried before
  /// `path` when a restore fetches it.
  std::string local_path;
};
SLUICE_SERIALIZABLE(StoredFile, name, path, checksum, size)

/// What the checksums of a native snapshot's stored files are.
enum class FileChecksum : uint8_t {
  /// Sluice 0.1.0: the engine's 64-bit hash of the whole file (verified by reading it whole).
  kWholeFileHash = 0,
  /// RocksDB's crc32c (its FileChecksumGenCrc32c), computed while the file is copied.
  kCrc32c = 1,
};

/// A completed checkpoint: which file holds the state of each subtask of each operator.
struct CheckpointMetadata {
  int64_t checkpoint_id = 0;
  int64_t timestamp_ms = 0;
  std::string job_name;
  bool savepoint = false;
  /// Operator id (its uid, or a generated one) -> one handle per subtask (index = subtask).
  std::map<std::string, std::vector<StateHandle>> operators;
  /// Operator id -> its max parallelism (number of key groups) when the checkpoint was taken.
  std::map<std::string, int32_t> max_parallelism;
  /// The files under shared/ this checkpoint uses (paths relative to the job directory):
  /// retention deletes a shared file once no retained checkpoint lists it.
  std::vector<std::string> shared_files;
};
SLUICE_SERIALIZABLE(CheckpointMetadata, checkpoint_id, timestamp_ms, job_name, savepoint, operators,
                    max_parallelism, shared_files)

/// Checkpoints of one job in a directory (local disk or a shared mount):
///
///   <root>/<job>/chk-<id>/<operator>-<subtask>.state   state files
///   <root>/<job>/chk-<id>/_metadata                     written last: the checkpoint is complete
///   <root>/<job>/shared/                                files shared by checkpoints (RocksDB)
///
/// Every file is written to a temporary name, synced and renamed, and carries a checksum,
/// so a crash leaves either a complete file or none, and a damaged file is detected. Used
/// by the coordinator (metadata) and by tasks (state files); methods are thread-safe as
/// long as callers touch different checkpoints or files.
class CheckpointStorage {
 public:
  static absl::StatusOr<std::unique_ptr<CheckpointStorage>> Create(const std::string& root,
                                                                   const std::string& job_name);

  /// Writes one state file of checkpoint `id` under `name`.
  absl::StatusOr<StateHandle> WriteState(int64_t id, const std::string& name,
                                         std::string_view bytes);
  /// Reads a state file back and verifies its size and checksum.
  absl::StatusOr<std::string> ReadState(int64_t id, const StateHandle& handle) const;

  /// Completes checkpoint `metadata.checkpoint_id` by writing its metadata atomically.
  absl::Status Commit(const CheckpointMetadata& metadata);
  /// Reads and verifies a checkpoint's metadata.
  absl::StatusOr<CheckpointMetadata> ReadMetadata(int64_t id) const;

  /// The ids of completed checkpoints (those with metadata), newest first.
  std::vector<int64_t> CompletedIds() const;

  /// Deletes an unfinished or aborted checkpoint's directory.
  absl::Status Discard(int64_t id);
  /// Keeps the `count` newest completed checkpoints and deletes the rest (and unfinished
  /// ones older than the newest kept), then the shared files no kept checkpoint lists —
  /// except those written after `in_flight_since` (the start of the oldest checkpoint still
  /// running, which may use them). So the directory does not grow without bound.
  absl::Status Retain(int count, absl::Time in_flight_since = absl::InfiniteFuture());

  /// Stores the files of a RocksDB native checkpoint (`native_dir`) for checkpoint `id`.
  /// SST files are immutable and named uniquely within one database: they go to
  /// shared/<owner>-<name>, once — one in `already_stored` (by name) that is still there is
  /// referenced, not copied again. The rest (MANIFEST, CURRENT, OPTIONS, write-ahead log)
  /// goes to chk-<id>/<owner>-<name>. `owner` names the database instance. An entry of
  /// `already_stored` with an absolute path (a restored checkpoint's) is referenced only if it
  /// lies in this job's directory: another job's files are copied, since this job's
  /// retention could not keep them alive.
  /// Gives up (CANCELLED) between pieces once `*canceled` (the task was canceled: a restart
  /// does not wait for an upload nobody will use).
  absl::StatusOr<std::vector<StoredFile>> StoreNativeCheckpoint(
      int64_t id, const std::string& owner, const std::string& native_dir,
      const std::map<std::string, StoredFile>& already_stored,
      const std::atomic<bool>* canceled = nullptr);
  /// Copies files StoreNativeCheckpoint stored into `dir` under their database names,
  /// verifying each.
  absl::Status FetchFiles(const std::vector<StoredFile>& files, const std::string& dir) const;

  const std::string& job_dir() const { return job_dir_; }
  std::string CheckpointDir(int64_t id) const;

 private:
  explicit CheckpointStorage(std::string job_dir) : job_dir_(std::move(job_dir)) {}
  /// `name` as stored by an earlier checkpoint of this job, if it is still there.
  std::optional<StoredFile> Reference(const std::map<std::string, StoredFile>& already_stored,
                                      const std::string& name) const;
  /// Deletes completed checkpoints beyond the newest `count`, and older unfinished ones.
  absl::Status DiscardOldCheckpoints(int count);

  std::string job_dir_;
};

// The same on any directory holding one checkpoint or savepoint.

/// Copies stored files into `dir` under their database names, verifying each against its
/// checksum of kind `checksum` (a file that does not match is not published); relative
/// paths are taken from `base_dir`. A file's local copy (`local_path`) is taken first: an
/// immutable SST file is hard-linked after its checksum verifies (no copy), and a copy that
/// does not verify is deleted and the stored file fetched instead.
absl::Status FetchStoredFiles(const std::string& base_dir, const std::vector<StoredFile>& files,
                              FileChecksum checksum, const std::string& dir);

/// Reads a state file of the checkpoint in `dir` and verifies its size and checksum.
absl::StatusOr<std::string> ReadStateFile(const std::string& dir, const StateHandle& handle);
/// Writes `dir`/_metadata atomically, with a checksum.
absl::Status WriteMetadataFile(const std::string& dir, const CheckpointMetadata& metadata);
/// Reads and verifies `dir`/_metadata.
absl::StatusOr<CheckpointMetadata> ReadMetadataFile(const std::string& dir);
bool HasMetadataFile(const std::string& dir);

namespace internal {
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);
uint64_t Checksum(std::string_view bytes);
/// `name` made safe as a file name (no path separators, no leading dot).
std::string SafeFileName(const std::string& name);
}  // namespace internal

/// Why a damaged newest completed checkpoint is not passed over for an older one: the job's
/// sinks may have committed its output, which an older checkpoint would write again. The
/// error names the checkpoint, the problem and how to start from an older one anyway.
absl::Status DamagedNewestCheckpoint(const std::string& job_dir, int64_t id,
                                     const absl::Status& problem);

}  // namespace sluice
