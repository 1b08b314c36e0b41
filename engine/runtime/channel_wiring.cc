#include "runtime/channel_wiring.h"

namespace sluice::internal {

namespace {
/// The channels job edge `e` has in its consumer's gate: one per producer subtask
/// (all-to-all), or one for a pointwise forward edge.
int ChannelsOf(const JobGraph& g, const JobEdge& e) {
  const bool pointwise = g.stream.edges[e.stream_edge].partition == PartitionKind::kForward;
  return pointwise ? 1 : g.vertices[e.source_vertex].parallelism;
}
}  // namespace

std::vector<int> ChannelStreamEdges(const JobGraph& g, int vertex) {
  std::vector<int> edges;
  for (const JobEdge& e : g.edges) {
    if (e.target_vertex == vertex) edges.insert(edges.end(), ChannelsOf(g, e), e.stream_edge);
  }
  return edges;
}

Wiring WireChannels(const JobGraph& g, const Placement& placement, RemoteChannels* remote) {
  Wiring w;
  const size_t nv = g.vertices.size();
  w.outputs.resize(nv);
  for (size_t v = 0; v < nv; ++v) w.outputs[v].resize(g.vertices[v].parallelism);

  // Channel layout of each consumer gate: its incoming job edges' channels in edge order.
  std::vector<int> channels_per_gate(nv, 0);
  std::vector<int> first_channel(g.edges.size(), 0);
  for (size_t i = 0; i < g.edges.size(); ++i) {
    const JobEdge& e = g.edges[i];
    first_channel[i] = channels_per_gate[e.target_vertex];
    channels_per_gate[e.target_vertex] += ChannelsOf(g, e);
  }
  // A channel's id, the same in every process: its position among all gates' channels.
  std::vector<std::vector<int>> first_id(nv);
  int next_id = 0;
  for (size_t v = 0; v < nv; ++v) {
    for (int s = 0; s < g.vertices[v].parallelism; ++s) {
      first_id[v].push_back(next_id);
      next_id += channels_per_gate[v];
    }
  }
  const int capacity = g.stream.config.channel_capacity;
  w.gates.resize(nv);
  for (size_t v = 0; v < nv; ++v) {
    if (channels_per_gate[v] == 0) continue;
    for (int s = 0; s < g.vertices[v].parallelism; ++s) {
      w.gates[v].push_back(placement.IsLocal(static_cast<int>(v), s)
                               ? std::make_unique<InputGate>(channels_per_gate[v], capacity)
                               : nullptr);
    }
  }
  for (size_t i = 0; i < g.edges.size(); ++i) {
    const JobEdge& e = g.edges[i];
    const StreamEdge& se = g.stream.edges[e.stream_edge];
    const bool pointwise = se.partition == PartitionKind::kForward;
    const std::shared_ptr<const BatchCodec> codec =
        g.stream.nodes[se.source].OutputFor(se.side_output).ops;
    const int producers = g.vertices[e.source_vertex].parallelism;
    const int consumers = g.vertices[e.target_vertex].parallelism;
    // One channel: producer p into consumer c's gate at `channel`.
    auto connect = [&](int p, int c, int channel, TaskOutputEdge* out) {
      const bool producer_here = placement.IsLocal(e.source_vertex, p);
      const bool consumer_here = placement.IsLocal(e.target_vertex, c);
      const int id = first_id[e.target_vertex][c] + channel;
      if (producer_here && consumer_here) {
        out->targets.push_back({w.gates[e.target_vertex][c].get(), channel});
      } else if (producer_here) {
        const int where = placement.location[e.target_vertex][c];
        out->targets.push_back({remote->OpenOutbound(where, id, codec), id});
      } else if (consumer_here) {
        remote->RegisterInbound(id, w.gates[e.target_vertex][c].get(), channel, codec, capacity);
        w.inbound_channels.push_back(id);
      }
    };
    for (int p = 0; p < producers; ++p) {
      TaskOutputEdge out;
      out.stream_edge = e.stream_edge;
      if (pointwise) {
        connect(p, p, first_channel[i], &out);
      } else {
        for (int c = 0; c < consumers; ++c) connect(p, c, first_channel[i] + p, &out);
      }
      if (placement.IsLocal(e.source_vertex, p)) {
        w.outputs[e.source_vertex][p].push_back(std::move(out));
      }
    }
  }
  return w;
}

}  // namespace sluice::internal
