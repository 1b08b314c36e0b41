#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/api/pipeline.h"

// The job-binary model. One source file declares `void Build(sluice::Pipeline&)` and ends
// with SLUICE_JOB(Build). Built by sluice_add_job(), it yields an executable that runs the job
// on the mini-cluster, and a shared library (NAME.so) for `sluice run`.

/// The engine ABI a job is compiled against. A job binary built with another value is
/// refused at load: the API's class layouts may differ.
#define SLUICE_ENGINE_ABI "sluice-engine-abi-1/gcc" SLUICE_STRINGIFY_(__GNUC__) "/c++20"
#define SLUICE_STRINGIFY_(x) SLUICE_STRINGIFY2_(x)
#define SLUICE_STRINGIFY2_(x) #x

// Tests build a job with a foreign ABI string to check that the loader refuses it.
#ifndef SLUICE_JOB_ABI
#define SLUICE_JOB_ABI SLUICE_ENGINE_ABI
#endif

namespace sluice {

using JobBuildFn = void (*)(Pipeline*);

/// The ABI string this engine was built with.
const char* EngineAbi();

/// Runs a job's build function as the job executable's main(): parses argv as job
/// arguments, builds, runs on the mini-cluster, reports. Returns the process exit code:
/// 0 finished, 1 failed while running, 2 refused (bad arguments or job definition).
int RunJobMain(int argc, char** argv, JobBuildFn build);

/// Builds a pipeline by calling `build`, turning exceptions into a status, and refusing
/// arguments the job never read. Arguments every job understands are applied first:
/// --checkpoint-interval=DUR, --checkpoint-mode=exactly-once|at-least-once,
/// --checkpoint-dir=DIR, --checkpoint-timeout=DUR, --checkpoint-min-pause=DUR,
/// --checkpoint-max-concurrent=N, --tolerable-checkpoint-failures=N,
/// --checkpoints-retained=N, --state-backend=heap|rocksdb, --from-savepoint=PATH,
/// --allow-non-restored-state, --savepoint-dir=DIR, --max-source-rate=N, the restart
/// strategy (--restart-strategy=none|fixed-delay|exponential-delay|failure-rate and its
/// parameters: ReadRestartStrategy), --chaos-kill-task-every=DUR or
/// --chaos-kill-task-every-records=N, --chaos-max-failures=N, --chaos-seed=N.
absl::Status BuildPipeline(JobBuildFn build, Pipeline& pipeline);

/// What a job's graph is built from. The same spec gives the same graph in every process
/// that builds it (the client, each TaskManager of a cluster job).
struct JobSpec {
  std::string job_name;
  std::vector<std::string> args;  // the job's arguments
  int parallelism = 0;            // 0: the job's own default
  std::string restore_from;       // a savepoint or retained checkpoint
  bool allow_non_restored_state = false;
};

/// Parses the arguments, builds the pipeline (BuildPipeline) and its job graph. The error
/// names what was wrong: a bad argument, the job definition, or "invalid job: ...".
absl::StatusOr<JobGraph> BuildJob(JobBuildFn build, const JobSpec& spec);

/// Runs a job on an in-process mini-cluster until it ends. With a savepoint directory
/// configured (--savepoint-dir), SIGUSR1 takes a savepoint and SIGTERM/SIGINT stop the job
/// with one; the savepoint's path is logged.
absl::StatusOr<JobResult> RunOnMiniCluster(const JobGraph& graph);

/// A job binary loaded with dlopen. Keeps the library loaded while it lives: graphs built
/// from it hold code from it.
class JobLibrary {
 public:
  /// Loads and checks a job binary: a clear error for a missing file, a file that is not
  /// a shared library, a library without SLUICE_JOB, or a job built for another engine ABI.
  static absl::StatusOr<std::unique_ptr<JobLibrary>> Load(const std::string& path);
  ~JobLibrary();

  JobBuildFn build() const { return build_; }
  const std::string& path() const { return path_; }
  /// The job's name: the file name without directory and ".so".
  std::string JobName() const;

 private:
  JobLibrary(void* handle, std::string path, JobBuildFn build)
      : handle_(handle), path_(std::move(path)), build_(build) {}
  void* handle_;
  std::string path_;
  JobBuildFn build_;
};

}  // namespace sluice

#define SLUICE_JOB_EXPORT_ extern "C" __attribute__((visibility("default")))

#ifdef SLUICE_JOB_EXECUTABLE
#define SLUICE_JOB_MAIN_(build_fn) \
  int main(int argc, char** argv) { return ::sluice::RunJobMain(argc, argv, &sluice_job_build); }
#else
#define SLUICE_JOB_MAIN_(build_fn)
#endif

/// Declares the job's build function: `void build_fn(sluice::Pipeline&)`.
#define SLUICE_JOB(build_fn)                                                   \
  SLUICE_JOB_EXPORT_ const char* sluice_job_abi;                               \
  SLUICE_JOB_EXPORT_ void sluice_job_build(::sluice::Pipeline* pipeline);      \
  const char* sluice_job_abi = SLUICE_JOB_ABI;                                 \
  void sluice_job_build(::sluice::Pipeline* pipeline) { build_fn(*pipeline); } \
  SLUICE_JOB_MAIN_(build_fn)
