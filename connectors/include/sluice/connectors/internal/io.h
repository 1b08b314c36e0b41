#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/serialization/struct_macro.h"

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
  /// Opens `path` to read the lines starting in [position, end); `position` must be the
  /// start of a line (a position() returned before).
  absl::Status OpenRange(const std::string& path, int64_t position, int64_t end);
  /// Where this reader's range ends.
  int64_t end() const { return end_; }
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

/// A part file written and closed but not yet visible: it becomes output (by rename) when
/// the checkpoint that covers it completes.
struct PendingPart {
  std::string in_progress_path;
  std::string final_path;
  int64_t checkpoint_id = 0;
};
SLUICE_SERIALIZABLE(PendingPart, in_progress_path, final_path, checkpoint_id)

/// The part files of one file-sink subtask in its output directory:
///   part-<subtask>-<n>                 committed output
///   .part-<subtask>-<n>.inprogress     being written, or written and waiting for a commit
/// Owned by one sink subtask; other subtasks only touch their own names (subtask 0 also
/// those of subtasks beyond the current parallelism), so they never race.
class PartFileWriter {
 public:
  PartFileWriter() = default;
  ~PartFileWriter();
  PartFileWriter(const PartFileWriter&) = delete;
  PartFileWriter& operator=(const PartFileWriter&) = delete;

  /// Creates the directory if needed, commits `restored` parts (those of a restored
  /// checkpoint: it completed, so they are output), then removes what this subtask owns
  /// and is not output: every in-progress file, and on a fresh start (nothing restored)
  /// the committed files of an earlier run too.
  absl::Status Open(const std::string& directory, int subtask, int parallelism, bool fresh_start,
                    const std::vector<PendingPart>& restored);
  /// Appends to the current in-progress file, starting one if there is none.
  absl::Status Append(const std::string& text);
  /// Closes the current in-progress file (synced) and returns it as pending; nothing if
  /// nothing was written since the last roll.
  absl::StatusOr<std::optional<PendingPart>> Roll(int64_t checkpoint_id);
  /// Makes a pending part visible (rename). Idempotent: an already committed part is fine.
  static absl::Status Commit(const PendingPart& part);
  /// Closes the current in-progress file without committing it (after a failure).
  void Abort();

 private:
  /// Removes one subtask's leftovers (see Open).
  absl::Status Clean(int subtask, bool committed_too);

  std::string directory_;
  int subtask_ = 0;
  int64_t next_part_ = 0;
  std::FILE* file_ = nullptr;
  PendingPart current_;
};

}  // namespace sluice::internal
