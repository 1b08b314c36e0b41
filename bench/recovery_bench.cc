// recovery_bench [--trials=N] [--heartbeat-timeout=DUR] [--silent-trials=N] [--host-trials=N]
//                 [--keys=N] [--local-recovery=false] [--state-backend=rocksdb] [--state-mb=N]
//
// How long a job stands still when a TaskManager dies. A JobManager with its default settings
// and three TaskManagers of one slot each run window_bench's windowed job (window_job.so) at
// parallelism 2, checkpointed every 100 ms and throttled so that it runs for a while. Once
// the job has completed a checkpoint, one of its TaskManagers is SIGKILLed (or, for a silent
// host, SIGSTOPped: its connection stays open and only the heartbeat timeout finds it) and
// replaced by a new one. `--host-trials` cut a host off instead: a TaskManager runs in a
// network namespace of the bench's own whose veth link the bench takes down (nothing is
// reset, packets vanish); it needs root and `ip`, else those trials are skipped, saying so.
// Recovery time = the first record the restored run processed (as the
// engine records it: its earliest task's first record, reported by the TaskManagers) minus
// the moment of the kill; then the job is canceled and the next trial starts. Prints each
// trial and p50/p99 per kind. `--keys` sets the state's size (window state per key);
// `--local-recovery=false` makes every restore read checkpoint storage. `--state-mb=N` runs
// state_job.so instead (the latest 1000-byte payload of each of N x 1000 keys, incompressible)
// and kills only once its checkpoints hold N MB. Flink's defaults for comparison: 50 s
// heartbeat timeout before a restart even starts.

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/jobmanager/jobmanager_client.h"
#include "sluice/testing/local_cluster.h"
#include "sluice/testing/network_namespace.h"

ABSL_FLAG(int, trials, 20, "SIGKILLed TaskManagers");
ABSL_FLAG(int, silent_trials, 5, "SIGSTOPped TaskManagers (each costs the heartbeat timeout)");
ABSL_FLAG(int, host_trials, 5,
          "TaskManagers whose host is cut off: a network namespace's link taken down (each "
          "costs the heartbeat timeout; skipped where namespaces cannot be made)");
ABSL_FLAG(std::string, heartbeat_timeout, "",
          "the JobManager's --heartbeat-timeout (default: its own)");
ABSL_FLAG(int, keys, 1000, "distinct keys of the windowed job (its state's size)");
ABSL_FLAG(bool, local_recovery, true, "the TaskManagers' --local-recovery");
ABSL_FLAG(std::string, state_backend, "heap", "the job's --state-backend");
ABSL_FLAG(int, state_mb, 0, "run state_job with this much state (MB) instead of window_job");

namespace {

using sluice::testing::JobManagerProcess;
using sluice::testing::TaskManagerProcess;

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "recovery_bench: %s\n", why.c_str());
  std::exit(1);
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

/// The size of the files under `dir`, in MB (a checkpoint directory being written: files
/// that vanish meanwhile are passed over).
int64_t MegabytesIn(const std::string& dir) {
  std::error_code ec;
  uintmax_t bytes = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    const uintmax_t size = it->file_size(size_ec);
    if (!size_ec) bytes += size;
  }
  return static_cast<int64_t>(bytes >> 20);
}

/// How a trial takes a TaskManager away.
enum class Loss { kKilled, kStopped, kCutOff };

class Cluster {
 public:
  /// With `netns` (available), every process talks over its veth pair and one TaskManager
  /// runs inside it, the one a fresh job's first slot goes to (ids sort it first).
  Cluster(std::vector<std::string> jm_flags, sluice::testing::NetworkNamespace* netns)
      : netns_(netns), jm_(WithBindAddress(std::move(jm_flags), netns)) {
    for (int i = 0; i < 3; ++i) AddTaskManager(/*inside=*/false);
    if (netns_ != nullptr) AddTaskManager(/*inside=*/true);
  }

  /// One trial: returns the recovery time in ms.
  double Trial(int trial, Loss loss) {
    const int state_mb = absl::GetFlag(FLAGS_state_mb);
    const std::string job = absl::StrCat(sluice::testing::BuildDir(), "/bench/",
                                         state_mb > 0 ? "state_job.so" : "window_job.so");
    const std::string job_args =
        state_mb > 0
            ? absl::StrCat("--keys=", int64_t{state_mb} * 1000, " --max-source-rate=400000")
            : absl::StrCat("--keys=", absl::GetFlag(FLAGS_keys), " --max-source-rate=200000");
    const std::string checkpoints = absl::StrCat(checkpoints_.path(), "/", trial);
    auto submitted = sluice::testing::Sluice(
        absl::StrCat("run --jobmanager=", jm_.address(), " --detached ", job,
                     " --parallelism=2 -- --events=1000000000 ", job_args,
                     " --state-backend=", absl::GetFlag(FLAGS_state_backend),
                     " --checkpoint-interval=100ms --checkpoint-dir=", checkpoints));
    if (submitted.exit_code != 0) Die(submitted.output);
    const std::string id = absl::StrCat("job-", trial);
    sluice::cluster::JobStatus status = Await(id, [&](const sluice::cluster::JobStatus& s) {
      return s.state() == sluice::cluster::RUNNING && s.completed_checkpoints() >= 2 &&
             MegabytesIn(checkpoints) >= state_mb;
    });
    const std::string victim = status.taskmanagers(0);
    auto it =
        std::find_if(tms_.begin(), tms_.end(), [&](const auto& tm) { return tm.first == victim; });
    if (it == tms_.end()) Die("no TaskManager " + victim);
    const bool inside = victim.starts_with(kInsidePrefix);
    if ((loss == Loss::kCutOff) != inside) {
      Die(absl::StrCat("the job's first TaskManager is ", victim, ", not the one ",
                       loss == Loss::kCutOff ? "inside" : "outside", " the namespace"));
    }
    const absl::Time killed = absl::Now();
    if (loss == Loss::kCutOff) {
      if (!netns_->SetLinkUp(false)) Die("taking the namespace's link down failed");
    } else {
      it->second->process().Signal(loss == Loss::kKilled ? SIGKILL : SIGSTOP);
    }
    status = Await(id, [](const sluice::cluster::JobStatus& s) {
      return s.restarts() == 1 && s.state() == sluice::cluster::RUNNING;
    });
    // The restored run reports its first record when its parts end: let it process a while.
    absl::SleepFor(absl::Milliseconds(300));
    if (auto canceled = client_.Cancel(id); !canceled.ok())
      Die(std::string(canceled.status().message()));
    status =
        Await(id, [](const sluice::cluster::JobStatus& s) { return s.run_first_record_ms() > 0; });
    if (loss != Loss::kKilled) it->second->process().Signal(SIGKILL);
    tms_.erase(it);
    if (loss == Loss::kCutOff && !netns_->SetLinkUp(true)) Die("bringing the link up failed");
    AddTaskManager(inside);
    std::error_code ec;
    std::filesystem::remove_all(checkpoints, ec);
    return static_cast<double>(status.run_first_record_ms() - absl::ToUnixMillis(killed));
  }

 private:
  static constexpr const char* kInsidePrefix = "recovery-host-";

  static std::vector<std::string> WithBindAddress(std::vector<std::string> flags,
                                                  sluice::testing::NetworkNamespace* netns) {
    if (netns != nullptr) flags.push_back("--bind-address=" + netns->outer_address());
    return flags;
  }

  void AddTaskManager(bool inside) {
    const std::string id = absl::StrCat(inside ? kInsidePrefix : "recovery-tm-", ++tm_count_);
    std::vector<std::string> flags{
        absl::StrCat("--local-recovery=", absl::GetFlag(FLAGS_local_recovery) ? "true" : "false")};
    std::vector<std::string> launcher;
    if (netns_ != nullptr) {
      flags.push_back("--bind-address=" +
                      (inside ? netns_->inner_address() : netns_->outer_address()));
      if (inside) launcher = netns_->Launcher();
    }
    tms_.emplace_back(id, std::make_unique<TaskManagerProcess>(jm_.address(), 1, id, flags, "",
                                                               std::move(launcher)));
    sluice::testing::WaitFor(
        [&] {
          auto s = client_.Status();
          return s.ok() && s->taskmanagers_size() == static_cast<int>(tms_.size());
        },
        10000);
  }

  template <typename Done>
  sluice::cluster::JobStatus Await(const std::string& id, Done done) {
    sluice::cluster::JobStatus last;
    const bool ok = sluice::testing::WaitFor(
        [&] {
          auto s = client_.Job(id);
          if (s.ok()) last = *s;
          return s.ok() && done(last);
        },
        60000);
    if (!ok)
      Die(absl::StrCat(id, " did not get there; last state ",
                       sluice::cluster::JobState_Name(last.state()), ": ", last.failure()));
    return last;
  }

  sluice::testing::NetworkNamespace* netns_;  // null: no host trials
  JobManagerProcess jm_;
  sluice::cluster::JobManagerClient client_{jm_.address()};
  sluice::testing::TempDir checkpoints_;
  std::vector<std::pair<std::string, std::unique_ptr<TaskManagerProcess>>> tms_;
  int tm_count_ = 0;
};

void Report(const char* kind, const std::vector<double>& ms) {
  if (ms.empty()) return;
  std::printf("%-40s p50 %7.0f ms  p99 %7.0f ms  (n=%zu, min %.0f, max %.0f)\n", kind,
              Percentile(ms, 0.5), Percentile(ms, 0.99), ms.size(),
              *std::min_element(ms.begin(), ms.end()), *std::max_element(ms.begin(), ms.end()));
}

}  // namespace

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  std::vector<std::string> jm_flags;
  if (!absl::GetFlag(FLAGS_heartbeat_timeout).empty()) {
    jm_flags.push_back("--heartbeat-timeout=" + absl::GetFlag(FLAGS_heartbeat_timeout));
  }
  std::unique_ptr<sluice::testing::NetworkNamespace> netns;
  if (absl::GetFlag(FLAGS_host_trials) > 0) {
    netns = std::make_unique<sluice::testing::NetworkNamespace>();
    if (!netns->available()) {
      std::printf("host trials skipped: no network namespace here (%s)\n", netns->why().c_str());
      netns.reset();
    }
  }
  std::vector<double> killed, silent, cut_off;
  {
    Cluster cluster(jm_flags, nullptr);
    int trial = 0;
    for (int i = 0; i < absl::GetFlag(FLAGS_trials); ++i) {
      killed.push_back(cluster.Trial(++trial, Loss::kKilled));
      std::printf("  trial %2d: SIGKILL -> first record after the restore %6.0f ms\n", trial,
                  killed.back());
    }
    for (int i = 0; i < absl::GetFlag(FLAGS_silent_trials); ++i) {
      silent.push_back(cluster.Trial(++trial, Loss::kStopped));
      std::printf("  trial %2d: SIGSTOP -> first record after the restore %6.0f ms\n", trial,
                  silent.back());
    }
  }
  if (netns != nullptr) {
    // A cluster of its own, every process on the veth pair, one TaskManager inside.
    Cluster cluster(jm_flags, netns.get());
    for (int trial = 1; trial <= absl::GetFlag(FLAGS_host_trials); ++trial) {
      cut_off.push_back(cluster.Trial(trial, Loss::kCutOff));
      std::printf("  trial %2d: host cut off -> first record after the restore %6.0f ms\n", trial,
                  cut_off.back());
    }
  }
  const std::string job =
      absl::GetFlag(FLAGS_state_mb) > 0
          ? absl::StrCat("state_job with ", absl::GetFlag(FLAGS_state_mb), " MB of state")
          : absl::StrCat("window_job with ", absl::GetFlag(FLAGS_keys), " keys");
  std::printf(
      "recovery (kill -> first record processed after the restore), default settings, %s, %s "
      "state, local recovery %s:\n",
      job.c_str(), absl::GetFlag(FLAGS_state_backend).c_str(),
      absl::GetFlag(FLAGS_local_recovery) ? "on" : "off");
  Report("TaskManager process killed (SIGKILL)", killed);
  Report("silent TaskManager (SIGSTOP)", silent);
  Report("host cut off (netns link down)", cut_off);
  return 0;
}
