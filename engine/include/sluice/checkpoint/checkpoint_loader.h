#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/graph/stream_graph.h"

namespace sluice {

/// A checkpoint or savepoint read back from disk, every file verified.
struct LoadedCheckpoint {
  std::string dir;  // the chk-N or savepoint directory it came from
  CheckpointMetadata metadata;
  /// Operator id (uid or generated) -> each subtask's snapshot.
  std::map<std::string, std::vector<OperatorSnapshot>> operators;
};

/// Reads the checkpoint or savepoint at `path`: a directory with a _metadata file (chk-N or
/// a savepoint), or a job's checkpoint directory, whose newest valid checkpoint is taken —
/// a damaged one is skipped with a log line, falling back to the one before.
absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path);

/// Assigns a loaded checkpoint's state to the operators of `graph` by operator id (uid).
/// State of an operator the job no longer has is an error naming it, unless
/// `allow_non_restored_state` (then it is dropped, with a log line). Keyed state needs the
/// same max parallelism (number of key groups) as when it was written.
absl::StatusOr<std::map<int, std::vector<OperatorSnapshot>>> MatchToGraph(
    const LoadedCheckpoint& checkpoint, const StreamGraph& graph, bool allow_non_restored_state);

/// LoadCheckpoint and MatchToGraph in one: the state `graph`'s operators start from (stream
/// node id -> each old subtask's snapshot). An error names the job and `path`.
absl::StatusOr<std::map<int, std::vector<OperatorSnapshot>>> LoadStateFor(
    const StreamGraph& graph, const std::string& path, bool allow_non_restored_state);

/// Writes a self-contained savepoint of checkpoint `metadata` (its state given per operator
/// id) into a new directory under `savepoint_root`; returns that directory.
absl::StatusOr<std::string> WriteSavepoint(
    const std::string& savepoint_root, CheckpointMetadata metadata,
    const std::map<std::string, std::vector<OperatorSnapshot>>& operators);

}  // namespace sluice
