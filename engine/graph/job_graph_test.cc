#include "sluice/graph/job_graph.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace sluice {
namespace {

// Graphs built by hand: this test is about chaining and validation, not about operators.
StreamNode Node(std::string name, int parallelism, bool source = false) {
  StreamNode n;
  n.name = std::move(name);
  n.parallelism = parallelism;
  n.is_source = source;
  n.output.ops = std::make_shared<TypedOutputTypeOps<int>>();
  return n;
}

StreamEdge Edge(int from, int to, PartitionKind kind = PartitionKind::kForward,
                bool explicit_p = false) {
  StreamEdge e;
  e.source = from;
  e.target = to;
  e.partition = kind;
  e.explicit_partition = explicit_p;
  return e;
}

TEST(JobGraphTest, ChainsForwardEdgesOfEqualParallelism) {
  StreamGraph g;
  g.nodes = {Node("src", 2, true), Node("map", 2), Node("keyed", 2), Node("sink", 2)};
  g.edges = {Edge(0, 1), Edge(1, 2, PartitionKind::kKeyGroup), Edge(2, 3)};
  auto jg = BuildJobGraph(g);
  ASSERT_TRUE(jg.ok()) << jg.status();
  ASSERT_EQ(jg->vertices.size(), 2u);
  EXPECT_EQ(jg->vertices[0].name, "src -> map");
  EXPECT_EQ(jg->vertices[1].name, "keyed -> sink");
  ASSERT_EQ(jg->edges.size(), 1u);
}

TEST(JobGraphTest, ForwardEdgesKeepSubtasksApartAndExchangesJoinThemIntoRegions) {
  // Two pipelines: src -> map (forward, chained) -> a forward edge into a two-input node
  // (its own vertex): one region per subtask; then a keyed exchange joins everything.
  StreamGraph g;
  g.nodes = {Node("src", 3, true), Node("map", 3), Node("sink", 3)};
  g.edges = {Edge(0, 1), Edge(1, 2)};
  auto chained = BuildJobGraph(g);
  ASSERT_TRUE(chained.ok()) << chained.status();
  EXPECT_EQ(PipelinedRegions(*chained), (std::vector<int>{0, 1, 2}));

  StreamGraph two;
  two.nodes = {Node("a", 2, true), Node("b", 2, true), Node("both", 2)};
  two.edges = {Edge(0, 2), Edge(1, 2)};
  auto forward = BuildJobGraph(two);
  ASSERT_TRUE(forward.ok()) << forward.status();
  ASSERT_EQ(forward->vertices.size(), 3u);
  // Tasks a0 a1 b0 b1 both0 both1: subtask i of each vertex together.
  EXPECT_EQ(PipelinedRegions(*forward), (std::vector<int>{0, 1, 0, 1, 0, 1}));

  two.edges[1].partition = PartitionKind::kKeyGroup;
  auto keyed = BuildJobGraph(two);
  ASSERT_TRUE(keyed.ok()) << keyed.status();
  EXPECT_EQ(PipelinedRegions(*keyed), (std::vector<int>{0, 0, 0, 0, 0, 0}));

  // Disconnected pipelines with exchanges inside: one region each.
  StreamGraph apart;
  apart.nodes = {Node("a", 2, true), Node("a-keyed", 2), Node("b", 1, true), Node("b-map", 1)};
  apart.edges = {Edge(0, 1, PartitionKind::kKeyGroup), Edge(2, 3)};
  auto separate = BuildJobGraph(apart);
  ASSERT_TRUE(separate.ok()) << separate.status();
  const std::vector<int> regions = PipelinedRegions(*separate);
  ASSERT_EQ(regions.size(), 5u);
  EXPECT_EQ(*std::max_element(regions.begin(), regions.end()), 1);
}

TEST(JobGraphTest, UnequalParallelismBecomesRebalanceAndBreaksTheChain) {
  StreamGraph g;
  g.nodes = {Node("src", 1, true), Node("map", 3)};
  g.edges = {Edge(0, 1)};
  auto jg = BuildJobGraph(g);
  ASSERT_TRUE(jg.ok());
  EXPECT_EQ(jg->vertices.size(), 2u);
  EXPECT_EQ(jg->stream.edges[0].partition, PartitionKind::kRebalance);
}

TEST(JobGraphTest, NodeWithTwoInputsStartsItsOwnTask) {
  StreamGraph g;
  g.nodes = {Node("a", 1, true), Node("b", 1, true), Node("union-map", 1)};
  g.edges = {Edge(0, 2), Edge(1, 2)};
  auto jg = BuildJobGraph(g);
  ASSERT_TRUE(jg.ok());
  EXPECT_EQ(jg->vertices.size(), 3u);
  EXPECT_EQ(jg->edges.size(), 2u);
}

TEST(JobGraphTest, DefaultsAreResolved) {
  StreamGraph g;
  g.config.default_parallelism = 4;
  g.nodes = {Node("src", 0, true)};
  auto jg = BuildJobGraph(g);
  ASSERT_TRUE(jg.ok());
  EXPECT_EQ(jg->stream.nodes[0].parallelism, 4);
  EXPECT_EQ(jg->stream.nodes[0].max_parallelism, kDefaultMaxParallelism);
}

void ExpectInvalid(StreamGraph g, const std::string& fragment) {
  auto jg = BuildJobGraph(std::move(g));
  ASSERT_FALSE(jg.ok());
  EXPECT_NE(jg.status().message().find(fragment), std::string::npos) << jg.status();
}

TEST(JobGraphTest, RejectsInvalidGraphsWithAClearMessage) {
  ExpectInvalid(StreamGraph{}, "no operators");
  {
    StreamGraph g;
    g.nodes = {Node("lonely", 1)};
    ExpectInvalid(g, "no input");
  }
  {
    StreamGraph g;
    g.nodes = {Node("src", 1, true), Node("map", 2)};
    g.edges = {Edge(0, 1, PartitionKind::kForward, /*explicit_p=*/true)};
    ExpectInvalid(g, "needs equal parallelism");
  }
  {
    StreamGraph g;
    g.nodes = {Node("src", 1, true), Node("map", 1)};
    g.nodes[0].uid = g.nodes[1].uid = "same";
    g.edges = {Edge(0, 1)};
    ExpectInvalid(g, "uid 'same'");
  }
  {
    StreamGraph g;
    g.nodes = {Node("src", 300, true)};
    ExpectInvalid(g, "exceeds max parallelism");
  }
  {
    StreamGraph g;
    g.nodes = {Node("src", 2, true)};
    g.nodes[0].non_parallel = true;
    ExpectInvalid(g, "cannot run in parallel");
  }
}

}  // namespace
}  // namespace sluice
