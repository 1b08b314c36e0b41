// `sluice upgrade`: a running job replaced by a new build of it, its state carried over
// through a savepoint, and the old build started again from that savepoint if the new one
// does not run.

#include "upgrade_command.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cluster_commands.h"
#include "sluice/api/job.h"
#include "sluice/jobmanager/jobmanager_client.h"

namespace sluice::cli {

const char kUpgradeUsage[] =
    "  sluice upgrade [--jobmanager=HOST:PORT] JOB_ID NEW_JOB.so [--parallelism=N]\n"
    "                 [--savepoint-dir=DIR] [--allow-non-restored-state] [--timeout=DUR]\n"
    "                 [-- JOB_ARGS...]\n"
    "      Replaces a running job by NEW_JOB.so: checks that the new binary restores the\n"
    "      job's latest checkpoint (nothing stops if not), stops the job with a savepoint,\n"
    "      starts the new binary from it and waits (up to --timeout, default 2m) until it\n"
    "      runs: a checkpoint completed, or 3 s without a failure if it takes none. If it\n"
    "      does not, it is canceled and the old binary starts again from the same savepoint.\n"
    "      Exit 0 only when the new job runs.\n";

namespace {

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "sluice: upgrade: %s\n", message.c_str());
  return code;
}

void Step(const std::string& text) {
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
}

struct UpgradeRequest {
  std::string job_id;
  std::string job_path;
  std::vector<std::string> job_args;
  int parallelism = 0;
  std::string savepoint_dir;
  bool allow_non_restored_state = false;
  absl::Duration timeout = absl::Minutes(2);
};

absl::StatusOr<UpgradeRequest> ParseUpgrade(const std::vector<std::string>& positional,
                                            const std::vector<std::string>& job_args) {
  UpgradeRequest r;
  r.job_args = job_args;
  for (const std::string& a : positional) {
    if (absl::StartsWith(a, "--parallelism=")) {
      if (!absl::SimpleAtoi(a.substr(14), &r.parallelism) || r.parallelism < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("--parallelism must be a positive integer, got '", a.substr(14), "'"));
      }
    } else if (absl::StartsWith(a, "--savepoint-dir=")) {
      r.savepoint_dir = std::filesystem::absolute(a.substr(16)).string();
    } else if (absl::StartsWith(a, "--timeout=")) {
      if (!absl::ParseDuration(a.substr(10), &r.timeout) || r.timeout <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--timeout must be a duration such as 90s or 5m, got '", a.substr(10), "'"));
      }
    } else if (a == "--allow-non-restored-state") {
      r.allow_non_restored_state = true;
    } else if (a == "--local") {
      return absl::InvalidArgumentError(
          "--local: a job on the mini-cluster is upgraded by hand: stop it with a savepoint "
          "(SIGTERM to `sluice run --local` or the job executable, with --savepoint-dir set; "
          "it logs the savepoint's path), then run the new binary with "
          "--from-savepoint=PATH (docs/operations.md, \"Upgrading a job\")");
    } else if (absl::StartsWith(a, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unknown option '", a, "'"));
    } else if (r.job_id.empty()) {
      r.job_id = a;
    } else if (r.job_path.empty()) {
      r.job_path = a;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", a, "' (job arguments go after --)"));
    }
  }
  if (r.job_id.empty() || r.job_path.empty()) {
    return absl::InvalidArgumentError("give JOB_ID and NEW_JOB.so");
  }
  return r;
}

/// Waits until job `id` runs (see kUpgradeUsage) or shows it does not; the error says why.
absl::Status AwaitRunning(cluster::JobManagerClient& client, const std::string& id,
                          absl::Duration timeout) {
  const absl::Time start = absl::Now();
  absl::Time running_since = absl::InfiniteFuture();
  for (;;) {
    auto job = client.Job(id);
    if (!job.ok()) return job.status();
    if (job->failures_size() > 0) {
      return absl::AbortedError(absl::StrCat(id, " failed: ", job->failures(0).message()));
    }
    if (IsEnded(job->state()) || job->state() == cluster::RESTARTING) {
      return absl::AbortedError(absl::StrCat(id, " is ", JobStateName(job->state()),
                                             job->failure().empty() ? "" : ": ", job->failure()));
    }
    const absl::Time now = absl::Now();
    if (job->state() == cluster::RUNNING) {
      running_since = std::min(running_since, now);
      const bool checkpoints = !job->checkpoint_dir().empty();
      if (checkpoints ? job->completed_checkpoints() > 0
                      : now - running_since >= absl::Seconds(3)) {
        return absl::OkStatus();
      }
    }
    if (now - start > timeout) {
      return absl::DeadlineExceededError(
          absl::StrCat(id, " did not show it runs within ", absl::FormatDuration(timeout),
                       " (it is ", JobStateName(job->state()), ", ", job->completed_checkpoints(),
                       " checkpoints completed)"));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

/// Waits until job `id` has ended (its slots are free again).
absl::Status AwaitEnded(cluster::JobManagerClient& client, const std::string& id) {
  const absl::Time give_up = absl::Now() + absl::Minutes(1);
  for (;;) {
    auto job = client.Job(id);
    if (!job.ok()) return job.status();
    if (IsEnded(job->state())) return absl::OkStatus();
    if (absl::Now() > give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat(id, " is still ", JobStateName(job->state()), " a minute later"));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

}  // namespace

int UpgradeJob(const std::vector<std::string>& args) {
  std::vector<std::string> own = args, job_args;
  if (auto dashes = std::find(own.begin(), own.end(), "--"); dashes != own.end()) {
    job_args.assign(dashes + 1, own.end());
    own.erase(dashes, own.end());
  }
  std::vector<std::string> positional;
  auto target = TakeTarget(own, &positional);
  if (!target.ok()) return Fail(std::string(target.status().message()), 2);
  auto request = ParseUpgrade(positional, job_args);
  if (!request.ok()) {
    return Fail(absl::StrCat(request.status().message(), "\nusage:\n", kUpgradeUsage), 2);
  }
  const UpgradeRequest& r = *request;
  cluster::JobManagerClient client(target->address, absl::Minutes(2), target->credentials);

  auto old_job = client.Job(r.job_id);
  if (!old_job.ok()) return Fail(std::string(old_job.status().message()), 1);
  if (old_job->state() != cluster::RUNNING) {
    return Fail(absl::StrCat(r.job_id, " is ", JobStateName(old_job->state()),
                             ": only a running job is upgraded"),
                1);
  }
  auto old_submission = client.SubmissionOf(r.job_id);
  if (!old_submission.ok()) return Fail(std::string(old_submission.status().message()), 1);

  // The new binary's graph, built here as `sluice run` builds it.
  auto library = JobLibrary::Load(r.job_path);
  if (!library.ok()) return Fail(std::string(library.status().message()), 1);
  const bool has_checkpoint =
      !old_job->checkpoint_dir().empty() && old_job->completed_checkpoints() > 0;
  const std::string latest = has_checkpoint ? old_job->checkpoint_dir() : "";
  auto graph = BuildJob((*library)->build(), {(*library)->JobName(), r.job_args, r.parallelism,
                                              latest, r.allow_non_restored_state});
  if (!graph.ok()) {
    return Fail(absl::StrCat((*library)->JobName(), ": ", graph.status().message()), 1);
  }
  auto blob = client.UploadFile(r.job_path);
  if (!blob.ok()) return Fail(std::string(blob.status().message()), 1);
  cluster::JobSubmission next;
  next.mutable_job_binary()->set_sha256(blob->sha256);
  next.mutable_job_binary()->set_size(blob->size);
  next.set_job_name(graph->stream.config.job_name);
  for (const std::string& a : r.job_args) next.add_args(a);
  next.set_parallelism(r.parallelism);
  next.set_allow_non_restored_state(r.allow_non_restored_state);
  for (const JobVertex& v : graph->vertices) {
    next.add_vertex_parallelism(v.parallelism);
    next.add_vertex_names(v.name);
  }

  // 1. Would it restore? Nothing has stopped yet.
  next.set_restore_from(latest);
  if (absl::Status check = client.Check(next); !check.ok()) {
    Step(absl::StrCat("1/4 check: ", r.job_path, " cannot take over ", r.job_id, ": ",
                      check.message()));
    return Fail(absl::StrCat("nothing was stopped: ", r.job_id, " runs on"), 1);
  }
  Step(has_checkpoint
           ? absl::StrCat("1/4 check: ", r.job_path, " restores the latest checkpoint of ",
                          r.job_id, " (", latest, ")")
           : absl::StrCat("1/4 check: ", r.job_id,
                          " has no completed checkpoint yet; the new job builds"));

  // 2. Stop with a savepoint.
  auto savepoint = client.Savepoint(r.job_id, r.savepoint_dir, /*stop=*/true, absl::Minutes(15));
  if (!savepoint.ok()) {
    return Fail(
        absl::StrCat("stopping ", r.job_id, " with a savepoint: ", savepoint.status().message()),
        1);
  }
  if (absl::Status ended = AwaitEnded(client, r.job_id); !ended.ok()) {
    return Fail(std::string(ended.message()), 1);
  }
  Step(absl::StrCat("2/4 stop: ", r.job_id, " stopped with savepoint ", *savepoint));

  // 3. and 4. The new binary from it, until it runs.
  next.set_restore_from(*savepoint);
  auto new_id = client.Submit(next);
  absl::Status runs = new_id.status();
  if (new_id.ok()) {
    Step(absl::StrCat("3/4 start: ", *new_id, " (", r.job_path, ") from ", *savepoint));
    runs = AwaitRunning(client, *new_id, r.timeout);
    if (runs.ok()) {
      Step(absl::StrCat("4/4 running: ", *new_id, " replaces ", r.job_id));
      return 0;
    }
    Step(absl::StrCat("4/4 not running: ", runs.message()));
    (void)client.Cancel(*new_id);
    if (absl::Status ended = AwaitEnded(client, *new_id); !ended.ok()) {
      Step(absl::StrCat("canceling ", *new_id, ": ", ended.message()));
    }
  } else {
    Step(absl::StrCat("3/4 start: refused: ", runs.message()));
  }

  // Back to the old binary, from the same savepoint.
  cluster::JobSubmission old = *old_submission;
  old.set_restore_from(*savepoint);
  auto back = client.Submit(old);
  if (!back.ok()) {
    return Fail(absl::StrCat("rolling back: the old binary did not start either: ",
                             back.status().message(), " (savepoint ", *savepoint, ")"),
                1);
  }
  absl::Status back_runs = AwaitRunning(client, *back, r.timeout);
  if (!back_runs.ok()) {
    return Fail(absl::StrCat("rolled back to ", *back, " (the old binary from ", *savepoint,
                             "), which does not run either: ", back_runs.message()),
                1);
  }
  Step(absl::StrCat("rolled back: ", *back, " runs the old binary from ", *savepoint));
  return Fail(absl::StrCat("the new job did not run (", runs.message(), ")"), 1);
}

}  // namespace sluice::cli
