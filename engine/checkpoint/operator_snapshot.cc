#include "sluice/checkpoint/operator_snapshot.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace sluice {

RestoredOperatorState RedistributeState(const std::vector<OperatorSnapshot>& old, int index,
                                        int parallelism, int max_parallelism) {
  RestoredOperatorState out;
  const KeyGroupRange range = KeyGroupRangeForOperator(index, parallelism, max_parallelism);
  for (const OperatorSnapshot& snapshot : old) {
    for (const auto& [kg, bytes] : snapshot.key_groups) {
      if (range.Contains(kg)) out.key_groups[kg] = bytes;
    }
    const KeyGroupRange native = snapshot.native.range();
    if (!snapshot.native.empty() && native.start <= range.end && range.start <= native.end) {
      out.native.push_back(snapshot.native);
    }
  }
  size_t position = 0;  // over the items of all old subtasks, in subtask order
  for (const OperatorSnapshot& snapshot : old) {
    for (const std::string& item : snapshot.operator_state) {
      if (position % static_cast<size_t>(parallelism) == static_cast<size_t>(index)) {
        out.operator_state.push_back(item);
      }
      out.operator_state_union.push_back(item);
      ++position;
    }
  }
  return out;
}

namespace internal {

std::string KeyGroupBlob(std::string_view state, std::string_view timers) {
  std::string blob;
  ByteWriter w(&blob);
  w.WriteBytes(state);
  w.WriteBytes(timers);
  return blob;
}

absl::StatusOr<NativeKeyedState> StoreNativeSnapshot(RocksDbCapture& capture, StoredFileLog& log,
                                                     CheckpointStorage& storage, int64_t id,
                                                     const KeyGroupRange& range) {
  const std::string dir = absl::StrCat(capture.store().dir(), ".chk-", id);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // left by a failed attempt at the same id
  absl::StatusOr<std::vector<StoredFile>> files;
  if (absl::Status captured = capture.Run(dir); captured.ok()) {
    files = storage.StoreNativeCheckpoint(id, log.owner(), dir, log.Reusable());
  } else {
    files = captured;
  }
  std::filesystem::remove_all(dir, ec);
  if (!files.ok()) return files.status();
  log.Stored(id, *files);
  NativeKeyedState out;
  out.key_group_start = range.start;
  out.key_group_end = range.end;
  out.files = std::move(*files);
  return out;
}

}  // namespace internal
}  // namespace sluice
