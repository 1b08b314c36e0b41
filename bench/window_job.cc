// window_job [--events=N] [--keys=K]: window_bench's windowed job as a job binary
// (window_job.so), for `sluice run --local` and `sluice run --jobmanager` (cluster_bench).
#include "window_job.h"

void Build(sluice::Pipeline& p) {
  sluice::bench::BuildWindowJob(p, p.Args().GetInt("events", 10'000'000),
                                p.Args().GetInt("keys", 10'000));
}

SLUICE_JOB(Build)
