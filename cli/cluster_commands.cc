#include "cluster_commands.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sluice/jobmanager/jobmanager_client.h"
#include "sluice/jobmanager/status_json.h"

namespace sluice::cli {

const char kClusterUsage[] =
    "  sluice status [--jobmanager=HOST:PORT] [--json] [JOB_ID]\n"
    "      The cluster: TaskManagers with their slots, jobs, the blob store. With JOB_ID,\n"
    "      that job: its state, restart strategy, restarts and failures, restores,\n"
    "      checkpoints. --json: the REST API's JSON, for scripts.\n"
    "  sluice list [--jobmanager=HOST:PORT] [--json]\n"
    "      The jobs and their states.\n"
    "  sluice cancel [--jobmanager=HOST:PORT] JOB_ID\n"
    "      Cancels a job.\n"
    "  sluice savepoint [--jobmanager=HOST:PORT] JOB_ID [DIR]\n"
    "      Takes a savepoint of a running job into a new directory under DIR (default: the\n"
    "      job's --savepoint-dir) and prints its path. The JobManager writes it.\n"
    "  sluice stop [--jobmanager=HOST:PORT] JOB_ID --savepoint-dir=DIR\n"
    "      Takes a savepoint, then ends the job (its sources emit nothing after the\n"
    "      savepoint); resume with sluice run --from-savepoint=PATH.\n"
    "  (the JobManager defaults to $SLUICE_JOBMANAGER, else 127.0.0.1:6123; a cluster with an\n"
    "  auth token wants --auth-token-file=PATH, else $SLUICE_AUTH_TOKEN_FILE, to change\n"
    "  anything; one with TLS --tls-ca=PEM and, for mutual TLS, --tls-cert=PEM --tls-key=PEM,\n"
    "  else $SLUICE_TLS_CA, $SLUICE_TLS_CERT, $SLUICE_TLS_KEY)\n";

bool TakeCredentialFlag(const std::string& arg, cluster::CredentialFiles* files) {
  const std::pair<const char*, std::string*> flags[] = {{"--auth-token-file=", &files->token},
                                                        {"--tls-cert=", &files->tls_cert},
                                                        {"--tls-key=", &files->tls_key},
                                                        {"--tls-ca=", &files->tls_ca}};
  for (const auto& [prefix, value] : flags) {
    if (absl::StartsWith(arg, prefix)) {
      *value = arg.substr(std::string(prefix).size());
      return true;
    }
  }
  return false;
}

namespace {

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "sluice: %s\n", message.c_str());
  return code;
}

std::string DefaultJobManager() {
  const char* env = std::getenv("SLUICE_JOBMANAGER");
  return env != nullptr && *env != '\0' ? env : "127.0.0.1:6123";
}

void PrintJob(const cluster::JobStatus& job) {
  std::string notes;
  if (job.restarts() > 0) notes = absl::StrCat("  restarts: ", job.restarts());
  if (job.completed_checkpoints() > 0) {
    absl::StrAppend(&notes, "  checkpoints: ", job.completed_checkpoints());
  }
  const std::string& why = job.state() == cluster::RESTARTING ? job.restart_cause() : job.failure();
  if (!why.empty()) absl::StrAppend(&notes, "  ", why);
  std::printf("%-10s %-10s %-24s %3d slots  %8.1f s%s\n", job.job_id().c_str(),
              JobStateName(job.state()).c_str(), job.job_name().c_str(), job.slots_needed(),
              static_cast<double>(job.duration_ms()) / 1000, notes.c_str());
}

std::string TimeOfDay(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::FromUnixMillis(unix_ms),
                          absl::LocalTimeZone());
}

/// One job in detail: `sluice status JOB_ID`.
void PrintJobDetails(const cluster::JobStatus& job) {
  std::printf("%s '%s': %s, %.1f s\n", job.job_id().c_str(), job.job_name().c_str(),
              JobStateName(job.state()).c_str(), static_cast<double>(job.duration_ms()) / 1000);
  if (!job.failure().empty()) std::printf("  failure: %s\n", job.failure().c_str());
  std::printf("  restart strategy: %s\n", job.restart_strategy().c_str());
  std::printf("  restarts: %d", job.restarts());
  if (job.region_restarts() > 0) {
    std::printf(" (%d of them of some pipelined regions only)", job.region_restarts());
  }
  std::printf("\n");
  std::printf("  pipelined regions: %d%s\n", job.regions(),
              job.regions() > 1 ? " (a failure restarts only the regions it touched)" : "");
  std::printf("  completed checkpoints: %lld\n",
              static_cast<long long>(job.completed_checkpoints()));
  if (!job.restored_from().empty()) {
    std::printf("  this run restored from: %s\n", job.restored_from().c_str());
    for (const cluster::TaskManagerRestore& r : job.restores()) {
      const cluster::PartRestore& p = r.restore();
      const std::string where = job.regions() > 1
                                    ? absl::StrCat(r.taskmanager_id(), " (region ", r.region(), ")")
                                    : r.taskmanager_id();
      std::printf("    %s: %d state files read, %d of them from its local copies, %d not needed",
                  where.c_str(), p.state_files(), p.state_files_local(), p.state_files_skipped());
      if (p.rocksdb_files() > 0) {
        std::printf("; RocksDB files: %d, %d of them from its local copies", p.rocksdb_files(),
                    p.rocksdb_files_local());
      }
      std::printf("\n");
    }
  }
  std::string taskmanagers;
  for (const std::string& tm : job.taskmanagers()) {
    absl::StrAppend(&taskmanagers, taskmanagers.empty() ? "" : ", ", tm);
  }
  std::printf("  TaskManagers: %s\n", taskmanagers.empty() ? "none" : taskmanagers.c_str());
  std::printf(
      "  tasks (records in, sent; per second over the last minute; the busiest and the\n"
      "  most back-pressured subtask's share of its time; keyed states at the newest\n"
      "  checkpoint, over all subtasks):\n");
  for (const cluster::JobVertexInfo& v : job.vertices()) {
    std::printf(
        "    %s x%d: %lld in (%.0f/s), %lld sent (%.0f/s), busy %.0f%%, "
        "back-pressured %.0f%%\n",
        v.name().c_str(), v.parallelism(), static_cast<long long>(v.records_in()),
        v.records_in_per_second(), static_cast<long long>(v.records_sent()),
        v.records_sent_per_second(), v.busy_max() * 100, v.backpressured_max() * 100);
    for (const cluster::StateSizeReport& state : v.states()) {
      std::printf("      state %s/%s: %lld entries, %lld bytes\n", state.operator_id().c_str(),
                  state.state().c_str(), static_cast<long long>(state.entries()),
                  static_cast<long long>(state.bytes()));
    }
  }
  if (job.regions() > 1 && job.running_parts_size() > 0) {
    std::string parts;
    for (const cluster::RunningPart& p : job.running_parts()) {
      absl::StrAppend(&parts, parts.empty() ? "" : ", ", p.taskmanager_id(), " region ", p.region(),
                      " (run ", p.attempt(), ")");
    }
    std::printf("  running parts: %s\n", parts.c_str());
  }
  std::printf("  failures (%d, oldest first):\n", job.failures_size());
  for (const cluster::JobFailure& f : job.failures()) {
    std::printf("    %s  %s  %s\n", TimeOfDay(f.at_ms()).c_str(),
                f.taskmanager_id().empty() ? "-" : f.taskmanager_id().c_str(), f.message().c_str());
  }
  std::printf("  history:\n");
  for (const cluster::StateChange& change : job.history()) {
    std::printf("    %s  %s%s%s\n", TimeOfDay(change.at_ms()).c_str(),
                JobStateName(change.state()).c_str(), change.detail().empty() ? "" : ": ",
                change.detail().c_str());
  }
}

}  // namespace

absl::StatusOr<Target> TakeTarget(const std::vector<std::string>& args,
                                  std::vector<std::string>* positional) {
  std::string address = DefaultJobManager();
  cluster::CredentialFiles files;
  for (const std::string& a : args) {
    if (absl::StartsWith(a, "--jobmanager=")) {
      address = a.substr(13);
    } else if (!TakeCredentialFlag(a, &files)) {
      positional->push_back(a);
    }
  }
  auto credentials = cluster::Credentials::LoadWithEnvironment(files);
  if (!credentials.ok()) return credentials.status();
  return Target{address, *std::move(credentials)};
}

std::string JobStateName(cluster::JobState state) {
  switch (state) {
    case cluster::CREATED:
      return "created";
    case cluster::RUNNING:
      return "running";
    case cluster::FINISHED:
      return "finished";
    case cluster::FAILED:
      return "failed";
    case cluster::CANCELED:
      return "canceled";
    case cluster::RESTARTING:
      return "restarting";
    default:
      return "unknown";
  }
}

bool IsEnded(cluster::JobState s) {
  return s == cluster::FINISHED || s == cluster::FAILED || s == cluster::CANCELED;
}

int RunOnCluster(const ClusterRun& run, const JobGraph& graph) {
  auto credentials = cluster::Credentials::LoadWithEnvironment(run.credential_files);
  if (!credentials.ok()) return Fail(std::string(credentials.status().message()), 2);
  cluster::JobManagerClient client(run.jobmanager, absl::Seconds(30), *credentials);
  auto blob = client.UploadFile(run.job_path);
  if (!blob.ok()) return Fail(std::string(blob.status().message()), 1);
  cluster::JobSubmission request;
  request.mutable_job_binary()->set_sha256(blob->sha256);
  request.mutable_job_binary()->set_size(blob->size);
  request.set_job_name(run.job_name);
  for (const std::string& a : run.job_args) request.add_args(a);
  request.set_parallelism(run.parallelism);
  request.set_restore_from(run.from_savepoint);
  request.set_allow_non_restored_state(run.allow_non_restored_state);
  for (const JobVertex& v : graph.vertices) {
    request.add_vertex_parallelism(v.parallelism);
    request.add_vertex_names(v.name);
  }
  auto id = client.Submit(request);
  if (!id.ok()) return Fail(std::string(id.status().message()), 1);
  std::printf("submitted %s ('%s') to %s\n", id->c_str(), run.job_name.c_str(),
              run.jobmanager.c_str());
  std::fflush(stdout);
  if (run.detached) return 0;
  int printed = 0;  // entries of the job's history
  // A JobManager that dies and is started again (with --recovery-dir) keeps the job: keep
  // following it while it is unreachable, for a while.
  absl::Time unreachable_since = absl::InfiniteFuture();
  int64_t history_start_ms = -1;
  for (;;) {
    auto job = client.Job(*id);
    if (!job.ok() &&
        (absl::IsUnavailable(job.status()) || absl::IsDeadlineExceeded(job.status()))) {
      const absl::Time now = absl::Now();
      if (unreachable_since == absl::InfiniteFuture()) {
        unreachable_since = now;
        std::printf("%s: %s; waiting for it (up to %s)\n", id->c_str(),
                    std::string(job.status().message()).c_str(),
                    absl::FormatDuration(run.reconnect_patience).c_str());
        std::fflush(stdout);
      }
      if (now - unreachable_since < run.reconnect_patience) {
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
    }
    if (!job.ok()) return Fail(std::string(job.status().message()), 1);
    unreachable_since = absl::InfiniteFuture();
    // A JobManager started again tells the job's history from its recovery on.
    const int64_t first_ms = job->history_size() > 0 ? job->history(0).at_ms() : 0;
    if (first_ms != history_start_ms) {
      history_start_ms = first_ms;
      printed = 0;
    }
    for (; printed < job->history_size(); ++printed) {
      const cluster::StateChange& change = job->history(printed);
      std::string detail = change.detail();
      if (change.state() == cluster::FINISHED && !job->final_savepoint().empty()) {
        detail = absl::StrCat("stopped with savepoint ", job->final_savepoint());
      }
      std::printf("%s %s%s%s\n", id->c_str(), JobStateName(change.state()).c_str(),
                  detail.empty() ? "" : ": ", detail.c_str());
    }
    std::fflush(stdout);
    if (IsEnded(job->state())) return job->state() == cluster::FINISHED ? 0 : 1;
    absl::SleepFor(absl::Milliseconds(100));
  }
}

/// Takes `--json` out of `positional`; true if it was there.
bool TakeJsonFlag(std::vector<std::string>* positional) {
  auto it = std::find(positional->begin(), positional->end(), "--json");
  if (it == positional->end()) return false;
  positional->erase(it);
  return true;
}

void PrintJson(const nlohmann::json& value) { std::printf("%s\n", value.dump(2).c_str()); }

int ClusterStatus(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  auto target = TakeTarget(args, &positional);
  const bool json = TakeJsonFlag(&positional);
  if (!target.ok()) return Fail(std::string(target.status().message()), 2);
  const std::string& address = target->address;
  if (positional.size() > 1 || (!positional.empty() && positional[0].starts_with("--"))) {
    return Fail(absl::StrCat("status: unexpected argument '", positional.back(), "'\nusage:\n",
                             kClusterUsage),
                2);
  }
  cluster::JobManagerClient client(address, absl::Seconds(5), target->credentials);
  if (positional.size() == 1) {
    auto job = client.Job(positional[0]);
    if (!job.ok()) return Fail(std::string(job.status().message()), 1);
    if (json) {
      nlohmann::json details = cluster::JobJson(*job);
      details["checkpoints"] = cluster::CheckpointsJson(*job);
      details["exceptions"] = cluster::ExceptionsJson(*job);
      PrintJson(details);
    } else {
      PrintJobDetails(*job);
    }
    return 0;
  }
  auto status = client.Status();
  if (!status.ok()) return Fail(std::string(status.status().message()), 1);
  if (json) {
    nlohmann::json jobs = nlohmann::json::array();
    for (const auto& job : status->jobs()) jobs.push_back(cluster::JobJson(job));
    PrintJson({{"jobmanager", address},
               {"jobmanager-id", status->jobmanager_id()},
               {"overview", cluster::OverviewJson(*status)},
               {"taskmanagers", cluster::TaskManagersJson(*status)["taskmanagers"]},
               {"jobs", jobs},
               {"blob-dir", status->blob_dir()},
               {"job-binaries", status->blobs()}});
    return 0;
  }
  std::printf("JobManager %s (%s)\n", address.c_str(), status->jobmanager_id().c_str());
  std::printf("TaskManagers: %d, slots: %d total, %d free\n", status->taskmanagers_size(),
              status->total_slots(), status->free_slots());
  for (const auto& tm : status->taskmanagers()) {
    std::printf("  %-24s %s pid %lld  slots %d (%d free)  last heartbeat %lld ms ago\n",
                tm.taskmanager_id().c_str(), tm.host().c_str(), static_cast<long long>(tm.pid()),
                tm.slots(), tm.free_slots(), static_cast<long long>(tm.last_heartbeat_ms_ago()));
  }
  std::printf("Jobs: %d\n", status->jobs_size());
  for (const auto& job : status->jobs()) PrintJob(job);
  std::printf("Blob store: %s (%d job binaries)\n", status->blob_dir().c_str(), status->blobs());
  return 0;
}

int ListJobs(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  auto target = TakeTarget(args, &positional);
  if (!target.ok()) return Fail(std::string(target.status().message()), 2);
  const std::string& address = target->address;
  const bool json = TakeJsonFlag(&positional);
  if (!positional.empty()) {
    return Fail(absl::StrCat("list: unexpected argument '", positional[0], "'"), 2);
  }
  cluster::JobManagerClient client(address, absl::Seconds(5), target->credentials);
  auto jobs = client.Jobs();
  if (!jobs.ok()) return Fail(std::string(jobs.status().message()), 1);
  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& job : *jobs) list.push_back(cluster::JobListEntryJson(job));
    PrintJson({{"jobs", list}});
    return 0;
  }
  if (jobs->empty()) std::printf("no jobs\n");
  for (const auto& job : *jobs) PrintJob(job);
  return 0;
}

int CancelJob(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  auto target = TakeTarget(args, &positional);
  if (!target.ok()) return Fail(std::string(target.status().message()), 2);
  const std::string& address = target->address;
  if (positional.size() != 1) {
    return Fail(absl::StrCat("cancel: give one JOB_ID\nusage:\n", kClusterUsage), 2);
  }
  cluster::JobManagerClient client(address, absl::Seconds(10), target->credentials);
  auto job = client.Cancel(positional[0]);
  if (!job.ok()) return Fail(std::string(job.status().message()), 1);
  PrintJob(*job);
  return 0;
}

int Savepoint(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  auto target = TakeTarget(args, &positional);
  if (!target.ok()) return Fail(std::string(target.status().message()), 2);
  const std::string& address = target->address;
  if (positional.empty() || positional.size() > 2 || positional[0].starts_with("--")) {
    return Fail(absl::StrCat("savepoint: give JOB_ID [DIR]\nusage:\n", kClusterUsage), 2);
  }
  // A relative directory means the caller's; the JobManager writes it.
  const std::string dir =
      positional.size() == 2 ? std::filesystem::absolute(positional[1]).string() : "";
  cluster::JobManagerClient client(address, absl::Seconds(10), target->credentials);
  auto path = client.Savepoint(positional[0], dir, /*stop=*/false, absl::Minutes(15));
  if (!path.ok()) return Fail(std::string(path.status().message()), 1);
  std::printf("savepoint of %s written to %s\n", positional[0].c_str(), path->c_str());
  return 0;
}

int StopJob(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  auto target = TakeTarget(args, &positional);
  if (!target.ok()) return Fail(std::string(target.status().message()), 2);
  const std::string& address = target->address;
  std::string job_id, dir;
  for (const std::string& a : positional) {
    if (a.starts_with("--savepoint-dir=")) {
      dir = std::filesystem::absolute(a.substr(16)).string();
    } else if (a.starts_with("--") || !job_id.empty()) {
      return Fail(absl::StrCat("stop: unexpected argument '", a, "'\nusage:\n", kClusterUsage), 2);
    } else {
      job_id = a;
    }
  }
  if (job_id.empty() || dir.empty()) {
    return Fail(absl::StrCat("stop: give JOB_ID and --savepoint-dir=DIR\nusage:\n", kClusterUsage),
                2);
  }
  cluster::JobManagerClient client(address, absl::Seconds(10), target->credentials);
  auto path = client.Savepoint(job_id, dir, /*stop=*/true, absl::Minutes(15));
  if (!path.ok()) return Fail(std::string(path.status().message()), 1);
  // The savepoint is written; the job's subtasks end now.
  const absl::Time give_up = absl::Now() + absl::Minutes(1);
  for (;;) {
    auto job = client.Job(job_id);
    if (!job.ok()) return Fail(std::string(job.status().message()), 1);
    if (IsEnded(job->state())) {
      std::printf("%s stopped with savepoint %s\n", job_id.c_str(), path->c_str());
      return job->state() == cluster::FINISHED ? 0 : 1;
    }
    if (absl::Now() > give_up) {
      return Fail(absl::StrCat("savepoint ", *path, " written, but ", job_id, " is still ",
                               JobStateName(job->state()), " a minute later"),
                  1);
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

}  // namespace sluice::cli
