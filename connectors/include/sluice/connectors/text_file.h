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

/// Reads a text file as lines (without line terminators). Parallel: subtask i of p reads
/// the lines that start in the i-th p-th of the file's bytes.
class TextFileSource final : public SourceFunction<std::string> {
 public:
  explicit TextFileSource(std::string path) : path_(std::move(path)) {}
  TextFileSource(const TextFileSource& o) : path_(o.path_) {}

  void Open(RuntimeContext& ctx) override {
    reader_ = std::make_unique<internal::FileRangeLineReader>();
    absl::Status s = reader_->Open(path_, ctx.SubtaskIndex(), ctx.Parallelism());
    if (s.ok() && restored_position_) s = reader_->SeekTo(*restored_position_);
    if (!s.ok()) throw std::runtime_error(std::string(s.message()));
  }
  /// The position is the byte offset of the next line in this subtask's split.
  std::vector<std::string> SnapshotState(int64_t) override {
    return {SerializeToString<int64_t>(reader_ ? reader_->position() : 0)};
  }
  void RestoreState(std::vector<std::string> items) override {
    if (items.empty()) return;
    auto pos = DeserializeFromString<int64_t>(items[0], "file source position");
    if (!pos.ok()) throw std::runtime_error(std::string(pos.status().message()));
    restored_position_ = *pos;
  }
  SourceStatus Poll(SourceOutput<std::string>& out) override {
    std::string line;
    while (out.collected() < out.batch_hint()) {
      if (!reader_->Next(&line)) {
        if (!reader_->status().ok())
          throw std::runtime_error(std::string(reader_->status().message()));
        return SourceStatus::kEndOfInput;
      }
      out.Collect(std::move(line));
    }
    return SourceStatus::kMoreAvailable;
  }
  void Close() override {
    if (reader_) reader_->Close();
  }

 private:
  std::string path_;
  std::unique_ptr<internal::FileRangeLineReader> reader_;
  std::optional<int64_t> restored_position_;
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
