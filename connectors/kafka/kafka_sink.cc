// KafkaSink: at-least-once (flush at each barrier) or exactly-once (each checkpoint's messages
// as checkpointed state, written in one transaction with a commit marker when it completes).

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "sluice/connectors/kafka.h"
#include "sluice/core/status_macros.h"

namespace sluice {
namespace internal {
namespace {

constexpr int kTxnAttempts = 5;
constexpr int kMetadataTimeoutMs = 60'000;

absl::Status FromError(rd_kafka_error_t* error, const std::string& what) {
  absl::Status s =
      absl::InternalError(absl::StrCat("Kafka sink: ", what, ": ", rd_kafka_error_string(error)));
  rd_kafka_error_destroy(error);
  return s;
}

absl::StatusOr<rd_kafka_t*> NewClient(
    rd_kafka_type_t type, const std::map<std::string, std::string>& settings, void* opaque,
    void (*on_delivery)(rd_kafka_t*, const rd_kafka_message_t*, void*)) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : settings) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(
          absl::StrCat("Kafka sink: setting '", k, "'='", v, "': ", err));
    }
  }
  rd_kafka_conf_set_opaque(conf, opaque);
  if (on_delivery != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof(err));
  if (rk == nullptr) return absl::InvalidArgumentError(absl::StrCat("Kafka sink: ", err));
  return rk;
}

/// transaction.timeout.ms as the sink's producers use it (librdkafka's default otherwise).
absl::Duration TransactionTimeout(const KafkaSinkOptions& o) {
  int64_t ms = 60'000;
  if (auto it = o.properties.find("transaction.timeout.ms"); it != o.properties.end()) {
    absl::SimpleAtoi(it->second, &ms);
  }
  return absl::Milliseconds(ms);
}

}  // namespace

/// One librdkafka producer of a sink subtask (task thread only).
class KafkaProducer {
 public:
  ~KafkaProducer() {
    if (rk_ != nullptr) rd_kafka_destroy(rk_);
  }

  /// With a transactional id, the producer fences every earlier instance with that id and
  /// aborts its open transaction (init_transactions).
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Open(const KafkaSinkOptions& o,
                                                             const std::string& transactional_id,
                                                             const std::string& name) {
    auto p = std::unique_ptr<KafkaProducer>(new KafkaProducer());
    p->name_ = name;
    p->default_topic_ = o.topic;
    p->marker_topic_ = o.commit_marker_topic;
    // A transactional call blocks at most as long as the broker keeps a transaction open.
    p->call_timeout_ms_ = static_cast<int>(absl::ToInt64Milliseconds(TransactionTimeout(o)));
    std::map<std::string, std::string> settings = {{"bootstrap.servers", o.bootstrap_servers},
                                                   {"client.id", name},
                                                   {"enable.idempotence", "true"}};
    if (!transactional_id.empty()) settings["transactional.id"] = transactional_id;
    for (const auto& [k, v] : o.properties) settings[k] = v;
    SLUICE_ASSIGN_OR_RETURN(
        auto rk, NewClient(RD_KAFKA_PRODUCER, settings, p.get(), &KafkaProducer::OnDelivery));
    p->rk_ = rk;
    if (!transactional_id.empty()) {
      if (rd_kafka_error_t* e = rd_kafka_init_transactions(p->rk_, p->call_timeout_ms_)) {
        return FromError(e, absl::StrCat("init_transactions for '", transactional_id, "'"));
      }
    }
    return p;
  }

  /// Produces asynchronously; waits while librdkafka's queue is full (back pressure).
  absl::Status Produce(const KafkaMessage& m) {
    if (!failure_.ok()) return failure_;
    const std::string& topic = m.topic.empty() ? default_topic_ : m.topic;
    for (;;) {
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(topic.c_str()),
          RD_KAFKA_V_PARTITION(m.partition < 0 ? RD_KAFKA_PARTITION_UA : m.partition),
          RD_KAFKA_V_KEY(m.key.data(), m.key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(m.value.data()), m.value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(m.timestamp_ms),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        return absl::InternalError(
            absl::StrCat("Kafka sink: producing to '", topic, "': ", rd_kafka_err2str(err)));
      }
      rd_kafka_poll(rk_, 100);
    }
    rd_kafka_poll(rk_, 0);  // delivery reports
    return failure_;
  }

  /// Waits until every produced message is delivered (or failed: the first failure).
  absl::Status Flush() {
    while (rd_kafka_outq_len(rk_) > 0 && failure_.ok()) {
      if (rd_kafka_flush(rk_, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        LOG(WARNING) << name_ << ": waiting for Kafka to take " << rd_kafka_outq_len(rk_)
                     << " messages";
      }
    }
    return failure_;
  }

  /// Writes `messages` in one transaction together with a commit marker (key `owner`, a
  /// transactional id; value `checkpoint_id`) in the marker topic, so a later instance can
  /// tell whether the transaction committed. A transaction known to be aborted is written
  /// again; one whose commit is in doubt is not (it may yet become visible): the error fails
  /// the task, and the restored sink decides by the commit markers.
  absl::Status CommitTransaction(const std::string& owner, int64_t checkpoint_id,
                                 const std::vector<KafkaMessage>& messages) {
    for (int attempt = 1;; ++attempt) {
      bool aborted = false;
      absl::Status s = TryTransaction(owner, checkpoint_id, messages, &aborted);
      if (s.ok()) {
        ++transactions_committed;
        return s;
      }
      if (!aborted || attempt >= kTxnAttempts) return s;
      LOG(WARNING) << name_ << ": transaction of checkpoint " << checkpoint_id << " (attempt "
                   << attempt << ") was aborted, writing it again: " << s.message();
      failure_ = absl::OkStatus();  // its messages were aborted with it
    }
  }

  int64_t commits_resumed = 0;
  int64_t messages_written = 0;
  int64_t transactions_committed = 0;

 private:
  KafkaProducer() = default;

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaProducer*>(opaque);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++self->messages_written;
    } else if (self->failure_.ok()) {
      self->failure_ = absl::UnavailableError(
          absl::StrCat("Kafka sink: a message to ", rd_kafka_topic_name(m->rkt), "/", m->partition,
                       " was not delivered: ", rd_kafka_err2str(m->err)));
    }
  }

  /// One attempt; `*aborted` tells whether a failed attempt is sure to be invisible.
  absl::Status TryTransaction(const std::string& owner, int64_t checkpoint_id,
                              const std::vector<KafkaMessage>& messages, bool* aborted) {
    *aborted = false;
    if (rd_kafka_error_t* e = rd_kafka_begin_transaction(rk_)) return FromError(e, "begin");
    absl::Status s;
    for (const KafkaMessage& m : messages) {
      s = Produce(m);
      if (!s.ok()) break;
    }
    if (s.ok()) {
      // The commit marker: visible exactly when this transaction is.
      KafkaMessage marker;
      marker.topic = marker_topic_;
      marker.key = owner;
      marker.value = std::to_string(checkpoint_id);
      s = Produce(marker);
    }
    if (s.ok()) {
      bool requires_abort = false;
      s = EndTransaction(/*commit=*/true, checkpoint_id, &requires_abort);
      if (s.ok() || !requires_abort) return s;  // committed, or in doubt
    }
    // Not committed: abort, so that writing it again cannot show it twice.
    bool unused = false;
    if (absl::Status a = EndTransaction(/*commit=*/false, checkpoint_id, &unused); !a.ok()) {
      return absl::Status(a.code(), absl::StrCat(a.message(), " (after: ", s.message(), ")"));
    }
    *aborted = true;
    return s;
  }

  /// Commits or aborts the open transaction. A call that timed out goes on in the background
  /// and is resumed by calling again (librdkafka's contract): a commit is never given up for
  /// an abort and a second write, which could make its messages visible twice.
  absl::Status EndTransaction(bool commit, int64_t checkpoint_id, bool* requires_abort) {
    const char* what = commit ? "commit" : "abort";
    for (int attempt = 1;; ++attempt) {
      rd_kafka_error_t* e = commit ? rd_kafka_commit_transaction(rk_, call_timeout_ms_)
                                   : rd_kafka_abort_transaction(rk_, call_timeout_ms_);
      if (e == nullptr) return absl::OkStatus();
      *requires_abort = rd_kafka_error_txn_requires_abort(e);
      if (!rd_kafka_error_is_retriable(e) || attempt >= kTxnAttempts) {
        return FromError(e, absl::StrCat(what, " of checkpoint ", checkpoint_id));
      }
      LOG(WARNING) << name_ << ": the " << what << " of checkpoint " << checkpoint_id
                   << " is not confirmed yet (" << rd_kafka_error_string(e) << "), resuming it";
      rd_kafka_error_destroy(e);
      if (commit) ++commits_resumed;
    }
  }

  std::string name_;
  std::string default_topic_;
  std::string marker_topic_;
  int call_timeout_ms_ = 0;
  rd_kafka_t* rk_ = nullptr;
  absl::Status failure_;
};

/// A consumer of the marker topic with the user's connection settings (security and the like).
absl::StatusOr<rd_kafka_t*> MarkerConsumer(const KafkaSinkOptions& o, const std::string& group,
                                           const std::string& isolation_level) {
  std::map<std::string, std::string> settings = o.properties;
  settings["bootstrap.servers"] = o.bootstrap_servers;
  settings["group.id"] = group;
  settings["enable.auto.commit"] = "false";
  settings["enable.partition.eof"] = "true";
  settings["isolation.level"] = isolation_level;
  return NewClient(RD_KAFKA_CONSUMER, settings, nullptr, nullptr);
}

/// The newest checkpoint whose transaction committed for `transactional_id` (-1: none): the
/// largest value of its commit markers, read as a read_committed consumer.
///
/// A read_committed consumer stops at a partition's last stable offset: an open transaction of
/// another producer (a subtask that died mid-commit and whose successor has not fenced it yet)
/// hides every marker written after it began, ours included, and a marker missed commits its
/// transaction twice. So the markers are read up to each partition's end as it was once we had
/// fenced our own predecessor, waiting while such a transaction is open (the broker ends it when
/// its successor starts, at the latest after its transaction.timeout.ms).
absl::StatusOr<int64_t> LastCommittedCheckpoint(const KafkaSinkOptions& o,
                                                const std::string& transactional_id) {
  const std::string group = "sluice-marker-reader-" + transactional_id;
  const std::string& topic = o.commit_marker_topic;
  // rd_kafka_destroy also closes a consumer.
  using Client = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;
  SLUICE_ASSIGN_OR_RETURN(rd_kafka_t * uncommitted, MarkerConsumer(o, group, "read_uncommitted"));
  const Client ends_reader(uncommitted, &rd_kafka_destroy);
  SLUICE_ASSIGN_OR_RETURN(rd_kafka_t * committed, MarkerConsumer(o, group, "read_committed"));
  const Client reader(committed, &rd_kafka_destroy);
  rd_kafka_t* rk = reader.get();
  auto failed = [&](const std::string& what) {
    return absl::UnavailableError(absl::StrCat("Kafka sink: reading the commit markers of '",
                                               transactional_id, "' in '", topic, "': ", what));
  };
  absl::Status status;
  int64_t last = -1;
  std::map<int32_t, int64_t> ends;  // partition -> end offset, of those not read to it yet
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, t, &md, kMetadataTimeoutMs);
  rd_kafka_topic_destroy(t);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) status = failed(rd_kafka_err2str(err));
  // A topic that does not exist holds no markers.
  if (status.ok() && md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt && status.ok(); ++i) {
      const int32_t partition = md->topics[0].partitions[i].id;
      int64_t low = 0, high = 0;
      err = rd_kafka_query_watermark_offsets(ends_reader.get(), topic.c_str(), partition, &low,
                                             &high, kMetadataTimeoutMs);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status =
            failed(absl::StrCat("the end of partition ", partition, ": ", rd_kafka_err2str(err)));
      }
      if (high > low) ends[partition] = high;
      rd_kafka_topic_partition_list_add(list, topic.c_str(), partition)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    if (status.ok() && !ends.empty()) {
      err = rd_kafka_assign(rk, list);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) status = failed(rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
  }
  const absl::Duration patience = TransactionTimeout(o) + absl::Seconds(10);
  const absl::Time deadline = absl::Now() + patience;
  std::map<int32_t, int64_t> stable;  // partition -> offset its reading stopped at
  while (status.ok() && !ends.empty()) {
    if (absl::Now() > deadline) {
      const auto& [partition, end] = *ends.begin();
      status = failed(absl::StrCat(
          "partition ", partition, " is readable only to offset ", stable[partition], " of ", end,
          " after ", absl::FormatDuration(patience),
          ": a transaction that began there is still open (a producer that died mid-commit is "
          "aborted when its successor starts, at the latest after its transaction.timeout.ms)"));
      break;
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 1000);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      stable[m->partition] = m->offset;
      if (auto it = ends.find(m->partition); it != ends.end() && m->offset >= it->second) {
        ends.erase(it);
      }
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->key_len == transactional_id.size() &&
               std::string_view(static_cast<const char*>(m->key), m->key_len) == transactional_id) {
      int64_t id = -1;
      if (absl::SimpleAtoi(std::string(static_cast<const char*>(m->payload), m->len), &id)) {
        last = std::max(last, id);
      }
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      LOG(WARNING) << "Kafka sink: reading the commit markers of '" << transactional_id
                   << "': " << rd_kafka_message_errstr(m);
    }
    rd_kafka_message_destroy(m);
  }
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  if (!status.ok()) return status;
  return last;
}

}  // namespace internal

KafkaSink::KafkaSink(KafkaSinkOptions options) : options_(std::move(options)) {
  if (options_.bootstrap_servers.empty()) {
    throw std::invalid_argument("Kafka sink: no bootstrap servers");
  }
  if (options_.delivery == KafkaDelivery::kExactlyOnce && options_.topic.empty()) {
    throw std::invalid_argument(
        "Kafka sink: exactly-once needs a default topic (its commit marker refers to it)");
  }
}
KafkaSink::KafkaSink(const KafkaSink& other) : options_(other.options_) {}
KafkaSink::~KafkaSink() = default;

bool KafkaSink::transactional() const {
  return options_.delivery == KafkaDelivery::kExactlyOnce && checkpointing_;
}

void KafkaSink::Open(RuntimeContext& ctx) {
  metrics_ = &ctx.Metrics();
  checkpointing_ = ctx.task_info().checkpointing;
  subtask_ = ctx.SubtaskIndex();
  const std::string name = absl::StrCat("Kafka sink ", subtask_ + 1, "/", ctx.Parallelism());
  const std::string prefix =
      options_.transactional_id_prefix.empty()
          ? absl::StrCat("sluice-", ctx.task_info().job_name, "-", ctx.task_info().operator_name)
          : options_.transactional_id_prefix;
  if (transactional()) transactional_id_ = absl::StrCat(prefix, "-", subtask_);
  auto producer = internal::KafkaProducer::Open(options_, transactional_id_, name);
  ThrowIfError(producer.status());
  producer_ = std::move(*producer);
  if (!transactional()) return;
  // Recovery: the restored checkpoint completed, so every transaction in its state must be
  // visible once. Those of old subtasks i with i mod parallelism == this subtask are ours.
  std::map<std::string, std::vector<KafkaPendingTransaction>> by_owner;
  for (auto& t : restored_) {
    if (t.subtask % ctx.Parallelism() == subtask_) by_owner[t.transactional_id].push_back(t);
  }
  restored_.clear();
  for (auto& [owner, transactions] : by_owner) {
    if (owner != transactional_id_) {
      // An instance that no longer exists: fence it, aborting its open transaction.
      auto fence = internal::KafkaProducer::Open(options_, owner, name);
      ThrowIfError(fence.status());
    }
    auto last = internal::LastCommittedCheckpoint(options_, owner);
    ThrowIfError(last.status());
    std::sort(transactions.begin(), transactions.end(),
              [](const auto& a, const auto& b) { return a.checkpoint_id < b.checkpoint_id; });
    for (const auto& t : transactions) {
      if (t.checkpoint_id <= *last) continue;  // committed before the failure
      LOG(INFO) << name << ": committing the transaction of checkpoint " << t.checkpoint_id << " ("
                << t.messages.size() << " messages) that " << owner << " had not committed";
      ThrowIfError(producer_->CommitTransaction(owner, t.checkpoint_id, t.messages));
    }
  }
  PublishCounters();
}

void KafkaSink::Invoke(const KafkaMessage& message, const SinkContext&) {
  if (transactional()) {
    buffer_.push_back(message);
    return;
  }
  ThrowIfError(producer_->Produce(message));
}

void KafkaSink::Finish() {
  if (!transactional()) ThrowIfError(producer_->Flush());  // else the final checkpoint commits
  PublishCounters();
}

void KafkaSink::Close() {
  if (producer_) PublishCounters();
  producer_.reset();
}

std::vector<KafkaPendingTransaction> KafkaSink::SnapshotState(int64_t checkpoint_id) {
  if (!transactional()) {
    ThrowIfError(producer_->Flush());  // at-least-once: everything before the barrier is in Kafka
    PublishCounters();
    return {};
  }
  pending_.push_back({transactional_id_, subtask_, checkpoint_id, std::move(buffer_)});
  buffer_.clear();
  return pending_;
}

void KafkaSink::RestoreState(std::vector<KafkaPendingTransaction> items) {
  restored_ = std::move(items);
}

void KafkaSink::NotifyCheckpointComplete(int64_t checkpoint_id) {
  if (!transactional()) return;
  // Completion of N covers every earlier checkpoint too.
  size_t done = 0;
  while (done < pending_.size() && pending_[done].checkpoint_id <= checkpoint_id) {
    const KafkaPendingTransaction& t = pending_[done];
    ThrowIfError(producer_->CommitTransaction(transactional_id_, t.checkpoint_id, t.messages));
    ++done;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
  PublishCounters();
}

void KafkaSink::PublishCounters() {
  if (metrics_ == nullptr || !producer_) return;
  auto set = [&](const char* name, int64_t value) { metrics_->GetCounter(name).Set(value); };
  set("kafka_messages_written", producer_->messages_written);
  set("kafka_transactions_committed", producer_->transactions_committed);
  set("kafka_commits_resumed", producer_->commits_resumed);
}

}  // namespace sluice
