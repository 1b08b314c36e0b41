// sluice-jobmanager: the cluster's coordinator. Listens for gRPC from clients and
// TaskManagers, keeps the blob store of job binaries, watches TaskManager heartbeats.
// Settings are flags; --flagfile=FILE reads them from a file (one --flag=value per line).

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "blob/blob_server.h"
#include "dispatcher/dispatcher.h"
#include "gateway/taskmanager_gateway.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "heartbeat/taskmanager_registry.h"
#include "recovery/job_store.h"
#include "rest/rest_server.h"
#include "service/jobmanager_service.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/job/job_args.h"
#include "sluice/jobmanager/blob_store.h"
#include "sluice/jobmanager/daemon_logging.h"
#include "sluice/runtime/restart_strategy_config.h"

ABSL_FLAG(int, port, 6123, "port for clients and TaskManagers (0: any free port)");
ABSL_FLAG(int, rest_port, -1,
          "port of the REST API and the Prometheus metrics (/metrics) over HTTP (0: any free "
          "port, -1: none)");
ABSL_FLAG(std::string, rest_bind_address, "127.0.0.1",
          "the address the REST API listens on (loopback unless opened on purpose)");
ABSL_FLAG(std::string, tls_cert, "",
          "its TLS certificate (PEM): clients and TaskManagers then speak TLS to it");
ABSL_FLAG(std::string, tls_key, "", "the private key of --tls-cert (PEM)");
ABSL_FLAG(std::string, tls_ca, "",
          "the CA certificate (PEM) that signed the cluster's certificates: callers must present "
          "one it signed (mutual TLS), and TaskManagers must too when it calls them");
ABSL_FLAG(std::string, auth_token_file, "",
          "a file holding the cluster's shared secret: every call that changes anything "
          "(submit, upload, cancel, savepoint, a TaskManager's registration and reports) must "
          "carry it, and calls to TaskManagers carry it (empty: the cluster is open)");
ABSL_FLAG(std::string, bind_address, "127.0.0.1",
          "address to listen on (loopback by default; 0.0.0.0 for every interface)");
ABSL_FLAG(std::string, advertised_address, "",
          "the host name or address clients and TaskManagers dial to reach it, as it prints it "
          "(default: the bind address)");
ABSL_FLAG(std::string, blob_dir, "",
          "directory of the blob store (job binaries); default "
          "$XDG_DATA_HOME/sluice/blobs or ~/.local/share/sluice/blobs — never /tmp, which "
          "cron jobs clean");
// A TaskManager whose process dies is lost at once (its control stream breaks); heartbeats
// find those that go silent without a broken connection (a host down, a partition): the
// timeout is that case's detection time, traded against false alarms on a loaded host.
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Milliseconds(500),
          "how often TaskManagers send heartbeats on their control stream");
ABSL_FLAG(absl::Duration, heartbeat_timeout, absl::Seconds(4),
          "a TaskManager (or, for a TaskManager, its JobManager) silent this long is declared "
          "lost; a dead process is noticed at once, by its broken control stream");
ABSL_FLAG(std::string, recovery_dir, "",
          "keep the jobs that have not ended here (written atomically): a JobManager started "
          "again with the same directory (and --port) runs them again from their latest "
          "checkpoints once TaskManagers reconnect; empty: jobs live in memory only");
ABSL_FLAG(absl::Duration, slot_wait, absl::Seconds(30),
          "a job that cannot get enough slots fails after waiting this long");
ABSL_FLAG(std::string, slot_strategy, "spread",
          "spread: subtasks over as many TaskManagers as possible; pack: fill one first");
ABSL_FLAG(absl::Duration, deploy_timeout, sluice::cluster::GatewayDeadlines().deploy,
          "a TaskManager that does not answer a deployment this long fails the run");
ABSL_FLAG(absl::Duration, cancel_timeout, sluice::cluster::GatewayDeadlines().cancel,
          "how long a TaskManager may take to answer a cancellation");
ABSL_FLAG(absl::Duration, checkpoint_command_timeout,
          sluice::cluster::GatewayDeadlines().checkpoint_command,
          "how long a TaskManager may take to answer a checkpoint command (trigger, complete, "
          "abort)");

// The cluster's default restart strategy, for jobs that name none: the same flags as a job's.
ABSL_FLAG(std::string, restart_strategy, "",
          "restart strategy of jobs that name none: none, fixed-delay, exponential-delay or "
          "failure-rate (default: exponential-delay for checkpointed jobs, none for others)");
ABSL_FLAG(std::string, restart_attempts, "", "fixed-delay, exponential-delay: restarts allowed");
ABSL_FLAG(std::string, restart_delay, "", "fixed-delay, failure-rate: delay before a restart");
ABSL_FLAG(std::string, restart_initial_delay, "", "exponential-delay: the first delay");
ABSL_FLAG(std::string, restart_max_delay, "", "exponential-delay: the longest delay");
ABSL_FLAG(std::string, restart_multiplier, "", "exponential-delay: growth of each delay");
ABSL_FLAG(std::string, restart_jitter, "", "exponential-delay: random share of a delay (0..1)");
ABSL_FLAG(std::string, restart_reset_after, "",
          "exponential-delay: a run this long without failure starts the delays anew");
ABSL_FLAG(std::string, restart_max_failures, "",
          "failure-rate: failures tolerated per --restart-failure-interval");
ABSL_FLAG(std::string, restart_failure_interval, "", "failure-rate: the interval");

namespace {

/// The restart strategy the --restart-* flags name (nothing: none named).
std::optional<sluice::RestartStrategyConfig> DefaultRestartStrategy() {
  sluice::JobArgs args;
  for (const std::string& name : sluice::RestartStrategyFlagNames()) {
    const absl::CommandLineFlag* flag =
        absl::FindCommandLineFlag(absl::StrReplaceAll(name, {{"-", "_"}}));
    const std::string value = flag == nullptr ? "" : flag->CurrentValue();
    if (!value.empty()) args.Set(name, value);
  }
  return sluice::ReadRestartStrategy(args);
}

std::string DefaultBlobDir() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg != '\0') {
    return absl::StrCat(xdg, "/sluice/blobs");
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : ".", "/.local/share/sluice/blobs");
}

grpc::Server* g_server = nullptr;
sluice::cluster::JobManagerService* g_service = nullptr;

void Shutdown(int) {
  // Shutdown() from a signal handler is not safe; a thread does it. The TaskManagers'
  // control streams never end by themselves: they are canceled after a moment.
  std::thread([] {
    g_service->StopDeclaringLosses();
    g_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }).detach();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("sluice-jobmanager [--port=6123] [--blob-dir=DIR] [--flagfile=F]");
  sluice::ParseAbseilFlags(argc, argv);
  if (absl::Status logging = sluice::cluster::InitDaemonLogging(argv[0]); !logging.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(logging.message()).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_heartbeat_timeout) <= absl::GetFlag(FLAGS_heartbeat_interval)) {
    std::fprintf(stderr,
                 "sluice-jobmanager: --heartbeat-timeout must exceed --heartbeat-interval\n");
    return 2;
  }
  std::string blob_dir = absl::GetFlag(FLAGS_blob_dir);
  if (blob_dir.empty()) blob_dir = DefaultBlobDir();
  auto blobs = sluice::cluster::BlobStore::Open(blob_dir);
  if (!blobs.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(blobs.status().message()).c_str());
    return 2;
  }
  sluice::cluster::DispatcherOptions options;
  options.scheduler.slot_wait = absl::GetFlag(FLAGS_slot_wait);
  const std::string strategy = absl::GetFlag(FLAGS_slot_strategy);
  if (strategy == "pack") {
    options.scheduler.slot_strategy = sluice::cluster::SlotStrategy::kPack;
  } else if (strategy != "spread") {
    std::fprintf(stderr, "sluice-jobmanager: --slot-strategy is spread or pack, not '%s'\n",
                 strategy.c_str());
    return 2;
  }
  try {
    options.default_restart_strategy = DefaultRestartStrategy();
  } catch (const sluice::JobArgumentError& e) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", e.what());
    return 2;
  }
  sluice::cluster::GatewayDeadlines deadlines;
  deadlines.deploy = absl::GetFlag(FLAGS_deploy_timeout);
  deadlines.cancel = absl::GetFlag(FLAGS_cancel_timeout);
  deadlines.checkpoint_command = absl::GetFlag(FLAGS_checkpoint_command_timeout);
  for (const auto& [flag, value] :
       {std::pair{"--deploy-timeout", deadlines.deploy},
        std::pair{"--cancel-timeout", deadlines.cancel},
        std::pair{"--checkpoint-command-timeout", deadlines.checkpoint_command}}) {
    if (value <= absl::ZeroDuration()) {
      std::fprintf(stderr, "sluice-jobmanager: %s must be positive (got %s)\n", flag,
                   absl::FormatDuration(value).c_str());
      return 2;
    }
  }
  std::unique_ptr<sluice::cluster::JobStore> job_store;
  if (const std::string dir = absl::GetFlag(FLAGS_recovery_dir); !dir.empty()) {
    auto store = sluice::cluster::JobStore::Open(dir);
    if (!store.ok()) {
      std::fprintf(stderr, "sluice-jobmanager: %s\n",
                   std::string(store.status().message()).c_str());
      return 2;
    }
    job_store = std::move(*store);
    options.job_store = job_store.get();
  }
  auto loaded = sluice::cluster::Credentials::Load(
      {absl::GetFlag(FLAGS_auth_token_file), absl::GetFlag(FLAGS_tls_cert),
       absl::GetFlag(FLAGS_tls_key), absl::GetFlag(FLAGS_tls_ca)});
  if (!loaded.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", loaded.status().ToString().c_str());
    return 2;
  }
  const sluice::cluster::Credentials& credentials = *loaded;
  // The parts, in the order they may be destroyed in reverse (users before what they use).
  sluice::cluster::GrpcTaskManagerGateway gateway(deadlines, credentials);
  sluice::cluster::TaskManagerRegistry registry(absl::GetFlag(FLAGS_heartbeat_timeout));
  sluice::cluster::Dispatcher dispatcher(blobs->get(), &gateway, options);
  if (absl::Status s = dispatcher.Recover(); !s.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: recovering the jobs in %s: %s\n",
                 absl::GetFlag(FLAGS_recovery_dir).c_str(), std::string(s.message()).c_str());
    return 2;
  }
  sluice::cluster::BlobServer blob_server(blobs->get());
  auto on_lost = [&dispatcher](const sluice::cluster::TaskManagerRegistry::Lost& lost) {
    dispatcher.TaskManagerLost(lost.taskmanager_id, lost.registration_number, lost.why);
  };
  sluice::cluster::HeartbeatMonitor monitor(&registry, absl::GetFlag(FLAGS_heartbeat_interval),
                                            on_lost);
  sluice::cluster::JobManagerService service(&registry, &dispatcher, &blob_server, blobs->get(),
                                             absl::GetFlag(FLAGS_heartbeat_interval), on_lost,
                                             credentials);

  const std::string address =
      absl::StrCat(absl::GetFlag(FLAGS_bind_address), ":", absl::GetFlag(FLAGS_port));
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, credentials.ServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr,
                 "sluice-jobmanager: cannot listen on %s (in use, or not an address of "
                 "this machine)\n",
                 address.c_str());
    return 2;
  }
  std::unique_ptr<sluice::cluster::RestServer> rest;
  if (const int rest_port = absl::GetFlag(FLAGS_rest_port); rest_port >= 0) {
    rest = std::make_unique<sluice::cluster::RestServer>(
        [&service] { return service.ClusterStatus(); },
        sluice::cluster::RestServer::Actions{
            [&dispatcher](const std::string& id) { return dispatcher.Cancel(id); },
            [&dispatcher](const sluice::cluster::TriggerSavepointRequest& request) {
              return dispatcher.TriggerSavepoint(request);
            },
            [&dispatcher](const sluice::cluster::JobSubmission& request) {
              return dispatcher.SubmitUploaded(request);
            },
            blobs->get(), &credentials},
        sluice::cluster::HttpsFiles{absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key)});
    auto bound = rest->Start(absl::GetFlag(FLAGS_rest_bind_address), rest_port);
    if (!bound.ok()) {
      std::fprintf(stderr, "sluice-jobmanager: %s\n",
                   std::string(bound.status().message()).c_str());
      return 2;
    }
    // Before the listening line, so whoever waits for that one finds this too.
    std::printf("sluice-jobmanager REST API on %s://%s:%d\n", rest->scheme(),
                absl::GetFlag(FLAGS_rest_bind_address).c_str(), *bound);
  }
  g_server = server.get();
  g_service = &service;
  std::signal(SIGTERM, Shutdown);
  std::signal(SIGINT, Shutdown);
  // The first line of stdout: where to reach it (tests and scripts read it).
  const std::string advertised = absl::GetFlag(FLAGS_advertised_address).empty()
                                     ? absl::GetFlag(FLAGS_bind_address)
                                     : absl::GetFlag(FLAGS_advertised_address);
  std::printf("sluice-jobmanager listening on %s:%d\n", advertised.c_str(), port);
  std::fflush(stdout);
  LOG(INFO) << "JobManager on port " << port << ", blob store in " << blob_dir;
  if (!credentials.tls()) {
    LOG(WARNING) << "no --tls-cert/--tls-key/--tls-ca: its connections are plaintext";
  }
  if (!credentials.has_token()) {
    LOG(WARNING) << "no --auth-token-file: this cluster is open — anyone who reaches " << address
                 << " can submit and run code on it";
  }
  server->Wait();
  LOG(INFO) << "JobManager stopped";
  return 0;
}
