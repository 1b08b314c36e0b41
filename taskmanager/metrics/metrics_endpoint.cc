#include "metrics/metrics_endpoint.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>

#include "httplib.h"
#include "sluice/internal/metrics/metric_registry.h"

namespace sluice::cluster {

namespace {

constexpr size_t kMaxRequestBody = 4096;  // GET only

/// Resident memory of this process, from /proc (0 where there is none).
double ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return static_cast<double>(pages_resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

double CpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

MetricsEndpoint::MetricsEndpoint(std::string taskmanager_id, int slots,
                                 std::function<int()> running_parts, const HttpsFiles& https)
    : taskmanager_id_(std::move(taskmanager_id)),
      slots_(slots),
      running_parts_(std::move(running_parts)),
      endpoint_(kMaxRequestBody, https) {
  endpoint_.routes().Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(Text(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

absl::StatusOr<int> MetricsEndpoint::Start(const std::string& address, int port) {
  return endpoint_.Start("metrics", address, port);
}

std::string MetricsEndpoint::Text() const {
  internal::PrometheusWriter out;
  const MetricLabels labels{{"taskmanager", taskmanager_id_}};
  out.Family("sluice_taskmanager_slots", "gauge", "Task slots the TaskManager offers.");
  out.Sample(labels, slots_);
  out.Family("sluice_taskmanager_job_parts", "gauge",
             "Job parts (a job's pipelined region on this TaskManager) running.");
  out.Sample(labels, running_parts_());
  out.Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out.Sample(labels, ResidentBytes());
  out.Family("process_cpu_seconds_total", "counter", "User and system CPU time spent.");
  out.Sample(labels, CpuSeconds());
  internal::MetricRegistry::Process().WriteTo(&out, absl::Now());
  return out.text();
}

}  // namespace sluice::cluster
