#include "sluice/internal/network/status_watermark_valve.h"

#include <algorithm>
#include <utility>

namespace sluice::internal {

StatusWatermarkValve::StatusWatermarkValve(int num_channels) : channels_(num_channels) {}

StatusWatermarkValve::StatusWatermarkValve(State state)
    : channels_(std::move(state.channels)),
      output_watermark_(state.output_watermark),
      output_idle_(state.output_idle) {}

std::optional<Timestamp> StatusWatermarkValve::AdvanceToMinimum() {
  bool any = false;
  Timestamp min = kMaxWatermark;
  for (const auto& c : channels_) {
    if (c.ended || c.idle || !c.aligned) continue;
    any = true;
    min = std::min(min, c.watermark);
  }
  if (any && min > output_watermark_) {
    output_watermark_ = min;
    return min;
  }
  return std::nullopt;
}

bool StatusWatermarkValve::AllInactive() const {
  return std::all_of(channels_.begin(), channels_.end(),
                     [](const Channel& c) { return c.ended || c.idle; });
}

StatusWatermarkValve::Output StatusWatermarkValve::OnWatermark(int channel, Timestamp watermark) {
  Output out;
  Channel& c = channels_[channel];
  if (c.ended || c.idle || watermark <= c.watermark) return out;
  c.watermark = watermark;
  if (!c.aligned && watermark >= output_watermark_) c.aligned = true;
  out.watermark = AdvanceToMinimum();
  return out;
}

StatusWatermarkValve::Output StatusWatermarkValve::OnIdleStatus(int channel, bool idle) {
  Output out;
  Channel& c = channels_[channel];
  if (c.ended || c.idle == idle) return out;
  if (idle) {
    c.idle = true;
    c.aligned = false;
    bool any_ended_only =
        std::all_of(channels_.begin(), channels_.end(), [](const Channel& ch) { return ch.ended; });
    if (AllInactive() && !any_ended_only) {
      // Everything is idle: release the highest watermark seen, then go idle.
      Timestamp max = kMinWatermark;
      for (const auto& ch : channels_) {
        if (!ch.ended) max = std::max(max, ch.watermark);
      }
      if (max > output_watermark_) {
        output_watermark_ = max;
        out.watermark = max;
      }
      if (!output_idle_) {
        output_idle_ = true;
        out.idle_after = true;
      }
    } else {
      out.watermark = AdvanceToMinimum();  // this channel may have been the one holding back
    }
  } else {
    c.idle = false;
    c.aligned = c.watermark >= output_watermark_;
    if (output_idle_) {
      output_idle_ = false;
      out.idle_before = false;
    }
  }
  return out;
}

StatusWatermarkValve::Output StatusWatermarkValve::OnEndOfStream(int channel) {
  Output out;
  Channel& c = channels_[channel];
  if (c.ended) return out;
  c.ended = true;
  out.watermark = AdvanceToMinimum();
  return out;
}

}  // namespace sluice::internal
