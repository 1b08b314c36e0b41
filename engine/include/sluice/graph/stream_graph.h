#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <typeindex>
#include <vector>

#include "absl/time/time.h"
#include "sluice/core/key_groups.h"
#include "sluice/internal/network/channel_codec.h"
#include "sluice/internal/network/record_writer.h"
#include "sluice/operator/stream_operator.h"
#include "sluice/runtime/restart_strategy_config.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/state_backend_kind.h"

namespace sluice {

/// How records of one edge are distributed over the consumer's subtasks.
enum class PartitionKind { kForward, kRebalance, kKeyGroup, kBroadcast };

const char* PartitionKindName(PartitionKind kind);

/// Creates the writer for one edge in one producer subtask; typed on the producer's output.
class RecordWriterFactory {
 public:
  virtual ~RecordWriterFactory() = default;
  /// Returns the writer as both its typed Output (untyped view) and its control interface.
  virtual std::pair<ErasedOutput*, std::unique_ptr<internal::RecordWriterBase>> Create(
      std::vector<internal::ChannelTarget> targets, internal::RecordWriterOptions opts) const = 0;
};

template <typename T, typename Partitioner>
class TypedRecordWriterFactory final : public RecordWriterFactory {
 public:
  explicit TypedRecordWriterFactory(Partitioner p) : partitioner_(std::move(p)) {}
  std::pair<ErasedOutput*, std::unique_ptr<internal::RecordWriterBase>> Create(
      std::vector<internal::ChannelTarget> targets,
      internal::RecordWriterOptions opts) const override {
    auto w = std::make_unique<internal::RecordWriter<T, Partitioner>>(std::move(targets),
                                                                      partitioner_, opts);
    ErasedOutput* out = w.get();
    return {out, std::move(w)};
  }

 private:
  Partitioner partitioner_;
};

/// Type-specific helpers for a node's output type, so the untyped runtime can wire chains
/// and ship batches between processes (as a BatchCodec).
class OutputTypeOps : public internal::BatchCodec {
 public:
  virtual std::unique_ptr<ErasedOutput> CreateFanOut(std::vector<ErasedOutput*> outputs) const = 0;
  virtual size_t RecordSize() const = 0;
  virtual std::type_index type() const = 0;
};

template <typename T>
class TypedOutputTypeOps final : public OutputTypeOps {
 public:
  void WriteBatch(const BatchBase& batch, ByteWriter& w) const override {
    const auto& typed = static_cast<const Batch<T>&>(batch);
    w.WriteVarint(typed.size());
    for (const auto& r : typed) {
      w.WriteRaw(r.timestamp);
      Serializer<T>::Write(r.value, w);
    }
  }
  std::unique_ptr<BatchBase> ReadBatch(ByteReader& r) const override {
    uint64_t n = 0;
    if (!r.ReadVarint(&n) || !r.CheckCount(n, sizeof(Timestamp))) return nullptr;
    auto batch = std::make_unique<Batch<T>>(static_cast<size_t>(n));
    for (uint64_t i = 0; i < n; ++i) {
      Record<T> record;
      if (!r.ReadRaw(&record.timestamp) || !Serializer<T>::Read(r, &record.value)) return nullptr;
      batch->Add(std::move(record));
    }
    return batch;
  }
  std::unique_ptr<ErasedOutput> CreateFanOut(std::vector<ErasedOutput*> outputs) const override {
    std::vector<Output<T>*> typed;
    for (auto* o : outputs) typed.push_back(static_cast<Output<T>*>(o));
    return std::make_unique<internal::FanOutOutput<T>>(std::move(typed));
  }
  size_t RecordSize() const override { return sizeof(Record<T>); }
  std::type_index type() const override { return std::type_index(typeid(T)); }
};

/// What the runtime needs to know about one output of a node (its main output or a side
/// output): the record type's helpers and the writers for the untyped partition kinds.
struct OutputInfo {
  std::shared_ptr<const OutputTypeOps> ops;  // null: the node has no such output (a sink)
  std::shared_ptr<const RecordWriterFactory> forward_writer, rebalance_writer, broadcast_writer;
};

/// An edge of the stream graph.
struct StreamEdge {
  int source = -1;
  int target = -1;
  /// Which output of the source feeds this edge: "" the main output, else a side-output tag.
  std::string side_output;
  PartitionKind partition = PartitionKind::kForward;
  /// True if the user asked for this partitioning (an explicit Forward() must not silently
  /// become a rebalance when parallelisms differ).
  bool explicit_partition = false;
  std::shared_ptr<const RecordWriterFactory> writer_factory;  // for kKeyGroup; else by kind
  /// Which input of a two-input target this edge feeds: 0 the first, 1 the second.
  int input = 0;
};

/// A node of the stream graph: one operator as the user declared it.
struct StreamNode {
  int id = -1;
  std::string name;
  std::string uid;
  int parallelism = 0;      // 0: the job's default
  int max_parallelism = 0;  // 0: the job's default
  bool is_source = false;
  bool non_parallel = false;  // a source that cannot split its input
  bool keyed = false;         // the operator keeps keyed state: its key groups matter
  bool two_input = false;     // a two-input operator: edges say which input they feed
  std::shared_ptr<const OperatorFactory> factory;
  OutputInfo output;                               // main output (ops null for sinks)
  std::map<std::string, OutputInfo> side_outputs;  // by tag
  /// The operator's function may write to any tag (a process function, a source): reading a
  /// tag declares it. Otherwise only the tags in side_outputs exist.
  bool open_side_outputs = false;

  /// The main output for "", else the side output with that tag (null ops if none).
  const OutputInfo& OutputFor(const std::string& tag) const {
    static const OutputInfo kNone;
    if (tag.empty()) return output;
    auto it = side_outputs.find(tag);
    return it == side_outputs.end() ? kNone : it->second;
  }
};

/// Job-wide settings.
struct JobConfig {
  std::string job_name = "job";
  int default_parallelism = 1;
  int default_max_parallelism = kDefaultMaxParallelism;
  /// A partly filled buffer is sent after this long at the latest (latency bound).
  absl::Duration buffer_timeout = absl::Milliseconds(5);
  /// Target size of a buffer of records between tasks.
  size_t buffer_bytes = 32 * 1024;
  /// Buffers a channel holds before its producer blocks (back pressure).
  int channel_capacity = 4;
  /// Checkpoints: one every `checkpoint_interval` (zero: none). Exactly-once aligns barriers
  /// (a task blocks the inputs that delivered barrier N until all have); at-least-once does
  /// not block.
  absl::Duration checkpoint_interval = absl::ZeroDuration();
  bool checkpoint_exactly_once = true;
  /// A checkpoint not completed within this long is aborted.
  absl::Duration checkpoint_timeout = absl::Minutes(10);
  /// The least time between the end of one checkpoint and the start of the next (so a slow
  /// checkpoint does not leave the job checkpointing all the time).
  absl::Duration checkpoint_min_pause = absl::ZeroDuration();
  /// Checkpoints in flight at once.
  int checkpoint_max_concurrent = 1;
  /// Consecutive failed checkpoints (timeout, a snapshot or its storage failed) tolerated
  /// before the job fails (and restarts); -1: any number. Checkpoints aborted because the
  /// job restarts do not count.
  int checkpoint_tolerable_failures = 0;
  /// Where completed checkpoints go (empty: kept in memory only).
  std::string checkpoint_dir;
  /// Completed checkpoints kept in the checkpoint directory.
  int checkpoints_retained = 2;
  /// Start from this savepoint or checkpoint (a directory with _metadata, or a job's
  /// checkpoint directory: its newest valid checkpoint); empty: from the beginning.
  std::string restore_from;
  /// Drop state in `restore_from` that belongs to operators the job no longer has.
  bool allow_non_restored_state = false;
  /// Where savepoints go unless a call names a directory (--savepoint-dir).
  std::string savepoint_dir;
  StateBackendKind state_backend = StateBackendKind::kHeap;
  /// Where RocksDB keeps the working state of operator instances (local disk; empty: the
  /// system's temporary directory). Each task run uses a subdirectory and removes it.
  std::string local_state_dir;
  /// Most records per second each source subtask emits (0: no limit), so a job catching up
  /// after downtime does not overrun its sinks (--max-source-rate).
  double max_source_rate = 0;
  /// After a failure, whether and when all tasks run again from the latest completed
  /// checkpoint (or from the beginning). Unset: the cluster's default strategy, else
  /// exponential-delay for a checkpointed job and none for others (RestartStrategy::ConfigOf).
  std::optional<RestartStrategyConfig> restart_strategy;
  /// The chaos option: a simulated crash of a random task about every `chaos_kill_every`
  /// or, replayable, once per attempt after about `chaos_kill_every_records` records of the
  /// chosen task (zero: never), at most `chaos_max_failures` times, every choice from
  /// `chaos_seed` (none: a random one, which the job logs). Restart attempts are raised to at
  /// least that many.
  absl::Duration chaos_kill_every = absl::ZeroDuration();
  int64_t chaos_kill_every_records = 0;
  int chaos_max_failures = 3;
  /// True when the chaos option is on (a period or a record count, and failures allowed).
  bool chaos_enabled() const {
    return (chaos_kill_every > absl::ZeroDuration() || chaos_kill_every_records > 0) &&
           chaos_max_failures > 0;
  }
  std::optional<uint64_t> chaos_seed;
};

/// The operators and edges as the job's code declared them. Node ids are dense and in
/// creation order, which is a topological order (a node's inputs exist before it).
struct StreamGraph {
  JobConfig config;
  std::vector<StreamNode> nodes;
  std::vector<StreamEdge> edges;
};

/// The id under which an operator's state is stored in checkpoints and savepoints: its uid,
/// or one made from its position in the graph (which changes when operators are added or
/// removed: give stateful operators a Uid() to restore savepoints into a changed job).
inline std::string OperatorStateId(const StreamGraph& graph, int node) {
  const StreamNode& n = graph.nodes[node];
  return n.uid.empty() ? "node-" + std::to_string(node) : n.uid;
}

}  // namespace sluice
