#pragma once

#include <cstdint>
#include <functional>
#include <optional>
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

/// What happens when a partition's position is out of range (its messages were deleted by
/// retention, or a restored offset lies beyond the end of a replaced topic).
enum class KafkaOffsetReset {
  kEarliest,  // continue at the oldest message (default)
  kLatest,    // continue at the end
  kFail,      // fail the job, naming topic, partition and offset
};

struct KafkaSourceOptions {
  std::string bootstrap_servers;
  std::vector<std::string> topics;
  /// Instead of `topics`: every topic whose whole name matches this POSIX extended regular
  /// expression.
  std::string topic_pattern;
  /// Looks for new partitions (and, with a pattern, new topics) this often; they start at
  /// their earliest offset. Zero: the partitions found at the start. Not in bounded mode.
  absl::Duration discovery_interval = absl::ZeroDuration();
  /// The consumer group: checkpointed offsets are committed to it when a checkpoint
  /// completes, for lag monitoring only (checkpoints are the truth), and kCommitted starts
  /// from it. Empty: nothing is committed.
  std::string group_id;
  KafkaStartingOffsets starting_offsets = KafkaStartingOffsets::kEarliest;
  /// For kCommitted, where a partition without a committed offset starts (earliest or latest).
  KafkaStartingOffsets reset = KafkaStartingOffsets::kEarliest;
  KafkaOffsetReset out_of_range = KafkaOffsetReset::kEarliest;
  /// Bounded: stop at the end offsets each partition had when the subtask started, and
  /// finish the job.
  bool bounded = false;
  /// At most this many records per second per subtask (0: no limit), so a job catching up
  /// after downtime does not overrun what it writes to.
  double max_records_per_second = 0;
  /// Event time: the record timestamp (default: the Kafka timestamp; a payload field with
  /// a function of your own).
  std::function<int64_t(const KafkaRecord&)> timestamp;
  /// Set: the source emits watermarks per partition (largest timestamp seen minus this bound,
  /// minus 1 ms), merged to the minimum over its partitions. Unset: no watermarks (assign
  /// them downstream).
  std::optional<absl::Duration> watermark_out_of_orderness;
  /// A partition without messages for this long does not hold the watermark back; a subtask
  /// whose partitions are all idle, or that has none, is marked idle. Zero: never idle.
  absl::Duration idle_timeout = absl::ZeroDuration();
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
/// kafka_commits_failed, kafka_lag (messages behind the end, over its partitions) and
/// kafka_lag.<topic>.<partition>.
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
  /// Emits the merged watermark and idleness after a poll.
  void EmitEventTime(SourceOutput<KafkaRecord>& out);

  MetricGroup* metrics_ = nullptr;
  absl::Time throttle_start_;
  int64_t throttle_emitted_ = 0;
  absl::Time last_discovery_;
  Timestamp emitted_watermark_ = kMinWatermark;
  bool idle_ = false;
};

/// One message to write to Kafka.
struct KafkaMessage {
  std::string topic;        // empty: the sink's default topic
  int32_t partition = -1;   // -1: by the key (librdkafka's partitioner), or spread if no key
  std::string key;
  std::string value;
  int64_t timestamp_ms = 0;  // 0: the time it is produced
};
SLUICE_SERIALIZABLE(KafkaMessage, topic, partition, key, value, timestamp_ms)

enum class KafkaDelivery {
  kAtLeastOnce,  // produced at once, flushed at every checkpoint barrier
  kExactlyOnce,  // each checkpoint's messages in one Kafka transaction, once it completes
};

struct KafkaSinkOptions {
  std::string bootstrap_servers;
  std::string topic;  // for messages that name none
  KafkaDelivery delivery = KafkaDelivery::kAtLeastOnce;
  /// Exactly-once: subtask i uses transactional id "<prefix>-<i>" on every run (so a restart
  /// fences its earlier instance). Default: "sluice-<job>-<operator>".
  std::string transactional_id_prefix;
  /// Exactly-once: the topic of the commit markers (one small message per committed
  /// checkpoint and subtask, keyed by transactional id; give it cleanup.policy=compact).
  std::string commit_marker_topic = "sluice-commits";
  /// librdkafka settings passed through (acks, compression, transaction.timeout.ms, ...).
  std::map<std::string, std::string> properties;
};

/// One checkpoint's messages of an exactly-once Kafka sink, not yet known to be committed.
struct KafkaPendingTransaction {
  std::string transactional_id;
  int32_t subtask = 0;
  int64_t checkpoint_id = 0;
  std::vector<KafkaMessage> messages;
};
SLUICE_SERIALIZABLE(KafkaPendingTransaction, transactional_id, subtask, checkpoint_id, messages)

namespace internal {
class KafkaProducer;
}

/// Writes KafkaMessages. At-least-once: messages are produced as they come and the producer is
/// flushed at every barrier (a failed delivery fails the job). Exactly-once (write-ahead, as
/// librdkafka cannot resume another instance's transaction): a checkpoint's messages are kept
/// in the sink's checkpointed state, and when the checkpoint completes they are produced in
/// one transaction together with a commit marker (transactional id -> checkpoint id) in
/// `commit_marker_topic`. After a crash the restored sink reads the markers as a
/// read_committed consumer: transactions they do not cover are written again, the others
/// dropped —
/// each message is visible to read_committed consumers exactly once. A transaction is open
/// only while it is committed, so `transaction.timeout.ms` needs only to exceed the time to
/// write one checkpoint's messages (default 60 s). Without checkpoints the sink produces at
/// once and flushes at the end.
///
/// Counters: kafka_messages_written, kafka_transactions_committed.
class KafkaSink final : public SinkFunction<KafkaMessage>,
                        public CheckpointedFunction<KafkaPendingTransaction>,
                        public CheckpointListener {
 public:
  explicit KafkaSink(KafkaSinkOptions options);
  KafkaSink(const KafkaSink& other);
  ~KafkaSink() override;

  void Open(RuntimeContext& ctx) override;
  void Invoke(const KafkaMessage& message, const SinkContext& ctx) override;
  void Finish() override;
  void Close() override;

  std::vector<KafkaPendingTransaction> SnapshotState(int64_t checkpoint_id) override;
  void RestoreState(std::vector<KafkaPendingTransaction> items) override;
  /// Every subtask sees every pending transaction and takes those of its old index modulo
  /// the new parallelism (so none is lost when the parallelism shrinks).
  OperatorStateMode StateMode() const override { return OperatorStateMode::kUnion; }
  void NotifyCheckpointComplete(int64_t checkpoint_id) override;

 private:
  bool transactional() const;
  void PublishCounters();

  KafkaSinkOptions options_;
  bool checkpointing_ = false;
  int subtask_ = 0;
  std::string transactional_id_;
  std::vector<KafkaPendingTransaction> restored_;
  std::vector<KafkaMessage> buffer_;                // exactly-once: since the last barrier
  std::vector<KafkaPendingTransaction> pending_;   // exactly-once: barriers not yet committed
  std::unique_ptr<internal::KafkaProducer> producer_;
  MetricGroup* metrics_ = nullptr;
};

/// Parses `kafka://BOOTSTRAP/TOPIC[,TOPIC...][?group=ID&starting_offsets=earliest|latest|
/// committed&reset=earliest|latest&out_of_range=earliest|latest|fail&bounded=true&
/// max_records_per_second=N&pattern=REGEX&discovery_interval=DUR&PROPERTY=VALUE...]`
/// (TOPIC may be empty with a pattern; BOOTSTRAP may list several host:port
/// separated by commas). Other parameters pass through to librdkafka. INVALID_ARGUMENT naming
/// the bad part.
absl::StatusOr<KafkaSourceOptions> ParseKafkaUrl(const std::string& url);

}  // namespace sluice
