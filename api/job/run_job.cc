#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "sluice/api/job.h"

namespace sluice {

namespace {

int IntArg(const JobArgs& args, const std::string& name, int64_t min) {
  const int64_t v = args.GetInt(name, 0);
  if (v < min || v > 1'000'000'000) {
    throw JobArgumentError(absl::StrCat("--", name, " must be an integer >= ", min));
  }
  return static_cast<int>(v);
}

/// Settings every job takes from its arguments, applied before the job's own code runs
/// (so the job may still override them).
void ApplyRunnerArgs(Pipeline& p) {
  const JobArgs& args = p.Args();
  if (args.Has("checkpoint-interval")) {
    p.EnableCheckpointing(args.GetDuration("checkpoint-interval", /*allow_zero=*/false),
                          args.GetString("checkpoint-mode", "exactly-once") != "at-least-once");
  }
  if (args.Has("checkpoint-mode")) {
    const std::string mode = args.GetString("checkpoint-mode");
    if (mode != "exactly-once" && mode != "at-least-once") {
      throw JobArgumentError("--checkpoint-mode must be exactly-once or at-least-once, got '" +
                             mode + "'");
    }
  }
  if (args.Has("checkpoint-dir")) p.SetCheckpointDir(args.GetString("checkpoint-dir"));
  JobConfig& config = p.mutable_config();
  if (args.Has("checkpoint-timeout")) {
    config.checkpoint_timeout = args.GetDuration("checkpoint-timeout", /*allow_zero=*/false);
  }
  if (args.Has("checkpoint-min-pause")) {
    config.checkpoint_min_pause = args.GetDuration("checkpoint-min-pause");
  }
  if (args.Has("checkpoint-max-concurrent")) {
    config.checkpoint_max_concurrent = IntArg(args, "checkpoint-max-concurrent", 1);
  }
  if (args.Has("tolerable-checkpoint-failures")) {
    config.checkpoint_tolerable_failures = IntArg(args, "tolerable-checkpoint-failures", -1);
  }
  if (args.Has("checkpoints-retained")) {
    config.checkpoints_retained = IntArg(args, "checkpoints-retained", 1);
  }
  if (args.Has("state-backend")) {
    const std::string backend = args.GetString("state-backend");
    if (backend == "heap") {
      config.state_backend = StateBackendKind::kHeap;
    } else if (backend == "rocksdb") {
      config.state_backend = StateBackendKind::kRocksDb;
    } else {
      throw JobArgumentError("--state-backend must be heap or rocksdb, got '" + backend + "'");
    }
  }
  if (args.Has("max-source-rate")) {
    config.max_source_rate = static_cast<double>(IntArg(args, "max-source-rate", 1));
  }
  if (args.Has("local-state-dir")) config.local_state_dir = args.GetString("local-state-dir");
  if (args.Has("from-savepoint")) config.restore_from = args.GetString("from-savepoint");
  if (args.Has("allow-non-restored-state")) {
    config.allow_non_restored_state = args.GetBool("allow-non-restored-state", true);
  }
  if (args.Has("savepoint-dir")) config.savepoint_dir = args.GetString("savepoint-dir");
  if (args.Has("chaos-kill-task-every")) {
    config.chaos_kill_every = args.GetDuration("chaos-kill-task-every", /*allow_zero=*/false);
  }
  if (args.Has("chaos-max-failures")) {
    config.chaos_max_failures = IntArg(args, "chaos-max-failures", 0);
  }
  if (args.Has("chaos-kill-task-every-records")) {
    const int64_t records = args.GetInt("chaos-kill-task-every-records", 0);
    if (records < 1) throw JobArgumentError("--chaos-kill-task-every-records must be >= 1");
    config.chaos_kill_every_records = records;
  }
  if (args.Has("chaos-seed")) {
    // Any seed the job logs: the full unsigned 64-bit range.
    const std::string text = args.GetString("chaos-seed");
    uint64_t seed = 0;
    if (!absl::SimpleAtoi(text, &seed) || text.empty() || text[0] == '-' || text[0] == '+') {
      throw JobArgumentError(absl::StrCat(
          "--chaos-seed must be an unsigned integer (as the job logs it), got '", text, "'"));
    }
    config.chaos_seed = seed;
  }
  if (auto strategy = ReadRestartStrategy(args)) config.restart_strategy = *strategy;
}

}  // namespace

absl::Status BuildPipeline(JobBuildFn build, Pipeline& pipeline) {
  try {
    ApplyRunnerArgs(pipeline);
    build(&pipeline);
  } catch (const JobArgumentError& e) {
    return absl::InvalidArgumentError(e.what());
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("job definition error: ", e.what()));
  }
  std::vector<std::string> unused = pipeline.Args().Unused();
  if (!unused.empty()) {
    for (auto& u : unused) u = "--" + u;
    return absl::InvalidArgumentError(
        absl::StrCat("unknown argument(s) for this job: ", absl::StrJoin(unused, ", ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<JobGraph> BuildJob(JobBuildFn build, const JobSpec& spec) {
  JobArgs args;
  try {
    args = JobArgs::Parse(spec.args);
  } catch (const JobArgumentError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  Pipeline pipeline(spec.job_name, std::move(args));
  if (spec.parallelism > 0) pipeline.SetParallelism(spec.parallelism);
  if (absl::Status s = BuildPipeline(build, pipeline); !s.ok()) return s;
  if (!spec.restore_from.empty()) pipeline.mutable_config().restore_from = spec.restore_from;
  if (spec.allow_non_restored_state) pipeline.mutable_config().allow_non_restored_state = true;
  auto graph = pipeline.BuildJobGraph();
  if (!graph.ok()) {
    return absl::Status(graph.status().code(),
                        absl::StrCat("invalid job: ", graph.status().message()));
  }
  return graph;
}

absl::StatusOr<JobResult> RunOnMiniCluster(const JobGraph& graph) {
  const JobConfig& config = graph.stream.config;
  MiniCluster cluster;
  if (config.savepoint_dir.empty()) return cluster.Execute(graph);

  // Signals go to one thread that waits for them: block them everywhere first (threads
  // started later inherit the mask).
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGUSR1, SIGTERM, SIGINT, SIGUSR2}) sigaddset(&signals, sig);
  sigset_t old_mask;
  pthread_sigmask(SIG_BLOCK, &signals, &old_mask);
  std::thread watcher([&] {
    while (true) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0 || sig == SIGUSR2) return;  // SIGUSR2: the job ended
      const bool stop = sig != SIGUSR1;
      LOG(INFO) << (stop ? "stopping the job with a savepoint" : "taking a savepoint") << " into "
                << config.savepoint_dir;
      auto path = cluster.TriggerSavepoint(config.savepoint_dir, stop);
      if (path.ok()) {
        LOG(INFO) << "savepoint written: " << *path;
      } else {
        LOG(ERROR) << "savepoint failed: " << path.status().message();
      }
    }
  });
  auto result = cluster.Execute(graph);
  pthread_kill(watcher.native_handle(), SIGUSR2);
  watcher.join();
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return result;
}

int RunJobMain(int argc, char** argv, JobBuildFn build) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  std::string job_name = argv[0];
  job_name = job_name.substr(job_name.find_last_of('/') + 1);
  JobSpec spec;
  spec.job_name = job_name;
  spec.args.assign(argv + 1, argv + argc);
  auto graph = BuildJob(build, spec);
  if (!graph.ok()) {
    std::fprintf(stderr, "%s: %s\n", job_name.c_str(),
                 std::string(graph.status().message()).c_str());
    return 2;
  }
  const std::string& name = graph->stream.config.job_name;
  auto result = RunOnMiniCluster(*graph);
  if (!result.ok()) {
    std::fprintf(stderr, "%s: job failed: %s\n", job_name.c_str(),
                 std::string(result.status().message()).c_str());
    return 1;
  }
  if (result->stopped) {
    LOG(INFO) << "job '" << name << "' stopped with savepoint " << result->final_savepoint;
  } else {
    LOG(INFO) << "job '" << name << "' finished in " << absl::FormatDuration(result->duration)
              << "\n"
              << result->DescribeTasks();
  }
  return 0;
}

}  // namespace sluice
