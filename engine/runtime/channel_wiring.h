#pragma once

#include <memory>
#include <vector>

#include "runtime/task.h"
#include "sluice/graph/job_graph.h"
#include "sluice/internal/network/channel_codec.h"
#include "sluice/internal/network/input_gate.h"
#include "sluice/internal/runtime/remote_channels.h"

namespace sluice::internal {

/// The channels of a job in one process: the input gates of its local consumer subtasks
/// and the output targets of its local producer subtasks (local gates, or remote sinks).
struct Wiring {
  // gates[vertex][subtask]: null for a subtask that runs elsewhere or has no inputs.
  std::vector<std::vector<std::unique_ptr<InputGate>>> gates;
  // outputs[vertex][subtask]: filled for local subtasks only.
  std::vector<std::vector<std::vector<TaskOutputEdge>>> outputs;
  /// Channel ids of the inbound remote channels (to unregister them afterwards).
  std::vector<int> inbound_channels;
};

/// Lays out every consumer gate (per incoming job edge: one channel per producer subtask,
/// or one for a pointwise forward edge) and connects the local subtasks. With a placement,
/// channels between processes go through `remote`.
Wiring WireChannels(const JobGraph& g, const Placement& placement = {},
                    RemoteChannels* remote = nullptr);

/// The stream edge each channel of `vertex`'s gate carries, in the gate's channel order (the
/// layout WireChannels lays out): a two-input task routes each channel to the input its
/// edge feeds.
std::vector<int> ChannelStreamEdges(const JobGraph& g, int vertex);

}  // namespace sluice::internal
