// cluster_bench [--events=N] [--keys=K] [--rounds=N] [--checkpoint-interval=DUR]
//
// window_bench's windowed job (window_job.so) at parallelism 2 on a cluster of one
// JobManager and two TaskManagers of one slot each — so each subtask runs in its own
// process and the keyed exchange crosses processes over gRPC — beside the same job binary on
// the mini-cluster (`sluice run --local`), in the same run. Each time is the wall time of the
// `sluice run` command (process start, loading, for the cluster also upload, scheduling and
// deployment: about 0.1-0.3 s, so use enough events). Prints events/s and the ratio. With
// --checkpoint-interval both runs take exactly-once checkpoints into a temporary directory
// (on the cluster: the coordinator in the JobManager, acknowledgements over gRPC).

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench_util.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/testing/local_cluster.h"
#include "sluice_seconds.h"

ABSL_FLAG(int64_t, events, 30'000'000, "events per run");
ABSL_FLAG(int64_t, keys, 10'000, "distinct keys");
ABSL_FLAG(int, rounds, 3, "runs of each (the median is reported)");
ABSL_FLAG(std::string, checkpoint_interval, "", "checkpoint every DUR (e.g. 1s); none if empty");

namespace {}  // namespace

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  const int64_t events = absl::GetFlag(FLAGS_events);
  const std::string job = sluice::testing::BuildDir() + "/bench/window_job.so";
  std::string job_args =
      absl::StrCat(" --parallelism=2 -- --events=", events, " --keys=", absl::GetFlag(FLAGS_keys));
  sluice::testing::TempDir checkpoints;
  const std::string interval = absl::GetFlag(FLAGS_checkpoint_interval);
  if (!interval.empty()) {
    absl::StrAppend(&job_args, " --checkpoint-interval=", interval,
                    " --checkpoint-dir=", checkpoints.path());
  }
  sluice::testing::JobManagerProcess jm({"--heartbeat-interval=200ms"});
  sluice::testing::TaskManagerProcess tm1(jm.address(), 1, "bench-tm-1");
  sluice::testing::TaskManagerProcess tm2(jm.address(), 1, "bench-tm-2");
  sluice::testing::WaitFor(
      [&] {
        return sluice::testing::Sluice("status --jobmanager=" + jm.address())
                   .output.find("slots: 2 total, 2 free") != std::string::npos;
      },
      10000);
  std::vector<double> local, cluster;
  for (int r = 0; r < absl::GetFlag(FLAGS_rounds); ++r) {
    local.push_back(sluice::bench::SluiceSeconds(absl::StrCat("run --local ", job, job_args)));
    cluster.push_back(sluice::bench::SluiceSeconds(
        absl::StrCat("run --jobmanager=", jm.address(), " ", job, job_args)));
    std::printf("  round %d: mini-cluster %.2f s, cluster %.2f s\n", r + 1, local.back(),
                cluster.back());
  }
  const double local_rate = static_cast<double>(events) / sluice::bench::Median(local);
  const double cluster_rate = static_cast<double>(events) / sluice::bench::Median(cluster);
  std::printf("1 s tumbling windows, %lld events, parallelism 2, checkpoints: %s\n",
              static_cast<long long>(events), interval.empty() ? "none" : interval.c_str());
  std::printf("mini-cluster (1 process):               %6.2f M events/s\n", local_rate / 1e6);
  std::printf("cluster (JobManager + 2 TaskManagers):  %6.2f M events/s\n", cluster_rate / 1e6);
  std::printf("cluster / mini-cluster: %.1f%%\n", 100 * cluster_rate / local_rate);
  return 0;
}
