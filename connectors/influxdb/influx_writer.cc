#include "sluice/connectors/internal/influx_writer.h"

#include <curl/curl.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"
#include "sluice/core/backoff.h"

namespace sluice::internal {
namespace {

const char* PrecisionParameter(InfluxPrecision p, int api_version) {
  switch (p) {
    case InfluxPrecision::kNanoseconds:
      return api_version == 1 ? "n" : "ns";
    case InfluxPrecision::kMicroseconds:
      return api_version == 1 ? "u" : "us";
    case InfluxPrecision::kMilliseconds:
      return "ms";
    case InfluxPrecision::kSeconds:
      return "s";
  }
  return "ms";
}

std::string UrlEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

/// `in` gzip-compressed; nothing if zlib fails (the body then goes uncompressed).
std::optional<std::string> Gzip(const std::string& in) {
  z_stream z{};
  // 15 + 16: a gzip header instead of zlib's.
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return std::nullopt;
  }
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int done = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (done != Z_STREAM_END) return std::nullopt;
  return out;
}

size_t CollectBody(char* data, size_t size, size_t n, void* user) {
  static_cast<InfluxResponse*>(user)->body.append(data, size * n);
  return size * n;
}

int AbortIfAsked(void* abort, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(abort)->load() ? 1 : 0;
}

/// The server's message out of `{"error":"..."}` (or the body as it is).
std::string ServerText(const InfluxResponse& r) {
  const nlohmann::json doc = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object() && doc.contains("error") && doc["error"].is_string()) {
    return doc["error"].get<std::string>();
  }
  return std::string(absl::StripAsciiWhitespace(r.body));
}

/// How many points a 400 rejected: those it could not parse (one "unable to parse" each)
/// plus those it dropped ("dropped=N": type conflicts, beyond retention); all of the batch if
/// it says neither. (InfluxDB 1.6 names only one kind when a batch has both; the sink's own
/// encoding never produces unparsable lines.)
int64_t RejectedPoints(const std::string& text, int64_t batch) {
  int64_t rejected = 0;
  for (size_t at = text.find("unable to parse"); at != std::string::npos;
       at = text.find("unable to parse", at + 1)) {
    ++rejected;
  }
  const size_t at = text.rfind("dropped=");
  if (at != std::string::npos) {
    size_t end = at + 8;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    int64_t n = 0;
    if (absl::SimpleAtoi(text.substr(at + 8, end - at - 8), &n)) rejected += n;
  } else if (rejected == 0) {
    return batch;
  }
  return std::clamp<int64_t>(rejected, 0, batch);
}

}  // namespace

InfluxHttpClient::InfluxHttpClient(const InfluxSinkOptions& options) : options_(options) {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
  const char* precision = PrecisionParameter(options.precision, options.api_version);
  if (options.api_version == 2) {
    query_ = absl::StrCat("/api/v2/write?org=", UrlEscape(options.org),
                          "&bucket=", UrlEscape(options.bucket), "&precision=", precision);
  } else {
    query_ = absl::StrCat("/write?db=", UrlEscape(options.database), "&precision=", precision);
    if (!options.retention_policy.empty()) {
      absl::StrAppend(&query_, "&rp=", UrlEscape(options.retention_policy));
    }
    if (!options.consistency.empty()) {
      absl::StrAppend(&query_, "&consistency=", UrlEscape(options.consistency));
    }
  }
}

InfluxHttpClient::~InfluxHttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

InfluxResponse InfluxHttpClient::Write(const std::string& base_url, const std::string& body,
                                       bool gzipped, const std::atomic<bool>& abort) {
  InfluxResponse r;
  CURL* c = static_cast<CURL*>(curl_);
  if (c == nullptr) {
    r.transport_error = "libcurl could not be initialized";
    return r;
  }
  curl_easy_reset(c);  // keeps the connection cache
  const std::string url = base_url + query_;
  const std::string& sent = body;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: text/plain; charset=utf-8");
  if (gzipped) headers = curl_slist_append(headers, "Content-Encoding: gzip");
  std::string auth;
  if (options_.api_version == 2 && !options_.token.empty()) {
    auth = "Authorization: Token " + options_.token;
    headers = curl_slist_append(headers, auth.c_str());
  }
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, sent.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(sent.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.request_timeout)));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, AbortIfAsked);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(&abort));
  if (options_.api_version == 1 && !options_.user.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, options_.user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, options_.password.c_str());
  }
  if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  if (options_.insecure_skip_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  const CURLcode code = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (code != CURLE_OK) {
    r.transport_error = curl_easy_strerror(code);
    r.transport_fatal = code == CURLE_PEER_FAILED_VERIFICATION ||
                        code == CURLE_SSL_CACERT_BADFILE || code == CURLE_SSL_CERTPROBLEM ||
                        code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT;
    r.body.clear();
    return r;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  // Retry-After in either form, seconds or an HTTP date (libcurl turns a date into seconds).
  curl_off_t retry_after = 0;
  if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0) {
    r.retry_after = absl::Seconds(retry_after);
  }
  return r;
}

InfluxWriter::InfluxWriter(InfluxSinkOptions options, std::string name, Histogram* batch_duration)
    : options_(std::move(options)),
      name_(std::move(name)),
      batch_duration_(batch_duration),
      http_(std::make_unique<InfluxHttpClient>(options_)),
      random_(std::random_device{}()) {
  sender_ = std::thread([this] { Run(); });
}

InfluxWriter::~InfluxWriter() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  sender_.join();
}

absl::Status InfluxWriter::Add(std::string line) {
  UniqueMutexLock lock(&mu_);
  cv_.Wait(&mu_, [&]() SLUICE_REQUIRES(mu_) {
    return !failure_.ok() || queue_.size() + in_flight_.size() < options_.max_buffered_points;
  });
  if (!failure_.ok()) return failure_;
  const bool was_empty = queue_.empty();
  if (was_empty) first_queued_ = absl::Now();
  queued_bytes_ += line.size() + 1;
  queue_.push_back(std::move(line));
  // The sender needs waking only to start its linger timer or when a batch is full.
  if (was_empty || queue_.size() >= options_.batch_points ||
      queued_bytes_ >= options_.batch_bytes) {
    cv_.SignalAll();
  }
  return absl::OkStatus();
}

absl::Status InfluxWriter::Flush() {
  UniqueMutexLock lock(&mu_);
  flush_requested_ = true;
  cv_.SignalAll();
  cv_.Wait(&mu_, [&]() SLUICE_REQUIRES(mu_) {
    return !failure_.ok() || (queue_.empty() && in_flight_.empty());
  });
  flush_requested_ = false;
  return failure_;
}

std::vector<std::string> InfluxWriter::Unacknowledged() const {
  MutexLock lock(&mu_);
  std::vector<std::string> out(in_flight_.begin(), in_flight_.end());
  out.insert(out.end(), queue_.begin(), queue_.end());
  return out;
}

absl::Status InfluxWriter::status() const {
  MutexLock lock(&mu_);
  return failure_;
}

size_t InfluxWriter::buffered() const {
  MutexLock lock(&mu_);
  return queue_.size() + in_flight_.size();
}

void InfluxWriter::Run() {
  UniqueMutexLock lock(&mu_);
  absl::Duration linger = options_.flush_interval;
  while (!stop_) {
    if (queue_.empty()) {
      cv_.Wait(&mu_, [&]() SLUICE_REQUIRES(mu_) { return stop_ || !queue_.empty(); });
      continue;
    }
    const bool full =
        queue_.size() >= options_.batch_points || queued_bytes_ >= options_.batch_bytes;
    const absl::Time due = first_queued_ + linger;
    if (!full && !flush_requested_ && absl::Now() < due) {
      cv_.WaitUntil(&mu_, due);
      continue;
    }
    // The batch: as many queued lines as fit (at least one).
    size_t bytes = 0;
    while (!queue_.empty() && in_flight_.size() < options_.batch_points &&
           (in_flight_.empty() || bytes + queue_.front().size() + 1 <= options_.batch_bytes)) {
      bytes += queue_.front().size() + 1;
      in_flight_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_bytes_ -= bytes;
    // Lines left behind have waited as long as this batch: they go next without lingering.
    std::uniform_real_distribution<double> jitter(1 - options_.flush_jitter,
                                                  1 + options_.flush_jitter);
    linger = options_.flush_interval * jitter(random_);
    lock.Unlock();
    const std::vector<std::string>& batch = InFlightForSender();
    absl::Status sent = Send(batch, 0, batch.size());
    lock.Lock();
    if (stop_) break;
    in_flight_.clear();
    if (!sent.ok()) {
      failure_ = sent;
      LOG(ERROR) << name_ << ": " << sent.message();
      cv_.SignalAll();
      break;
    }
    cv_.SignalAll();  // room in the buffer; flush progress
  }
}

bool InfluxWriter::Sleep(absl::Duration d) {
  UniqueMutexLock lock(&mu_);
  return !cv_.WaitUntil(&mu_, absl::Now() + d, [&]() SLUICE_REQUIRES(mu_) { return stop_.load(); });
}

absl::Status InfluxWriter::Send(const std::vector<std::string>& lines, size_t begin, size_t end) {
  const int64_t n = static_cast<int64_t>(end - begin);
  std::string body;
  for (size_t i = begin; i < end; ++i) {
    body += lines[i];
    body.push_back('\n');
  }
  // Compressed once per batch, not per attempt.
  bool gzipped = false;
  if (options_.gzip) {
    if (std::optional<std::string> compressed = Gzip(body)) {
      body = std::move(*compressed);
      gzipped = true;
    }
  }
  const absl::Time first_try = absl::Now();
  Backoff backoff({.initial = options_.retry_initial,
                   .max = options_.retry_max,
                   .multiplier = 2.0,
                   .jitter = 0.5},
                  random_());
  for (int attempt = 0;; ++attempt) {
    const std::string& url = options_.urls[url_index_ % options_.urls.size()];
    const absl::Time start = absl::Now();
    const InfluxResponse r = http_->Write(url, body, gzipped, stop_);
    if (stop_) return absl::CancelledError("the sink stopped");
    const std::string text = ServerText(r);
    std::string problem;
    if (r.status >= 200 && r.status < 300) {
      stats_.points_written += n;
      stats_.batches += 1;
      if (batch_duration_ != nullptr) {
        batch_duration_->Observe(absl::ToDoubleSeconds(absl::Now() - start));
      }
      if (attempt > 0) {
        LOG(INFO) << name_ << ": batch of " << n << " points recovered: written after " << attempt
                  << (attempt == 1 ? " retry" : " retries");
      }
      return absl::OkStatus();
    }
    if (r.status == 0 && r.transport_fatal) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot write to InfluxDB at ", url, ": ", r.transport_error));
    }
    if (r.status == 0) {
      problem = absl::StrCat("no answer from ", url, ": ", r.transport_error);
      ++url_index_;  // failover
    } else if (r.status == 413) {
      if (n == 1) {
        stats_.points_rejected += 1;
        LOG(ERROR) << name_ << ": InfluxDB rejected a point larger than its max-body-size (413), "
                   << "not retried: " << lines[begin].substr(0, 200);
        return absl::OkStatus();
      }
      LOG(WARNING) << name_ << ": batch of " << n
                   << " points is too large for the server (413): sending it in two halves";
      const size_t mid = begin + static_cast<size_t>(n / 2);
      if (absl::Status s = Send(lines, begin, mid); !s.ok()) return s;
      return Send(lines, mid, end);
    } else if (r.status == 400 && n > 1 && !absl::StrContains(text, "partial write")) {
      // Refused as a whole (e.g. a type conflict inside the batch): halves until the bad
      // points are alone, so that no good point is lost.
      LOG(WARNING) << name_ << ": InfluxDB refused a batch of " << n << " points as a whole ("
                   << text << "): sending it in two halves to keep the good points";
      const size_t mid = begin + static_cast<size_t>(n / 2);
      if (absl::Status s = Send(lines, begin, mid); !s.ok()) return s;
      return Send(lines, mid, end);
    } else if (r.status == 400) {
      // A partial write: InfluxDB stored the good lines; the bad ones would fail again.
      const int64_t dropped = RejectedPoints(text, n);
      stats_.points_rejected += dropped;
      stats_.points_written += n - dropped;
      stats_.batches += 1;
      LOG(ERROR) << name_ << ": InfluxDB rejected " << dropped << " of " << n
                 << " points (not retried): " << text;
      return absl::OkStatus();
    } else if (r.status == 401 || r.status == 403 || r.status == 404 ||
               absl::StrContains(text, "retention policy not found")) {
      return absl::FailedPreconditionError(
          absl::StrCat("InfluxDB at ", url, " refused the write (HTTP ", r.status, "): ", text));
    } else if (r.status == 429 || r.status >= 500) {
      problem = absl::StrCat("HTTP ", r.status, " from ", url, ": ", text);
      if (r.status >= 500) ++url_index_;  // failover
    } else {
      return absl::FailedPreconditionError(absl::StrCat(
          "InfluxDB at ", url, " answered the write with HTTP ", r.status, ": ", text));
    }
    const absl::Duration waited = absl::Now() - first_try;
    if (options_.max_retry_time > absl::ZeroDuration() && waited >= options_.max_retry_time) {
      return absl::DeadlineExceededError(
          absl::StrCat("InfluxDB did not take a batch of ", n, " points within ",
                       absl::FormatDuration(options_.max_retry_time), " (", attempt + 1,
                       " attempts); last error: ", problem));
    }
    stats_.points_retried += n;
    const absl::Duration delay = std::max(backoff.Next(), r.retry_after);
    int64_t suppressed = 0;
    if (retries_logged_.Allow("retry", absl::Now(), &suppressed)) {
      LOG(WARNING) << name_ << ": retrying batch of " << n << " points (" << attempt + 1 << ") in "
                   << absl::FormatDuration(delay) << " after: " << problem
                   << SuppressedNote(suppressed);
    }
    if (!Sleep(delay)) return absl::CancelledError("the sink stopped");
  }
}

}  // namespace sluice::internal
