#include "sluice/checkpoint/operator_snapshot.h"

#include <algorithm>
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
  // Input channels belong to one subtask and mean something only at the same parallelism.
  if (old.size() == static_cast<size_t>(parallelism)) {
    out.input_channels = old[static_cast<size_t>(index)].input_channels;
  }
  // Broadcast state is the same in every old subtask: each new one reads one copy (spread
  // over the old files, as Flink does), the next one that has any if that one had none.
  for (size_t i = 0; i < old.size() && out.broadcast_states.empty(); ++i) {
    out.broadcast_states = old[(static_cast<size_t>(index) + i) % old.size()].broadcast_states;
  }
  // At the same parallelism each subtask takes back its own items: a subtask restarted
  // alone (region failover) must not take over work its running peers still hold.
  const bool same_parallelism = old.size() == static_cast<size_t>(parallelism);
  size_t position = 0;  // over the items of all old subtasks, in subtask order
  for (size_t old_index = 0; old_index < old.size(); ++old_index) {
    for (const std::string& item : old[old_index].operator_state) {
      const bool mine = same_parallelism ? old_index == static_cast<size_t>(index)
                                         : position % static_cast<size_t>(parallelism) ==
                                               static_cast<size_t>(index);
      if (mine) out.operator_state.push_back(item);
      out.operator_state_union.push_back(item);
      ++position;
    }
  }
  return out;
}

void DescribeContents(const OperatorSnapshot& snapshot, StateHandle* handle) {
  KeyGroupRange keyed;  // empty
  auto widen = [&keyed](int start, int end) {
    if (keyed.end < keyed.start) {
      keyed = {start, end};
    } else {
      keyed = {std::min(keyed.start, start), std::max(keyed.end, end)};
    }
  };
  if (!snapshot.key_groups.empty()) {
    widen(snapshot.key_groups.begin()->first, snapshot.key_groups.rbegin()->first);
  }
  if (!snapshot.native.empty())
    widen(snapshot.native.key_group_start, snapshot.native.key_group_end);
  handle->key_group_start = keyed.start;
  handle->key_group_end = keyed.end;
  // Broadcast state counts as operator state: every subtask's restore needs one copy.
  handle->operator_state = !snapshot.operator_state.empty() || !snapshot.broadcast_states.empty();
}

bool ContributesTo(const StateHandle& handle, int old_index, int old_parallelism, int index,
                   int parallelism, int max_parallelism) {
  if (handle.operator_state) return true;
  if (old_parallelism == parallelism && old_index == index) return true;  // input channels
  const KeyGroupRange range = KeyGroupRangeForOperator(index, parallelism, max_parallelism);
  return handle.key_group_start <= handle.key_group_end && handle.key_group_start <= range.end &&
         range.start <= handle.key_group_end;
}

namespace internal {

std::string KeyGroupBlob(std::string_view state, std::string_view timers, Timestamp watermark) {
  std::string blob;
  ByteWriter w(&blob);
  w.WriteBytes(state);
  w.WriteBytes(timers);
  w.WriteRaw(watermark);
  return blob;
}

absl::StatusOr<KeyGroupParts> ParseKeyGroupBlob(std::string_view blob, int key_group) {
  KeyGroupParts parts;
  ByteReader r(blob);
  bool ok = r.ReadBytes(&parts.state) && r.ReadBytes(&parts.timers);
  if (ok && !r.AtEnd()) {
    Timestamp watermark;
    ok = r.ReadRaw(&watermark) && r.AtEnd();
    parts.watermark = watermark;
  }
  if (!ok) {
    return absl::DataLossError(absl::StrCat("snapshot of key group ", key_group, " is corrupt"));
  }
  return parts;
}

absl::StatusOr<NativeKeyedState> StoreNativeSnapshot(
    internal::RocksDbCapture& capture, internal::StoredFileLog& log, CheckpointStorage& storage,
    int64_t id, const KeyGroupRange& range,
    const std::function<void(const std::string&, const std::vector<StoredFile>&)>& keep_copy,
    const std::atomic<bool>* canceled) {
  const std::string dir = absl::StrCat(capture.store().dir(), ".chk-", id);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // left by a failed attempt at the same id
  absl::StatusOr<std::vector<StoredFile>> files;
  if (absl::Status captured = capture.Run(dir); captured.ok()) {
    files = storage.StoreNativeCheckpoint(id, log.owner(), dir, log.Reusable(), canceled);
    if (files.ok() && keep_copy) keep_copy(dir, *files);
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
