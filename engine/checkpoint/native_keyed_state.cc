#include "sluice/checkpoint/native_keyed_state.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "sluice/core/status_macros.h"
#include "sluice/serialization/bytes.h"

namespace sluice {
namespace {

/// Two state parts of a key group (count, then states) as one.
absl::StatusOr<std::string> MergeStateParts(std::string_view a, std::string_view b, int kg) {
  uint64_t count_a = 0, count_b = 0;
  ByteReader ra(a), rb(b);
  if ((!a.empty() && !ra.ReadVarint(&count_a)) || (!b.empty() && !rb.ReadVarint(&count_b))) {
    return absl::DataLossError(absl::StrCat("snapshot of key group ", kg, " is corrupt"));
  }
  std::string out;
  ByteWriter w(&out);
  w.WriteVarint(count_a + count_b);
  w.Append(ra.Remaining());
  w.Append(rb.Remaining());
  return out;
}

absl::Status MergeDatabase(const NativeKeyedState& native, const KeyGroupRange& range,
                           const std::string& dir, std::map<int, std::string>* key_groups) {
  SLUICE_RETURN_IF_ERROR(FetchStoredFiles("", native.files, native.checksum, dir));
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<internal::RocksDbStore> store,
                          internal::RocksDbStore::OpenExisting(dir));
  const int first = std::max(range.start, native.key_group_start);
  const int last = std::min(range.end, native.key_group_end);
  for (int kg = first; kg <= last; ++kg) {
    SLUICE_ASSIGN_OR_RETURN(std::string portable, store->PortableKeyGroup(kg));
    internal::KeyGroupParts parts;
    if (auto it = key_groups->find(kg); it != key_groups->end()) {
      SLUICE_ASSIGN_OR_RETURN(parts, internal::ParseKeyGroupBlob(it->second, kg));
    }
    SLUICE_ASSIGN_OR_RETURN(std::string merged, MergeStateParts(portable, parts.state, kg));
    (*key_groups)[kg] =
        internal::KeyGroupBlob(merged, parts.timers, parts.watermark.value_or(kMinWatermark));
  }
  return absl::OkStatus();  // the store deletes its directory
}

}  // namespace

void ResolveNativePaths(const std::string& job_dir, OperatorSnapshot* snapshot) {
  for (StoredFile& f : snapshot->native.files) {
    if (!f.path.empty() && f.path[0] != '/') f.path = job_dir + "/" + f.path;
  }
}

absl::Status MaterializeNativeState(const std::vector<NativeKeyedState>& native,
                                    const KeyGroupRange& range, std::string scratch_dir,
                                    std::map<int, std::string>* key_groups) {
  std::error_code ec;
  if (scratch_dir.empty()) {
    static std::atomic<int64_t> next{0};
    scratch_dir = (std::filesystem::temp_directory_path() /
                   absl::StrCat("sluice-native-", getpid(), "-", next++))
                      .string();
  }
  absl::Status status;
  for (size_t i = 0; i < native.size() && status.ok(); ++i) {
    status = MergeDatabase(native[i], range, absl::StrCat(scratch_dir, "/", i), key_groups);
  }
  std::filesystem::remove_all(scratch_dir, ec);
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("reading a RocksDB checkpoint: ", status.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<internal::RocksDbStore>> OpenRestoredDatabase(
    const std::string& dir, const KeyGroupRange& range, RestoredOperatorState* state,
    internal::StoredFileLog* log) {
  if (state != nullptr && state->native.size() == 1 && state->native[0].range() == range) {
    const std::vector<StoredFile> files = std::move(state->native[0].files);
    const FileChecksum checksum = state->native[0].checksum;
    state->native.clear();
    SLUICE_RETURN_IF_ERROR(FetchStoredFiles("", files, checksum, dir));
    auto store = internal::RocksDbStore::OpenExisting(dir);
    // Files with 0.1.0's checksums are stored again by the next checkpoint rather than
    // referenced, so that every snapshot has one kind of checksum.
    if (store.ok() && log != nullptr && checksum == FileChecksum::kCrc32c) log->Restored(files);
    return store;
  }
  if (state != nullptr && !state->native.empty()) {
    SLUICE_RETURN_IF_ERROR(
        MaterializeNativeState(state->native, range, dir + ".restore", &state->key_groups));
    state->native.clear();
  }
  return internal::RocksDbStore::Create(dir);
}

}  // namespace sluice
