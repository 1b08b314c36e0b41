#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sluice/function/checkpointed_function.h"
#include "sluice/function/functions.h"
#include "sluice/serialization/serializer.h"

namespace sluice {

/// The unit of a point's timestamp, and of the sink's `precision` parameter.
enum class InfluxPrecision { kNanoseconds, kMicroseconds, kMilliseconds, kSeconds };

/// One InfluxDB point: measurement, tags, typed fields and a timestamp. The setters check
/// their input and throw std::invalid_argument naming what is wrong (a newline anywhere, a
/// NaN or infinite float, a key called `time`, an empty name), so a bad point fails where it
/// is built, not later in the database.
///
///   InfluxPoint("records").Tag("window", "10-sec").Field("sum", int64_t{42}).Time(end_ms)
class InfluxPoint {
 public:
  using FieldValue = std::variant<int64_t, double, bool, std::string>;

  InfluxPoint() = default;
  explicit InfluxPoint(std::string measurement);

  /// Tags are sorted by key when encoded; an empty value means no tag (InfluxDB omits it).
  InfluxPoint& Tag(std::string key, std::string value);
  InfluxPoint& Field(std::string key, int64_t value);
  InfluxPoint& Field(std::string key, int value) { return Field(std::move(key), int64_t{value}); }
  InfluxPoint& Field(std::string key, double value);
  InfluxPoint& Field(std::string key, bool value);
  InfluxPoint& Field(std::string key, std::string value);
  InfluxPoint& Field(std::string key, const char* value) {
    return Field(std::move(key), std::string(value));
  }
  InfluxPoint& Time(int64_t time, InfluxPrecision precision = InfluxPrecision::kMilliseconds);

  const std::string& measurement() const { return measurement_; }
  const std::vector<std::pair<std::string, std::string>>& tags() const { return tags_; }
  const std::vector<std::pair<std::string, FieldValue>>& fields() const { return fields_; }
  bool has_time() const { return has_time_; }

  /// The point as one line of line protocol, its timestamp in `precision` (a finer one is
  /// exact; a coarser one truncates). INVALID_ARGUMENT if it has no field or no timestamp
  /// (the sink always sends timestamps: a replayed point then overwrites itself instead of
  /// being stored twice).
  absl::StatusOr<std::string> ToLineProtocol(InfluxPrecision precision) const;

 private:
  friend struct Serializer<InfluxPoint>;
  std::string measurement_;
  std::vector<std::pair<std::string, std::string>> tags_;
  std::vector<std::pair<std::string, FieldValue>> fields_;
  int64_t time_ = 0;
  InfluxPrecision time_precision_ = InfluxPrecision::kMilliseconds;
  bool has_time_ = false;
};

/// Points travel between operators like any record.
template <>
struct Serializer<InfluxPoint> {
  static void Write(const InfluxPoint& p, ByteWriter& w);
  static bool Read(ByteReader& r, InfluxPoint* out);
  static std::string TypeName() { return "InfluxPoint"; }
};

/// Everything the InfluxDB sink can be told; InfluxSink::Builder sets it fluently and
/// ParseInfluxUrl from a URL. Defaults suit a local InfluxDB.
struct InfluxSinkOptions {
  /// Base URLs (`http://host:8086`, `https://...`); on a transport error or 5xx the sink
  /// moves to the next one.
  std::vector<std::string> urls;
  /// 1: InfluxDB 1.x `/write` (database, retention policy, consistency, user/password).
  /// 2: InfluxDB 2.x `/api/v2/write` (org, bucket, token).
  int api_version = 1;
  std::string database;
  std::string retention_policy;
  std::string consistency;  // any, one, quorum, all (clusters); empty: the server's
  std::string user;
  std::string password;
  std::string org;
  std::string bucket;
  std::string token;
  InfluxPrecision precision = InfluxPrecision::kMilliseconds;

  /// A batch is sent when it has this many points, or this many bytes (keep it under the
  /// server's max-body-size, 25 MB by default), or when its first point has waited
  /// `flush_interval` (+/- `flush_jitter`, so many sinks do not write in step).
  size_t batch_points = 5000;
  size_t batch_bytes = 4 << 20;
  absl::Duration flush_interval = absl::Seconds(1);
  double flush_jitter = 0.1;
  /// Points buffered (queued and in flight) before the sink blocks its task: back pressure
  /// instead of unbounded memory while InfluxDB is slow or down.
  size_t max_buffered_points = 100'000;

  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration request_timeout = absl::Seconds(30);
  /// Retries (transport errors, timeouts, 429, 5xx): exponential backoff from
  /// `retry_initial` to `retry_max` with jitter, never sooner than the server's Retry-After.
  absl::Duration retry_initial = absl::Milliseconds(100);
  absl::Duration retry_max = absl::Seconds(30);
  /// After retrying one batch this long the job fails (naming the last error);
  /// zero: retry forever (the sink back-pressures meanwhile). Never a silent drop.
  absl::Duration max_retry_time = absl::ZeroDuration();

  bool gzip = false;
  std::string ca_file;                // TLS: trust these CAs instead of the system's
  bool insecure_skip_verify = false;  // TLS: do not verify the server (tests only)
};

/// Parses `influx://HOST:PORT/DB?measurement=NAME&batch_points=N&...` (or `influxs://` for
/// TLS) into options; every InfluxSinkOptions field can be given as a parameter by its name
/// (durations like `500ms`, several `url=` for failover). `measurement` is returned apart
/// (the sink itself does not name points). INVALID_ARGUMENT naming the bad part.
absl::StatusOr<InfluxSinkOptions> ParseInfluxUrl(const std::string& url,
                                                 std::string* measurement = nullptr);

namespace internal {
class InfluxWriter;
}

/// Writes InfluxPoints to InfluxDB (the Streamroot sink, V1 to V4, and what it left out).
///
/// Points are encoded on the task thread and sent by a sender thread of the subtask in
/// batches (by points, bytes or time), one request in flight, retried as InfluxSinkOptions
/// says. Checkpoints do not wait for InfluxDB: the points not yet acknowledged are the
/// sink's state (the seed's V3), so a checkpoint completes during an outage and a restore
/// resends them; since every point carries its timestamp, a resent point overwrites itself
/// (exactly-once effect). Answers: 2xx written; 400 (partial write, type conflict, beyond
/// retention) counts and logs the rejected points with the server's text and keeps the
/// rest (InfluxDB writes the good lines of such a batch); 413 splits the batch in half;
/// 401/403/404 and "retention policy not found" fail the job with the server's text. At
/// the end of bounded input everything buffered is sent before the job finishes.
///
/// Metrics(): counters influx_points_written, influx_points_rejected, influx_points_retried,
/// influx_batches; the gauge influx_buffered_points; the histogram
/// influx_batch_duration_seconds (each written batch's request).
class InfluxSink final : public SinkFunction<InfluxPoint>,
                         public CheckpointedFunction<std::string> {
 public:
  class Builder;
  explicit InfluxSink(InfluxSinkOptions options);
  InfluxSink(const InfluxSink& other);
  ~InfluxSink() override;

  void Open(RuntimeContext& ctx) override;
  void Invoke(const InfluxPoint& point, const SinkContext& ctx) override;
  void Finish() override;
  void Close() override;

  /// The unacknowledged points, as line protocol in chunks.
  std::vector<std::string> SnapshotState(int64_t checkpoint_id) override;
  void RestoreState(std::vector<std::string> items) override;

  const InfluxSinkOptions& options() const { return options_; }

 private:
  void PublishCounters();

  InfluxSinkOptions options_;
  std::vector<std::string> restored_;  // until Open
  std::unique_ptr<internal::InfluxWriter> writer_;
  MetricGroup* metrics_ = nullptr;
  std::string line_;
};

/// A sink configured by an `influx://` URL (ParseInfluxUrl), its options checked:
/// INVALID_ARGUMENT naming what is wrong. `measurement` as for ParseInfluxUrl.
absl::StatusOr<InfluxSink> InfluxSinkFromUrl(const std::string& url,
                                             std::string* measurement = nullptr);

/// The seed's V4 builder: InfluxSink::Builder().Url("http://localhost:8086").Database("data")
/// .BatchPoints(100).FlushInterval(absl::Seconds(1)).Build().
class InfluxSink::Builder {
 public:
  Builder& Url(std::string url) {
    o_.urls.push_back(std::move(url));
    return *this;
  }
  Builder& Database(std::string db) {
    o_.database = std::move(db);
    return *this;
  }
  Builder& RetentionPolicy(std::string rp) {
    o_.retention_policy = std::move(rp);
    return *this;
  }
  Builder& Consistency(std::string c) {
    o_.consistency = std::move(c);
    return *this;
  }
  Builder& Credentials(std::string user, std::string password) {
    o_.user = std::move(user);
    o_.password = std::move(password);
    return *this;
  }
  /// InfluxDB 2.x.
  Builder& Bucket(std::string org, std::string bucket, std::string token) {
    o_.api_version = 2;
    o_.org = std::move(org);
    o_.bucket = std::move(bucket);
    o_.token = std::move(token);
    return *this;
  }
  Builder& Precision(InfluxPrecision p) {
    o_.precision = p;
    return *this;
  }
  Builder& BatchPoints(size_t n) {
    o_.batch_points = n;
    return *this;
  }
  Builder& BatchBytes(size_t n) {
    o_.batch_bytes = n;
    return *this;
  }
  Builder& FlushInterval(absl::Duration d) {
    o_.flush_interval = d;
    return *this;
  }
  Builder& MaxBufferedPoints(size_t n) {
    o_.max_buffered_points = n;
    return *this;
  }
  Builder& Timeouts(absl::Duration connect, absl::Duration request) {
    o_.connect_timeout = connect;
    o_.request_timeout = request;
    return *this;
  }
  Builder& Retry(absl::Duration initial, absl::Duration max,
                 absl::Duration give_up_after = absl::ZeroDuration()) {
    o_.retry_initial = initial;
    o_.retry_max = max;
    o_.max_retry_time = give_up_after;
    return *this;
  }
  Builder& Gzip(bool on = true) {
    o_.gzip = on;
    return *this;
  }
  Builder& Tls(std::string ca_file, bool insecure_skip_verify = false) {
    o_.ca_file = std::move(ca_file);
    o_.insecure_skip_verify = insecure_skip_verify;
    return *this;
  }
  /// Checks the options (std::invalid_argument naming what is missing or wrong).
  InfluxSink Build() const;

 private:
  InfluxSinkOptions o_;
};

}  // namespace sluice
