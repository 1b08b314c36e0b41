#include "sluice/api/pipeline.h"

#include <stdexcept>

#include "sluice/api/datastream.h"
#include "sluice/core/status_macros.h"

namespace sluice {

Pipeline::Pipeline(std::string job_name, JobArgs args) : args_(std::move(args)) {
  graph_.config.job_name = std::move(job_name);
}

Pipeline& Pipeline::SetJobName(std::string name) {
  graph_.config.job_name = std::move(name);
  return *this;
}

Pipeline& Pipeline::SetParallelism(int parallelism) {
  if (parallelism < 1) throw std::invalid_argument("SetParallelism() must be >= 1");
  graph_.config.default_parallelism = parallelism;
  return *this;
}

Pipeline& Pipeline::SetMaxParallelism(int max_parallelism) {
  if (max_parallelism < 1) throw std::invalid_argument("SetMaxParallelism() must be >= 1");
  graph_.config.default_max_parallelism = max_parallelism;
  return *this;
}

Pipeline& Pipeline::SetBufferTimeout(absl::Duration timeout) {
  graph_.config.buffer_timeout = timeout;
  return *this;
}

Pipeline& Pipeline::SetBufferBytes(size_t bytes) {
  graph_.config.buffer_bytes = bytes;
  return *this;
}

Pipeline& Pipeline::SetChannelCapacity(int buffers) {
  if (buffers < 1) throw std::invalid_argument("SetChannelCapacity() must be >= 1");
  graph_.config.channel_capacity = buffers;
  return *this;
}

Pipeline& Pipeline::EnableCheckpointing(absl::Duration interval, bool exactly_once) {
  if (interval <= absl::ZeroDuration()) {
    throw std::invalid_argument("EnableCheckpointing() needs a positive interval");
  }
  graph_.config.checkpoint_interval = interval;
  graph_.config.checkpoint_exactly_once = exactly_once;
  return *this;
}

Pipeline& Pipeline::SetCheckpointDir(std::string dir) {
  graph_.config.checkpoint_dir = std::move(dir);
  return *this;
}

Pipeline& Pipeline::SetRestartStrategy(int attempts, absl::Duration delay) {
  if (attempts < 0) throw std::invalid_argument("SetRestartStrategy() needs attempts >= 0");
  graph_.config.restart_strategy = RestartStrategyConfig::FixedDelay(attempts, delay);
  return *this;
}

Pipeline& Pipeline::SetRestartStrategy(RestartStrategyConfig strategy) {
  graph_.config.restart_strategy = strategy;
  return *this;
}

int Pipeline::AddNode(StreamNode node) {
  node.id = static_cast<int>(graph_.nodes.size());
  graph_.nodes.push_back(std::move(node));
  return graph_.nodes.back().id;
}

void Pipeline::AddEdge(StreamEdge edge) { graph_.edges.push_back(std::move(edge)); }

absl::StatusOr<JobGraph> Pipeline::BuildJobGraph() const { return sluice::BuildJobGraph(graph_); }

absl::StatusOr<JobResult> ExecuteLocally(const Pipeline& pipeline, MiniClusterOptions options) {
  SLUICE_ASSIGN_OR_RETURN(auto graph, pipeline.BuildJobGraph());
  return MiniCluster(std::move(options)).Execute(graph);
}

DataStreamSink& DataStreamSink::Name(std::string name) {
  pipeline_->graph().nodes[node_].name = std::move(name);
  return *this;
}

DataStreamSink& DataStreamSink::Uid(std::string uid) {
  pipeline_->graph().nodes[node_].uid = std::move(uid);
  return *this;
}

DataStreamSink& DataStreamSink::Parallelism(int parallelism) {
  if (parallelism < 1) throw std::invalid_argument("Parallelism() must be >= 1");
  pipeline_->graph().nodes[node_].parallelism = parallelism;
  return *this;
}

}  // namespace sluice
