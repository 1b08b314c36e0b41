#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sluice/connectors/internal/io.h"

namespace sluice::internal {

FileRangeLineReader::~FileRangeLineReader() { Close(); }

absl::Status FileRangeLineReader::Open(const std::string& path, int index, int count) {
  path_ = path;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot read input file '", path, "': ", std::strerror(errno)));
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("input '", path, "' is a directory, not a file"));
  }
  file_ = std::fopen(path.c_str(), "rb");
  if (file_ == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot open input file '", path, "': ", std::strerror(errno)));
  }
  const int64_t size = st.st_size;
  int64_t start = size * index / count;
  end_ = size * (index + 1) / count;
  if (start > 0) {
    // The line that contains byte start-1 belongs to the previous split, unless that byte
    // ends it.
    if (std::fseek(file_, start - 1, SEEK_SET) != 0) {
      return absl::InternalError(
          absl::StrCat("cannot seek in '", path, "': ", std::strerror(errno)));
    }
    position_ = start - 1;
    int c = std::fgetc(file_);
    position_++;
    while (c != '\n' && c != EOF) {
      c = std::fgetc(file_);
      position_++;
    }
    if (c == EOF) position_ = size;
  }
  return absl::OkStatus();
}

bool FileRangeLineReader::Next(std::string* line) {
  if (file_ == nullptr || position_ >= end_) return false;
  ssize_t n = ::getline(&buffer_, &buffer_size_, file_);
  if (n < 0) {
    if (std::ferror(file_)) {
      status_ =
          absl::DataLossError(absl::StrCat("error reading '", path_, "': ", std::strerror(errno)));
    }
    return false;
  }
  position_ += n;
  size_t len = static_cast<size_t>(n);
  if (len > 0 && buffer_[len - 1] == '\n') --len;
  if (len > 0 && buffer_[len - 1] == '\r') --len;
  line->assign(buffer_, len);
  return true;
}

absl::Status FileRangeLineReader::OpenRange(const std::string& path, int64_t position,
                                            int64_t end) {
  path_ = path;
  file_ = std::fopen(path.c_str(), "rb");
  if (file_ == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot open input file '", path, "': ", std::strerror(errno)));
  }
  end_ = end;
  return SeekTo(position);
}

absl::Status FileRangeLineReader::SeekTo(int64_t position) {
  if (file_ == nullptr) return absl::FailedPreconditionError("reader is not open");
  if (std::fseek(file_, position, SEEK_SET) != 0) {
    return absl::DataLossError(absl::StrCat("cannot seek to byte ", position, " of '", path_,
                                            "' (was the file truncated since the checkpoint?)"));
  }
  position_ = position;
  return absl::OkStatus();
}

void FileRangeLineReader::Close() {
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
  std::free(buffer_);
  buffer_ = nullptr;
  buffer_size_ = 0;
}

}  // namespace sluice::internal
