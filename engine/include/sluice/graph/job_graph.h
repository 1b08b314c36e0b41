#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/graph/stream_graph.h"

namespace sluice {

/// A chain of stream nodes that run together in one task per subtask: connected by forward
/// edges, equal parallelism, each chained node with exactly one input.
struct JobVertex {
  int id = -1;
  std::vector<int> nodes;  // stream node ids, head first, in topological order
  int parallelism = 1;
  int max_parallelism = kDefaultMaxParallelism;
  std::string name;  // "a -> b -> c"
};

/// A non-chained edge between two vertices.
struct JobEdge {
  int stream_edge = -1;  // index into StreamGraph::edges
  int source_vertex = -1;
  int target_vertex = -1;
};

/// The stream graph with chains resolved and every setting filled in and checked.
struct JobGraph {
  StreamGraph stream;  // with parallelism and max_parallelism resolved on every node
  std::vector<JobVertex> vertices;
  std::vector<JobEdge> edges;
  std::vector<int> vertex_of_node;  // stream node id -> vertex id

  /// A readable plan: one line per vertex with its parallelism and inputs.
  std::string Describe() const;
};

/// Resolves defaults, validates the graph (an error names the node and what is wrong), and
/// chains operators.
absl::StatusOr<JobGraph> BuildJobGraph(StreamGraph graph);

/// The pipelined regions of a job: sets of subtasks that exchange records only among
/// themselves, so that one can fail and restart while the others run on. A forward edge
/// joins subtask i of its producer to subtask i of its consumer; any other exchange (keyed,
/// rebalance, broadcast) joins every subtask of both vertices: a job whose vertices are all
/// connected by keyed exchanges is one region. Element t is the region of task t (numbered
/// by vertex, then subtask); regions are numbered from 0 in the order of their first task.
std::vector<int> PipelinedRegions(const JobGraph& graph);

}  // namespace sluice
