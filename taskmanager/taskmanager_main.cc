// sluice-taskmanager: offers slots to a JobManager and runs the work it is given. Settings
// are flags; --flagfile=FILE reads them from a file (one --flag=value per line).

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/jobmanager/daemon_logging.h"
#include "taskmanager.h"

ABSL_FLAG(std::string, jobmanager, "", "the JobManager's HOST:PORT (required)");
ABSL_FLAG(std::string, tls_cert, "", "its TLS certificate (PEM), served and presented to peers");
ABSL_FLAG(std::string, tls_key, "", "the private key of --tls-cert (PEM)");
ABSL_FLAG(std::string, tls_ca, "",
          "the CA certificate (PEM) that signed the cluster's certificates: its calls speak TLS "
          "and trust only servers it signed; callers must present one it signed");
ABSL_FLAG(std::string, auth_token_file, "",
          "a file holding the cluster's shared secret (the JobManager's --auth-token-file): "
          "its calls carry it, and deployments and exchange streams must (empty: open)");
ABSL_FLAG(int, slots, 1, "task slots offered (a job needs as many as its highest parallelism)");
ABSL_FLAG(std::string, id, "", "this TaskManager's id in the cluster (default HOST-PID)");
ABSL_FLAG(std::string, cache_dir, "",
          "local cache of job binaries, emptied at start (default "
          "$XDG_CACHE_HOME/sluice/taskmanager-ID or ~/.cache/sluice/taskmanager-ID)");
ABSL_FLAG(std::string, bind_address, "127.0.0.1",
          "address its deployment and data exchange service listens on (loopback by default)");
ABSL_FLAG(std::string, advertised_address, "",
          "the host name or address the JobManager and other TaskManagers dial to reach it "
          "(default: the bind address; with 0.0.0.0, this host's name)");
ABSL_FLAG(bool, local_recovery, true,
          "keep a copy of each snapshot this TaskManager's subtasks write, so that a subtask "
          "restarted here restores from it rather than from checkpoint storage");
ABSL_FLAG(std::string, local_state_dir, "",
          "where those copies go (default: TMPDIR/sluice-local-state-ID-PID); emptied at start "
          "and removed at a clean stop");
ABSL_FLAG(int, metrics_port, -1,
          "port of /metrics, Prometheus' text format (-1: not served, 0: any free port)");
ABSL_FLAG(std::string, metrics_bind_address, "127.0.0.1",
          "address /metrics listens on (0.0.0.0: every interface)");
ABSL_FLAG(int, port, 0, "port of its deployment and data exchange service (0: any free port)");
ABSL_FLAG(absl::Duration, registration_timeout, absl::Seconds(30),
          "give up when the JobManager cannot be reached this long at the start");
ABSL_FLAG(absl::Duration, jobmanager_timeout,
          sluice::cluster::TaskManagerOptions().jobmanager_timeout,
          "how long each call to the JobManager (registration, reports) may take");
ABSL_FLAG(absl::Duration, jobmanager_grace_period,
          sluice::cluster::TaskManagerOptions().jobmanager_grace_period,
          "job parts keep running this long while the JobManager is unreachable, then are "
          "canceled");

namespace {

sluice::cluster::TaskManager* g_taskmanager = nullptr;

void Stop(int) { g_taskmanager->Stop(); }

std::string DefaultCacheDir(const std::string& id) {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return absl::StrCat(xdg, "/sluice/taskmanager-", id);
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : ".", "/.cache/sluice/taskmanager-", id);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "sluice-taskmanager --jobmanager=HOST:PORT [--slots=N] [--flagfile=F]");
  sluice::ParseAbseilFlags(argc, argv);
  if (absl::Status logging = sluice::cluster::InitDaemonLogging(argv[0]); !logging.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n", std::string(logging.message()).c_str());
    return 2;
  }
  sluice::cluster::TaskManagerOptions options;
  options.jobmanager = absl::GetFlag(FLAGS_jobmanager);
  if (options.jobmanager.empty() || options.jobmanager.find(':') == std::string::npos) {
    std::fprintf(stderr, "sluice-taskmanager: --jobmanager=HOST:PORT is required (got '%s')\n",
                 options.jobmanager.c_str());
    return 2;
  }
  options.slots = absl::GetFlag(FLAGS_slots);
  if (options.slots < 1) {
    std::fprintf(stderr, "sluice-taskmanager: --slots must be at least 1\n");
    return 2;
  }
  options.id = absl::GetFlag(FLAGS_id);
  if (options.id.empty()) {
    char host[256] = {0};
    ::gethostname(host, sizeof(host) - 1);
    options.id = absl::StrCat(host, "-", ::getpid());
  }
  options.cache_dir = absl::GetFlag(FLAGS_cache_dir);
  if (options.cache_dir.empty()) options.cache_dir = DefaultCacheDir(options.id);
  if (absl::GetFlag(FLAGS_local_recovery)) {
    options.local_state_dir = absl::GetFlag(FLAGS_local_state_dir);
    if (options.local_state_dir.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      options.local_state_dir =
          absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/sluice-local-state-",
                       sluice::internal::SafeFileName(options.id), "-", ::getpid());
    }
  }
  options.registration_timeout = absl::GetFlag(FLAGS_registration_timeout);
  auto credentials = sluice::cluster::Credentials::Load(
      {absl::GetFlag(FLAGS_auth_token_file), absl::GetFlag(FLAGS_tls_cert),
       absl::GetFlag(FLAGS_tls_key), absl::GetFlag(FLAGS_tls_ca)});
  if (!credentials.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n", credentials.status().ToString().c_str());
    return 2;
  }
  options.credentials = *std::move(credentials);
  options.jobmanager_timeout = absl::GetFlag(FLAGS_jobmanager_timeout);
  if (options.jobmanager_timeout <= absl::ZeroDuration()) {
    std::fprintf(stderr, "sluice-taskmanager: --jobmanager-timeout must be positive\n");
    return 2;
  }
  options.jobmanager_grace_period = absl::GetFlag(FLAGS_jobmanager_grace_period);
  if (options.jobmanager_grace_period < absl::ZeroDuration()) {
    std::fprintf(stderr, "sluice-taskmanager: --jobmanager-grace-period must not be negative\n");
    return 2;
  }
  options.bind_address = absl::GetFlag(FLAGS_bind_address);
  options.advertised_address = absl::GetFlag(FLAGS_advertised_address);
  options.port = absl::GetFlag(FLAGS_port);
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  options.metrics_bind_address = absl::GetFlag(FLAGS_metrics_bind_address);
  options.metrics_https = {absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key)};

  sluice::cluster::TaskManager taskmanager(options);
  g_taskmanager = &taskmanager;
  std::signal(SIGTERM, Stop);
  std::signal(SIGINT, Stop);
  absl::Status status = taskmanager.Run();
  if (!status.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
