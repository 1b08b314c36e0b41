#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "proto/common.pb.h"
#include "sluice/internal/runtime/job_checkpoints.h"

namespace sluice::cluster {

/// A subtask's acknowledgement (or refusal) of a checkpoint as the TaskManager sends it.
CheckpointAck EncodeCheckpointAck(const absl::StatusOr<internal::TaskAck>& ack);
/// Back on the JobManager: the acknowledgement, the refusal, or why the message is corrupt.
absl::StatusOr<internal::TaskAck> DecodeCheckpointAck(const CheckpointAck& message);

}  // namespace sluice::cluster
