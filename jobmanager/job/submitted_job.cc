#include "sluice/jobmanager/submitted_job.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/core/status_macros.h"

namespace sluice::cluster {

namespace {

/// The spec the submission was made from: the same as the client's, so the same graph.
JobSpec SpecOf(const JobSubmission& job) {
  JobSpec spec;
  spec.job_name = job.job_name();
  spec.args.assign(job.args().begin(), job.args().end());
  spec.parallelism = job.parallelism();
  spec.restore_from = job.restore_from();
  spec.allow_non_restored_state = job.allow_non_restored_state();
  return spec;
}

}  // namespace

absl::StatusOr<SubmittedJob> RebuildSubmittedJob(const std::string& binary,
                                                 const JobSubmission& job,
                                                 const std::string& where) {
  SLUICE_ASSIGN_OR_RETURN(auto library, JobLibrary::Load(binary));
  auto graph = BuildJob(library->build(), SpecOf(job));
  if (!graph.ok()) return graph.status();
  std::vector<int> here,
      scheduled(job.vertex_parallelism().begin(), job.vertex_parallelism().end());
  for (const JobVertex& v : graph->vertices) here.push_back(v.parallelism);
  if (here != scheduled) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the job binary builds another graph on ", where, " (vertex parallelism ",
        absl::StrJoin(here, ","), ") than the client did (", absl::StrJoin(scheduled, ","),
        "): does the job read something that differs between machines?"));
  }
  return SubmittedJob{std::move(library), std::make_unique<JobGraph>(std::move(*graph))};
}

absl::Status DescribeSubmission(const std::string& binary, JobSubmission* job) {
  SLUICE_ASSIGN_OR_RETURN(auto library, JobLibrary::Load(binary));
  SLUICE_ASSIGN_OR_RETURN(const JobGraph graph, BuildJob(library->build(), SpecOf(*job)));
  job->set_job_name(graph.stream.config.job_name);
  job->clear_vertex_parallelism();
  job->clear_vertex_names();
  for (const JobVertex& v : graph.vertices) {
    job->add_vertex_parallelism(v.parallelism);
    job->add_vertex_names(v.name);
  }
  return absl::OkStatus();
}

}  // namespace sluice::cluster
