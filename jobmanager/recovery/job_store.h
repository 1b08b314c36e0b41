#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/recovery.pb.h"

namespace sluice::cluster {

/// The jobs a JobManager must not forget when it dies (--recovery-dir): one file per job that
/// has not ended (its submission and latest run number) and the next job number, each written
/// atomically and durably, so a JobManager started again with the same directory runs them
/// again from their latest checkpoints and never reuses a job id. Not thread-safe: the
/// dispatcher calls it from one thread at a time.
class JobStore {
 public:
  /// Opens (creating) `dir`; an unreadable or unwritable one is an error naming it.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& dir);

  /// The jobs stored, by id; a damaged file is an error naming it.
  absl::StatusOr<std::vector<RecoveredJob>> Load() const;
  /// The next job number (1 in a new directory).
  absl::StatusOr<int64_t> NextJobNumber() const;
  absl::Status SetNextJobNumber(int64_t number);
  absl::Status Save(const RecoveredJob& job);
  /// The job ended: it is not recovered.
  absl::Status Remove(const std::string& job_id);

  const std::string& dir() const { return dir_; }

 private:
  explicit JobStore(std::string dir) : dir_(std::move(dir)) {}
  std::string PathOf(const std::string& job_id) const;

  const std::string dir_;
};

}  // namespace sluice::cluster
