#pragma once

#include <optional>
#include <vector>

#include "sluice/core/time.h"
#include "sluice/serialization/serializer.h"

namespace sluice::internal {

/// Combines the watermarks and idle statuses of a task's input channels into the task's own,
/// as Flink's StatusWatermarkValve does:
/// - the output watermark is the minimum over channels that are active and aligned, and only
///   ever rises;
/// - an idle channel stops holding the watermark back; when it becomes active again it takes
///   part only once its watermark has caught up with the output (it is "aligned");
/// - when every channel is idle the output becomes idle (after advancing to the highest
///   channel watermark), and active again with the first active channel;
/// - an ended channel is gone for good.
/// Owned and used by one task thread.
class StatusWatermarkValve {
 public:
  /// What the task must send downstream after an input event, in this order.
  struct Output {
    std::optional<bool> idle_before;  // status change to send before the watermark
    std::optional<Timestamp> watermark;
    std::optional<bool> idle_after;  // status change to send after the watermark
  };

  /// One input channel as the valve sees it.
  struct Channel {
    Timestamp watermark = kMinWatermark;
    bool idle = false;
    bool aligned = true;
    bool ended = false;
  };
  /// Everything the valve knows, for a checkpoint: restored into a task with the same
  /// inputs, the valve combines what follows exactly as it would have without the restart.
  struct State {
    std::vector<Channel> channels;
    Timestamp output_watermark = kMinWatermark;
    bool output_idle = false;
  };

  explicit StatusWatermarkValve(int num_channels);
  /// Continues from `state` (which has one entry per channel of this task).
  explicit StatusWatermarkValve(State state);

  State state() const { return {channels_, output_watermark_, output_idle_}; }

  Output OnWatermark(int channel, Timestamp watermark);
  Output OnIdleStatus(int channel, bool idle);
  Output OnEndOfStream(int channel);

  Timestamp current_watermark() const { return output_watermark_; }
  bool idle() const { return output_idle_; }

 private:
  /// Advances the output to the minimum over active aligned channels, if that is higher.
  std::optional<Timestamp> AdvanceToMinimum();
  bool AllInactive() const;

  std::vector<Channel> channels_;
  Timestamp output_watermark_ = kMinWatermark;
  bool output_idle_ = false;
};

SLUICE_SERIALIZABLE(StatusWatermarkValve::Channel, watermark, idle, aligned, ended)
SLUICE_SERIALIZABLE(StatusWatermarkValve::State, channels, output_watermark, output_idle)

}  // namespace sluice::internal
