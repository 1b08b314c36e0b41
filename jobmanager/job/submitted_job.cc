#include "sluice/jobmanager/submitted_job.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/core/status_macros.h"

namespace sluice::cluster {

absl::StatusOr<SubmittedJob> RebuildSubmittedJob(const std::string& binary,
                                                 const JobSubmission& job,
                                                 const std::string& where) {
  SLUICE_ASSIGN_OR_RETURN(auto library, JobLibrary::Load(binary));
  // The same spec as the client's: the same graph.
  JobSpec spec;
  spec.job_name = job.job_name();
  spec.args.assign(job.args().begin(), job.args().end());
  spec.parallelism = job.parallelism();
  spec.restore_from = job.restore_from();
  spec.allow_non_restored_state = job.allow_non_restored_state();
  auto graph = BuildJob((library)->build(), spec);
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

}  // namespace sluice::cluster
