#include "sluice/internal/network/channel_codec.h"

#include "absl/strings/str_cat.h"

namespace sluice::internal {

void EncodeChannelEvent(const ChannelEvent& event, const BatchCodec& codec, std::string* out) {
  ByteWriter w(out);
  w.WriteRaw(static_cast<uint8_t>(event.kind));
  switch (event.kind) {
    case ChannelEvent::Kind::kBatch:
      codec.WriteBatch(*event.batch, w);
      break;
    case ChannelEvent::Kind::kWatermark:
      w.WriteRaw(event.watermark);
      break;
    case ChannelEvent::Kind::kIdleStatus:
      w.WriteRaw(static_cast<uint8_t>(event.idle ? 1 : 0));
      break;
    case ChannelEvent::Kind::kBarrier:
      w.WriteRaw(event.checkpoint_id);
      break;
    case ChannelEvent::Kind::kEndOfStream:
      break;
  }
}

absl::StatusOr<ChannelEvent> DecodeChannelEvent(std::string_view bytes, const BatchCodec& codec) {
  ByteReader r(bytes);
  uint8_t kind = 0;
  if (!r.ReadRaw(&kind) || kind > static_cast<uint8_t>(ChannelEvent::Kind::kEndOfStream)) {
    return absl::DataLossError(absl::StrCat("channel event of unknown kind ", kind));
  }
  ChannelEvent event;
  event.kind = static_cast<ChannelEvent::Kind>(kind);
  bool ok = true;
  switch (event.kind) {
    case ChannelEvent::Kind::kBatch:
      event.batch = codec.ReadBatch(r);
      ok = event.batch != nullptr;
      break;
    case ChannelEvent::Kind::kWatermark:
      ok = r.ReadRaw(&event.watermark);
      break;
    case ChannelEvent::Kind::kIdleStatus: {
      uint8_t idle = 0;
      ok = r.ReadRaw(&idle);
      event.idle = idle != 0;
      break;
    }
    case ChannelEvent::Kind::kBarrier:
      ok = r.ReadRaw(&event.checkpoint_id);
      break;
    case ChannelEvent::Kind::kEndOfStream:
      break;
  }
  if (!ok || !r.ok() || !r.AtEnd()) {
    return absl::DataLossError(
        absl::StrCat("a damaged channel event (", bytes.size(), " bytes, kind ", kind, ")"));
  }
  return event;
}

}  // namespace sluice::internal
