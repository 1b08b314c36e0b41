#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "sluice/api/job.h"

namespace sluice {

absl::Status BuildPipeline(JobBuildFn build, Pipeline& pipeline) {
  try {
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
