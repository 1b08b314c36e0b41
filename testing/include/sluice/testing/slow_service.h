#pragma once

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sluice::testing {

/// What asynchronous I/O tests call: a service that answers requests from `threads` threads of
/// its own, each after a random delay up to `max_delay` (so in another order than they came;
/// 0: only when Release() is called). Counts the most requests it held at once (not those
/// being answered: their answers may already have reached the operator).
class SlowService {
 public:
  SlowService(absl::Duration max_delay, uint64_t seed, int threads = 3)
      : max_delay_(max_delay), random_(seed) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~SlowService() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  /// Runs `answer` later on a service thread.
  void Submit(std::function<void()> answer) {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Duration delay =
        max_delay_ == absl::ZeroDuration()
            ? absl::InfiniteDuration()
            : max_delay_ * std::uniform_real_distribution<double>(0, 1)(random_);
    pending_.emplace(absl::Now() + delay, std::move(answer));
    max_held_ = std::max(max_held_, static_cast<int>(pending_.size()));
    cv_.notify_all();
  }
  /// Makes every request held so far due now (a service without its own delays).
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    std::multimap<absl::Time, std::function<void()>> due;
    for (auto& [at, answer] : pending_) due.emplace(absl::InfinitePast(), std::move(answer));
    pending_.swap(due);
    cv_.notify_all();
  }
  int max_held() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_held_;
  }
  /// Requests not yet being answered.
  int held() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(pending_.size());
  }
  /// Requests whose answer returned.
  int answered() {
    std::lock_guard<std::mutex> lock(mu_);
    return answered_;
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      if (pending_.empty() || pending_.begin()->first > absl::Now()) {
        const absl::Time next =
            pending_.empty() ? absl::Now() + absl::Seconds(1) : pending_.begin()->first;
        cv_.wait_for(lock, absl::ToChronoNanoseconds(
                               std::min(next, absl::Now() + absl::Seconds(1)) - absl::Now()));
        continue;
      }
      auto answer = std::move(pending_.begin()->second);
      pending_.erase(pending_.begin());
      lock.unlock();
      answer();
      lock.lock();
      ++answered_;
    }
  }

  const absl::Duration max_delay_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::mt19937_64 random_;
  std::multimap<absl::Time, std::function<void()>> pending_;
  int answered_ = 0;
  int max_held_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace sluice::testing
