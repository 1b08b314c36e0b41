// InfluxSink: encodes points on the task thread, hands them to its InfluxWriter, saves the
// unacknowledged ones at checkpoints and resends them after a restore.

#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sluice/connectors/influxdb.h"
#include "sluice/connectors/internal/influx_writer.h"
#include "sluice/core/status_macros.h"

namespace sluice {
namespace {

/// Unacknowledged lines are saved in chunks of about this many bytes (one state item each).
constexpr size_t kStateChunkBytes = 1 << 20;

void Validate(const InfluxSinkOptions& o) {
  auto fail = [](const std::string& why) { throw std::invalid_argument("InfluxDB sink: " + why); };
  if (o.urls.empty()) fail("no URL (e.g. http://localhost:8086)");
  for (const auto& u : o.urls) {
    if (!u.starts_with("http://") && !u.starts_with("https://")) {
      fail("URL '" + u + "' does not start with http:// or https://");
    }
  }
  if (o.api_version == 1 && o.database.empty()) fail("no database");
  if (o.api_version == 2 && (o.org.empty() || o.bucket.empty())) fail("no org or bucket");
  if (o.api_version != 1 && o.api_version != 2) fail("api_version must be 1 or 2");
  if (o.batch_points == 0 || o.batch_bytes == 0) fail("batch sizes must be positive");
  if (o.max_buffered_points < o.batch_points) {
    fail("max_buffered_points must be at least batch_points");
  }
  if (o.flush_interval <= absl::ZeroDuration()) fail("flush_interval must be positive");
  if (o.flush_jitter < 0 || o.flush_jitter >= 1) fail("flush_jitter must be in [0, 1)");
  if (o.retry_initial <= absl::ZeroDuration() || o.retry_max < o.retry_initial) {
    fail("retry_initial must be positive and at most retry_max");
  }
}

}  // namespace

InfluxSink::InfluxSink(InfluxSinkOptions options) : options_(std::move(options)) {
  Validate(options_);
}
InfluxSink::InfluxSink(const InfluxSink& other) : options_(other.options_) {}
InfluxSink::~InfluxSink() = default;

InfluxSink InfluxSink::Builder::Build() const { return InfluxSink(o_); }

void InfluxSink::Open(RuntimeContext& ctx) {
  metrics_ = &ctx.Metrics();
  writer_ = std::make_unique<internal::InfluxWriter>(
      options_, absl::StrCat("InfluxDB sink ", ctx.SubtaskIndex() + 1, "/", ctx.Parallelism()),
      &metrics_->GetHistogram("influx_batch_duration_seconds",
                              "The write request of each batch InfluxDB took (its last attempt)."));
  // Points of the restored checkpoint that InfluxDB had not acknowledged: sent first.
  for (const std::string& chunk : restored_) {
    for (absl::string_view line : absl::StrSplit(chunk, '\n', absl::SkipEmpty())) {
      ThrowIfError(writer_->Add(std::string(line)));
    }
  }
  restored_.clear();
}

void InfluxSink::Invoke(const InfluxPoint& point, const SinkContext& ctx) {
  absl::StatusOr<std::string> line = point.ToLineProtocol(options_.precision);
  if (!line.ok() && !point.has_time() && ctx.timestamp() != kNoTimestamp) {
    // A point without its own time takes its record's (milliseconds).
    InfluxPoint timed = point;
    timed.Time(ctx.timestamp(), InfluxPrecision::kMilliseconds);
    line = timed.ToLineProtocol(options_.precision);
  }
  ThrowIfError(line.status());
  ThrowIfError(writer_->Add(std::move(*line)));
}

void InfluxSink::Finish() {
  // The end of bounded input: everything buffered goes out before the job finishes.
  ThrowIfError(writer_->Flush());
  PublishCounters();
}

void InfluxSink::Close() {
  if (writer_) PublishCounters();
  writer_.reset();  // stops the sender (after Finish nothing is left)
}

std::vector<std::string> InfluxSink::SnapshotState(int64_t) {
  ThrowIfError(writer_->status());
  PublishCounters();
  std::vector<std::string> chunks;
  std::string chunk;
  for (const std::string& line : writer_->Unacknowledged()) {
    chunk += line;
    chunk.push_back('\n');
    if (chunk.size() >= kStateChunkBytes) chunks.push_back(std::move(chunk)), chunk.clear();
  }
  if (!chunk.empty()) chunks.push_back(std::move(chunk));
  return chunks;
}

void InfluxSink::RestoreState(std::vector<std::string> items) { restored_ = std::move(items); }

void InfluxSink::PublishCounters() {
  if (metrics_ == nullptr || !writer_) return;
  const auto& s = writer_->stats();
  auto set = [&](const char* name, int64_t value) { metrics_->GetCounter(name).Set(value); };
  set("influx_points_written", s.points_written);
  set("influx_points_rejected", s.points_rejected);
  set("influx_points_retried", s.points_retried);
  set("influx_batches", s.batches);
  metrics_
      ->GetGauge("influx_buffered_points",
                 "Points the sink holds that InfluxDB has not acknowledged.")
      .Set(static_cast<double>(writer_->buffered()));
}

}  // namespace sluice
