#include "sluice/graph/job_graph.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sluice {
namespace {

constexpr int kUpperBoundMaxParallelism = 1 << 15;  // as Flink

std::string NodeLabel(const StreamNode& n) { return absl::StrCat("operator '", n.name, "'"); }

absl::Status ResolveNodes(StreamGraph& g) {
  if (g.nodes.empty()) return absl::InvalidArgumentError("the job defines no operators");
  if (g.config.default_parallelism < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("default parallelism must be >= 1, got ", g.config.default_parallelism));
  }
  std::set<std::string> uids;
  bool has_source = false;
  std::vector<int> in_degree(g.nodes.size(), 0);
  for (const auto& e : g.edges) in_degree[e.target]++;
  for (auto& n : g.nodes) {
    has_source |= n.is_source;
    if (n.non_parallel) {
      if (n.parallelism > 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(NodeLabel(n),
                         " cannot run in parallel (a source that cannot split its input, or a "
                         "WindowAll); it cannot have parallelism ",
                         n.parallelism));
      }
      n.parallelism = 1;
    }
    if (n.parallelism == 0) n.parallelism = g.config.default_parallelism;
    if (n.max_parallelism == 0) n.max_parallelism = g.config.default_max_parallelism;
    if (n.parallelism < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(NodeLabel(n), ": parallelism must be >= 1, got ", n.parallelism));
    }
    if (n.max_parallelism < 1 || n.max_parallelism > kUpperBoundMaxParallelism) {
      return absl::InvalidArgumentError(
          absl::StrCat(NodeLabel(n), ": max parallelism must be in [1, ", kUpperBoundMaxParallelism,
                       "], got ", n.max_parallelism));
    }
    if (n.parallelism > n.max_parallelism) {
      return absl::InvalidArgumentError(
          absl::StrCat(NodeLabel(n), ": parallelism ", n.parallelism, " exceeds max parallelism ",
                       n.max_parallelism, " (the number of key groups); raise MaxParallelism"));
    }
    if (!n.uid.empty() && !uids.insert(n.uid).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("uid '", n.uid, "' is used by more than one operator; uids must be unique"));
    }
    if (!n.is_source && in_degree[n.id] == 0) {
      return absl::InvalidArgumentError(absl::StrCat(NodeLabel(n), " has no input"));
    }
    if (n.two_input) {
      bool has[2] = {false, false};
      for (const auto& e : g.edges) {
        if (e.target == n.id && (e.input == 0 || e.input == 1)) has[e.input] = true;
      }
      if (!has[0] || !has[1]) {
        return absl::InvalidArgumentError(absl::StrCat(
            NodeLabel(n), " takes two inputs but has no ", has[0] ? "second" : "first", " one"));
      }
    }
  }
  if (!has_source) return absl::InvalidArgumentError("the job has no source");
  return absl::OkStatus();
}

absl::Status ResolveEdges(StreamGraph& g) {
  for (auto& e : g.edges) {
    const StreamNode& src = g.nodes[e.source];
    const StreamNode& dst = g.nodes[e.target];
    if (!src.OutputFor(e.side_output).ops) {
      return absl::InvalidArgumentError(
          e.side_output.empty()
              ? absl::StrCat(NodeLabel(src), " is a sink and cannot feed ", NodeLabel(dst))
              : absl::StrCat(NodeLabel(src), " has no side output '", e.side_output, "'"));
    }
    if (e.input != 0 && !(dst.two_input && e.input == 1)) {
      return absl::InvalidArgumentError(absl::StrCat(NodeLabel(src), " feeds input ", e.input + 1,
                                                     " of ", NodeLabel(dst), ", which has ",
                                                     dst.two_input ? "two inputs" : "one input"));
    }
    if (e.partition == PartitionKind::kForward && src.parallelism != dst.parallelism) {
      if (e.explicit_partition) {
        return absl::InvalidArgumentError(
            absl::StrCat("Forward() from ", NodeLabel(src), " (parallelism ", src.parallelism,
                         ") to ", NodeLabel(dst), " (parallelism ", dst.parallelism,
                         ") needs equal parallelism; use Rebalance() instead"));
      }
      e.partition = PartitionKind::kRebalance;  // Flink's default between unequal parallelism
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* PartitionKindName(PartitionKind kind) {
  switch (kind) {
    case PartitionKind::kForward:
      return "FORWARD";
    case PartitionKind::kRebalance:
      return "REBALANCE";
    case PartitionKind::kKeyGroup:
      return "HASH";
    case PartitionKind::kBroadcast:
      return "BROADCAST";
  }
  return "?";
}

absl::StatusOr<JobGraph> BuildJobGraph(StreamGraph graph) {
  for (size_t i = 0; i < graph.nodes.size(); ++i) graph.nodes[i].id = static_cast<int>(i);
  if (auto s = ResolveNodes(graph); !s.ok()) return s;
  if (auto s = ResolveEdges(graph); !s.ok()) return s;

  JobGraph jg;
  const size_t n = graph.nodes.size();
  std::vector<std::vector<int>> in_edges(n);
  for (size_t i = 0; i < graph.edges.size(); ++i) in_edges[graph.edges[i].target].push_back(i);

  jg.vertex_of_node.assign(n, -1);
  std::vector<bool> chained_edge(graph.edges.size(), false);
  for (size_t id = 0; id < n; ++id) {
    const StreamNode& node = graph.nodes[id];
    if (in_edges[id].size() == 1 && !node.two_input) {
      const StreamEdge& e = graph.edges[in_edges[id][0]];
      const StreamNode& up = graph.nodes[e.source];
      if (e.partition == PartitionKind::kForward && up.parallelism == node.parallelism) {
        int v = jg.vertex_of_node[e.source];
        jg.vertices[v].nodes.push_back(static_cast<int>(id));
        jg.vertex_of_node[id] = v;
        chained_edge[in_edges[id][0]] = true;
        continue;
      }
    }
    JobVertex v;
    v.id = static_cast<int>(jg.vertices.size());
    v.nodes.push_back(static_cast<int>(id));
    v.parallelism = node.parallelism;
    v.max_parallelism = node.max_parallelism;
    jg.vertex_of_node[id] = v.id;
    jg.vertices.push_back(std::move(v));
  }
  for (auto& v : jg.vertices) {
    std::vector<std::string> names;
    for (int id : v.nodes) names.push_back(graph.nodes[id].name);
    v.name = absl::StrJoin(names, " -> ");
  }
  for (size_t i = 0; i < graph.edges.size(); ++i) {
    if (chained_edge[i]) continue;
    jg.edges.push_back(JobEdge{static_cast<int>(i), jg.vertex_of_node[graph.edges[i].source],
                               jg.vertex_of_node[graph.edges[i].target]});
  }
  jg.stream = std::move(graph);
  return jg;
}

std::vector<int> PipelinedRegions(const JobGraph& graph) {
  std::vector<int> first_task;  // of each vertex
  int tasks = 0;
  for (const JobVertex& v : graph.vertices) {
    first_task.push_back(tasks);
    tasks += v.parallelism;
  }
  std::vector<int> parent(tasks);
  for (int t = 0; t < tasks; ++t) parent[t] = t;
  auto find = [&parent](int t) {
    while (parent[t] != t) t = parent[t] = parent[parent[t]];
    return t;
  };
  auto join = [&](int a, int b) { parent[find(a)] = find(b); };
  for (const JobEdge& e : graph.edges) {
    const int producers = graph.vertices[e.source_vertex].parallelism;
    const int consumers = graph.vertices[e.target_vertex].parallelism;
    const int from = first_task[e.source_vertex];
    const int to = first_task[e.target_vertex];
    if (graph.stream.edges[e.stream_edge].partition == PartitionKind::kForward) {
      for (int s = 0; s < producers; ++s) join(from + s, to + s);
    } else {
      for (int s = 0; s < producers; ++s) join(from + s, from);
      for (int s = 0; s < consumers; ++s) join(to + s, from);
    }
  }
  std::vector<int> region(tasks);
  std::map<int, int> number;  // root -> region
  for (int t = 0; t < tasks; ++t) {
    region[t] = number.try_emplace(find(t), static_cast<int>(number.size())).first->second;
  }
  return region;
}

std::string JobGraph::Describe() const {
  std::string out;
  for (const auto& v : vertices) {
    absl::StrAppend(&out, "task ", v.id, " [", v.name, "] parallelism ", v.parallelism);
    for (const auto& e : edges) {
      if (e.target_vertex != v.id) continue;
      const StreamEdge& se = stream.edges[e.stream_edge];
      absl::StrAppend(&out, " <- task ", e.source_vertex, " (", PartitionKindName(se.partition),
                      se.input == 1 ? ", second input)" : ")");
    }
    out.push_back('\n');
  }
  return out;
}

}  // namespace sluice
