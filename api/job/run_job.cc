#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "sluice/api/job.h"

namespace sluice {

namespace {

absl::Duration DurationArg(const JobArgs& args, const std::string& name) {
  absl::Duration d;
  const std::string text = args.GetString(name);
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration()) {
    throw JobArgumentError(
        absl::StrCat("--", name, ": '", text, "' is not a positive duration (e.g. 500ms, 10s)"));
  }
  return d;
}

/// Settings every job takes from its arguments, applied before the job's own code runs
/// (so the job may still override them).
void ApplyRunnerArgs(Pipeline& p) {
  const JobArgs& args = p.Args();
  if (args.Has("checkpoint-interval")) {
    p.EnableCheckpointing(DurationArg(args, "checkpoint-interval"),
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
  if (args.Has("restart-attempts")) {
    const int64_t attempts = args.GetInt("restart-attempts", 0);
    if (attempts < 0) throw JobArgumentError("--restart-attempts must be >= 0");
    p.SetRestartStrategy(static_cast<int>(attempts), args.Has("restart-delay")
                                                         ? DurationArg(args, "restart-delay")
                                                         : absl::Milliseconds(100));
  }
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

int RunJobMain(int argc, char** argv, JobBuildFn build) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  std::string job_name = argv[0];
  job_name = job_name.substr(job_name.find_last_of('/') + 1);
  std::vector<std::string> args(argv + 1, argv + argc);
  JobArgs parsed;
  try {
    parsed = JobArgs::Parse(args);
  } catch (const JobArgumentError& e) {
    std::fprintf(stderr, "%s: %s\n", job_name.c_str(), e.what());
    return 2;
  }
  Pipeline pipeline(job_name, std::move(parsed));
  if (absl::Status s = BuildPipeline(build, pipeline); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", job_name.c_str(), std::string(s.message()).c_str());
    return 2;
  }
  auto graph = pipeline.BuildJobGraph();
  if (!graph.ok()) {
    std::fprintf(stderr, "%s: invalid job: %s\n", job_name.c_str(),
                 std::string(graph.status().message()).c_str());
    return 2;
  }
  auto result = MiniCluster().Execute(*graph);
  if (!result.ok()) {
    std::fprintf(stderr, "%s: job failed: %s\n", job_name.c_str(),
                 std::string(result.status().message()).c_str());
    return 1;
  }
  LOG(INFO) << "job '" << pipeline.config().job_name << "' finished in "
            << absl::FormatDuration(result->duration);
  return 0;
}

}  // namespace sluice
