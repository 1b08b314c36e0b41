#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sluice/connectors/internal/io.h"
#include "sluice/core/durable_file.h"

namespace sluice::internal {

PartFileWriter::~PartFileWriter() { Abort(); }

namespace {

/// The subtask and part number of a file name of ours, committed or in progress.
bool ParsePartName(std::string name, int* subtask, int64_t* part, bool* in_progress) {
  *in_progress = absl::StartsWith(name, ".") && absl::EndsWith(name, ".inprogress");
  if (*in_progress) name = name.substr(1, name.size() - 1 - std::strlen(".inprogress"));
  if (!absl::StartsWith(name, "part-")) return false;
  const std::string rest = name.substr(5);
  const size_t dash = rest.find('-');
  if (dash == std::string::npos) {  // part-<subtask>: the naming before per-checkpoint parts
    *part = -1;
    return absl::SimpleAtoi(rest, subtask);
  }
  return absl::SimpleAtoi(rest.substr(0, dash), subtask) &&
         absl::SimpleAtoi(rest.substr(dash + 1), part);
}

}  // namespace

absl::Status PartFileWriter::Open(const std::string& directory, int subtask, int parallelism,
                                  bool fresh_start, const std::vector<PendingPart>& restored) {
  directory_ = directory;
  subtask_ = subtask;
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create output directory '", directory, "': ", ec.message()));
  }
  // Restored parts belong to a completed checkpoint: commit ours (subtask 0 also those of
  // subtasks that no longer exist).
  for (const PendingPart& part : restored) {
    int owner = 0;
    int64_t n = 0;
    bool in_progress = false;
    if (!ParsePartName(std::filesystem::path(part.in_progress_path).filename().string(), &owner, &n,
                       &in_progress)) {
      continue;
    }
    if (owner == subtask || (subtask == 0 && owner >= parallelism)) {
      if (absl::Status s = Commit(part); !s.ok()) return s;
    }
  }
  if (absl::Status s = Clean(subtask, fresh_start); !s.ok()) return s;
  // Subtasks beyond the current parallelism have no one else to clean up after them.
  if (subtask == 0) {
    for (const auto& entry : std::filesystem::directory_iterator(directory, ec)) {
      int owner = 0;
      int64_t n = 0;
      bool in_progress = false;
      if (ParsePartName(entry.path().filename().string(), &owner, &n, &in_progress) &&
          owner >= parallelism && (in_progress || fresh_start)) {
        std::filesystem::remove(entry.path(), ec);
      }
    }
  }
  // New parts continue after the committed ones.
  next_part_ = 0;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ec)) {
    int owner = 0;
    int64_t n = 0;
    bool in_progress = false;
    if (ParsePartName(entry.path().filename().string(), &owner, &n, &in_progress) &&
        owner == subtask) {
      next_part_ = std::max(next_part_, n + 1);
    }
  }
  return absl::OkStatus();
}

absl::Status PartFileWriter::Clean(int subtask, bool committed_too) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(directory_, ec)) {
    int owner = 0;
    int64_t n = 0;
    bool in_progress = false;
    if (ParsePartName(entry.path().filename().string(), &owner, &n, &in_progress) &&
        owner == subtask && (in_progress || committed_too)) {
      if (!std::filesystem::remove(entry.path(), ec) && ec) {
        return absl::InternalError(
            absl::StrCat("cannot remove '", entry.path().string(), "': ", ec.message()));
      }
    }
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot list output directory '", directory_, "': ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status PartFileWriter::Append(const std::string& text) {
  if (file_ == nullptr) {
    const std::string name = absl::StrCat("part-", subtask_, "-", next_part_++);
    current_.final_path = absl::StrCat(directory_, "/", name);
    current_.in_progress_path = absl::StrCat(directory_, "/.", name, ".inprogress");
    file_ = std::fopen(current_.in_progress_path.c_str(), "wb");
    if (file_ == nullptr) return FileError("cannot create output file", current_.in_progress_path);
  }
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size()) {
    return FileError("cannot write output file", current_.in_progress_path);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<PendingPart>> PartFileWriter::Roll(int64_t checkpoint_id) {
  if (file_ == nullptr) return std::optional<PendingPart>();
  std::FILE* f = file_;
  file_ = nullptr;
  if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0) {
    absl::Status s = FileError("cannot write output file", current_.in_progress_path);
    std::fclose(f);
    return s;
  }
  if (std::fclose(f) != 0) {
    return FileError("cannot close output file", current_.in_progress_path);
  }
  PendingPart part = current_;
  part.checkpoint_id = checkpoint_id;
  return std::optional<PendingPart>(std::move(part));
}

absl::Status PartFileWriter::Commit(const PendingPart& part) {
  absl::Status renamed = RenameDurably(part.in_progress_path, part.final_path);
  if (renamed.ok()) return renamed;
  // Committed before (a restore after the commit, or a repeated notification).
  if (!std::filesystem::exists(part.in_progress_path) && std::filesystem::exists(part.final_path)) {
    return absl::OkStatus();
  }
  return absl::Status(renamed.code(),
                      absl::StrCat("cannot commit output file: ", renamed.message()));
}

void PartFileWriter::Abort() {
  if (file_ == nullptr) return;
  std::fclose(file_);
  file_ = nullptr;
  std::remove(current_.in_progress_path.c_str());
}

}  // namespace sluice::internal
