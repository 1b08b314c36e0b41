#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sluice/connectors/internal/io.h"
#include "sluice/core/format.h"
#include "sluice/function/checkpointed_function.h"
#include "sluice/function/functions.h"

namespace sluice {

/// The rest of one byte range of a text file still to be read: lines starting at
/// `position` and before `end` (a split of the file, or what is left of one).
struct FileRange {
  int64_t position = 0;
  int64_t end = 0;
};
SLUICE_SERIALIZABLE(FileRange, position, end)

/// Reads a text file as lines (without line terminators). Parallel: subtask i of p reads
/// the lines that start in the i-th p-th of the file's bytes. Its checkpointed state is the
/// ranges left to read, so a job restored at another parallelism reads every line once.
class TextFileSource final : public SourceFunction<std::string> {
 public:
  explicit TextFileSource(std::string path) : path_(std::move(path)) {}
  TextFileSource(const TextFileSource& o) : path_(o.path_) {}

  void Open(RuntimeContext& ctx) override {
    reader_ = std::make_unique<internal::FileRangeLineReader>();
    absl::Status s;
    if (!restored_) {
      s = reader_->Open(path_, ctx.SubtaskIndex(), ctx.Parallelism());
    } else if (legacy_position_) {
      // A position within this subtask's split, as an older version stored it.
      s = reader_->Open(path_, ctx.SubtaskIndex(), ctx.Parallelism());
      if (s.ok()) s = reader_->SeekTo(*legacy_position_);
    } else {
      s = OpenNextRange();
    }
    if (!s.ok()) throw std::runtime_error(std::string(s.message()));
  }
  /// The ranges this subtask has left to read: any subtask of any parallelism can take
  /// them over (they are shared out evenly on restore).
  std::vector<std::string> SnapshotState(int64_t) override {
    std::vector<std::string> items;
    if (reader_ && reader_->position() < reader_->end()) {
      items.push_back(SerializeToString(FileRange{reader_->position(), reader_->end()}));
    }
    for (const FileRange& r : ranges_) items.push_back(SerializeToString(r));
    return items;
  }
  void RestoreState(std::vector<std::string> items) override {
    restored_ = true;  // with no items, this subtask has nothing left to read
    for (const std::string& item : items) {
      auto range = DeserializeFromString<FileRange>(item, "file source range");
      if (range.ok()) {
        ranges_.push_back(*range);
        continue;
      }
      auto legacy = DeserializeFromString<int64_t>(item, "file source position");
      if (!legacy.ok() || items.size() != 1) {
        throw std::runtime_error(std::string(range.status().message()));
      }
      legacy_position_ = *legacy;
    }
  }
  SourceStatus Poll(SourceOutput<std::string>& out) override {
    std::string line;
    while (out.collected() < out.batch_hint()) {
      if (reader_->Next(&line)) {
        out.Collect(std::move(line));
        continue;
      }
      if (!reader_->status().ok()) {
        throw std::runtime_error(std::string(reader_->status().message()));
      }
      if (ranges_.empty()) return SourceStatus::kEndOfInput;
      if (absl::Status s = OpenNextRange(); !s.ok()) {
        throw std::runtime_error(std::string(s.message()));
      }
    }
    return SourceStatus::kMoreAvailable;
  }
  void Close() override {
    if (reader_) reader_->Close();
  }

 private:
  /// Moves the reader to the next range left (none: it reads nothing).
  absl::Status OpenNextRange() {
    reader_->Close();
    if (ranges_.empty()) return absl::OkStatus();  // a closed reader reads nothing
    const FileRange r = ranges_.front();
    ranges_.erase(ranges_.begin());
    return reader_->OpenRange(path_, r.position, r.end);
  }

  std::string path_;
  std::unique_ptr<internal::FileRangeLineReader> reader_;
  bool restored_ = false;
  std::vector<FileRange> ranges_;  // still to read after the reader's current one
  std::optional<int64_t> legacy_position_;
};

/// Writes each record as a line (its ToString() form) into a directory of part files.
/// Names not starting with '.' or '_' are the committed output (see PartFileWriter).
///
/// Without checkpoints, each subtask writes one part, committed when the input ends
/// normally. With checkpoints it is exactly-once: at each checkpoint the subtask closes its
/// current part (which stays hidden) and commits it by rename when that checkpoint
/// completes; on a restore, the parts of the restored checkpoint are committed and any
/// later, uncommitted output is discarded. A bounded job's last part is committed by its
/// final checkpoint.
template <typename T>
class TextFileSink final : public SinkFunction<T>,
                           public CheckpointedFunction<internal::PendingPart>,
                           public CheckpointListener {
 public:
  explicit TextFileSink(std::string directory) : directory_(std::move(directory)) {}
  TextFileSink(const TextFileSink& o) : directory_(o.directory_) {}

  void Open(RuntimeContext& ctx) override {
    checkpointing_ = ctx.task_info().checkpointing;
    writer_ = std::make_unique<internal::PartFileWriter>();
    // A restored job keeps the output committed so far (its sink may have no state of its
    // own to restore); a fresh start replaces the directory's output.
    Check(writer_->Open(directory_, ctx.SubtaskIndex(), ctx.Parallelism(),
                        !ctx.task_info().restored, restored_parts_));
    restored_parts_.clear();
  }
  void Invoke(const T& value, const SinkContext&) override {
    text_.clear();
    internal::AppendText(text_, value);
    text_.push_back('\n');
    Check(writer_->Append(text_));
  }
  void InvokeBatch(std::span<const Record<T>> records, SinkContext&) override {
    text_.clear();
    for (const auto& r : records) {
      internal::AppendText(text_, r.value);
      text_.push_back('\n');
    }
    Check(writer_->Append(text_));
  }
  void Finish() override {
    if (checkpointing_) return;  // the final checkpoint commits the last part
    auto part = writer_->Roll(0);
    Check(part.status());
    if (*part) Check(internal::PartFileWriter::Commit(**part));
  }
  void Close() override {
    if (writer_) writer_->Abort();  // no-op after a roll
  }

  // Checkpoints: the pending parts are the state.
  std::vector<internal::PendingPart> SnapshotState(int64_t checkpoint_id) override {
    auto part = writer_->Roll(checkpoint_id);
    Check(part.status());
    if (*part) pending_.push_back(std::move(**part));
    return pending_;
  }
  void RestoreState(std::vector<internal::PendingPart> items) override {
    restored_parts_ = std::move(items);
  }
  /// Every subtask sees all restored parts, and commits those of its own subtask index.
  OperatorStateMode StateMode() const override { return OperatorStateMode::kUnion; }
  void NotifyCheckpointComplete(int64_t checkpoint_id) override {
    // Completion of N covers every earlier checkpoint too.
    size_t done = 0;
    while (done < pending_.size() && pending_[done].checkpoint_id <= checkpoint_id) {
      Check(internal::PartFileWriter::Commit(pending_[done]));
      ++done;
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
  }

 private:
  static void Check(const absl::Status& s) {
    if (!s.ok()) throw std::runtime_error(std::string(s.message()));
  }
  std::string directory_;
  bool checkpointing_ = false;
  std::vector<internal::PendingPart> restored_parts_;  // until Open
  std::vector<internal::PendingPart> pending_;         // rolled, waiting for completion
  std::unique_ptr<internal::PartFileWriter> writer_;
  std::string text_;
};

}  // namespace sluice
