#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sluice/serialization/serializer.h"

namespace sluice {

/// How a function's operator state (a list of items) is handed out when a job is restored,
/// also at another parallelism.
enum class OperatorStateMode {
  kEven,   // the items of all old subtasks, split evenly (round robin) over the new ones
  kUnion,  // every new subtask gets all items (e.g. to pick its own by some rule)
};

/// Untyped side of CheckpointedFunction, for the operators that run user functions.
class CheckpointedFunctionBase {
 public:
  virtual ~CheckpointedFunctionBase() = default;
  virtual std::vector<std::string> SnapshotItems(int64_t checkpoint_id) = 0;
  virtual absl::Status RestoreItems(const std::vector<std::string>& items) = 0;
  virtual OperatorStateMode StateMode() const { return OperatorStateMode::kEven; }
};

/// A user function (map, flat map, filter, process, sink) with state of its own that is not
/// keyed: a list of items of type T, as Flink's CheckpointedFunction with operator list
/// state. Derive from it besides the function interface:
///
///   class BufferingSink : public SinkFunction<Event>, public CheckpointedFunction<Event> {
///     std::vector<Event> SnapshotState(int64_t) override { return buffer_; }
///     void RestoreState(std::vector<Event> items) override { buffer_ = std::move(items); }
///   };
template <typename T>
class CheckpointedFunction : public CheckpointedFunctionBase {
 public:
  /// The function's state at the barrier of `checkpoint_id` (task thread, between records).
  virtual std::vector<T> SnapshotState(int64_t checkpoint_id) = 0;
  /// Called before Open() when the job is restored, with this subtask's share of the items
  /// of all old subtasks (or all of them with OperatorStateMode::kUnion).
  virtual void RestoreState(std::vector<T> items) = 0;

  std::vector<std::string> SnapshotItems(int64_t checkpoint_id) final {
    std::vector<std::string> out;
    for (const T& item : SnapshotState(checkpoint_id)) out.push_back(SerializeToString(item));
    return out;
  }
  absl::Status RestoreItems(const std::vector<std::string>& items) final {
    std::vector<T> values;
    values.reserve(items.size());
    for (const std::string& bytes : items) {
      auto v = DeserializeFromString<T>(bytes, "operator state item");
      if (!v.ok()) return v.status();
      values.push_back(std::move(*v));
    }
    RestoreState(std::move(values));
    return absl::OkStatus();
  }
};

/// A user function that wants to know when a checkpoint completed or was aborted, e.g. to
/// commit what it wrote for that checkpoint (Flink's CheckpointListener). Called on the
/// task thread between records.
class CheckpointListener {
 public:
  virtual ~CheckpointListener() = default;
  /// Every task acknowledged checkpoint `checkpoint_id` and it is stored: what the function
  /// did up to that barrier is now safe to make visible.
  virtual void NotifyCheckpointComplete(int64_t checkpoint_id) = 0;
  virtual void NotifyCheckpointAborted(int64_t /*checkpoint_id*/) {}
};

}  // namespace sluice
