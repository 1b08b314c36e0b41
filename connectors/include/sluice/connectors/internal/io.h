#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"

namespace sluice::internal {

/// Reads the lines of one byte range of a file, so that several subtasks can split a file:
/// a line belongs to the range its first byte is in. Owned by one source subtask.
class FileRangeLineReader {
 public:
  FileRangeLineReader() = default;
  ~FileRangeLineReader();
  FileRangeLineReader(const FileRangeLineReader&) = delete;
  FileRangeLineReader& operator=(const FileRangeLineReader&) = delete;

  /// Opens `path` and positions at the first line of split `index` of `count`.
  absl::Status Open(const std::string& path, int index, int count);
  /// Reads the next line (without its line terminator); false at the end of the range.
  bool Next(std::string* line);
  /// An I/O error seen by Next(), if any.
  absl::Status status() const { return status_; }
  /// The byte offset of the next line: a source's checkpointed position.
  int64_t position() const { return position_; }
  /// Continues from a position returned by position() (after Open() of the same split).
  absl::Status SeekTo(int64_t position);
  void Close();

 private:
  std::FILE* file_ = nullptr;
  std::string path_;
  int64_t position_ = 0;
  int64_t end_ = 0;
  absl::Status status_;
  char* buffer_ = nullptr;
  size_t buffer_size_ = 0;
};

/// A connected TCP socket read as lines. Owned by one source subtask.
class SocketLineReader {
 public:
  SocketLineReader() = default;
  ~SocketLineReader();
  SocketLineReader(const SocketLineReader&) = delete;
  SocketLineReader& operator=(const SocketLineReader&) = delete;

  absl::Status Connect(const std::string& host, int port);
  enum class ReadResult { kLine, kNothingYet, kClosed };
  /// Returns the next complete line, or kNothingYet after waiting up to `wait_ms`, or
  /// kClosed once the peer closed and every line was returned (a last unterminated line
  /// is returned before kClosed).
  ReadResult Next(std::string* line, int wait_ms);
  void Close();

 private:
  int fd_ = -1;
  std::string buffer_;
  size_t consumed_ = 0;
  bool closed_ = false;
  std::string peer_;
};

/// Writes text to stdout from several threads without interleaving lines.
void WriteToStdout(const std::string& text);

/// The part files of a file sink: `part-<subtask>` once committed, a hidden in-progress
/// file before. Owned by one sink subtask.
class PartFileWriter {
 public:
  PartFileWriter() = default;
  ~PartFileWriter();
  PartFileWriter(const PartFileWriter&) = delete;
  PartFileWriter& operator=(const PartFileWriter&) = delete;

  /// Creates the directory if needed and opens this subtask's in-progress file. Subtask 0
  /// also removes committed part files left by an earlier run with a higher parallelism.
  absl::Status Open(const std::string& directory, int subtask, int parallelism);
  absl::Status Append(const std::string& text);
  /// Flushes, syncs and renames the in-progress file to its committed name.
  absl::Status Commit();
  /// Closes without committing (after a failure): the in-progress file is removed.
  void Abort();

 private:
  std::FILE* file_ = nullptr;
  std::string in_progress_path_;
  std::string final_path_;
};

}  // namespace sluice::internal
