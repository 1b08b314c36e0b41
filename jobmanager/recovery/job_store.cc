#include "recovery/job_store.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "sluice/checkpoint/checkpoint_storage.h"
#include "sluice/core/durable_file.h"
#include "sluice/core/status_macros.h"

namespace sluice::cluster {

namespace fs = std::filesystem;

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "jobs", ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot use the recovery directory '", dir, "': ", ec.message()));
  }
  return std::unique_ptr<JobStore>(new JobStore(dir));
}

std::string JobStore::PathOf(const std::string& job_id) const {
  return absl::StrCat(dir_, "/jobs/", job_id, ".job");
}

absl::StatusOr<std::vector<RecoveredJob>> JobStore::Load() const {
  std::vector<RecoveredJob> jobs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(dir_) / "jobs", ec)) {
    if (entry.path().extension() != ".job") continue;  // a temporary of a write cut short
    SLUICE_ASSIGN_OR_RETURN(std::string bytes, internal::ReadWholeFile(entry.path().string()));
    RecoveredJob job;
    if (!job.ParseFromString(bytes) || job.job_id().empty()) {
      return absl::DataLossError(
          absl::StrCat("the recovered job file '", entry.path().string(), "' is damaged"));
    }
    jobs.push_back(std::move(job));
  }
  if (ec) return FileError("cannot list the recovery directory", dir_ + "/jobs");
  std::sort(jobs.begin(), jobs.end(),
            [](const RecoveredJob& a, const RecoveredJob& b) { return a.job_id() < b.job_id(); });
  return jobs;
}

absl::StatusOr<int64_t> JobStore::NextJobNumber() const {
  const std::string path = dir_ + "/next-job";
  if (!fs::exists(path)) return 1;
  SLUICE_ASSIGN_OR_RETURN(std::string text, internal::ReadWholeFile(path));
  int64_t number = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &number) || number < 1) {
    return absl::DataLossError(absl::StrCat("'", path, "' is damaged: '", text, "'"));
  }
  return number;
}

absl::Status JobStore::SetNextJobNumber(int64_t number) {
  return WriteFileAtomically(dir_ + "/next-job", absl::StrCat(number, "\n"));
}

absl::Status JobStore::Save(const RecoveredJob& job) {
  return WriteFileAtomically(PathOf(job.job_id()), job.SerializeAsString());
}

absl::Status JobStore::Remove(const std::string& job_id) {
  std::error_code ec;
  fs::remove(PathOf(job_id), ec);
  if (ec) return FileError("cannot remove", PathOf(job_id));
  return absl::OkStatus();
}

}  // namespace sluice::cluster
