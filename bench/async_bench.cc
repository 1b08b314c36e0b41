// async_bench [--latency=DUR] [--seconds=N] [--capacities=1,10,100,1000]
//
// Records per second through AsyncWait (generator -> AsyncWait -> discarding sink, p=1)
// against a service that answers every request after exactly `latency` (20 ms), for each
// capacity, beside the ideal: capacity / latency (Little's law: no more can be in flight).
// Each run sends about `seconds` (2) worth of records at the ideal rate, capped at 2 M. The
// service is a thread of the bench's own that answers in arrival order at arrival + latency,
// so what is measured is the operator's overhead and its ability to keep the capacity full,
// not a network.

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench_util.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/sluice.h"

ABSL_FLAG(absl::Duration, latency, absl::Milliseconds(20), "the service's answer time");
ABSL_FLAG(double, seconds, 2, "about how long each run takes at the ideal rate");
ABSL_FLAG(std::string, capacities, "1,10,100,1000", "the capacities to run, comma-separated");

namespace {

/// Answers each request exactly `latency` after it came, in arrival order, on one thread.
class FixedLatencyService {
 public:
  explicit FixedLatencyService(absl::Duration latency) : latency_(latency) {
    thread_ = std::thread([this] { Work(); });
  }
  ~FixedLatencyService() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Submit(std::function<void()> answer) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.emplace_back(absl::Now() + latency_, std::move(answer));
    cv_.notify_all();
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      if (pending_.empty()) {
        cv_.wait(lock);
        continue;
      }
      const absl::Time due = pending_.front().first;
      if (due > absl::Now()) {
        cv_.wait_for(lock, absl::ToChronoNanoseconds(due - absl::Now()));
        continue;
      }
      auto answer = std::move(pending_.front().second);
      pending_.pop_front();
      lock.unlock();
      answer();
      lock.lock();
    }
  }

  const absl::Duration latency_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<absl::Time, std::function<void()>>> pending_;
  bool stopping_ = false;
  std::thread thread_;
};

class AskService final : public sluice::AsyncFunction<int64_t, int64_t> {
 public:
  explicit AskService(std::shared_ptr<FixedLatencyService> service)
      : service_(std::move(service)) {}
  void AsyncInvoke(const int64_t& v, sluice::ResultFuture<int64_t> result) override {
    service_->Submit([v, result]() mutable { result.Complete(v + 1); });
  }

 private:
  std::shared_ptr<FixedLatencyService> service_;
};

}  // namespace

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  const absl::Duration latency = absl::GetFlag(FLAGS_latency);
  std::printf("AsyncWait against a service answering in %s, p=1, ordered:\n",
              absl::FormatDuration(latency).c_str());
  std::printf("%10s %12s %14s %14s %8s\n", "capacity", "records", "records/s", "ideal/s",
              "of ideal");
  const std::vector<std::string> capacities = absl::StrSplit(absl::GetFlag(FLAGS_capacities), ',');
  for (const std::string& c : capacities) {
    const int capacity = std::stoi(c);
    const double ideal = capacity / absl::ToDoubleSeconds(latency);
    const auto records =
        static_cast<uint64_t>(std::clamp(ideal * absl::GetFlag(FLAGS_seconds), 10.0, 2'000'000.0));
    auto service = std::make_shared<FixedLatencyService>(latency);
    sluice::Pipeline p("async-bench");
    sluice::AsyncOptions o;
    o.capacity = capacity;
    p.Source(
         sluice::Generator([](uint64_t i) { return static_cast<int64_t>(i); }, {.count = records}),
         "Generator")
        .AsyncWait(AskService(service), o, "AskService")
        .Sink(sluice::DiscardingSink<int64_t>{}, "Discard");
    const double seconds = sluice::bench::RunSeconds(p);
    const double rate = static_cast<double>(records) / seconds;
    std::printf("%10d %12llu %14.0f %14.0f %7.1f%%\n", capacity,
                static_cast<unsigned long long>(records), rate, ideal, 100 * rate / ideal);
  }
  return 0;
}
