#include "rest/prometheus_text.h"

#include <cctype>

#include "sluice/internal/metrics/metric_registry.h"

namespace sluice::cluster {

namespace {

std::string LowerStateName(JobState state) {
  std::string name = JobState_Name(state);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace

std::string PrometheusText(const GetClusterStatusReply& cluster) {
  internal::PrometheusWriter out;
  out.Family("sluice_jobmanager_taskmanagers", "gauge", "TaskManagers registered.");
  out.Sample({}, cluster.taskmanagers_size());
  out.Family("sluice_jobmanager_slots", "gauge", "Slots the TaskManagers offer.");
  out.Sample({}, cluster.total_slots());
  out.Family("sluice_jobmanager_slots_free", "gauge", "Slots no job holds.");
  out.Sample({}, cluster.free_slots());
  out.Family("sluice_jobmanager_job_binaries", "gauge", "Job binaries in the blob store.");
  out.Sample({}, cluster.blobs());

  struct JobMetric {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const JobStatus&);
  };
  static const JobMetric kJobMetrics[] = {
      {"sluice_job_uptime_seconds", "gauge", "Time since the job was submitted (to its end).",
       [](const JobStatus& j) { return static_cast<double>(j.duration_ms()) / 1000; }},
      {"sluice_job_restarts_total", "counter", "Restarts after failures (whole job or regions).",
       [](const JobStatus& j) { return static_cast<double>(j.restarts()); }},
      {"sluice_job_region_restarts_total", "counter",
       "Restarts of some pipelined regions only (region failover).",
       [](const JobStatus& j) { return static_cast<double>(j.region_restarts()); }},
      {"sluice_job_checkpoints_completed_total", "counter", "Checkpoints completed.",
       [](const JobStatus& j) { return static_cast<double>(j.completed_checkpoints()); }},
      {"sluice_job_checkpoints_failed_total", "counter",
       "Checkpoints that failed (declined, expired or not stored).",
       [](const JobStatus& j) { return static_cast<double>(j.failed_checkpoints()); }},
      {"sluice_job_checkpoints_in_progress", "gauge",
       "Checkpoints triggered and neither completed nor failed yet.",
       [](const JobStatus& j) { return static_cast<double>(j.checkpoints_in_progress()); }},
      {"sluice_job_last_checkpoint_duration_seconds", "gauge",
       "Trigger to completion of the newest completed checkpoint.",
       [](const JobStatus& j) {
         for (int i = j.checkpoint_history_size() - 1; i >= 0; --i) {
           if (!j.checkpoint_history(i).failed()) {
             return static_cast<double>(j.checkpoint_history(i).duration_ms()) / 1000;
           }
         }
         return 0.0;
       }},
      {"sluice_job_last_checkpoint_size_bytes", "gauge",
       "Bytes of the state files the newest completed checkpoint wrote.",
       [](const JobStatus& j) {
         for (int i = j.checkpoint_history_size() - 1; i >= 0; --i) {
           if (!j.checkpoint_history(i).failed()) {
             return static_cast<double>(j.checkpoint_history(i).state_bytes());
           }
         }
         return 0.0;
       }},
  };
  auto labels = [](const JobStatus& j) {
    return MetricLabels{{"job_id", j.job_id()}, {"job_name", j.job_name()}};
  };
  out.Family("sluice_job_state", "gauge", "1 for the state the job is in.");
  for (const JobStatus& j : cluster.jobs()) {
    MetricLabels with_state = labels(j);
    with_state.emplace_back("state", LowerStateName(j.state()));
    out.Sample(with_state, 1);
  }
  for (const JobMetric& m : kJobMetrics) {
    out.Family(m.name, m.type, m.help);
    for (const JobStatus& j : cluster.jobs()) out.Sample(labels(j), m.value(j));
  }
  return out.text();
}

}  // namespace sluice::cluster
