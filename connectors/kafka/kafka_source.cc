// KafkaSource: one librdkafka consumer per subtask, partitions assigned by the source itself,
// offsets in checkpointed state, committed to the group when a checkpoint completes.

#include <librdkafka/rdkafka.h>
#include <regex.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "sluice/connectors/kafka.h"
#include "sluice/core/log_rate_limiter.h"
#include "sluice/core/stable_hash.h"
#include "sluice/core/status_macros.h"

namespace sluice {
namespace internal {

namespace {

constexpr int kMetadataTimeoutMs = 2000;

struct Partition {
  std::string topic;
  int32_t partition = 0;
  int64_t next_offset = 0;
  int64_t stop_offset = -1;                 // bounded: the end offset at the start
  Timestamp max_timestamp = kMinWatermark;  // event time seen so far
  absl::Time last_message;                  // for idleness
};

/// The owner subtask of a partition: stable when partitions are added (only new ones move).
int OwnerOf(const std::string& topic, int32_t partition, int parallelism) {
  const uint64_t start = internal::HashBytes(topic.data(), topic.size()) % parallelism;
  return static_cast<int>((start + static_cast<uint64_t>(partition)) % parallelism);
}

}  // namespace

/// A librdkafka consumer with its assigned partitions and their positions. Task thread only
/// (librdkafka calls its callbacks from within poll on this thread).
class KafkaConsumer {
 public:
  ~KafkaConsumer() {
    if (rk_ != nullptr) {
      rd_kafka_consumer_close(rk_);
      rd_kafka_destroy(rk_);
    }
  }

  static absl::StatusOr<std::unique_ptr<KafkaConsumer>> Open(
      const KafkaSourceOptions& o, int subtask, int parallelism,
      const std::vector<KafkaPartitionOffset>& restored, std::string name) {
    auto c = std::unique_ptr<KafkaConsumer>(new KafkaConsumer());
    c->name_ = std::move(name);
    c->bounded_ = o.bounded;
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    std::map<std::string, std::string> settings = {
        {"bootstrap.servers", o.bootstrap_servers},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        // The end of a partition tells a bounded read it is done even when the last offsets
        // are transaction markers, which are never delivered.
        {"enable.partition.eof", "true"},
        // Starting offsets are resolved here; librdkafka's reset only handles out-of-range.
        {"auto.offset.reset", o.out_of_range == KafkaOffsetReset::kLatest ? "latest"
                              : o.out_of_range == KafkaOffsetReset::kFail ? "error"
                                                                          : "earliest"},
        {"client.id", c->name_},
        // librdkafka 2.0 stops fetching once this many messages wait in the consumer's queue
        // and looks again only after a second (fetch.queue.backoff.ms came in 2.2): a subtask
        // that drains 100,000 messages faster than that sat idle for the rest of the second.
        // Prefetching stays bounded by bytes (queued.max.messages.kbytes, 64 MiB).
        {"queued.min.messages", "10000000"},
    };
    // librdkafka's assign() wants a group even when it never joins one: without the user's,
    // a private id that nothing is committed to.
    settings["group.id"] = o.group_id.empty() ? absl::StrCat("sluice-", c->name_) : o.group_id;
    for (const auto& [k, v] : o.properties) settings[k] = v;
    for (const auto& [k, v] : settings) {
      if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return absl::InvalidArgumentError(
            absl::StrCat("Kafka source: setting '", k, "'='", v, "': ", err));
      }
    }
    rd_kafka_conf_set_opaque(conf, c.get());
    rd_kafka_conf_set_offset_commit_cb(conf, &KafkaConsumer::OnCommit);
    rd_kafka_conf_set_log_cb(conf, &KafkaConsumer::OnLog);
    c->rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (c->rk_ == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("Kafka source: ", err));
    }
    // Commit results (and other callbacks) then arrive through consumer_poll.
    rd_kafka_poll_set_consumer(c->rk_);
    if (absl::Status s = c->AssignPartitions(o, subtask, parallelism, restored); !s.ok()) return s;
    return c;
  }

  /// Reads what is there (up to `max` records, waiting at most `wait_ms` for the first).
  absl::Status Read(size_t max, int wait_ms, KafkaEmitter& out) {
    for (size_t n = 0; n < max; ++n) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, n == 0 ? wait_ms : 0);
      if (m == nullptr) break;
      absl::Status s = Take(m, out);
      rd_kafka_message_destroy(m);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  /// Bounded and every partition reached its stop offset.
  bool Done() const {
    if (!bounded_) return false;
    for (const Partition& p : partitions_) {
      if (p.next_offset < p.stop_offset) return false;
    }
    return true;
  }

  /// The subtask's watermark: per partition the largest timestamp minus `bound` (minus 1 ms),
  /// the minimum over partitions not idle for `idle_timeout`; nothing (nullopt) if all are
  /// idle or there are none.
  std::optional<Timestamp> Watermark(absl::Duration bound, absl::Duration idle_timeout) const {
    const absl::Time now = absl::Now();
    std::optional<Timestamp> wm;
    for (const Partition& p : partitions_) {
      const absl::Time active = std::max(p.last_message, assigned_at_);
      if (idle_timeout > absl::ZeroDuration() && now - active >= idle_timeout) continue;
      const Timestamp w = p.max_timestamp == kMinWatermark
                              ? kMinWatermark
                              : p.max_timestamp - absl::ToInt64Milliseconds(bound) - 1;
      wm = wm ? std::min(*wm, w) : w;
    }
    return wm;
  }

  bool has_partitions() const { return !partitions_.empty(); }

  /// When every partition is idle: the minimum over partitions that had messages (those
  /// without never held anything back), so that what was read counts before the subtask goes
  /// idle — even when its partitions turned idle between two polls.
  std::optional<Timestamp> WatermarkOfIdle(absl::Duration bound) const {
    std::optional<Timestamp> wm;
    for (const Partition& p : partitions_) {
      if (p.max_timestamp == kMinWatermark) continue;
      const Timestamp w = p.max_timestamp - absl::ToInt64Milliseconds(bound) - 1;
      wm = wm ? std::min(*wm, w) : w;
    }
    return wm;
  }

  /// Messages behind the end per partition (from the last known high watermark).
  std::vector<std::pair<std::string, int64_t>> Lag() const {
    std::vector<std::pair<std::string, int64_t>> out;
    for (const Partition& p : partitions_) {
      int64_t low = 0, high = 0;
      if (rd_kafka_get_watermark_offsets(rk_, p.topic.c_str(), p.partition, &low, &high) !=
              RD_KAFKA_RESP_ERR_NO_ERROR ||
          high < 0) {
        continue;
      }
      out.emplace_back(absl::StrCat(p.topic, ".", p.partition),
                       std::max<int64_t>(0, high - p.next_offset));
    }
    return out;
  }

  std::vector<KafkaPartitionOffset> Positions() const {
    std::vector<KafkaPartitionOffset> out;
    for (const Partition& p : partitions_) out.push_back({p.topic, p.partition, p.next_offset});
    return out;
  }

  /// The largest event time read per partition (partitions that had messages).
  std::map<std::pair<std::string, int32_t>, Timestamp> MaxTimestamps() const {
    std::map<std::pair<std::string, int32_t>, Timestamp> out;
    for (const Partition& p : partitions_) {
      if (p.max_timestamp != kMinWatermark) out[{p.topic, p.partition}] = p.max_timestamp;
    }
    return out;
  }

  /// Continues each listed partition's event time from a checkpoint.
  void RestoreMaxTimestamps(const std::map<std::pair<std::string, int32_t>, Timestamp>& restored) {
    for (Partition& p : partitions_) {
      if (auto it = restored.find({p.topic, p.partition}); it != restored.end()) {
        p.max_timestamp = std::max(p.max_timestamp, it->second);
      }
    }
  }

  /// Commits offsets to the group (asynchronously: the outcome is counted, never fatal).
  void Commit(const std::vector<KafkaPartitionOffset>& offsets) {
    if (offsets.empty()) return;
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()));
    for (const auto& o : offsets) {
      rd_kafka_topic_partition_list_add(list, o.topic.c_str(), o.partition)->offset = o.next_offset;
    }
    const rd_kafka_resp_err_t err = rd_kafka_commit(rk_, list, /*async=*/1);
    rd_kafka_topic_partition_list_destroy(list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++commits_failed;
      LOG(WARNING) << name_ << ": committing offsets failed (only lag monitoring suffers): "
                   << rd_kafka_err2str(err);
    }
  }

  int64_t records_read = 0;
  int64_t bytes_read = 0;
  int64_t commits_succeeded = 0;
  int64_t commits_failed = 0;
  int64_t deserialization_failures = 0;

 private:
  KafkaConsumer() = default;

  static void OnCommit(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t*,
                       void* opaque) {
    auto* self = static_cast<KafkaConsumer*>(opaque);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++self->commits_succeeded;
    } else {
      ++self->commits_failed;
      LOG(WARNING) << self->name_ << ": committing offsets failed (only lag monitoring suffers): "
                   << rd_kafka_err2str(err);
    }
  }

  /// librdkafka's own log lines, into ours (syslog levels: 3 error, 4 warning, ...).
  static void OnLog(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
    if (level <= 4) {
      // A broker down makes librdkafka say so on every reconnect: once per facility and
      // 10 s here, with how many lines that stands for.
      static LogRateLimiter limiter(absl::Seconds(10));
      int64_t suppressed = 0;
      if (limiter.Allow(facility, absl::Now(), &suppressed)) {
        LOG(WARNING) << rd_kafka_name(rk) << ": " << facility << ": " << message
                     << SuppressedNote(suppressed);
      }
    } else {
      VLOG(1) << rd_kafka_name(rk) << ": " << facility << ": " << message;
    }
  }

  /// The partitions of the topics matching `pattern` (whole names; internal topics left out).
  absl::StatusOr<std::vector<std::pair<std::string, int32_t>>> ListMatching(
      const std::string& pattern) {
    std::vector<std::pair<std::string, int32_t>> out;
    const rd_kafka_metadata_t* md = nullptr;
    for (int attempt = 1;; ++attempt) {
      const rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 1, nullptr, &md, kMetadataTimeoutMs);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      LOG(WARNING) << name_ << ": no metadata yet (attempt " << attempt
                   << "): " << rd_kafka_err2str(err);
    }
    regex_t re;
    if (regcomp(&re, pattern.c_str(), REG_EXTENDED) != 0) {
      rd_kafka_metadata_destroy(md);
      return absl::InvalidArgumentError(absl::StrCat("Kafka: bad topic pattern '", pattern, "'"));
    }
    for (int i = 0; i < md->topic_cnt; ++i) {
      const rd_kafka_metadata_topic_t& mt = md->topics[i];
      const std::string name = mt.topic;
      regmatch_t match;
      // The whole name must match.
      const bool matches = regexec(&re, name.c_str(), 1, &match, 0) == 0 && match.rm_so == 0 &&
                           static_cast<size_t>(match.rm_eo) == name.size();
      if (mt.err != RD_KAFKA_RESP_ERR_NO_ERROR || name.starts_with("__") || !matches) continue;
      for (int p = 0; p < mt.partition_cnt; ++p) out.emplace_back(name, mt.partitions[p].id);
    }
    regfree(&re);
    rd_kafka_metadata_destroy(md);
    std::sort(out.begin(), out.end());
    return out;
  }

  /// The partitions of the topics, from the cluster's metadata (waits while it is unreachable).
  absl::StatusOr<std::vector<std::pair<std::string, int32_t>>> ListPartitions(
      const KafkaSourceOptions& o) {
    if (!o.topic_pattern.empty()) return ListMatching(o.topic_pattern);
    std::vector<std::pair<std::string, int32_t>> out;
    for (const std::string& topic : o.topics) {
      rd_kafka_topic_t* t = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
      const rd_kafka_metadata_t* md = nullptr;
      for (int attempt = 1;; ++attempt) {
        const rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, t, &md, kMetadataTimeoutMs);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        LOG(WARNING) << name_ << ": no metadata for topic '" << topic << "' yet (attempt "
                     << attempt << "): " << rd_kafka_err2str(err);
      }
      rd_kafka_topic_destroy(t);
      absl::Status status;
      for (int i = 0; i < md->topic_cnt; ++i) {
        const rd_kafka_metadata_topic_t& mt = md->topics[i];
        if (mt.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          status = absl::NotFoundError(
              absl::StrCat("Kafka topic '", topic, "': ", rd_kafka_err2str(mt.err)));
          continue;
        }
        for (int p = 0; p < mt.partition_cnt; ++p) out.emplace_back(topic, mt.partitions[p].id);
      }
      rd_kafka_metadata_destroy(md);
      if (!status.ok()) return status;
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  absl::Status AssignPartitions(const KafkaSourceOptions& o, int subtask, int parallelism,
                                const std::vector<KafkaPartitionOffset>& restored) {
    options_ = &o;
    subtask_ = subtask;
    parallelism_ = parallelism;
    SLUICE_ASSIGN_OR_RETURN(auto all, ListPartitions(o));
    std::map<std::pair<std::string, int32_t>, int64_t> restored_at, specific_at, stop_at;
    for (const auto& r : restored) restored_at[{r.topic, r.partition}] = r.next_offset;
    for (const auto& r : o.specific_offsets) specific_at[{r.topic, r.partition}] = r.next_offset;
    for (const auto& r : o.stop_offsets) stop_at[{r.topic, r.partition}] = r.next_offset;
    for (const auto& [topic, partition] : all) {
      if (OwnerOf(topic, partition, parallelism) != subtask) continue;
      Partition p;
      p.topic = topic;
      p.partition = partition;
      int64_t low = 0, high = 0;
      const rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
          rk_, topic.c_str(), partition, &low, &high, kMetadataTimeoutMs * 5);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return absl::UnavailableError(
            absl::StrCat("Kafka: offsets of ", topic, "/", partition, ": ", rd_kafka_err2str(err)));
      }
      p.stop_offset = high;
      if (auto it = stop_at.find({topic, partition}); it != stop_at.end()) {
        p.stop_offset = std::min(high, it->second);
      }
      const int64_t reset_to = o.reset == KafkaStartingOffsets::kLatest ? high : low;
      // A checkpointed offset, else a given one: both must still lie in the partition.
      std::optional<std::pair<int64_t, const char*>> given;
      if (auto it = restored_at.find({topic, partition}); it != restored_at.end()) {
        given.emplace(it->second, "checkpointed");
      } else if (o.starting_offsets == KafkaStartingOffsets::kSpecific) {
        if (auto s = specific_at.find({topic, partition}); s != specific_at.end()) {
          given.emplace(s->second, "given");
        }
      }
      if (given) {
        p.next_offset = given->first;
        if (p.next_offset < low || p.next_offset > high) {
          // Deleted by retention, or the topic was replaced: the out_of_range policy decides.
          if (o.out_of_range == KafkaOffsetReset::kFail) {
            return absl::OutOfRangeError(absl::StrCat(
                "Kafka ", topic, "/", partition, ": the ", given->second, " offset ", p.next_offset,
                " is out of range [", low, ", ", high, "] and out_of_range is fail"));
          }
          LOG(WARNING) << name_ << ": " << topic << "/" << partition << ": " << given->second
                       << " offset " << p.next_offset << " is out of range [" << low << ", " << high
                       << "]; continuing at the "
                       << (o.out_of_range == KafkaOffsetReset::kLatest ? "end" : "oldest message");
          p.next_offset = o.out_of_range == KafkaOffsetReset::kLatest ? high : low;
        }
      } else {
        switch (o.starting_offsets) {
          case KafkaStartingOffsets::kCommitted:
            p.next_offset = Committed(topic, partition, reset_to);
            break;
          case KafkaStartingOffsets::kSpecific:
            p.next_offset = reset_to;
            break;
          case KafkaStartingOffsets::kTimestamp: {
            auto at = OffsetForTime(topic, partition, o.starting_timestamp_ms, high);
            if (!at.ok()) return at.status();
            p.next_offset = *at;
            break;
          }
          case KafkaStartingOffsets::kLatest:
            p.next_offset = high;
            break;
          case KafkaStartingOffsets::kEarliest:
            p.next_offset = low;
            break;
        }
      }
      partitions_.push_back(p);
    }
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size()) + 1);
    for (const Partition& p : partitions_) {
      rd_kafka_topic_partition_list_add(list, p.topic.c_str(), p.partition)->offset = p.next_offset;
    }
    const rd_kafka_resp_err_t err = rd_kafka_assign(rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::InternalError(absl::StrCat("Kafka: assign: ", rd_kafka_err2str(err)));
    }
    std::vector<std::string> names;
    for (const Partition& p : partitions_) {
      names.push_back(absl::StrCat(p.topic, "/", p.partition, "@", p.next_offset));
    }
    LOG(INFO) << name_ << ": reading "
              << (names.empty() ? "no partition" : absl::StrJoin(names, " "))
              << (bounded_ ? " (bounded)" : "");
    return absl::OkStatus();
  }

  /// Partition discovery: partitions (or topics matching the pattern) that appeared since
  /// and are this subtask's start at their earliest offset.
 public:
  absl::Status Discover() {
    SLUICE_ASSIGN_OR_RETURN(auto all, ListPartitions(*options_));
    std::vector<Partition> added;
    for (const auto& [topic, partition] : all) {
      if (OwnerOf(topic, partition, parallelism_) != subtask_) continue;
      // (Not the bindings themselves: clang 14 cannot capture structured bindings.)
      const bool known = std::any_of(partitions_.begin(), partitions_.end(),
                                     [&, &name = topic, number = partition](const auto& p) {
                                       return p.partition == number && p.topic == name;
                                     });
      if (known) continue;
      Partition p;
      p.topic = topic;
      p.partition = partition;
      int64_t high = 0;
      if (rd_kafka_query_watermark_offsets(rk_, topic.c_str(), partition, &p.next_offset, &high,
                                           kMetadataTimeoutMs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        continue;  // not ready yet: the next discovery takes it
      }
      added.push_back(p);
    }
    if (added.empty()) return absl::OkStatus();
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(added.size()));
    std::vector<std::string> names;
    for (const Partition& p : added) {
      rd_kafka_topic_partition_list_add(list, p.topic.c_str(), p.partition)->offset = p.next_offset;
      names.push_back(absl::StrCat(p.topic, "/", p.partition, "@", p.next_offset));
    }
    rd_kafka_error_t* error = rd_kafka_incremental_assign(rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (error != nullptr) {
      absl::Status s = absl::InternalError(
          absl::StrCat("Kafka: assigning new partitions: ", rd_kafka_error_string(error)));
      rd_kafka_error_destroy(error);
      return s;
    }
    partitions_.insert(partitions_.end(), added.begin(), added.end());
    LOG(INFO) << name_ << ": discovered " << absl::StrJoin(names, " ");
    return absl::OkStatus();
  }

 private:
  /// The first offset whose message has a timestamp >= `timestamp_ms`; `end` if there is
  /// none.
  absl::StatusOr<int64_t> OffsetForTime(const std::string& topic, int32_t partition,
                                        int64_t timestamp_ms, int64_t end) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic.c_str(), partition)->offset = timestamp_ms;
    const rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk_, list, kMetadataTimeoutMs * 5);
    const int64_t offset = list->elems[0].offset;
    const rd_kafka_resp_err_t partition_err = list->elems[0].err;
    rd_kafka_topic_partition_list_destroy(list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || partition_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat(
          "Kafka: the offset of ", topic, "/", partition, " at timestamp ", timestamp_ms, ": ",
          rd_kafka_err2str(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : partition_err)));
    }
    return offset >= 0 ? offset : end;
  }

  int64_t Committed(const std::string& topic, int32_t partition, int64_t fallback) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic.c_str(), partition);
    int64_t offset = fallback;
    if (rd_kafka_committed(rk_, list, kMetadataTimeoutMs * 5) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        list->elems[0].offset >= 0) {
      offset = list->elems[0].offset;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return offset;
  }

  absl::Status Take(rd_kafka_message_t* m, KafkaEmitter& out) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      const std::string topic = rd_kafka_topic_name(m->rkt);
      for (Partition& p : partitions_) {
        if (p.partition == m->partition && p.topic == topic) {
          // Nothing readable before m->offset remains.
          if (bounded_ && m->offset >= p.stop_offset)
            p.next_offset = std::max(p.next_offset, m->offset);
        }
      }
      return absl::OkStatus();
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      char reason[512];
      if (rd_kafka_fatal_error(rk_, reason, sizeof(reason)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return absl::InternalError(absl::StrCat("Kafka consumer failed: ", reason));
      }
      if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
        return absl::OutOfRangeError(absl::StrCat(
            "Kafka ", m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : "?", "/", m->partition,
            ": offset out of range and out_of_range is fail: ", rd_kafka_message_errstr(m)));
      }
      // Transient (a broker down, a leader moving): librdkafka retries by itself.
      int64_t suppressed = 0;
      if (fetch_errors_logged_.Allow(rd_kafka_err2name(m->err), absl::Now(), &suppressed)) {
        LOG(WARNING) << name_ << ": " << rd_kafka_message_errstr(m) << SuppressedNote(suppressed);
      }
      return absl::OkStatus();
    }
    const std::string topic = rd_kafka_topic_name(m->rkt);
    for (Partition& p : partitions_) {
      if (p.partition != m->partition || p.topic != topic) continue;
      if (bounded_ && m->offset >= p.stop_offset) return absl::OkStatus();  // past the end
      p.next_offset = m->offset + 1;
      KafkaRecord r;
      r.topic = topic;
      r.partition = m->partition;
      r.offset = m->offset;
      rd_kafka_timestamp_type_t type;
      r.timestamp_ms = rd_kafka_message_timestamp(m, &type);
      if (m->key != nullptr) r.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
      ++records_read;
      bytes_read += static_cast<int64_t>(m->len + m->key_len);
      p.last_message = absl::Now();
      absl::StatusOr<int64_t> ts = out.Emit(r);
      if (ts.ok()) {
        p.max_timestamp = std::max(p.max_timestamp, *ts);
        return absl::OkStatus();
      }
      return Undeserializable(std::move(r), ts.status(), out);
    }
    return absl::OkStatus();  // a partition no longer assigned
  }

  /// A message the format could not read: fail, skip or dead-letter it, as configured.
  absl::Status Undeserializable(KafkaRecord r, const absl::Status& why, KafkaEmitter& out) {
    const std::string where =
        absl::StrCat("Kafka ", r.topic, "/", r.partition, " offset ", r.offset);
    switch (options_->deserialization_errors) {
      case KafkaDeserializationErrors::kFail:
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": cannot deserialize the value (", r.value.size(), " bytes) ", why.message(),
            " (deserialization_errors=skip or dead_letter would go on)"));
      case KafkaDeserializationErrors::kSkip:
        ++deserialization_failures;
        LOG_EVERY_N(WARNING, 100) << name_ << ": skipped " << where << ": " << why.message() << " ("
                                  << google::COUNTER << " skipped so far)";
        return absl::OkStatus();
      case KafkaDeserializationErrors::kDeadLetter: {
        ++deserialization_failures;
        const Timestamp ts = r.timestamp_ms >= 0 ? r.timestamp_ms : kNoTimestamp;
        out.DeadLetter(KafkaDeadLetter{std::move(r), std::string(why.message())}, ts);
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }

  std::string name_;
  LogRateLimiter fetch_errors_logged_{absl::Seconds(10)};  // per error kind
  bool bounded_ = false;
  const KafkaSourceOptions* options_ = nullptr;  // the source's, which outlives this
  int subtask_ = 0;
  int parallelism_ = 1;
  rd_kafka_t* rk_ = nullptr;
  std::vector<Partition> partitions_;
  absl::Time assigned_at_ = absl::Now();
};

KafkaSourceCore::KafkaSourceCore(KafkaSourceOptions options) : options_(std::move(options)) {
  if (options_.bootstrap_servers.empty()) {
    throw std::invalid_argument("Kafka source: no bootstrap servers");
  }
  if (options_.topics.empty() && options_.topic_pattern.empty()) {
    throw std::invalid_argument("Kafka source: no topic and no topic pattern");
  }
  if (!options_.topic_pattern.empty()) {
    regex_t re;
    if (regcomp(&re, options_.topic_pattern.c_str(), REG_EXTENDED | REG_NOSUB) != 0) {
      throw std::invalid_argument(absl::StrCat("Kafka source: topic pattern '",
                                               options_.topic_pattern,
                                               "' is not a POSIX extended regular expression"));
    }
    regfree(&re);
  }
  if (options_.starting_offsets == KafkaStartingOffsets::kCommitted && options_.group_id.empty()) {
    throw std::invalid_argument("Kafka source: starting from committed offsets needs a group id");
  }
}
KafkaSourceCore::KafkaSourceCore(const KafkaSourceCore& other) : options_(other.options_) {}
KafkaSourceCore::~KafkaSourceCore() = default;

void KafkaSourceCore::Open(RuntimeContext& ctx) {
  metrics_ = &ctx.Metrics();
  auto consumer = KafkaConsumer::Open(
      options_, ctx.SubtaskIndex(), ctx.Parallelism(), restored_,
      absl::StrCat("Kafka source ", ctx.SubtaskIndex() + 1, "/", ctx.Parallelism()));
  ThrowIfError(consumer.status());
  consumer_ = std::move(*consumer);
  consumer_->RestoreMaxTimestamps(restored_max_timestamps_);
  restored_.clear();
  restored_max_timestamps_.clear();
  throttle_start_ = absl::Now();
  last_discovery_ = absl::Now();
}

SourceStatus KafkaSourceCore::Poll(KafkaEmitter& out) {
  if (consumer_->Done()) {
    PublishCounters();
    return SourceStatus::kEndOfInput;
  }
  if (options_.discovery_interval > absl::ZeroDuration() && !options_.bounded &&
      absl::Now() - last_discovery_ >= options_.discovery_interval) {
    last_discovery_ = absl::Now();
    ThrowIfError(consumer_->Discover());
  }
  size_t allowed = out.batch_hint();
  if (options_.max_records_per_second > 0) {
    // A token bucket since the start: at most the rate times the time so far.
    const double budget =
        options_.max_records_per_second * absl::ToDoubleSeconds(absl::Now() - throttle_start_) -
        static_cast<double>(throttle_emitted_);
    if (budget < 1) {
      absl::SleepFor(std::min(absl::Milliseconds(10),
                              absl::Seconds((1 - budget) / options_.max_records_per_second)));
      return SourceStatus::kNothingAvailable;
    }
    allowed = std::min(allowed, static_cast<size_t>(budget));
  }
  ThrowIfError(consumer_->Read(allowed, /*wait_ms=*/10, out));
  throttle_emitted_ += static_cast<int64_t>(out.collected());
  EmitEventTime(out);
  // Lag takes a lookup per partition: a few times a second is enough (Close publishes the
  // final values).
  if (absl::Now() - last_publish_ >= absl::Milliseconds(200)) PublishCounters();
  if (consumer_->Done()) return SourceStatus::kEndOfInput;
  return out.collected() > 0 ? SourceStatus::kMoreAvailable : SourceStatus::kNothingAvailable;
}

void KafkaSourceCore::EmitEventTime(KafkaEmitter& out) {
  if (!options_.watermark_out_of_orderness && options_.idle_timeout <= absl::ZeroDuration()) {
    return;
  }
  const std::optional<Timestamp> wm = consumer_->Watermark(
      options_.watermark_out_of_orderness.value_or(absl::ZeroDuration()), options_.idle_timeout);
  if (!wm) {
    // Every partition idle, or none at all: downstream stops waiting for this subtask.
    if (options_.watermark_out_of_orderness) {
      const std::optional<Timestamp> last =
          consumer_->WatermarkOfIdle(*options_.watermark_out_of_orderness);
      if (last && *last > emitted_watermark_) {
        emitted_watermark_ = *last;
        out.EmitWatermark(*last);
      }
    }
    if (!idle_ && (options_.idle_timeout > absl::ZeroDuration() || !consumer_->has_partitions())) {
      idle_ = true;
      out.MarkIdle(true);
    }
    return;
  }
  if (idle_) {
    idle_ = false;
    out.MarkIdle(false);
  }
  if (options_.watermark_out_of_orderness && *wm > emitted_watermark_) {
    emitted_watermark_ = *wm;
    out.EmitWatermark(*wm);
  }
}

void KafkaSourceCore::Close() {
  if (consumer_) PublishCounters();
  consumer_.reset();
}

// A partition's item: its KafkaPartitionOffset, then (if it had messages) the largest event
// time read, an int64. Items of checkpoints taken before event time was kept end after the
// offset and restore without it.
std::vector<std::string> KafkaSourceCore::SnapshotState(int64_t checkpoint_id) {
  std::vector<KafkaPartitionOffset> positions =
      consumer_ ? consumer_->Positions() : std::vector<KafkaPartitionOffset>(restored_);
  const auto max_timestamps = consumer_ ? consumer_->MaxTimestamps() : restored_max_timestamps_;
  std::vector<std::string> items;
  for (const auto& p : positions) {
    std::string item;
    ByteWriter w(&item);
    Serializer<KafkaPartitionOffset>::Write(p, w);
    if (auto it = max_timestamps.find({p.topic, p.partition}); it != max_timestamps.end()) {
      Serializer<int64_t>::Write(it->second, w);
    }
    items.push_back(std::move(item));
  }
  if (!options_.group_id.empty()) pending_commits_[checkpoint_id] = std::move(positions);
  return items;
}

void KafkaSourceCore::RestoreState(std::vector<std::string> items) {
  restored_.clear();
  restored_max_timestamps_.clear();
  for (const std::string& item : items) {
    ByteReader r(item);
    KafkaPartitionOffset p;
    if (!Serializer<KafkaPartitionOffset>::Read(r, &p)) {
      ThrowIfError(absl::DataLossError("Kafka source state: a partition's offset is corrupt"));
    }
    if (!r.AtEnd()) {
      int64_t max_timestamp = 0;
      if (!Serializer<int64_t>::Read(r, &max_timestamp) || !r.AtEnd()) {
        ThrowIfError(absl::DataLossError(absl::StrCat("Kafka source state: the event time of ",
                                                      p.topic, "/", p.partition, " is corrupt")));
      }
      restored_max_timestamps_[{p.topic, p.partition}] = max_timestamp;
    }
    restored_.push_back(std::move(p));
  }
}

void KafkaSourceCore::NotifyCheckpointComplete(int64_t checkpoint_id) {
  auto it = pending_commits_.find(checkpoint_id);
  if (it == pending_commits_.end()) return;
  if (consumer_) consumer_->Commit(it->second);
  pending_commits_.erase(pending_commits_.begin(), std::next(it));
}

void KafkaSourceCore::PublishCounters() {
  if (metrics_ == nullptr || !consumer_) return;
  last_publish_ = absl::Now();
  auto set = [&](const char* name, int64_t value) { metrics_->GetCounter(name).Set(value); };
  set("kafka_records_read", consumer_->records_read);
  set("kafka_bytes_read", consumer_->bytes_read);
  set("kafka_commits_succeeded", consumer_->commits_succeeded);
  set("kafka_commits_failed", consumer_->commits_failed);
  set("kafka_deserialization_failures", consumer_->deserialization_failures);
  int64_t total_lag = 0;
  for (const auto& [partition, lag] : consumer_->Lag()) {
    metrics_->AddGroup("partition", partition)
        .GetGauge("kafka_partition_lag", "Messages behind the partition's end.")
        .Set(static_cast<double>(lag));
    total_lag += lag;
  }
  metrics_->GetGauge("kafka_lag", "Messages behind the ends of the partitions read.")
      .Set(static_cast<double>(total_lag));
}

}  // namespace internal

namespace {

/// The byte offset of the first invalid UTF-8 sequence (overlong forms, surrogates and code
/// points above U+10FFFF are invalid), or nothing.
std::optional<size_t> FirstInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::nullopt;
}

}  // namespace

KafkaFormat<KafkaRecord> KafkaRecordFormat() {
  return {"Kafka record", [](const KafkaRecord& r) -> absl::StatusOr<KafkaRecord> { return r; }};
}

KafkaFormat<std::string> KafkaStringFormat(bool require_utf8) {
  return {require_utf8 ? "UTF-8 string" : "string",
          [require_utf8](const KafkaRecord& r) -> absl::StatusOr<std::string> {
            if (require_utf8) {
              if (std::optional<size_t> bad = FirstInvalidUtf8(r.value)) {
                return absl::InvalidArgumentError(absl::StrCat("not valid UTF-8 at byte ", *bad));
              }
            }
            return r.value;
          }};
}

}  // namespace sluice
