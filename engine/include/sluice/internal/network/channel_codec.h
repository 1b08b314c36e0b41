#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/internal/network/channel_event.h"
#include "sluice/serialization/bytes.h"

namespace sluice::internal {

/// Writes and reads batches of one record type (records with their timestamps), for
/// channels that cross processes. Implemented per type by TypedOutputTypeOps<T>.
class BatchCodec {
 public:
  virtual ~BatchCodec() = default;
  virtual void WriteBatch(const BatchBase& batch, ByteWriter& w) const = 0;
  /// Null if the bytes are not a batch of this type.
  virtual std::unique_ptr<BatchBase> ReadBatch(ByteReader& r) const = 0;
};

/// Appends one channel event (a batch through `codec`, or a watermark, idle status, barrier
/// or end of stream) to `out`.
void EncodeChannelEvent(const ChannelEvent& event, const BatchCodec& codec, std::string* out);

/// Reads an event written by EncodeChannelEvent; DATA_LOSS naming what was wrong.
absl::StatusOr<ChannelEvent> DecodeChannelEvent(std::string_view bytes, const BatchCodec& codec);

}  // namespace sluice::internal
