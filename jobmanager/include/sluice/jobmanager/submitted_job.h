#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/common.pb.h"
#include "sluice/api/job.h"

namespace sluice::cluster {

/// A submitted job as a cluster process rebuilds it from its binary.
struct SubmittedJob {
  std::unique_ptr<JobLibrary> library;  // outlives the graph, which holds code from it
  std::unique_ptr<JobGraph> graph;
};

/// Loads the job binary at `binary` (refusing a foreign engine ABI), builds the graph from
/// the submission's spec and checks it is the graph the client built (each vertex's
/// parallelism). `where` names this process in the error ("the JobManager").
absl::StatusOr<SubmittedJob> RebuildSubmittedJob(const std::string& binary,
                                                 const JobSubmission& job,
                                                 const std::string& where);

/// Completes a submission whose client did not build the graph (a binary uploaded through
/// the REST API): each vertex's parallelism and name, and the job's name (`job_name` as
/// given, unless the job sets its own), from the graph the binary at `binary` builds here.
absl::Status DescribeSubmission(const std::string& binary, JobSubmission* job);

}  // namespace sluice::cluster
