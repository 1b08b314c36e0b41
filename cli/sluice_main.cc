// The `sluice` command line: runs job binaries (`sluice run --local JOB.so -- ARGS`), the
// development services (`sluice dev kafka`) and writes new job projects (`sluice new job`).
// The cluster commands are in cluster_commands.cc; a local job takes savepoints on signals
// (see RunOnMiniCluster).

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cluster_commands.h"
#include "dev_kafka.h"
#include "glog/logging.h"
#include "new_job.h"
#include "savepoint_tools.h"
#include "sluice/api/job.h"
#include "sluice/job/flag_spelling.h"
#include "upgrade_command.h"

namespace {

constexpr char kUsage[] =
    "usage:\n"
    "  sluice run --local JOB.so [--parallelism=N] [--from-savepoint=PATH]\n"
    "             [--allow-non-restored-state] [-- JOB_ARGS...]\n"
    "      Runs a job binary on the in-process mini-cluster until it ends, optionally\n"
    "      starting from a savepoint or retained checkpoint (also at another parallelism).\n"
    "  sluice run --jobmanager=HOST:PORT JOB.so [--parallelism=N] [--from-savepoint=PATH]\n"
    "             [--allow-non-restored-state] [--detached] [--auth-token-file=PATH]\n"
    "             [--tls-ca=PEM [--tls-cert=PEM --tls-key=PEM]]\n"
    "             [-- JOB_ARGS...]\n"
    "      Uploads the job binary to a cluster, submits it, and follows it to its end\n"
    "      (printing its state changes; exit 1 if it fails), or returns at once (--detached).\n"
    "  sluice version\n";

int Fail(const std::string& message, int code = 2) {
  std::fprintf(stderr, "sluice: %s\n", message.c_str());
  return code;
}

int Run(const std::vector<std::string>& args) {
  bool local = false;
  bool detached = false;
  std::string jobmanager;
  sluice::cluster::CredentialFiles credential_files;
  int parallelism = 0;
  std::string from_savepoint;
  bool allow_non_restored = false;
  std::string job_path;
  std::vector<std::string> job_args;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      job_args.assign(args.begin() + i + 1, args.end());
      break;
    }
    if (a == "--local") {
      local = true;
    } else if (absl::StartsWith(a, "--jobmanager=")) {
      jobmanager = a.substr(13);
    } else if (sluice::cli::TakeCredentialFlag(a, &credential_files)) {
      // --auth-token-file, --tls-*
    } else if (a == "--detached") {
      detached = true;
    } else if (absl::StartsWith(a, "--parallelism=")) {
      if (!absl::SimpleAtoi(a.substr(14), &parallelism) || parallelism < 1) {
        return Fail(
            absl::StrCat("--parallelism must be a positive integer, got '", a.substr(14), "'"));
      }
    } else if (absl::StartsWith(a, "--from-savepoint=")) {
      from_savepoint = a.substr(17);
    } else if (a == "--allow-non-restored-state") {
      allow_non_restored = true;
    } else if (absl::StartsWith(a, "--")) {
      return Fail(absl::StrCat("unknown option '", a, "' for run\n", kUsage));
    } else if (job_path.empty()) {
      job_path = a;
    } else {
      return Fail(
          absl::StrCat("unexpected argument '", a, "' (job arguments go after --)\n", kUsage));
    }
  }
  if (job_path.empty()) return Fail(absl::StrCat("run: no job binary given\n", kUsage));
  if (local == !jobmanager.empty()) {
    return Fail(absl::StrCat("run: say where: --local or --jobmanager=HOST:PORT\n", kUsage));
  }
  // A relative path means the caller's directory, wherever the job runs.
  if (!from_savepoint.empty()) from_savepoint = std::filesystem::absolute(from_savepoint).string();
  auto library = sluice::JobLibrary::Load(job_path);
  if (!library.ok()) return Fail(std::string(library.status().message()));

  auto graph = sluice::BuildJob((*library)->build(), {(*library)->JobName(), job_args, parallelism,
                                                      from_savepoint, allow_non_restored});
  if (!graph.ok()) return Fail(absl::StrCat((*library)->JobName(), ": ", graph.status().message()));
  const std::string& job_name = graph->stream.config.job_name;
  if (!jobmanager.empty()) {
    sluice::cli::ClusterRun run;
    run.jobmanager = jobmanager;
    run.job_path = job_path;
    run.job_name = job_name;
    run.job_args = job_args;
    run.parallelism = parallelism;
    run.detached = detached;
    run.from_savepoint = from_savepoint;
    run.allow_non_restored_state = allow_non_restored;
    run.credential_files = credential_files;
    return sluice::cli::RunOnCluster(run, *graph);
  }
  std::fprintf(stderr, "sluice: running '%s' on the local mini-cluster\n%s", job_name.c_str(),
               graph->Describe().c_str());
  auto result = sluice::RunOnMiniCluster(*graph);
  if (!result.ok()) return Fail(absl::StrCat("job failed: ", result.status().message()), 1);
  if (result->stopped) {
    std::fprintf(stderr, "sluice: job '%s' stopped with savepoint %s\n", job_name.c_str(),
                 result->final_savepoint.c_str());
    return 0;
  }
  std::fprintf(stderr, "sluice: job '%s' finished in %s\n%s", job_name.c_str(),
               absl::FormatDuration(result->duration).c_str(), result->DescribeTasks().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  std::vector<std::string> args(argv + 1, argv + argc);
  // The CLI's own options accept the underscore spelling too; a job's (after `--`) are the
  // job's to read.
  for (std::string& a : args) {
    if (a == "--") break;
    a = sluice::DashedFlag(a);
  }
  if (args.empty() || args[0] == "--help" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    std::fputs(sluice::cli::kClusterUsage, args.empty() ? stderr : stdout);
    std::fputs(sluice::cli::kUpgradeUsage, args.empty() ? stderr : stdout);
    std::fputs(sluice::cli::kDevKafkaUsage, args.empty() ? stderr : stdout);
    std::fputs(sluice::cli::kNewJobUsage, args.empty() ? stderr : stdout);
    std::fputs(sluice::cli::kSavepointToolsUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "version") {
    std::printf("sluice engine ABI %s\n", sluice::EngineAbi());
    return 0;
  }
  if (args[0] == "run") return Run(std::vector<std::string>(args.begin() + 1, args.end()));
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "status") return sluice::cli::ClusterStatus(rest);
  if (args[0] == "list") return sluice::cli::ListJobs(rest);
  if (args[0] == "cancel") return sluice::cli::CancelJob(rest);
  if (args[0] == "savepoint" && !rest.empty() && rest[0] == "inspect") {
    return sluice::cli::InspectSavepoint(std::vector<std::string>(rest.begin() + 1, rest.end()));
  }
  if (args[0] == "savepoint" && !rest.empty() && rest[0] == "rewrite") {
    return sluice::cli::RewriteSavepoint(std::vector<std::string>(rest.begin() + 1, rest.end()));
  }
  if (args[0] == "savepoint") return sluice::cli::Savepoint(rest);
  if (args[0] == "stop") return sluice::cli::StopJob(rest);
  if (args[0] == "upgrade") return sluice::cli::UpgradeJob(rest);
  if (args[0] == "new") return sluice::cli::NewJob(rest);
  if (args.size() >= 2 && args[0] == "dev" && args[1] == "kafka") {
    return sluice::cli::DevKafka(std::vector<std::string>(args.begin() + 2, args.end()));
  }
  return Fail(absl::StrCat("unknown command '", args[0], "'\n", kUsage));
}
