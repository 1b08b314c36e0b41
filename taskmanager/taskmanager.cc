#include "taskmanager.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "sluice/api/job.h"
#include "sluice/core/backoff.h"

namespace sluice::cluster {

namespace {

std::string HostName() {
  char name[256] = {0};
  ::gethostname(name, sizeof(name) - 1);
  return name;
}

}  // namespace

TaskManager::TaskManager(TaskManagerOptions options)
    : options_(std::move(options)),
      jobmanager_(options_.jobmanager, options_.jobmanager_timeout, options_.credentials),
      exchange_(options_.credentials) {}

TaskManager::~TaskManager() {
  {
    MutexLock lock(&mu_);
    for (auto& [id, part] : parts_) part->Cancel();
  }
  // No deployment can arrive any more; then the parts' threads are joined.
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
  parts_.clear();
  if (local_state_) {
    std::error_code ec;
    std::filesystem::remove_all(local_state_->root(), ec);
  }
}

grpc::Status TaskManager::DeployJob(grpc::ServerContext* ctx, const DeployJobRequest* request,
                                    DeployJobReply*) {
  if (grpc::Status denied = options_.credentials.Check(*ctx, "a deployment"); !denied.ok())
    return denied;
  std::unique_ptr<JobPart> ended;  // an earlier run of the job (restarted), joined outside the lock
  MutexLock lock(&mu_);
  const PartKey key{request->job_id(), request->region()};
  if (auto it = parts_.find(key); it != parts_.end()) {
    if (!it->second->done() && it->second->attempt() >= request->attempt()) {
      return grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                          absl::StrCat("job ", request->job_id(), " already runs region ",
                                       request->region(), " here"));
    }
    // A run of the job that ended, or one this deployment supersedes (its run failed while
    // this TaskManager was cut off): canceled, and joined before the new one starts.
    it->second->Cancel();
    ended = std::move(it->second);
    parts_.erase(it);
  }
  LOG(INFO) << "job " << request->job_id() << " ('" << request->job().job_name()
            << "'): deploying this TaskManager's subtasks (region " << request->region() << ", run "
            << request->attempt() << ")";
  auto part =
      std::make_unique<JobPart>(*request, options_.id, blobs_.get(), local_state_.get(), &exchange_,
                                &jobmanager_, [this](const JobPartReport& report) {
                                  if (absl::Status s = jobmanager_.ReportJobPart(report); !s.ok()) {
                                    LOG(WARNING) << "job " << report.job_id()
                                                 << ": reporting its end failed: " << s.message();
                                  }
                                });
  part->Start();
  parts_[key] = std::move(part);
  return grpc::Status::OK;
}

grpc::Status TaskManager::CancelJobPart(grpc::ServerContext* ctx,
                                        const CancelJobPartRequest* request, CancelJobPartReply*) {
  if (grpc::Status denied = options_.credentials.Check(*ctx, "a cancellation"); !denied.ok())
    return denied;
  MutexLock lock(&mu_);
  for (auto& [key, part] : parts_) {
    if (key.first != request->job_id()) continue;
    if (request->region() >= 0 && key.second != request->region()) continue;
    if (request->attempt() > 0 && part->attempt() > request->attempt()) continue;  // newer
    part->Cancel();
  }
  return grpc::Status::OK;
}

grpc::Status TaskManager::CheckpointCommand(grpc::ServerContext* ctx,
                                            const CheckpointCommandRequest* request,
                                            CheckpointCommandReply*) {
  if (grpc::Status denied = options_.credentials.Check(*ctx, "a checkpoint command"); !denied.ok())
    return denied;
  MutexLock lock(&mu_);
  auto it = parts_.find({request->job_id(), request->region()});
  if (it != parts_.end()) it->second->Command(*request);
  return grpc::Status::OK;
}

void TaskManager::ForgetEndedParts() {
  std::map<PartKey, std::unique_ptr<JobPart>> ended;
  {
    MutexLock lock(&mu_);
    for (auto it = parts_.begin(); it != parts_.end();) {
      if (it->second->done()) {
        ended.insert(parts_.extract(it++));
      } else {
        ++it;
      }
    }
  }
  ended.clear();  // joins outside the lock
}

absl::Status TaskManager::RegisterWithin(absl::Duration patience) {
  RegisterTaskManagerRequest request;
  request.set_taskmanager_id(options_.id);
  request.set_slots(options_.slots);
  request.set_engine_abi(EngineAbi());
  request.set_host(HostName());
  request.set_pid(::getpid());
  request.set_address(address_);
  const absl::Time give_up = absl::Now() + patience;
  Backoff backoff({.initial = absl::Milliseconds(100), .max = absl::Seconds(2)});
  for (int attempt = 1;; ++attempt) {
    auto response = jobmanager_.Register(request);
    if (response.ok()) {
      control_.taskmanager_id = options_.id;
      control_.registration_number = response->registration_number();
      control_.heartbeat_interval = absl::Milliseconds(response->heartbeat_interval_ms());
      control_.heartbeat_timeout = absl::Milliseconds(response->heartbeat_timeout_ms());
      LOG(INFO) << "registered with the JobManager at " << options_.jobmanager << " as '"
                << options_.id << "' (" << options_.slots << " slots)";
      return absl::OkStatus();
    }
    // Only an unreachable JobManager is worth waiting for; anything else will not change.
    if (!absl::IsUnavailable(response.status()) && !absl::IsDeadlineExceeded(response.status())) {
      return response.status();
    }
    const absl::Duration delay = backoff.Next();
    if (absl::Now() + delay > give_up || stopping_.load()) {
      return absl::UnavailableError(absl::StrCat(response.status().message(), " (gave up after ",
                                                 attempt, " attempts in ",
                                                 absl::FormatDuration(patience), ")"));
    }
    LOG(WARNING) << response.status().message() << " (attempt " << attempt << ", retrying)";
    absl::SleepFor(delay);
  }
}

absl::Status TaskManager::Run() {
  auto cache = BlobCache::Open(options_.cache_dir, [this](const BlobId& id, const auto& write) {
    return jobmanager_.Download(id, write);
  });
  if (!cache.ok()) return cache.status();
  blobs_ = std::move(*cache);
  if (!options_.local_state_dir.empty()) {
    // Copies a predecessor left belong to runs the JobManager has failed by now.
    std::error_code ec;
    std::filesystem::remove_all(options_.local_state_dir, ec);
    auto local = LocalStateStore::Create(options_.local_state_dir);
    if (!local.ok()) return local.status();
    local_state_ = std::move(*local);
  }
  const std::string listen = absl::StrCat(options_.bind_address, ":", options_.port);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, options_.credentials.ServerCredentials(), &port);
  builder.RegisterService(this);
  builder.RegisterService(&exchange_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot listen on ", listen));
  }
  std::string host = options_.advertised_address;
  if (host.empty()) {
    const bool wildcard = options_.bind_address == "0.0.0.0" || options_.bind_address == "::" ||
                          options_.bind_address == "[::]";
    host = wildcard ? HostName() : options_.bind_address;
  }
  address_ = absl::StrCat(host, ":", port);
  if (options_.metrics_port >= 0) {
    metrics_ = std::make_unique<MetricsEndpoint>(
        options_.id, options_.slots,
        [this] {
          MutexLock lock(&mu_);
          return static_cast<int>(std::count_if(parts_.begin(), parts_.end(),
                                                [](const auto& p) { return !p.second->done(); }));
        },
        options_.metrics_https);
    auto bound = metrics_->Start(options_.metrics_bind_address, options_.metrics_port);
    if (!bound.ok()) return bound.status();
    // Before the listening line, so whoever waits for that one finds this too.
    LOG(INFO) << "TaskManager '" << options_.id << "' metrics on " << metrics_->scheme() << "://"
              << options_.metrics_bind_address << ":" << *bound << "/metrics";
  }
  // Tests and scripts read the address at the end of this line.
  LOG(INFO) << "TaskManager '" << options_.id << "' listening on " << listen << ", serving on "
            << address_;
  if (absl::Status s = RegisterWithin(options_.registration_timeout); !s.ok()) return s;
  while (!stopping_.load()) {
    std::string why;
    const ControlStreamEnd end = RunControlStream(
        &jobmanager_, control_, stopping_,
        [this](HeartbeatRequest* beat) {
          ForgetEndedParts();
          MutexLock lock(&mu_);
          for (const auto& [key, part] : parts_) part->AddMetricsTo(beat);
        },
        [this](const HeartbeatReply& reply) { KeepLocalStateOf(reply); }, &why);
    if (end == ControlStreamEnd::kStopping) break;
    LOG(WARNING) << why << ": registering again";
    if (absl::Status s = RegisterAgain(); !s.ok()) return stopping_.load() ? absl::OkStatus() : s;
  }
  return absl::OkStatus();
}

void TaskManager::KeepLocalStateOf(const HeartbeatReply& reply) {
  if (!local_state_) return;
  std::set<std::string> live(reply.live_jobs().begin(), reply.live_jobs().end());
  {
    MutexLock lock(&mu_);
    for (const auto& [key, part] : parts_) {
      if (!part->done()) live.insert(key.first);
    }
  }
  local_state_->ForgetAllBut(live);
}

void TaskManager::CancelParts(const std::string& why) {
  MutexLock lock(&mu_);
  for (auto& [key, part] : parts_) {
    if (part->done()) continue;
    LOG(WARNING) << "job " << key.first << " (region " << key.second << ", run " << part->attempt()
                 << "): canceling its part here: " << why;
    part->Cancel();
  }
}

absl::Status TaskManager::RegisterAgain() {
  absl::Status s = RegisterWithin(options_.jobmanager_grace_period);
  if (absl::IsUnavailable(s) && !stopping_.load()) {
    CancelParts(absl::StrCat("the JobManager stayed unreachable for ",
                             absl::FormatDuration(options_.jobmanager_grace_period)));
    s = RegisterWithin(absl::InfiniteDuration());
  }
  if (!s.ok()) return s;
  CancelParts("registered again: the runs of the earlier registration failed");
  return absl::OkStatus();
}

}  // namespace sluice::cluster
