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
    case ChaosMonkey::Moment::kSyncSnapshot:
      return "during the synchronous snapshot phase";
    case ChaosMonkey::Moment::kAsyncSnapshot:
      return "during the asynchronous snapshot phase";
    case ChaosMonkey::Moment::kAfterAck:
      return "after acknowledging a checkpoint";
    case ChaosMonkey::Moment::kNotifyComplete:
      return "while checkpoint completion is delivered";
    case ChaosMonkey::Moment::kRestore:
      return "right after restoring";
  }
  return "";
}

}  // namespace

ChaosMonkey::ChaosMonkey(ChaosOptions options) : options_(options), rng_(options.seed) {}

ChaosMonkey::~ChaosMonkey() { EndAttempt(); }

void ChaosMonkey::BeginAttempt(std::vector<Target> tasks, bool restored) {
  EndAttempt();
  {
    MutexLock lock(&mu_);
    stop_ = false;
  }
  victim_.store(-1);
  if (failures() >= options_.max_failures || tasks.empty()) return;
  if (options_.every_records > 0) {
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    const auto after =
        static_cast<int64_t>(static_cast<double>(options_.every_records) * jitter(rng_));
    ChooseVictim(tasks, restored, after);
    return;
  }
  thread_ = std::thread([this, targets = std::move(tasks)] { Loop(targets); });
}

void ChaosMonkey::EndAttempt() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
  victim_.store(-1);
}

void ChaosMonkey::ChooseVictim(const std::vector<Target>& tasks, bool restored,
                               int64_t after_records) {
  std::uniform_int_distribution<int> task(0, static_cast<int>(tasks.size()) - 1);
  std::uniform_int_distribution<int> moment(0, kMoments - 1);
  const int t = task(rng_);
  Moment m = static_cast<Moment>(moment(rng_));
  // Only tasks with inputs align barriers; only a restored attempt restores.
  if ((m == Moment::kAlignment && !tasks[t].has_inputs) || (m == Moment::kRestore && !restored)) {
    m = Moment::kAny;
  }
  const int64_t records = m == Moment::kRestore ? 0 : after_records;
  if (options_.every_records > 0) {
    // Says where the attempt will crash, so that a run that never gets there can be seen.
    LOG(INFO) << "chaos: this attempt crashes task " << tasks[t].name << " " << MomentName(m)
              << " after " << records << " records";
  }
  victim_records_.store(records, std::memory_order_relaxed);
  victim_.store(t * kMoments + static_cast<int>(m), std::memory_order_release);
}

void ChaosMonkey::Loop(std::vector<Target> tasks) {
  MutexLock lock(&mu_);
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  while (failures() < options_.max_failures) {
    const absl::Duration wait = options_.every * jitter(rng_);
    if (cv_.WaitFor(&mu_, wait, [&]() SLUICE_REQUIRES(mu_) { return stop_; })) return;
    // A victim that has not reached its moment by now is replaced by a new one. The
    // attempt's restore is over by now.
    ChooseVictim(tasks, /*restored=*/false, 0);
  }
}

void ChaosMonkey::MaybeCrash(int task_index, Moment moment, const std::string& task_name,
                             int64_t records) {
  const int v = victim_.load(std::memory_order_acquire);
  if (v < 0 || v / kMoments != task_index) [[likely]] {
    return;
  }
  const Moment wanted = static_cast<Moment>(v % kMoments);
  if (wanted != Moment::kAny && wanted != moment) return;
  if (records < victim_records_.load(std::memory_order_relaxed)) return;
  int expected = v;
  if (!victim_.compare_exchange_strong(expected, -1)) return;
  const int n = failures_.fetch_add(1) + 1;
  const std::string message =
      absl::StrCat("chaos: simulated crash ", n, " of ", options_.max_failures, " of task ",
                   task_name, " ", MomentName(moment), " (after ", records, " records)");
  LOG(WARNING) << message;
  throw std::runtime_error(message);
}

}  // namespace sluice::internal
