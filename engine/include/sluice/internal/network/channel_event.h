#pragma once

#include <cstdint>
#include <memory>

#include "sluice/core/record.h"
#include "sluice/core/time.h"

namespace sluice::internal {

/// What travels through a channel, in order: batches of records and in-band control events.
struct ChannelEvent {
  enum class Kind { kBatch, kWatermark, kIdleStatus, kBarrier, kEndOfStream };
  Kind kind = Kind::kBatch;
  std::unique_ptr<BatchBase> batch;
  Timestamp watermark = kMinWatermark;
  bool idle = false;          // for kIdleStatus
  int64_t checkpoint_id = 0;  // for kBarrier
};

}  // namespace sluice::internal
