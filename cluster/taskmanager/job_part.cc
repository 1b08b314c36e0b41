#include "cluster/taskmanager/job_part.h"

#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "sluice/api/job.h"

namespace sluice::cluster {

JobPart::JobPart(DeployJobRequest request, BlobCache* blobs, ExchangeServer* exchange,
                 Report report)
    : request_(std::move(request)),
      blobs_(blobs),
      exchange_(exchange),
      report_(std::move(report)) {}

JobPart::~JobPart() {
  Cancel();
  if (thread_.joinable()) thread_.join();
}

void JobPart::Start() {
  thread_ = std::thread([this] {
    absl::Status status = Run();
    JobPartReport report;
    report.set_job_id(request_.job_id());
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      if (status.ok()) {
        report.set_state(FINISHED);
      } else if (absl::IsCancelled(status) && canceled_) {
        report.set_state(CANCELED);
      } else {
        report.set_state(FAILED);
        report.set_failure(std::string(status.message()));
      }
    }
    LOG(INFO) << "job " << request_.job_id() << ": this TaskManager's part ended: "
              << (status.ok() ? "finished" : status.ToString());
    report_(report);
  });
}

void JobPart::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  canceled_ = true;
  if (channels_ != nullptr) channels_->Cancel();
  if (running_ != nullptr) running_->Cancel();
}

bool JobPart::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

absl::Status JobPart::Run() {
  const BlobId blob{request_.job().job_binary().sha256(), request_.job().job_binary().size()};
  auto path = blobs_->Acquire(blob);
  if (!path.ok()) return path.status();
  struct Release {
    BlobCache* blobs;
    std::string sha;
    ~Release() { blobs->Release(sha); }
  } release{blobs_, blob.sha256};

  // The library outlives everything built from it (the graph holds its code).
  auto library = JobLibrary::Load(*path);
  if (!library.ok()) return library.status();
  // The same spec as the client's: the same graph.
  const SubmitJobRequest& job = request_.job();
  JobSpec spec;
  spec.job_name = job.job_name();
  spec.args.assign(job.args().begin(), job.args().end());
  spec.parallelism = job.parallelism();
  auto graph = BuildJob((*library)->build(), spec);
  if (!graph.ok()) return graph.status();

  // The JobManager scheduled the graph the client built: this must be the same one.
  std::vector<int> here,
      scheduled(job.vertex_parallelism().begin(), job.vertex_parallelism().end());
  for (const JobVertex& v : graph->vertices) here.push_back(v.parallelism);
  if (here != scheduled) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the job binary builds another graph on this TaskManager (vertex parallelism ",
        absl::StrJoin(here, ","), ") than the one scheduled (", absl::StrJoin(scheduled, ","),
        "): does the job read something that differs between machines?"));
  }
  const int subtasks = std::accumulate(here.begin(), here.end(), 0);
  if (request_.placement_size() != subtasks || request_.self() < 0 ||
      request_.self() >= request_.exchange_addresses_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a deployment with a placement of ", request_.placement_size(),
                     " subtasks for a job of ", subtasks, ", or an index ", request_.self(),
                     " outside its ", request_.exchange_addresses_size(), " TaskManagers"));
  }
  Placement placement;
  placement.self = request_.self();
  int at = 0;
  for (const JobVertex& v : graph->vertices) {
    std::vector<int> where;
    for (int s = 0; s < v.parallelism; ++s) where.push_back(request_.placement(at++));
    placement.location.push_back(std::move(where));
  }
  ExchangeChannels channels(
      request_.job_id(), exchange_,
      {request_.exchange_addresses().begin(), request_.exchange_addresses().end()});
  absl::Status status;
  {
    LocalSubtasks subtasks(&*graph, placement, &channels);
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_ = &subtasks;
      channels_ = &channels;
      if (canceled_) {
        channels.Cancel();
        subtasks.Cancel();
      }
    }
    status = subtasks.Run();
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_ = nullptr;
      channels_ = nullptr;
    }
    channels.Close();  // inbound channels unregistered before their gates go
  }
  return status;
}

}  // namespace sluice::cluster
