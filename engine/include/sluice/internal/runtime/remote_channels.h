#pragma once

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "sluice/internal/network/channel_codec.h"
#include "sluice/internal/network/channel_sink.h"
#include "sluice/internal/network/input_gate.h"

namespace sluice::internal {

/// Where each subtask of a job runs: location[vertex][subtask] is a process (TaskManager)
/// index. Without one, every subtask runs here.
struct Placement {
  std::vector<std::vector<int>> location;
  int self = 0;  // the process doing the wiring

  bool IsLocal(int vertex, int subtask) const {
    return location.empty() || location[vertex][subtask] == self;
  }
};

/// How a process reaches channels whose other end runs elsewhere (the data exchange).
/// Channel ids are the same in every process of the job: they follow from the graph.
class RemoteChannels {
 public:
  virtual ~RemoteChannels() = default;
  /// The sink for a local producer's channel `channel_id` into process `location`, whose
  /// batches `codec` encodes. The sink takes the channel id as its channel number.
  virtual ChannelSink* OpenOutbound(int location, int channel_id,
                                    std::shared_ptr<const BatchCodec> codec) = 0;
  /// Remote channel `channel_id` delivers into `gate`'s channel `index`, which has room for
  /// `capacity` batches.
  virtual void RegisterInbound(int channel_id, InputGate* gate, int index,
                               std::shared_ptr<const BatchCodec> codec, int capacity) = 0;
  /// OK, or why a connection to another process failed.
  virtual absl::Status status() const = 0;
};

}  // namespace sluice::internal
