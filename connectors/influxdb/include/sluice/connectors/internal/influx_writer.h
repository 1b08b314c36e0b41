#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sluice/connectors/influxdb.h"
#include "sluice/core/log_rate_limiter.h"
#include "sluice/core/mutex.h"
#include "sluice/metrics/metrics.h"

namespace sluice::internal {

/// What InfluxDB answered to one write request.
struct InfluxResponse {
  long status = 0;               // HTTP status; 0 if there was no answer
  std::string transport_error;   // why there was no answer (connect, timeout, reset)
  bool transport_fatal = false;  // ... and retrying cannot help (TLS verification, bad URL)
  std::string body;              // the server's text ({"error": ...})
  absl::Duration retry_after = absl::ZeroDuration();  // Retry-After, if sent
};

/// One HTTP connection (libcurl easy handle, kept alive between requests) to the write
/// endpoint. Sender thread only.
class InfluxHttpClient {
 public:
  explicit InfluxHttpClient(const InfluxSinkOptions& options);
  ~InfluxHttpClient();
  InfluxHttpClient(const InfluxHttpClient&) = delete;
  InfluxHttpClient& operator=(const InfluxHttpClient&) = delete;

  /// POSTs `body` (line protocol, gzip-compressed if `gzipped`) to the write endpoint of
  /// `base_url`. `abort` is polled during the request: when it turns true the request stops.
  InfluxResponse Write(const std::string& base_url, const std::string& body, bool gzipped,
                       const std::atomic<bool>& abort);

 private:
  const InfluxSinkOptions& options_;
  void* curl_ = nullptr;  // CURL*, kept out of this header
  std::string query_;     // the write endpoint's path and parameters
};

/// Counters of a writer, updated by the sender thread.
struct InfluxWriterStats {
  std::atomic<int64_t> points_written{0};
  std::atomic<int64_t> points_rejected{0};
  std::atomic<int64_t> points_retried{0};
  std::atomic<int64_t> batches{0};
};

/// The sending half of the InfluxDB sink: a bounded queue of encoded points and a sender
/// thread that takes batches off it (by points, bytes or time) and writes them, one request
/// at a time, retrying as the options say. Points stay "unacknowledged" until InfluxDB
/// answered for them, so a checkpoint can save exactly those.
class InfluxWriter {
 public:
  /// `name` identifies the sink subtask in log lines; the sender thread observes each written
  /// batch's request time (its last attempt) in `batch_duration` (none: null).
  InfluxWriter(InfluxSinkOptions options, std::string name, Histogram* batch_duration = nullptr);
  /// Stops the sender without waiting for delivery (Flush first to deliver).
  ~InfluxWriter();
  InfluxWriter(const InfluxWriter&) = delete;
  InfluxWriter& operator=(const InfluxWriter&) = delete;

  /// Queues one line of line protocol; blocks while max_buffered_points are buffered (back
  /// pressure). Returns the error that failed the writer, if one did.
  absl::Status Add(std::string line);
  /// Sends everything queued now and waits until InfluxDB answered for all of it.
  absl::Status Flush();
  /// The lines not acknowledged yet, oldest first (in flight, then queued).
  std::vector<std::string> Unacknowledged() const;
  /// The error that failed the writer (a fatal answer, or retries beyond max_retry_time).
  absl::Status status() const;
  size_t buffered() const;
  const InfluxWriterStats& stats() const { return stats_; }

 private:
  void Run();
  /// Writes `lines` until InfluxDB took or rejected them; an error status is fatal.
  absl::Status Send(const std::vector<std::string>& lines, size_t begin, size_t end);
  /// Waits `d` unless the writer stops meanwhile; false if it stopped.
  bool Sleep(absl::Duration d);

  const InfluxSinkOptions options_;
  const std::string name_;
  Histogram* const batch_duration_;
  LogRateLimiter retries_logged_{absl::Seconds(10)};  // an outage retries for a long time
  std::unique_ptr<InfluxHttpClient> http_;
  size_t url_index_ = 0;    // sender thread
  std::mt19937_64 random_;  // sender thread

  mutable Mutex mu_;
  CondVar cv_;
  std::deque<std::string> queue_ SLUICE_GUARDED_BY(mu_);
  size_t queued_bytes_ SLUICE_GUARDED_BY(mu_) = 0;
  absl::Time first_queued_ SLUICE_GUARDED_BY(mu_);             // when the oldest queued line came
  std::vector<std::string> in_flight_ SLUICE_GUARDED_BY(mu_);  // written by the sender
  /// The sender thread's read of in_flight_ without the lock: only it changes in_flight_
  /// (under the lock), so its unlocked read races with no write.
  const std::vector<std::string>& InFlightForSender() const SLUICE_NO_THREAD_SAFETY_ANALYSIS {
    return in_flight_;
  }
  bool flush_requested_ SLUICE_GUARDED_BY(mu_) = false;
  absl::Status failure_ SLUICE_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  InfluxWriterStats stats_;
  std::thread sender_;
};

}  // namespace sluice::internal
