#include "runtime/chaos_monkey.h"

#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace sluice::internal {
namespace {

const char* MomentName(ChaosMonkey::Moment m) {
  switch (m) {
    case ChaosMonkey::Moment::kAny:
      return "while processing";
    case ChaosMonkey::Moment::kAlignment:
      return "during barrier alignment";
    case ChaosMonkey::Moment::kAsyncSnapshot:
      return "during the asynchronous snapshot phase";
  }
  return "";
}

}  // namespace

ChaosMonkey::ChaosMonkey(absl::Duration every, int max_failures, uint64_t seed)
    : every_(every), max_failures_(max_failures), rng_(seed) {}

ChaosMonkey::~ChaosMonkey() { EndAttempt(); }

void ChaosMonkey::BeginAttempt(std::vector<bool> has_inputs) {
  EndAttempt();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
  }
  victim_.store(-1);
  if (failures() >= max_failures_ || has_inputs.empty()) return;
  thread_ = std::thread([this, inputs = std::move(has_inputs)] { Loop(inputs); });
}

void ChaosMonkey::EndAttempt() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  victim_.store(-1);
}

void ChaosMonkey::Loop(std::vector<bool> has_inputs) {
  std::unique_lock<std::mutex> lock(mu_);
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  std::uniform_int_distribution<int> task(0, static_cast<int>(has_inputs.size()) - 1);
  std::uniform_int_distribution<int> moment(0, 2);
  while (failures() < max_failures_) {
    const auto wait = absl::ToChronoMicroseconds(every_ * jitter(rng_));
    if (cv_.wait_for(lock, wait, [&] { return stop_; })) return;
    // A victim that has not reached its moment by now is replaced by a new one. Only tasks
    // with inputs align barriers.
    const int t = task(rng_);
    Moment m = static_cast<Moment>(moment(rng_));
    if (m == Moment::kAlignment && !has_inputs[t]) m = Moment::kAny;
    victim_.store(t * 4 + static_cast<int>(m), std::memory_order_relaxed);
  }
}

void ChaosMonkey::MaybeCrash(int task_index, Moment moment, const std::string& task_name) {
  const int v = victim_.load(std::memory_order_relaxed);
  if (v < 0 || v / 4 != task_index) [[likely]] {
    return;
  }
  const Moment wanted = static_cast<Moment>(v % 4);
  if (wanted != Moment::kAny && wanted != moment) return;
  int expected = v;
  if (!victim_.compare_exchange_strong(expected, -1)) return;
  const int n = failures_.fetch_add(1) + 1;
  const std::string message = absl::StrCat("chaos: simulated crash ", n, " of ", max_failures_,
                                           " of task ", task_name, " ", MomentName(wanted));
  LOG(WARNING) << message;
  throw std::runtime_error(message);
}

}  // namespace sluice::internal
