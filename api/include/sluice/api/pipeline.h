#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sluice/graph/job_graph.h"
#include "sluice/job/job_args.h"
#include "sluice/runtime/mini_cluster.h"
#include "sluice/serialization/serializer.h"

namespace sluice {

template <typename T>
class DataStream;

/// The builder a job's code uses to declare its dataflow: sources, then transformations
/// on the returned streams. Building does not run anything; a runner (the job executable,
/// `sluice run`, or ExecuteLocally) turns the result into a JobGraph and executes it.
class Pipeline {
 public:
  explicit Pipeline(std::string job_name = "job", JobArgs args = {});

  /// The arguments the job was started with.
  const JobArgs& Args() const { return args_; }

  Pipeline& SetJobName(std::string name);
  /// Default parallelism of operators that set none.
  Pipeline& SetParallelism(int parallelism);
  /// Default number of key groups (upper bound of keyed parallelism).
  Pipeline& SetMaxParallelism(int max_parallelism);
  Pipeline& SetBufferTimeout(absl::Duration timeout);
  Pipeline& SetBufferBytes(size_t bytes);
  Pipeline& SetChannelCapacity(int buffers);
  /// Takes a checkpoint every `interval`: exactly-once (aligned barriers) or at-least-once.
  Pipeline& EnableCheckpointing(absl::Duration interval, bool exactly_once = true);
  /// Stores completed checkpoints under `dir`/<job name>/ (else they stay in memory).
  Pipeline& SetCheckpointDir(std::string dir);
  /// After a failure, restarts the job from its latest completed checkpoint up to
  /// `attempts` times, waiting `delay` before each (fixed-delay restart strategy).
  Pipeline& SetRestartStrategy(int attempts, absl::Duration delay = absl::Milliseconds(100));
  /// Any restart strategy (RestartStrategyConfig::None(), FixedDelay, ExponentialDelay,
  /// FailureRate). Without one a checkpointed job restarts with exponential delays.
  Pipeline& SetRestartStrategy(RestartStrategyConfig strategy);
  const JobConfig& config() const { return graph_.config; }
  /// Every job-wide setting (checkpoint timeout, min pause, max concurrent, tolerable
  /// failures, retained count, state backend, savepoint to restore, chaos option, ...).
  JobConfig& mutable_config() { return graph_.config; }

  /// Adds a source: a SourceFunction (built-in or user-defined). Named "Source" unless named.
  template <typename S>
  DataStream<typename S::OutputType> Source(S source, std::string name = "Source");

  /// Validates and chains what was declared.
  absl::StatusOr<JobGraph> BuildJobGraph() const;

  // Used by DataStream to grow the graph.
  StreamGraph& graph() { return graph_; }
  int AddNode(StreamNode node);
  void AddEdge(StreamEdge edge);

 private:
  StreamGraph graph_;
  JobArgs args_;
};

/// Builds the job graph and runs it on an in-process mini-cluster until it ends.
absl::StatusOr<JobResult> ExecuteLocally(const Pipeline& pipeline, MiniClusterOptions options = {});

/// Records per buffer for type T, from the configured buffer size.
template <typename T>
size_t BufferRecordsFor(const JobConfig& config) {
  return std::clamp<size_t>(config.buffer_bytes / sizeof(Record<T>), 16, 4096);
}

}  // namespace sluice
