#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/common.pb.h"
#include "sluice/graph/job_graph.h"
#include "sluice/jobmanager/credentials.h"

namespace sluice::cli {

extern const char kClusterUsage[];

/// Takes `arg` if it is one of the credential flags (--auth-token-file, --tls-cert,
/// --tls-key, --tls-ca) into `files`.
bool TakeCredentialFlag(const std::string& arg, cluster::CredentialFiles* files);

/// What `sluice run --jobmanager` submits.
struct ClusterRun {
  std::string jobmanager;  // HOST:PORT
  std::string job_path;    // the job binary
  std::string job_name;
  std::vector<std::string> job_args;
  int parallelism = 0;  // 0: the job's default
  bool detached = false;
  std::string from_savepoint;  // a savepoint or retained checkpoint, as the JobManager sees it
  bool allow_non_restored_state = false;
  /// Following the job, how long an unreachable JobManager is waited for (it may be started
  /// again with its --recovery-dir, and still know the job).
  absl::Duration reconnect_patience = absl::Minutes(2);
  /// The cluster's token and TLS files (flags; unset ones from the environment).
  cluster::CredentialFiles credential_files;
};

/// The JobManager a command talks to, and how.
struct Target {
  std::string address;
  cluster::Credentials credentials;
};
/// Splits `--jobmanager=` and the credential flags off a command's arguments; the rest are
/// positional.
absl::StatusOr<Target> TakeTarget(const std::vector<std::string>& args,
                                  std::vector<std::string>* positional);
/// "running", "finished", ...
std::string JobStateName(cluster::JobState state);
/// Finished, failed or canceled.
bool IsEnded(cluster::JobState state);

/// Uploads, submits and (unless detached) follows the job, printing its state changes.
/// Exit code: 0 finished (or submitted, detached), 1 failed or canceled or unreachable.
int RunOnCluster(const ClusterRun& run, const JobGraph& graph);

/// `sluice status [--jobmanager=HOST:PORT]`: TaskManagers, slots, jobs and the blob store.
int ClusterStatus(const std::vector<std::string>& args);
/// `sluice list [--jobmanager=HOST:PORT]`: the jobs with their states.
int ListJobs(const std::vector<std::string>& args);
/// `sluice cancel [--jobmanager=HOST:PORT] JOB_ID`.
int CancelJob(const std::vector<std::string>& args);
/// `sluice savepoint [--jobmanager=HOST:PORT] JOB_ID [DIR]`: prints the savepoint's path.
int Savepoint(const std::vector<std::string>& args);
/// `sluice stop [--jobmanager=HOST:PORT] JOB_ID --savepoint-dir=DIR`: a savepoint, then the
/// job ends; prints the savepoint's path once it has.
int StopJob(const std::vector<std::string>& args);

}  // namespace sluice::cli
