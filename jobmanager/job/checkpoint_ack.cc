#include "sluice/jobmanager/checkpoint_ack.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "sluice/core/status_macros.h"
#include "sluice/serialization/serializer.h"

namespace sluice::cluster {

CheckpointAck EncodeCheckpointAck(const absl::StatusOr<internal::TaskAck>& ack) {
  CheckpointAck m;
  if (!ack.ok()) {
    m.set_declined(std::string(ack.status().message()));
    m.set_declined_code(static_cast<int>(ack.status().code()));
    return m;
  }
  m.set_handles(SerializeToString(ack->handles));
  m.set_snapshots(SerializeToString(ack->snapshots));
  for (const std::string& f : ack->shared_files) m.add_shared_files(f);
  m.set_sync_micros(absl::ToInt64Microseconds(ack->sync_duration));
  m.set_sync_cpu_micros(absl::ToInt64Microseconds(ack->sync_cpu));
  m.set_async_micros(absl::ToInt64Microseconds(ack->async_duration));
  return m;
}

absl::StatusOr<internal::TaskAck> DecodeCheckpointAck(const CheckpointAck& m) {
  if (!m.declined().empty()) {
    auto code = static_cast<absl::StatusCode>(m.declined_code());
    if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
    return absl::Status(code, m.declined());
  }
  internal::TaskAck ack;
  SLUICE_ASSIGN_OR_RETURN(auto handles, DeserializeFromString<std::map<int, StateHandle>>(
                                            m.handles(), "state handles"));
  auto snapshots =
      DeserializeFromString<std::map<int, OperatorSnapshot>>(m.snapshots(), "snapshots");
  if (!snapshots.ok()) return snapshots.status();
  ack.handles = std::move(handles);
  ack.snapshots = std::move(*snapshots);
  ack.shared_files.assign(m.shared_files().begin(), m.shared_files().end());
  ack.sync_duration = absl::Microseconds(m.sync_micros());
  ack.sync_cpu = absl::Microseconds(m.sync_cpu_micros());
  ack.async_duration = absl::Microseconds(m.async_micros());
  return ack;
}

}  // namespace sluice::cluster
