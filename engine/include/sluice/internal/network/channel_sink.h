#pragma once

#include "sluice/internal/network/channel_event.h"

namespace sluice::internal {

/// Where a producer's channels end: a local InputGate, or a connection to another
/// TaskManager that delivers into the consumer's gate there.
class ChannelSink {
 public:
  virtual ~ChannelSink() = default;
  /// Appends to `channel`, blocking while the consumer has no room for another batch (back
  /// pressure). Returns false if the job is going down (the event is dropped).
  virtual bool Push(int channel, ChannelEvent event) = 0;
};

}  // namespace sluice::internal
