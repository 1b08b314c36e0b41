#include "sluice/checkpoint/checkpoint_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "rocksdb/file_checksum.h"
#include "sluice/core/durable_file.h"
#include "sluice/core/stable_hash.h"
#include "sluice/core/status_macros.h"

namespace sluice {
namespace {

constexpr char kMetadataFile[] = "_metadata";
constexpr char kMetadataMagic[] = "SLUICE-CHECKPOINT-2";
constexpr char kCheckpointPrefix[] = "chk-";

// Metadata as Sluice wrote it before state handles said what their files hold (magic
// SLUICE-CHECKPOINT-1): read into these, and each handle taken to hold everything.
constexpr char kMetadataMagicV1[] = "SLUICE-CHECKPOINT-1";
struct StateHandleV1 {
  std::string file;
  uint64_t checksum = 0;
  uint64_t size = 0;
};
SLUICE_SERIALIZABLE(StateHandleV1, file, checksum, size)
struct CheckpointMetadataV1 {
  int64_t checkpoint_id = 0;
  int64_t timestamp_ms = 0;
  std::string job_name;
  bool savepoint = false;
  std::map<std::string, std::vector<StateHandleV1>> operators;
  std::map<std::string, int32_t> max_parallelism;
  std::vector<std::string> shared_files;
};
SLUICE_SERIALIZABLE(CheckpointMetadataV1, checkpoint_id, timestamp_ms, job_name, savepoint,
                    operators, max_parallelism, shared_files)

CheckpointMetadata FromV1(CheckpointMetadataV1 v1) {
  CheckpointMetadata m;
  m.checkpoint_id = v1.checkpoint_id;
  m.timestamp_ms = v1.timestamp_ms;
  m.job_name = std::move(v1.job_name);
  m.savepoint = v1.savepoint;
  for (auto& [op, handles] : v1.operators) {
    for (StateHandleV1& h : handles) {
      StateHandle handle;  // its contents unknown: every restore reads it
      handle.file = std::move(h.file);
      handle.checksum = h.checksum;
      handle.size = h.size;
      m.operators[op].push_back(std::move(handle));
    }
  }
  m.max_parallelism = std::move(v1.max_parallelism);
  m.shared_files = std::move(v1.shared_files);
  return m;
}

}  // namespace

namespace {

/// Reads a file written with a known size and checksum; a mismatch is DATA_LOSS naming it.
absl::StatusOr<std::string> ReadVerified(const std::string& path, uint64_t size, uint64_t checksum,
                                         const char* what) {
  SLUICE_ASSIGN_OR_RETURN(std::string data, internal::ReadWholeFile(path));
  if (data.size() != size || internal::Checksum(data) != checksum) {
    return absl::DataLossError(absl::StrCat(what, " '", path, "' is damaged (size ", data.size(),
                                            ", expected ", size, "; checksum mismatch)"));
  }
  return data;
}

/// RocksDB's crc32c of a byte stream, as RocksDB records it for its own files.
class Crc32c {
 public:
  Crc32c()
      : generator_(rocksdb::GetFileChecksumGenCrc32cFactory()->CreateFileChecksumGenerator(
            rocksdb::FileChecksumGenContext{})) {}
  void Update(std::string_view bytes) { generator_->Update(bytes.data(), bytes.size()); }
  uint64_t Finish() {
    generator_->Finalize();
    const std::string digest = generator_->GetChecksum();  // 4 bytes, big-endian
    uint64_t value = 0;
    for (unsigned char c : digest) value = (value << 8) | c;
    return value;
  }

 private:
  std::unique_ptr<rocksdb::FileChecksumGenerator> generator_;
};

struct CopiedFile {
  uint64_t size = 0;
  uint64_t crc32c = 0;
};

/// Reads the file at `path` in pieces (never the whole file in memory), handing each to
/// `take`; returns its size and crc32c.
absl::StatusOr<CopiedFile> ReadWithCrc32c(
    const std::string& path, const std::function<absl::Status(std::string_view)>& take) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FileError("cannot read", path);
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  Crc32c crc;
  uint64_t size = 0;
  std::string buffer(1 << 20, '\0');
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FileError("cannot read", path);
    if (n == 0) break;
    const std::string_view piece(buffer.data(), static_cast<size_t>(n));
    crc.Update(piece);
    size += piece.size();
    if (take) SLUICE_RETURN_IF_ERROR(take(piece));
  }
  return CopiedFile{size, crc.Finish()};
}

/// Copies `from` to `to` durably and computes its crc32c on the way; `verify` sees the result
/// before the copy is published and may refuse it. Gives up once `*canceled`.
absl::StatusOr<CopiedFile> CopyFileWithCrc32c(
    const std::string& from, const std::string& to,
    const std::function<absl::Status(const CopiedFile&)>& verify,
    const std::atomic<bool>* canceled = nullptr) {
  SLUICE_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(to));
  SLUICE_ASSIGN_OR_RETURN(
      const CopiedFile copied, ReadWithCrc32c(from, [&](std::string_view piece) {
        if (canceled != nullptr && canceled->load(std::memory_order_relaxed)) {
          return absl::CancelledError(absl::StrCat("copying '", from, "': the task was canceled"));
        }
        return out.Append(piece);
      }));
  if (verify) SLUICE_RETURN_IF_ERROR(verify(copied));
  SLUICE_RETURN_IF_ERROR(out.Commit());
  return copied;
}

/// Copies `from` to `to` (both paths) once it matches `f`'s size and crc32c; DATA_LOSS naming
/// `from` if it does not. An SST file, which RocksDB never changes, is hard-linked instead
/// where the file system allows (a local copy on the database's disk: no bytes copied).
absl::Status FetchVerified(const std::string& from, const std::string& to, const StoredFile& f) {
  auto damaged = [&](const CopiedFile& seen) {
    return absl::DataLossError(absl::StrCat("stored file '", from, "' is damaged (size ", seen.size,
                                            ", expected ", f.size, "; crc32c mismatch)"));
  };
  if (absl::EndsWith(f.name, ".sst")) {
    SLUICE_ASSIGN_OR_RETURN(const CopiedFile seen, ReadWithCrc32c(from, nullptr));
    if (seen.size != f.size || seen.crc32c != f.checksum) return damaged(seen);
    if (::link(from.c_str(), to.c_str()) == 0) return absl::OkStatus();
  }
  return CopyFileWithCrc32c(from, to,
                            [&](const CopiedFile& copied) {
                              return copied.size == f.size && copied.crc32c == f.checksum
                                         ? absl::OkStatus()
                                         : damaged(copied);
                            })
      .status();
}

}  // namespace

namespace internal {

/// A file name that cannot escape the checkpoint directory.
std::string SafeFileName(const std::string& name) {
  std::string out;
  for (char c : name)
    out.push_back(
        std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ? c : '_');
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
  return out;
}

uint64_t Checksum(std::string_view bytes) { return HashBytes(bytes.data(), bytes.size()); }

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read '", path, "': ", std::strerror(errno)));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return FileError("cannot read", path);
  return data;
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<CheckpointStorage>> CheckpointStorage::Create(
    const std::string& root, const std::string& job_name) {
  if (root.empty()) return absl::InvalidArgumentError("checkpoint directory is empty");
  std::error_code ec;
  // Absolute: restored snapshots refer to their stored files by absolute path.
  const std::string job_dir = absl::StrCat(std::filesystem::absolute(root, ec).string(), "/",
                                           internal::SafeFileName(job_name));
  std::filesystem::create_directories(job_dir + "/shared", ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create checkpoint directory '", job_dir, "': ", ec.message()));
  }
  return std::unique_ptr<CheckpointStorage>(new CheckpointStorage(job_dir));
}

std::string CheckpointStorage::CheckpointDir(int64_t id) const {
  return absl::StrCat(job_dir_, "/", kCheckpointPrefix, id);
}

absl::StatusOr<StateHandle> CheckpointStorage::WriteState(int64_t id, const std::string& name,
                                                          std::string_view bytes) {
  const std::string dir = CheckpointDir(id);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create '", dir, "': ", ec.message()));
  }
  StateHandle handle{internal::SafeFileName(name) + ".state", internal::Checksum(bytes),
                     bytes.size()};
  SLUICE_RETURN_IF_ERROR(WriteFileAtomically(dir + "/" + handle.file, bytes));
  return handle;
}

absl::StatusOr<std::string> CheckpointStorage::ReadState(int64_t id,
                                                         const StateHandle& handle) const {
  return ReadStateFile(CheckpointDir(id), handle);
}

absl::Status CheckpointStorage::Commit(const CheckpointMetadata& metadata) {
  return WriteMetadataFile(CheckpointDir(metadata.checkpoint_id), metadata);
}

absl::StatusOr<CheckpointMetadata> CheckpointStorage::ReadMetadata(int64_t id) const {
  SLUICE_ASSIGN_OR_RETURN(auto metadata, ReadMetadataFile(CheckpointDir(id)));
  if (metadata.checkpoint_id != id) {
    return absl::DataLossError(absl::StrCat("the metadata in '", CheckpointDir(id),
                                            "' belongs to checkpoint ", metadata.checkpoint_id));
  }
  return metadata;
}

std::optional<StoredFile> CheckpointStorage::Reference(
    const std::map<std::string, StoredFile>& already_stored, const std::string& name) const {
  auto it = already_stored.find(name);
  if (it == already_stored.end()) return std::nullopt;
  StoredFile f = it->second;
  if (f.path.starts_with('/')) {
    const std::string prefix = job_dir_ + "/";
    if (!f.path.starts_with(prefix)) return std::nullopt;
    f.path = f.path.substr(prefix.size());
  }
  std::error_code ec;
  if (std::filesystem::file_size(job_dir_ + "/" + f.path, ec) != f.size || ec) return std::nullopt;
  return f;
}

absl::StatusOr<std::vector<StoredFile>> CheckpointStorage::StoreNativeCheckpoint(
    int64_t id, const std::string& owner, const std::string& native_dir,
    const std::map<std::string, StoredFile>& already_stored, const std::atomic<bool>* canceled) {
  std::vector<StoredFile> out;
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(native_dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot list native checkpoint '", native_dir, "': ", ec.message()));
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const bool shared = absl::EndsWith(name, ".sst");
    if (shared) {
      if (auto reused = Reference(already_stored, name)) {
        out.push_back(std::move(*reused));
        continue;
      }
    }
    StoredFile f;
    f.name = name;
    f.path = shared ? absl::StrCat("shared/", internal::SafeFileName(owner + "-" + name))
                    : absl::StrCat(kCheckpointPrefix, id, "/",
                                   internal::SafeFileName(owner + "-" + name));
    std::filesystem::create_directories(
        std::filesystem::path(job_dir_ + "/" + f.path).parent_path(), ec);
    SLUICE_ASSIGN_OR_RETURN(
        CopiedFile copied,
        CopyFileWithCrc32c(native_dir + "/" + name, job_dir_ + "/" + f.path, nullptr, canceled));
    f.checksum = copied.crc32c;
    f.size = copied.size;
    out.push_back(std::move(f));
  }
  return out;
}

absl::Status CheckpointStorage::FetchFiles(const std::vector<StoredFile>& files,
                                           const std::string& dir) const {
  return FetchStoredFiles(job_dir_, files, FileChecksum::kCrc32c, dir);
}

absl::Status FetchStoredFiles(const std::string& base_dir, const std::vector<StoredFile>& files,
                              FileChecksum checksum, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create '", dir, "': ", ec.message()));
  for (const StoredFile& f : files) {
    const std::string path = f.path.starts_with('/') ? f.path : base_dir + "/" + f.path;
    if (checksum == FileChecksum::kWholeFileHash) {  // written by Sluice 0.1.0
      SLUICE_ASSIGN_OR_RETURN(std::string bytes,
                              ReadVerified(path, f.size, f.checksum, "stored file"));
      SLUICE_RETURN_IF_ERROR(WriteFileAtomically(dir + "/" + f.name, bytes));
      continue;
    }
    if (!f.local_path.empty()) {
      absl::Status local = FetchVerified(f.local_path, dir + "/" + f.name, f);
      if (local.ok()) continue;
      LOG(WARNING) << "the local copy of " << f.name
                   << " is not used, checkpoint storage's is: " << local.message();
      std::filesystem::remove(f.local_path, ec);
      std::filesystem::remove(dir + "/" + f.name, ec);
    }
    SLUICE_RETURN_IF_ERROR(FetchVerified(path, dir + "/" + f.name, f));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadStateFile(const std::string& dir, const StateHandle& handle) {
  return ReadVerified(dir + "/" + handle.file, handle.size, handle.checksum, "state file");
}

absl::Status WriteMetadataFile(const std::string& dir, const CheckpointMetadata& metadata) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create '", dir, "': ", ec.message()));
  const std::string payload = SerializeToString(metadata);
  std::string file = kMetadataMagic;
  ByteWriter w(&file);
  w.WriteBytes(payload);
  w.WriteRaw(internal::Checksum(payload));
  return WriteFileAtomically(dir + "/" + kMetadataFile, file);
}

absl::StatusOr<CheckpointMetadata> ReadMetadataFile(const std::string& dir) {
  const std::string path = dir + "/" + kMetadataFile;
  SLUICE_ASSIGN_OR_RETURN(std::string file, internal::ReadWholeFile(path));
  const bool v1 = absl::StartsWith(file, kMetadataMagicV1);
  if (!v1 && !absl::StartsWith(file, kMetadataMagic)) {
    return absl::DataLossError(absl::StrCat("'", path, "' is not checkpoint metadata"));
  }
  static_assert(sizeof(kMetadataMagic) == sizeof(kMetadataMagicV1));
  ByteReader r(std::string_view(file).substr(sizeof(kMetadataMagic) - 1));
  std::string_view payload;
  uint64_t checksum = 0;
  if (!r.ReadBytes(&payload) || !r.ReadRaw(&checksum) || !r.AtEnd() ||
      internal::Checksum(payload) != checksum) {
    return absl::DataLossError(absl::StrCat("checkpoint metadata '", path, "' is damaged"));
  }
  if (v1) {
    SLUICE_ASSIGN_OR_RETURN(
        auto old, DeserializeFromString<CheckpointMetadataV1>(payload, "checkpoint metadata"));
    return FromV1(std::move(old));
  }
  return DeserializeFromString<CheckpointMetadata>(payload, "checkpoint metadata");
}

bool HasMetadataFile(const std::string& dir) {
  return std::filesystem::exists(std::filesystem::path(dir) / kMetadataFile);
}

std::vector<int64_t> CheckpointStorage::CompletedIds() const {
  std::vector<int64_t> ids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(job_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    int64_t id;
    if (absl::StartsWith(name, kCheckpointPrefix) &&
        absl::SimpleAtoi(name.substr(sizeof(kCheckpointPrefix) - 1), &id) &&
        std::filesystem::exists(entry.path() / kMetadataFile)) {
      ids.push_back(id);
    }
  }
  std::sort(ids.rbegin(), ids.rend());
  return ids;
}

absl::Status DamagedNewestCheckpoint(const std::string& job_dir, int64_t id,
                                     const absl::Status& problem) {
  return absl::DataLossError(absl::StrCat(
      "the newest completed checkpoint ", id, " in '", job_dir, "' is damaged (", problem.message(),
      "); an older checkpoint is not used by itself because the job's sinks may already have "
      "committed the output of this one and would write it again. To accept that, start from "
      "an older one: --from-savepoint=",
      job_dir, "/chk-N"));
}

absl::Status CheckpointStorage::Discard(int64_t id) {
  std::error_code ec;
  std::filesystem::remove_all(CheckpointDir(id), ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot delete checkpoint ", id, " in ", job_dir_, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status CheckpointStorage::Retain(int count, absl::Time in_flight_since) {
  SLUICE_RETURN_IF_ERROR(DiscardOldCheckpoints(count));
  // Shared files: mark those the kept checkpoints list, sweep the rest.
  std::set<std::string> referenced;
  for (int64_t id : CompletedIds()) {
    auto m = ReadMetadata(id);
    if (!m.ok()) continue;  // a damaged checkpoint cannot be restored: it keeps nothing alive
    referenced.insert(m->shared_files.begin(), m->shared_files.end());
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(job_dir_ + "/shared", ec)) {
    const std::string rel = "shared/" + entry.path().filename().string();
    if (referenced.contains(rel)) continue;
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) != 0) continue;
    if (absl::TimeFromTimespec(st.st_mtim) >= in_flight_since) continue;  // a running checkpoint's
    std::filesystem::remove(entry.path(), ec);
  }
  return absl::OkStatus();
}

absl::Status CheckpointStorage::DiscardOldCheckpoints(int count) {
  std::vector<int64_t> completed = CompletedIds();
  if (completed.size() <= static_cast<size_t>(std::max(count, 0))) return absl::OkStatus();
  const int64_t oldest_kept = count > 0 ? completed[count - 1] : INT64_MAX;
  std::error_code ec;
  std::vector<int64_t> doomed;
  for (const auto& entry : std::filesystem::directory_iterator(job_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    int64_t id;
    if (absl::StartsWith(name, kCheckpointPrefix) &&
        absl::SimpleAtoi(name.substr(sizeof(kCheckpointPrefix) - 1), &id) && id < oldest_kept) {
      doomed.push_back(id);
    }
  }
  for (int64_t id : doomed) SLUICE_RETURN_IF_ERROR(Discard(id));
  return absl::OkStatus();
}

}  // namespace sluice
