#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sluice/connectors/internal/io.h"

namespace sluice::internal {

namespace {
absl::Status ErrnoError(const std::string& what, const std::string& path) {
  const int err = errno;
  std::string message = absl::StrCat(what, " '", path, "': ", std::strerror(err));
  if (err == ENOSPC) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}
}  // namespace

PartFileWriter::~PartFileWriter() { Abort(); }

absl::Status PartFileWriter::Open(const std::string& directory, int subtask, int parallelism) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create output directory '", directory, "': ", ec.message()));
  }
  if (subtask == 0) {
    // Committed parts of an earlier run with more subtasks would mix into this output.
    for (const auto& entry : std::filesystem::directory_iterator(directory, ec)) {
      std::string name = entry.path().filename().string();
      int index;
      if (absl::StartsWith(name, "part-") && absl::SimpleAtoi(name.substr(5), &index) &&
          index >= parallelism) {
        std::filesystem::remove(entry.path(), ec);
      }
    }
  }
  final_path_ = absl::StrCat(directory, "/part-", subtask);
  in_progress_path_ = absl::StrCat(directory, "/.part-", subtask, ".inprogress");
  file_ = std::fopen(in_progress_path_.c_str(), "wb");
  if (file_ == nullptr) return ErrnoError("cannot create output file", in_progress_path_);
  return absl::OkStatus();
}

absl::Status PartFileWriter::Append(const std::string& text) {
  if (file_ == nullptr) return absl::FailedPreconditionError("part file is not open");
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size()) {
    return ErrnoError("cannot write output file", in_progress_path_);
  }
  return absl::OkStatus();
}

absl::Status PartFileWriter::Commit() {
  if (file_ == nullptr) return absl::FailedPreconditionError("part file is not open");
  std::FILE* f = file_;
  file_ = nullptr;
  if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0) {
    absl::Status s = ErrnoError("cannot write output file", in_progress_path_);
    std::fclose(f);
    return s;
  }
  if (std::fclose(f) != 0) return ErrnoError("cannot close output file", in_progress_path_);
  if (std::rename(in_progress_path_.c_str(), final_path_.c_str()) != 0) {
    return ErrnoError("cannot commit output file", final_path_);
  }
  return absl::OkStatus();
}

void PartFileWriter::Abort() {
  if (file_ == nullptr) return;
  std::fclose(file_);
  file_ = nullptr;
  std::remove(in_progress_path_.c_str());
}

}  // namespace sluice::internal
