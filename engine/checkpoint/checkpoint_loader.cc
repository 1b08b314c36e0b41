#include "sluice/checkpoint/checkpoint_loader.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "sluice/checkpoint/native_keyed_state.h"
#include "sluice/core/durable_file.h"
#include "sluice/core/status_macros.h"

namespace sluice {
namespace {

absl::StatusOr<LoadedCheckpoint> LoadOne(const std::string& dir, const StateFileFilter& wanted,
                                         const LocalCopies* local) {
  LoadedCheckpoint out;
  out.dir = dir;
  SLUICE_ASSIGN_OR_RETURN(out.metadata, ReadMetadataFile(dir));
  for (const auto& [op, handles] : out.metadata.operators) {
    auto& snapshots = out.operators[op];
    snapshots.resize(handles.size());
    for (size_t i = 0; i < handles.size(); ++i) {
      if (handles[i].file.empty()) continue;  // a subtask without state
      if (wanted &&
          !wanted(op, static_cast<int>(i), static_cast<int>(handles.size()), handles[i])) {
        ++out.counts.files_skipped;
        continue;
      }
      ++out.counts.files_read;
      std::optional<std::string> copy;
      if (local != nullptr && local->read)
        copy = local->read(out.metadata.checkpoint_id, handles[i]);
      std::string bytes;
      if (copy) {
        bytes = std::move(*copy);
        ++out.counts.files_local;
      } else {
        SLUICE_ASSIGN_OR_RETURN(bytes, ReadStateFile(dir, handles[i]));
      }
      SLUICE_ASSIGN_OR_RETURN(
          auto snapshot, DeserializeFromString<OperatorSnapshot>(
                             bytes, absl::StrCat("state file '", dir, "/", handles[i].file, "'")));
      // Native files are relative to the job's checkpoint directory (a chk-N's parent).
      std::error_code ec;
      std::filesystem::path chk = std::filesystem::absolute(dir, ec).lexically_normal();
      if (!chk.has_filename()) chk = chk.parent_path();  // "chk-5/"
      ResolveNativePaths(chk.parent_path().string(), &snapshot);
      out.counts.native_files += static_cast<int>(snapshot.native.files.size());
      if (local != nullptr && local->find_native && !snapshot.native.empty() &&
          snapshot.native.checksum == FileChecksum::kCrc32c) {
        out.counts.native_files_local +=
            local->find_native(out.metadata.checkpoint_id, &snapshot.native.files);
      }
      for (const StoredFile& f : snapshot.native.files) {
        // A cheap check, so a lost file is named before any task starts (the checksum is
        // verified when the file is fetched).
        if (std::filesystem::file_size(f.path, ec) != f.size || ec) {
          return absl::DataLossError(absl::StrCat("stored file '", f.path, "' of '", dir,
                                                  "' is missing or has the wrong size"));
        }
      }
      snapshots[i] = std::move(snapshot);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path,
                                                const StateFileFilter& wanted,
                                                const LocalCopies* local) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    return absl::NotFoundError(
        absl::StrCat("no checkpoint or savepoint at '", path, "': not a directory"));
  }
  if (HasMetadataFile(path)) return LoadOne(path, wanted, local);
  // A job's checkpoint directory: the newest checkpoint that loads.
  std::vector<std::pair<int64_t, std::string>> found;
  for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
    const std::string name = entry.path().filename().string();
    int64_t id = 0;
    if (name.rfind("chk-", 0) == 0 && absl::SimpleAtoi(name.substr(4), &id) &&
        HasMetadataFile(entry.path().string())) {
      found.emplace_back(id, entry.path().string());
    }
  }
  std::sort(found.rbegin(), found.rend());
  if (!found.empty()) {
    // The newest completed checkpoint or nothing: see DamagedNewestCheckpoint.
    auto loaded = LoadOne(found.front().second, wanted, local);
    if (loaded.ok()) return loaded;
    return DamagedNewestCheckpoint(path, found.front().first, loaded.status());
  }
  return absl::NotFoundError(
      absl::StrCat("'", path,
                   "' holds no checkpoint (no _metadata here, and no chk-N directory with "
                   "metadata: none completed)"));
}

absl::StatusOr<std::map<int, std::vector<OperatorSnapshot>>> MatchToGraph(
    const LoadedCheckpoint& checkpoint, const StreamGraph& graph, bool allow_non_restored_state) {
  std::map<std::string, int> node_of;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    node_of[OperatorStateId(graph, static_cast<int>(i))] = static_cast<int>(i);
  }
  std::map<int, std::vector<OperatorSnapshot>> out;
  for (const auto& [op, snapshots] : checkpoint.operators) {
    bool has_state = false;
    for (const auto& s : snapshots) has_state |= !s.empty();
    auto it = node_of.find(op);
    if (it == node_of.end()) {
      if (!has_state) continue;
      if (!allow_non_restored_state) {
        return absl::FailedPreconditionError(absl::StrCat(
            "'", checkpoint.dir, "' has state for operator '", op,
            "', which this job does not have (operators are matched by Uid()); restore with "
            "--allow-non-restored-state to drop that state"));
      }
      LOG(WARNING) << "dropping the state of operator '" << op << "' from " << checkpoint.dir
                   << ": the job has no such operator (--allow-non-restored-state)";
      continue;
    }
    const StreamNode& node = graph.nodes[it->second];
    auto mp = checkpoint.metadata.max_parallelism.find(op);
    bool keyed = false;
    for (const auto& s : snapshots) keyed |= !s.key_groups.empty();
    if (keyed && mp != checkpoint.metadata.max_parallelism.end() &&
        mp->second != node.max_parallelism) {
      return absl::FailedPreconditionError(
          absl::StrCat("operator '", op, "' was saved with max parallelism ", mp->second,
                       " but now has ", node.max_parallelism,
                       ": keyed state cannot be split into a different number of key "
                       "groups; keep the max parallelism"));
    }
    out[it->second] = snapshots;
  }
  return out;
}

StateFileFilter FilesNeededBy(const StreamGraph& graph, std::map<int, std::vector<int>> subtasks) {
  std::map<std::string, int> node_of;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    node_of[OperatorStateId(graph, static_cast<int>(i))] = static_cast<int>(i);
  }
  return [&graph, node_of = std::move(node_of), subtasks = std::move(subtasks)](
             const std::string& op, int old_index, int old_parallelism, const StateHandle& handle) {
    auto node = node_of.find(op);
    if (node == node_of.end()) return true;
    auto here = subtasks.find(node->second);
    if (here == subtasks.end()) return false;
    const StreamNode& n = graph.nodes[node->second];
    for (int index : here->second) {
      if (ContributesTo(handle, old_index, old_parallelism, index, n.parallelism,
                        n.max_parallelism)) {
        return true;
      }
    }
    return false;
  };
}

absl::StatusOr<std::map<int, std::vector<OperatorSnapshot>>> LoadStateFor(
    const StreamGraph& graph, const std::string& path, bool allow_non_restored_state,
    const StateFileFilter& wanted, const LocalCopies* local, RestoreCounts* counts) {
  auto loaded = LoadCheckpoint(path, wanted, local);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat("cannot restore job '", graph.config.job_name, "' from ", path,
                                     ": ", loaded.status().message()));
  }
  LOG(INFO) << "job '" << graph.config.job_name << "' restores from " << loaded->dir << " ("
            << loaded->counts.files_read << " state files"
            << (loaded->counts.files_local == 0
                    ? std::string()
                    : absl::StrCat(", ", loaded->counts.files_local, " of them from local copies"))
            << (loaded->counts.files_skipped == 0
                    ? std::string()
                    : absl::StrCat("; ", loaded->counts.files_skipped,
                                   " hold only other subtasks' state and are not read"))
            << (loaded->counts.native_files == 0
                    ? std::string()
                    : absl::StrCat("; RocksDB files: ", loaded->counts.native_files, ", ",
                                   loaded->counts.native_files_local, " of them with local copies"))
            << ")";
  if (counts != nullptr) *counts = loaded->counts;
  return MatchToGraph(*loaded, graph, allow_non_restored_state);
}

absl::StatusOr<std::string> WriteSavepoint(
    const std::string& savepoint_root, const CheckpointMetadata& metadata,
    const std::map<std::string, std::vector<OperatorSnapshot>>& operators) {
  return WriteSavepointInto(absl::StrCat(savepoint_root, "/",
                                         internal::SafeFileName(absl::StrCat(
                                             "savepoint-", metadata.job_name, "-",
                                             metadata.checkpoint_id, "-", metadata.timestamp_ms))),
                            metadata, operators);
}

absl::StatusOr<std::string> WriteSavepointInto(
    const std::string& dir, CheckpointMetadata metadata,
    const std::map<std::string, std::vector<OperatorSnapshot>>& operators) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create savepoint directory '", dir, "': ", ec.message()));
  }
  metadata.savepoint = true;
  metadata.operators.clear();
  metadata.shared_files.clear();
  for (const auto& [op, snapshots] : operators) {
    auto& handles = metadata.operators[op];
    for (size_t i = 0; i < snapshots.size(); ++i) {
      OperatorSnapshot portable = snapshots[i];
      if (!portable.native.empty()) {
        // Savepoints are self-contained and portable: RocksDB's files become key groups.
        SLUICE_RETURN_IF_ERROR(MaterializeNativeState({portable.native}, portable.native.range(),
                                                      dir + "/.native", &portable.key_groups));
        portable.native = {};
      }
      const std::string bytes = SerializeToString(portable);
      StateHandle h;
      h.file = internal::SafeFileName(absl::StrCat(op, "-", i)) + ".state";
      h.checksum = internal::Checksum(bytes);
      h.size = bytes.size();
      DescribeContents(portable, &h);
      SLUICE_RETURN_IF_ERROR(WriteFileAtomically(dir + "/" + h.file, bytes));
      handles.push_back(h);
    }
  }
  SLUICE_RETURN_IF_ERROR(WriteMetadataFile(dir, metadata));
  return dir;
}

}  // namespace sluice
