#include "rest/prometheus_text.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sluice::cluster {

namespace {

/// A label value with `\`, `"` and newlines escaped.
std::string Escaped(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string LowerStateName(JobState state) {
  std::string name = JobState_Name(state);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

/// Writes one metric family: its help, type and samples.
class Family {
 public:
  Family(std::string* out, const char* name, const char* type, const char* help)
      : out_(out), name_(name) {
    absl::StrAppend(out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  void Sample(const std::string& labels, double value) {
    // %.15g: counters stay exact integers (StrCat would round 1234567 to 1.23457e+06).
    absl::StrAppend(out_, name_, labels.empty() ? "" : absl::StrCat("{", labels, "}"), " ",
                    absl::StrFormat("%.15g", value), "\n");
  }

 private:
  std::string* out_;
  const char* name_;
};

}  // namespace

std::string PrometheusText(const GetClusterStatusReply& cluster) {
  std::string out;
  Family(&out, "sluice_jobmanager_taskmanagers", "gauge", "TaskManagers registered.")
      .Sample("", cluster.taskmanagers_size());
  Family(&out, "sluice_jobmanager_slots", "gauge", "Slots the TaskManagers offer.")
      .Sample("", cluster.total_slots());
  Family(&out, "sluice_jobmanager_slots_free", "gauge", "Slots no job holds.")
      .Sample("", cluster.free_slots());
  Family(&out, "sluice_jobmanager_job_binaries", "gauge", "Job binaries in the blob store.")
      .Sample("", cluster.blobs());

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
    return absl::StrCat("job_id=\"", Escaped(j.job_id()), "\",job_name=\"", Escaped(j.job_name()),
                        "\"");
  };
  Family state(&out, "sluice_job_state", "gauge", "1 for the state the job is in.");
  for (const JobStatus& j : cluster.jobs()) {
    state.Sample(absl::StrCat(labels(j), ",state=\"", LowerStateName(j.state()), "\""), 1);
  }
  for (const JobMetric& m : kJobMetrics) {
    Family family(&out, m.name, m.type, m.help);
    for (const JobStatus& j : cluster.jobs()) family.Sample(labels(j), m.value(j));
  }
  return out;
}

}  // namespace sluice::cluster
