#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sluice/function/checkpointed_function.h"
#include "sluice/function/functions.h"
#include "sluice/function/side_outputs.h"
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
  kTimestamp,  // the first message with a timestamp >= starting_timestamp_ms (none: the end)
  kSpecific,   // the offsets in specific_offsets; partitions not listed start at `reset`
};

/// What happens to a message whose value the source's format cannot read.
enum class KafkaDeserializationErrors {
  kFail,        // fail the job, naming topic, partition, offset and why (default)
  kSkip,        // skip it, log it and count it in kafka_deserialization_failures
  kDeadLetter,  // send it with the error to the side output KafkaDeadLetters(), and count it
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
  /// For kTimestamp: milliseconds since the epoch.
  int64_t starting_timestamp_ms = 0;
  /// For kSpecific: the next offset to read per partition.
  std::vector<KafkaPartitionOffset> specific_offsets;
  /// For kCommitted and kSpecific, where a partition without an offset starts (earliest or
  /// latest).
  KafkaStartingOffsets reset = KafkaStartingOffsets::kEarliest;
  KafkaOffsetReset out_of_range = KafkaOffsetReset::kEarliest;
  /// Bounded: stop at the end offsets each partition had when the subtask started (or at
  /// `stop_offsets`), and finish the job.
  bool bounded = false;
  /// Bounded: a listed partition stops before this offset (if below its end) instead.
  std::vector<KafkaPartitionOffset> stop_offsets;
  /// A message whose value cannot be deserialized: fail, skip or dead-letter it.
  KafkaDeserializationErrors deserialization_errors = KafkaDeserializationErrors::kFail;
  /// At most this many records per second per subtask (0: no limit), so a job catching up
  /// after downtime does not overrun what it writes to.
  double max_records_per_second = 0;
  /// Event time: the record timestamp (default: the Kafka timestamp; a payload field with
  /// a function of your own here, or on the deserialized value with
  /// KafkaSource<T>::WithTimestamp).
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

/// A message the source's format could not read, and why (the dead-letter side output).
struct KafkaDeadLetter {
  KafkaRecord record;
  std::string error;
};
SLUICE_SERIALIZABLE(KafkaDeadLetter, record, error)

/// The side output of a KafkaSource's dead letters (deserialization_errors = kDeadLetter):
/// `source.GetSideOutput(KafkaDeadLetters())`.
inline OutputTag<KafkaDeadLetter> KafkaDeadLetters() {
  return OutputTag<KafkaDeadLetter>("kafka-dead-letters");
}

/// How a KafkaSource turns messages into records of type T. `deserialize` returns an error
/// status for a message it cannot read (the source's deserialization_errors decides what
/// then happens). Formats: KafkaRecordFormat (the message as it is: raw bytes with topic,
/// partition, offset, key, timestamp), KafkaStringFormat, KafkaJsonFormat
/// (sluice/connectors/kafka_json.h), KafkaProtobufFormat (sluice/connectors/kafka_protobuf.h),
/// or a function of your own.
template <typename T>
struct KafkaFormat {
  std::string name;  // for error messages, e.g. "JSON Event"
  std::function<absl::StatusOr<T>(const KafkaRecord&)> deserialize;
};

/// The whole message, bytes untouched (the default of KafkaSource<KafkaRecord>).
KafkaFormat<KafkaRecord> KafkaRecordFormat();
/// The value as a string; with `require_utf8`, a value that is not valid UTF-8 is a
/// deserialization error.
KafkaFormat<std::string> KafkaStringFormat(bool require_utf8 = true);

namespace internal {
class KafkaConsumer;

/// What the non-template part of the source hands messages to (the typed KafkaSource).
class KafkaEmitter {
 public:
  virtual ~KafkaEmitter() = default;
  /// Deserializes and emits `record`, returning its event timestamp; may move from `record`
  /// only when it succeeds. An error: the value could not be deserialized.
  virtual absl::StatusOr<int64_t> Emit(KafkaRecord& record) = 0;
  virtual void DeadLetter(KafkaDeadLetter letter, Timestamp timestamp) = 0;
  virtual size_t batch_hint() const = 0;
  virtual size_t collected() const = 0;
  virtual void EmitWatermark(Timestamp watermark) = 0;
  virtual void MarkIdle(bool idle) = 0;
};

/// Everything of KafkaSource that does not depend on its record type: partitions, offsets,
/// commits, throttling, event time, counters.
class KafkaSourceCore {
 public:
  explicit KafkaSourceCore(KafkaSourceOptions options);
  KafkaSourceCore(const KafkaSourceCore& other);
  ~KafkaSourceCore();

  void Open(RuntimeContext& ctx);
  SourceStatus Poll(KafkaEmitter& out);
  void Close();
  std::vector<std::string> SnapshotState(int64_t checkpoint_id);
  void RestoreState(std::vector<std::string> items);
  void NotifyCheckpointComplete(int64_t checkpoint_id);

  const KafkaSourceOptions& options() const { return options_; }

 private:
  void PublishCounters();
  /// Emits the merged watermark and idleness after a poll.
  void EmitEventTime(KafkaEmitter& out);

  KafkaSourceOptions options_;
  std::vector<KafkaPartitionOffset> restored_;
  /// Per restored partition, the largest event time read before the checkpoint: the
  /// partition's watermark continues from it (as in a run without the failure).
  std::map<std::pair<std::string, int32_t>, Timestamp> restored_max_timestamps_;
  std::unique_ptr<KafkaConsumer> consumer_;
  std::map<int64_t, std::vector<KafkaPartitionOffset>> pending_commits_;
  MetricGroup* metrics_ = nullptr;
  absl::Time throttle_start_;
  int64_t throttle_emitted_ = 0;
  absl::Time last_discovery_;
  absl::Time last_publish_;
  Timestamp emitted_watermark_ = kMinWatermark;
  bool idle_ = false;
};

template <typename T>
KafkaFormat<T> DefaultKafkaFormat() {
  static_assert(std::is_same_v<T, KafkaRecord>,
                "KafkaSource<T> needs a KafkaFormat<T> saying how values become a T");
  return KafkaRecordFormat();
}

}  // namespace internal

/// Reads Kafka topics into records of type T (by default the messages as they are).
/// Partitions are assigned to subtasks by the source itself (librdkafka assign(), no group
/// rebalances), deterministically: partition p of topic t goes to subtask
/// (hash(t) + p) mod parallelism. Offsets live in checkpointed state and are the truth: a
/// restore continues exactly after the last checkpoint, at any parallelism. Each record
/// carries its event time (the Kafka timestamp unless a timestamp function says otherwise)
/// as the record timestamp.
///
/// Counters: kafka_records_read, kafka_bytes_read, kafka_commits_succeeded,
/// kafka_commits_failed, kafka_deserialization_failures; gauges: kafka_lag (messages behind
/// the end, over its partitions) and, in a subgroup per partition, kafka_partition_lag.
template <typename T = KafkaRecord>
class KafkaSource final : public SourceFunction<T>, public CheckpointListener {
 public:
  explicit KafkaSource(KafkaSourceOptions options,
                       KafkaFormat<T> format = internal::DefaultKafkaFormat<T>())
      : core_(std::move(options)), format_(std::move(format)) {}

  /// Event time from the deserialized value (e.g. a payload field), in milliseconds.
  KafkaSource& WithTimestamp(std::function<int64_t(const T&)> fn) {
    timestamp_ = std::move(fn);
    return *this;
  }

  void Open(RuntimeContext& ctx) override { core_.Open(ctx); }
  SourceStatus Poll(SourceOutput<T>& out) override {
    Emitter emitter(*this, out);
    return core_.Poll(emitter);
  }
  void Close() override { core_.Close(); }

  std::vector<std::string> SnapshotState(int64_t checkpoint_id) override {
    return core_.SnapshotState(checkpoint_id);
  }
  void RestoreState(std::vector<std::string> items) override {
    core_.RestoreState(std::move(items));
  }
  /// Every subtask sees all partitions' offsets and takes those it owns now.
  OperatorStateMode StateMode() const override { return OperatorStateMode::kUnion; }
  void NotifyCheckpointComplete(int64_t checkpoint_id) override {
    core_.NotifyCheckpointComplete(checkpoint_id);
  }

  const KafkaSourceOptions& options() const { return core_.options(); }

 private:
  class Emitter final : public internal::KafkaEmitter {
   public:
    Emitter(KafkaSource& source, SourceOutput<T>& out) : source_(source), out_(out) {}
    absl::StatusOr<int64_t> Emit(KafkaRecord& record) override {
      const auto& record_time = source_.core_.options().timestamp;
      int64_t ts = record_time ? record_time(record) : record.timestamp_ms;
      if constexpr (std::is_same_v<T, KafkaRecord>) {
        if (!source_.timestamp_) {  // as it is: no copy
          out_.CollectWithTimestamp(std::move(record), ts >= 0 ? ts : kNoTimestamp);
          return ts;
        }
      }
      absl::StatusOr<T> value = source_.format_.deserialize(record);
      if (!value.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("as ", source_.format_.name, ": ", value.status().message()));
      }
      if (source_.timestamp_) ts = source_.timestamp_(*value);
      out_.CollectWithTimestamp(std::move(*value), ts >= 0 ? ts : kNoTimestamp);
      return ts;
    }
    void DeadLetter(KafkaDeadLetter letter, Timestamp timestamp) override {
      out_.CollectSide(KafkaDeadLetters(), std::move(letter), timestamp);
    }
    size_t batch_hint() const override { return out_.batch_hint(); }
    size_t collected() const override { return out_.collected(); }
    void EmitWatermark(Timestamp watermark) override { out_.EmitWatermark(watermark); }
    void MarkIdle(bool idle) override { out_.MarkIdle(idle); }

   private:
    KafkaSource& source_;
    SourceOutput<T>& out_;
  };

  internal::KafkaSourceCore core_;
  KafkaFormat<T> format_;
  std::function<int64_t(const T&)> timestamp_;
};

/// One message to write to Kafka.
struct KafkaMessage {
  std::string topic;       // empty: the sink's default topic
  int32_t partition = -1;  // -1: by the key (librdkafka's partitioner), or spread if no key
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
/// A commit not confirmed in time goes on at the broker and is resumed, never aborted and
/// written again.
///
/// Counters: kafka_messages_written, kafka_transactions_committed, kafka_commits_resumed.
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
  std::vector<KafkaMessage> buffer_;              // exactly-once: since the last barrier
  std::vector<KafkaPendingTransaction> pending_;  // exactly-once: barriers not yet committed
  std::unique_ptr<internal::KafkaProducer> producer_;
  MetricGroup* metrics_ = nullptr;
};

/// Parses `kafka://BOOTSTRAP/TOPIC[,TOPIC...][?group=ID&starting_offsets=earliest|latest|
/// committed&starting_timestamp=MS&reset=earliest|latest&out_of_range=earliest|latest|fail&
/// bounded=true&max_records_per_second=N&pattern=REGEX&discovery_interval=DUR&
/// deserialization_errors=fail|skip|dead_letter&PROPERTY=VALUE...]`
/// (TOPIC may be empty with a pattern; BOOTSTRAP may list several host:port
/// separated by commas). Other parameters pass through to librdkafka. INVALID_ARGUMENT naming
/// the bad part.
absl::StatusOr<KafkaSourceOptions> ParseKafkaUrl(const std::string& url);

/// Parses a sink's `kafka://BOOTSTRAP/TOPIC[?delivery=at_least_once|exactly_once&
/// transactional_id_prefix=PREFIX&commit_marker_topic=TOPIC&PROPERTY=VALUE...]` (delivery
/// defaults to at_least_once, as KafkaSinkOptions does). Other parameters pass through to
/// librdkafka. INVALID_ARGUMENT naming the bad part.
absl::StatusOr<KafkaSinkOptions> ParseKafkaSinkUrl(const std::string& url);

}  // namespace sluice
