#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/graph/stream_graph.h"

namespace sluice {

/// What a restore read: state files (from local copies, task-local recovery, or the
/// checkpoint), those it did not need, and the RocksDB files its snapshots refer to.
struct RestoreCounts {
  int files_read = 0;
  int files_local = 0;    // of those read, from local copies
  int files_skipped = 0;  // not read: they hold only other subtasks' state
  int native_files = 0;
  int native_files_local = 0;  // with a local copy
};

/// A checkpoint or savepoint read back from disk, every file verified.
struct LoadedCheckpoint {
  std::string dir;  // the chk-N or savepoint directory it came from
  CheckpointMetadata metadata;
  /// Operator id (uid or generated) -> each subtask's snapshot.
  std::map<std::string, std::vector<OperatorSnapshot>> operators;
  RestoreCounts counts;
};

/// Which state files a restore reads: given the operator id, the index of the old subtask
/// whose file it is, the operator's old parallelism and the file's handle. A file not read
/// loads as an empty snapshot.
using StateFileFilter = std::function<bool(const std::string& op, int old_index,
                                           int old_parallelism, const StateHandle& handle)>;

/// Copies of a checkpoint's files kept outside it (a TaskManager's, for task-local recovery).
struct LocalCopies {
  /// The verified content of state file `handle` of checkpoint `checkpoint_id`, or none.
  std::function<std::optional<std::string>(int64_t checkpoint_id, const StateHandle& handle)> read;
  /// Sets the `local_path` of those of a snapshot's RocksDB files of checkpoint
  /// `checkpoint_id` it has a copy of; returns how many.
  std::function<int(int64_t checkpoint_id, std::vector<StoredFile>* files)> find_native;
};

/// Reads the checkpoint or savepoint at `path`: a directory with a _metadata file (chk-N or
/// a savepoint), or a job's checkpoint directory, whose newest completed checkpoint is taken
/// (a damaged one is an error naming the way back). Reads the state files `wanted` accepts
/// (all without it), each verified, taking a file's local copy from `local` where it has one.
absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path,
                                                const StateFileFilter& wanted = nullptr,
                                                const LocalCopies* local = nullptr);

/// The files the restore of some subtasks of `graph` needs (stream node id -> the indices of
/// those subtasks): those RedistributeState takes anything from for one of them (see
/// ContributesTo). State of operators `graph` does not have is read, for MatchToGraph to judge.
/// The filter refers to `graph`, which must outlive it.
StateFileFilter FilesNeededBy(const StreamGraph& graph, std::map<int, std::vector<int>> subtasks);

/// Assigns a loaded checkpoint's state to the operators of `graph` by operator id (uid).
/// State of an operator the job no longer has is an error naming it, unless
/// `allow_non_restored_state` (then it is dropped, with a log line). Keyed state needs the
/// same max parallelism (number of key groups) as when it was written.
absl::StatusOr<std::map<int, std::vector<OperatorSnapshot>>> MatchToGraph(
    const LoadedCheckpoint& checkpoint, const StreamGraph& graph, bool allow_non_restored_state);

/// LoadCheckpoint and MatchToGraph in one: the state `graph`'s operators start from (stream
/// node id -> each old subtask's snapshot), and in `counts` what it read. An error names the
/// job and `path`.
absl::StatusOr<std::map<int, std::vector<OperatorSnapshot>>> LoadStateFor(
    const StreamGraph& graph, const std::string& path, bool allow_non_restored_state,
    const StateFileFilter& wanted = nullptr, const LocalCopies* local = nullptr,
    RestoreCounts* counts = nullptr);

/// Writes a self-contained savepoint of checkpoint `metadata` (its state given per operator
/// id) into a new directory under `savepoint_root`; returns that directory.
absl::StatusOr<std::string> WriteSavepoint(
    const std::string& savepoint_root, const CheckpointMetadata& metadata,
    const std::map<std::string, std::vector<OperatorSnapshot>>& operators);
/// The same into the directory `dir` itself (created).
absl::StatusOr<std::string> WriteSavepointInto(
    const std::string& dir, CheckpointMetadata metadata,
    const std::map<std::string, std::vector<OperatorSnapshot>>& operators);

}  // namespace sluice
