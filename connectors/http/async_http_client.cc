#include "sluice/connectors/async_http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sluice {

namespace {

struct Request {
  std::string url;
  AsyncHttpClient::Callback done;
  std::string body;
  char error[CURL_ERROR_SIZE] = {0};
};

size_t AppendBody(char* data, size_t size, size_t count, void* request) {
  static_cast<Request*>(request)->body.append(data, size * count);
  return size * count;
}

absl::Status ErrorOf(CURLcode code, const Request& r) {
  const std::string what = absl::StrCat("GET ", r.url, ": ", curl_easy_strerror(code),
                                        r.error[0] != 0 ? absl::StrCat(" (", r.error, ")") : "");
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(what);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(what);
    default:
      return absl::UnavailableError(what);
  }
}

}  // namespace

/// The event loop: one thread that owns the multi handle and every transfer. Other threads
/// only queue requests and wake it (curl_multi_wakeup is the one call libcurl allows from
/// another thread).
class AsyncHttpClient::Loop {
 public:
  explicit Loop(AsyncHttpClientOptions options) : options_(std::move(options)) {
    static std::once_flag curl_init;
    std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    multi_ = curl_multi_init();
    // The client starts at most max_connections transfers at once itself (the rest wait in
    // `waiting_`): libcurl's own queue for transfers over a connection limit has lost
    // transfers in some versions. Idle connections stay open for reuse.
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(max_connections_));
    thread_ = std::thread([this] { Run(); });
  }

  ~Loop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    curl_multi_wakeup(multi_);
    thread_.join();
    curl_multi_cleanup(multi_);
  }

  void Submit(std::string url, Callback done) {
    auto r = std::make_unique<Request>();
    r->url = std::move(url);
    r->done = std::move(done);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!stopping_) {
        in_flight_.fetch_add(1, std::memory_order_relaxed);
        queued_.push_back(std::move(r));
        r = nullptr;
      }
    }
    if (r != nullptr) {
      r->done(absl::CancelledError(absl::StrCat("GET ", r->url, ": the HTTP client closed")));
      return;
    }
    curl_multi_wakeup(multi_);
  }

  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

 private:
  void Run() {
    for (;;) {
      std::deque<std::unique_ptr<Request>> added;
      bool stopping;
      {
        std::lock_guard<std::mutex> lock(mu_);
        added.swap(queued_);
        stopping = stopping_;
      }
      for (auto& r : added) waiting_.push_back(std::move(r));
      if (stopping) break;
      while (!waiting_.empty() && static_cast<int>(active_.size()) < max_connections_) {
        Start(std::move(waiting_.front()));
        waiting_.pop_front();
      }
      int running = 0;
      curl_multi_perform(multi_, &running);
      int left = 0;
      bool finished = false;
      while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
        if (m->msg == CURLMSG_DONE) {
          Finish(m->easy_handle, m->data.result);
          finished = true;
        }
      }
      // A transfer that finished frees a connection for a waiting one: no need to sleep.
      if (!(finished && !waiting_.empty())) curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
    // Closing: whatever is still out is given up.
    for (auto& [easy, r] : active_) {
      curl_multi_remove_handle(multi_, easy);
      curl_easy_cleanup(easy);
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
      r->done(absl::CancelledError(absl::StrCat("GET ", r->url, ": the HTTP client closed")));
    }
    active_.clear();
    for (auto& r : waiting_) {
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
      r->done(absl::CancelledError(absl::StrCat("GET ", r->url, ": the HTTP client closed")));
    }
    waiting_.clear();
  }

  void Start(std::unique_ptr<Request> r) {
    CURL* easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, r->url.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, AppendBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, r.get());
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(options_.request_timeout)));
    curl_multi_add_handle(multi_, easy);
    active_.emplace(easy, std::move(r));
  }

  void Finish(CURL* easy, CURLcode code) {
    auto it = active_.find(easy);
    std::unique_ptr<Request> r = std::move(it->second);
    active_.erase(it);
    absl::StatusOr<HttpResponse> result;
    if (code == CURLE_OK) {
      HttpResponse response;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
      response.body = std::move(r->body);
      result = std::move(response);
    } else {
      result = ErrorOf(code, *r);
    }
    curl_multi_remove_handle(multi_, easy);
    curl_easy_cleanup(easy);
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    r->done(std::move(result));
  }

  const AsyncHttpClientOptions options_;
  const int max_connections_ = std::max(1, options_.max_connections);
  CURLM* multi_ = nullptr;
  std::mutex mu_;
  std::deque<std::unique_ptr<Request>> queued_;  // guarded by mu_
  bool stopping_ = false;                        // guarded by mu_
  std::atomic<int> in_flight_{0};
  // Loop thread only.
  absl::flat_hash_map<CURL*, std::unique_ptr<Request>> active_;  // at most max_connections_
  std::deque<std::unique_ptr<Request>> waiting_;
  std::thread thread_;
};

AsyncHttpClient::AsyncHttpClient(AsyncHttpClientOptions options)
    : loop_(std::make_unique<Loop>(std::move(options))) {}

AsyncHttpClient::~AsyncHttpClient() = default;

void AsyncHttpClient::Get(std::string url, Callback done) {
  loop_->Submit(std::move(url), std::move(done));
}

int AsyncHttpClient::in_flight() const { return loop_->in_flight(); }

std::string AsyncHttpClient::UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace sluice
