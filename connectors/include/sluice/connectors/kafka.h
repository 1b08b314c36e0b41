#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sluice/function/checkpointed_function.h"
#include "sluice/function/functions.h"
#include "sluice/serialization/struct_macro.h"

namespace sluice {

/// One message read from Kafka.
struct KafkaRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;  // the message's Kafka timestamp (create or log-append time)
  std::string key;
  std::string value;
};
SLUICE_SERIALIZABLE(KafkaRecord, topic, partition, offset, timestamp_ms, key, value)

/// The position of a source subtask in one partition: the offset of the next message.
struct KafkaPartitionOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t next_offset = 0;
};
SLUICE_SERIALIZABLE(KafkaPartitionOffset, topic, partition, next_offset)

/// Where a partition without checkpointed state starts.
enum class KafkaStartingOffsets {
  kEarliest,   // the oldest message still in the partition (default)
  kLatest,     // only messages produced after the start
  kCommitted,  // the consumer group's committed offset, else `reset`
};

struct KafkaSourceOptions {
  std::string bootstrap_servers;
  std::vector<std::string> topics;
  /// The consumer group: checkpointed offsets are committed to it when a checkpoint
  /// completes, for lag monitoring only (checkpoints are the truth), and kCommitted starts
  /// from it. Empty: nothing is committed.
  std::string group_id;
  KafkaStartingOffsets starting_offsets = KafkaStartingOffsets::kEarliest;
  /// For kCommitted, where a partition without a committed offset starts (earliest or latest).
  KafkaStartingOffsets reset = KafkaStartingOffsets::kEarliest;
  /// Bounded: stop at the end offsets each partition had when the subtask started, and
  /// finish the job.
  bool bounded = false;
  /// librdkafka settings passed through (security.protocol, fetch sizes, timeouts, ...).
  std::map<std::string, std::string> properties;
};

namespace internal {
class KafkaConsumer;
}

/// Reads Kafka topics. Partitions are assigned to subtasks by the source itself (librdkafka
/// assign(), no group rebalances), deterministically: partition p of topic t goes to subtask
/// (hash(t) + p) mod parallelism. Offsets live in checkpointed state and are the truth: a
/// restore continues exactly after the last checkpoint, at any parallelism. Each record
/// carries its Kafka timestamp as the record timestamp.
///
/// Counters: kafka_records_read, kafka_bytes_read, kafka_commits_succeeded,
/// kafka_commits_failed.
class KafkaSource final : public SourceFunction<KafkaRecord>, public CheckpointListener {
 public:
  explicit KafkaSource(KafkaSourceOptions options);
  KafkaSource(const KafkaSource& other);
  ~KafkaSource() override;

  void Open(RuntimeContext& ctx) override;
  SourceStatus Poll(SourceOutput<KafkaRecord>& out) override;
  void Close() override;

  std::vector<std::string> SnapshotState(int64_t checkpoint_id) override;
  void RestoreState(std::vector<std::string> items) override;
  /// Every subtask sees all partitions' offsets and takes those it owns now.
  OperatorStateMode StateMode() const override { return OperatorStateMode::kUnion; }
  void NotifyCheckpointComplete(int64_t checkpoint_id) override;

  const KafkaSourceOptions& options() const { return options_; }

 private:
  void PublishCounters();

  KafkaSourceOptions options_;
  std::vector<KafkaPartitionOffset> restored_;
  std::unique_ptr<internal::KafkaConsumer> consumer_;
  std::map<int64_t, std::vector<KafkaPartitionOffset>> pending_commits_;
  MetricGroup* metrics_ = nullptr;
};

/// Parses `kafka://BOOTSTRAP/TOPIC[,TOPIC...][?group=ID&starting_offsets=earliest|latest|
/// committed&bounded=true&PROPERTY=VALUE...]` (BOOTSTRAP may list several host:port separated
/// by commas). Parameters other than group, starting_offsets, reset and bounded pass through
/// to librdkafka. INVALID_ARGUMENT naming the bad part.
absl::StatusOr<KafkaSourceOptions> ParseKafkaUrl(const std::string& url);

}  // namespace sluice
