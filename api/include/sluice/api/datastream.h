#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeindex>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "sluice/api/pipeline.h"
#include "sluice/connectors/collect.h"
#include "sluice/connectors/print.h"
#include "sluice/core/stable_hash.h"
#include "sluice/operators/async_wait_operator.h"
#include "sluice/operators/basic_operators.h"
#include "sluice/operators/keyed_operators.h"
#include "sluice/operators/source_sink_operators.h"
#include "sluice/operators/timestamps_and_watermarks.h"
#include "sluice/operators/window/window_functions.h"

namespace sluice {

namespace internal {

/// What the runtime needs to know about an output of type T.
template <typename T>
OutputInfo MakeOutputInfo() {
  RequireSerializable<T>();
  OutputInfo info;
  info.ops = std::make_shared<TypedOutputTypeOps<T>>();
  info.forward_writer = std::make_shared<TypedRecordWriterFactory<T, internal::ForwardPartitioner>>(
      internal::ForwardPartitioner{});
  info.rebalance_writer =
      std::make_shared<TypedRecordWriterFactory<T, internal::RebalancePartitioner>>(
          internal::RebalancePartitioner{});
  info.broadcast_writer =
      std::make_shared<TypedRecordWriterFactory<T, internal::BroadcastPartitioner>>(
          internal::BroadcastPartitioner{});
  return info;
}

/// The output type of FlatMap: given explicitly, or the function class's OutputType.
template <typename Out, typename F>
struct FlatMapOutput {
  using Type = Out;
};
template <typename F>
struct FlatMapOutput<void, F> {
  using Type = typename F::OutputType;
};

template <typename T, typename KS>
using KeyOf = std::decay_t<std::invoke_result_t<KS&, const T&>>;

/// Turns a member pointer into a key selector; leaves callables alone.
template <typename T, typename KS>
auto MakeKeySelector(KS ks) {
  if constexpr (std::is_member_object_pointer_v<KS>) {
    return [ks](const T& value) -> const auto& { return value.*ks; };
  } else {
    return ks;
  }
}

}  // namespace internal

template <typename T, typename KS>
class KeyedStream;
namespace internal {
/// A window without an evictor.
struct NoEvictor {};
}  // namespace internal
template <typename T, typename KS, typename Assigner, typename TriggerSpec,
          typename Ev = internal::NoEvictor>
class WindowedStream;
template <typename T1, typename T2>
class ConnectedStreams;
template <typename T1, typename KS1, typename T2, typename KS2>
class KeyedConnectedStreams;
template <typename T>
class BroadcastStream;
template <typename T1, typename T2>
class BroadcastConnectedStreams;
template <typename T1, typename KS, typename T2>
class KeyedBroadcastConnectedStreams;
template <typename L, typename R, bool kJoin>
class TwoStreamWindows;
template <typename L, typename KSL, typename R, typename KSR>
class IntervalJoinBuilder;
namespace internal {
struct TwoInputBuilder;
}

/// What Sink() returns: lets the sink be named and sized.
class DataStreamSink {
 public:
  DataStreamSink(Pipeline* p, int node) : pipeline_(p), node_(node) {}
  DataStreamSink& Name(std::string name);
  DataStreamSink& Uid(std::string uid);
  DataStreamSink& Parallelism(int parallelism);

 private:
  Pipeline* pipeline_;
  int node_;
};

/// A stream of records of type T. Cheap to copy: a handle onto the pipeline. Each
/// transformation adds an operator and returns the stream of its output; Name, Uid,
/// Parallelism and MaxParallelism set those of the operator that produced this stream.
template <typename T>
class DataStream {
 public:
  DataStream(Pipeline* pipeline, std::vector<int> nodes,
             PartitionKind partition = PartitionKind::kForward, bool explicit_partition = false,
             std::vector<std::string> side_tags = {})
      : pipeline_(pipeline),
        nodes_(std::move(nodes)),
        side_tags_(std::move(side_tags)),
        partition_(partition),
        explicit_partition_(explicit_partition) {
    RequireSerializable<T>();
    side_tags_.resize(nodes_.size());
  }

  /// One output per input: `F` is a callable `Out(const T&)` or a MapFunction<T, Out>.
  template <typename F>
  auto Map(F fn, std::string name = "Map") {
    using Out = internal::MapResult<F, T>;
    return AddOneInput<Out>(
        std::move(name), [fn]() { return std::make_unique<internal::MapOperator<T, Out, F>>(fn); });
  }

  /// Keeps the records for which `fn` (a callable or FilterFunction<T>) returns true.
  template <typename F>
  DataStream<T> Filter(F fn, std::string name = "Filter") {
    return AddOneInput<T>(std::move(name),
                          [fn]() { return std::make_unique<internal::FilterOperator<T, F>>(fn); });
  }

  /// Zero or more outputs per input: `fn(const T&, Collector<Out>&)` or a
  /// FlatMapFunction<T, Out>. For a lambda, name the output type: FlatMap<std::string>(...).
  template <typename Out = void, typename F>
  auto FlatMap(F fn, std::string name = "FlatMap") {
    using O = typename internal::FlatMapOutput<Out, F>::Type;
    return AddOneInput<O>(std::move(name), [fn]() {
      return std::make_unique<internal::FlatMapOperator<T, O, F>>(fn);
    });
  }

  /// Enriches each record through an AsyncFunction<T, Out> (a request to a service or a
  /// database) with up to `options.capacity` requests in flight per subtask; results in input
  /// order or as they complete (`options.ordered`), never across a watermark, with the input
  /// record's timestamp. Requests in flight are part of checkpoints and are sent again on
  /// restore, so the output stays exactly-once.
  template <typename F>
  auto AsyncWait(F fn, AsyncOptions options = {}, std::string name = "AsyncWait") {
    using Out = typename F::OutputType;
    static_assert(std::is_base_of_v<AsyncFunction<T, Out>, F>,
                  "AsyncWait() takes an AsyncFunction<In, Out> whose In is the stream's type");
    return AddOneInput<Out>(std::move(name), [fn, options]() {
      return std::make_unique<internal::AsyncWaitOperator<T, Out, F>>(fn, options);
    });
  }

  /// Runs a ProcessFunction<T, Out>.
  template <typename F>
  auto Process(F fn, std::string name = "Process") {
    using Out = typename F::OutputType;
    static_assert(std::is_base_of_v<ProcessFunction<T, Out>, F>,
                  "Process() on a DataStream takes a ProcessFunction<In, Out>; use KeyBy() first "
                  "for a KeyedProcessFunction");
    DataStream<Out> out = AddOneInput<Out>(std::move(name), [fn]() {
      return std::make_unique<internal::ProcessOperator<T, Out, F>>(fn);
    });
    out.Node("Process").open_side_outputs = true;
    return out;
  }

  /// Partitions by key: records with equal keys go to the same subtask, and keyed state and
  /// timers downstream are scoped per key. `ks` is a callable `K(const T&)` or a pointer to
  /// a data member of T.
  template <typename KS>
  auto KeyBy(KS ks) {
    auto selector = internal::MakeKeySelector<T>(std::move(ks));
    return KeyedStream<T, decltype(selector)>(*this, std::move(selector));
  }  /// Assigns event timestamps and generates watermarks (usually right after the source).
  DataStream<T> AssignTimestampsAndWatermarks(WatermarkStrategy<T> strategy,
                                              std::string name = "Timestamps/Watermarks") {
    return AddOneInput<T>(std::move(name), [strategy]() {
      return std::make_unique<internal::TimestampsAndWatermarksOperator<T>>(strategy);
    });
  }

  /// The records an operator sent to the side output `tag` (a window's late data, what a
  /// process function or a source emitted to the tag).
  template <typename X>
  DataStream<X> GetSideOutput(const OutputTag<X>& tag) {
    StreamNode& node = Node("GetSideOutput");
    if (tag.id.empty()) throw std::invalid_argument("an OutputTag needs a non-empty id");
    if (node.open_side_outputs && !node.side_outputs.contains(tag.id)) {
      node.side_outputs[tag.id] = internal::MakeOutputInfo<X>();
    }
    auto it = node.side_outputs.find(tag.id);
    if (it == node.side_outputs.end()) {
      throw std::logic_error("operator '" + node.name + "' has no side output '" + tag.id + "'");
    }
    if (it->second.ops->type() != std::type_index(typeid(X))) {
      throw std::logic_error("side output '" + tag.id + "' of operator '" + node.name +
                             "' has another type than the OutputTag");
    }
    return DataStream<X>(pipeline_, {nodes_[0]}, PartitionKind::kForward, false, {tag.id});
  }

  /// Windows over the whole stream (not keyed): runs with parallelism 1.
  template <typename Assigner>
  auto WindowAll(Assigner assigner) {
    auto keyed = KeyBy([](const T&) { return uint8_t{0}; });
    return keyed.Window(std::move(assigner), /*all=*/true);
  }

  /// Merges streams of the same type.
  template <typename... Others>
  DataStream<T> Union(const Others&... others) const {
    std::vector<int> nodes = nodes_;
    std::vector<std::string> tags = side_tags_;
    (nodes.insert(nodes.end(), others.nodes_.begin(), others.nodes_.end()), ...);
    (tags.insert(tags.end(), others.side_tags_.begin(), others.side_tags_.end()), ...);
    return DataStream<T>(pipeline_, std::move(nodes), PartitionKind::kForward, false,
                         std::move(tags));
  }

  /// Connects this stream with `other` (of any type) for an operator that takes both
  /// (sluice/api/connected_streams.h): a CoMap, CoFlatMap or CoProcess function, or after
  /// KeyBy a KeyedCoProcessFunction whose keyed state both inputs share.
  template <typename U>
  ConnectedStreams<T, U> Connect(const DataStream<U>& other) const;
  /// Connects this stream with a broadcast stream, for a BroadcastProcessFunction.
  template <typename U>
  BroadcastConnectedStreams<T, U> Connect(const BroadcastStream<U>& rules) const;
  /// A window join with `other` (sluice/api/joins.h):
  /// `a.Join(b).Where(ka).EqualTo(kb).Window(assigner).Apply(join_function)`.
  template <typename U>
  TwoStreamWindows<T, U, true> Join(const DataStream<U>& other) const;
  /// A co-group with `other`, per key and window (sluice/api/joins.h).
  template <typename U>
  TwoStreamWindows<T, U, false> CoGroup(const DataStream<U>& other) const;

  /// Round-robin over the next operator's subtasks.
  DataStream<T> Rebalance() const { return WithPartition(PartitionKind::kRebalance); }
  /// Every record to every subtask of the next operator.
  DataStream<T> Broadcast() const { return WithPartition(PartitionKind::kBroadcast); }
  /// Every record to every subtask, as the broadcast side of a (keyed) broadcast process
  /// function that keeps the broadcast states the MapStateDescriptors name
  /// (sluice/api/connected_streams.h).
  template <typename... Descriptors>
  requires(sizeof...(Descriptors) >
           0) BroadcastStream<T> Broadcast(const Descriptors&... descriptors)
  const;
  /// Subtask i to subtask i; needs equal parallelism.
  DataStream<T> Forward() const { return WithPartition(PartitionKind::kForward); }

  /// Ends the stream in a SinkFunction<T>.
  template <typename S>
  DataStreamSink Sink(S sink, std::string name = "Sink") {
    static_assert(std::is_base_of_v<SinkFunction<T>, S>, "Sink() takes a SinkFunction<T>");
    StreamNode node;
    node.name = std::move(name);
    node.factory = MakeOperatorFactory([sink]() -> std::unique_ptr<StreamOperator> {
      return std::make_unique<internal::SinkOperator<T, S>>(sink);
    });
    int id = pipeline_->AddNode(std::move(node));
    ConnectTo(id);
    return DataStreamSink(pipeline_, id);
  }
  /// Prints every record on stdout.
  DataStreamSink Print(std::string name = "Print") { return Sink(PrintSink<T>{}, std::move(name)); }

  DataStream<T>& Name(std::string name) {
    Node("Name").name = std::move(name);
    return *this;
  }
  DataStream<T>& Uid(std::string uid) {
    Node("Uid").uid = std::move(uid);
    return *this;
  }
  DataStream<T>& Parallelism(int parallelism) {
    if (parallelism < 1) throw std::invalid_argument("Parallelism() must be >= 1");
    Node("Parallelism").parallelism = parallelism;
    return *this;
  }
  DataStream<T>& MaxParallelism(int max_parallelism) {
    if (max_parallelism < 1) throw std::invalid_argument("MaxParallelism() must be >= 1");
    Node("MaxParallelism").max_parallelism = max_parallelism;
    return *this;
  }

  Pipeline* pipeline() const { return pipeline_; }
  const std::vector<int>& nodes() const { return nodes_; }

 private:
  template <typename U>
  friend class DataStream;
  template <typename U, typename KS>
  friend class KeyedStream;
  template <typename U, typename KS, typename A, typename TS, typename E>
  friend class WindowedStream;
  friend struct internal::TwoInputBuilder;
  DataStream<T> WithPartition(PartitionKind kind) const {
    return DataStream<T>(pipeline_, nodes_, kind, true, side_tags_);
  }
  StreamNode& Node(const char* what) {
    if (nodes_.size() != 1) {
      throw std::logic_error(std::string(what) +
                             "() applies to one operator; this stream is a union of several");
    }
    return pipeline_->graph().nodes[nodes_[0]];
  }
  /// Adds edges from this stream's nodes to `target` (its `input`: 0 the first, 1 the second
  /// of a two-input operator) with this stream's partitioning.
  void ConnectTo(int target, std::shared_ptr<const RecordWriterFactory> keyed_writer = nullptr,
                 int input = 0) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      StreamEdge e;
      e.source = nodes_[i];
      e.side_output = side_tags_[i];
      e.target = target;
      e.partition = keyed_writer ? PartitionKind::kKeyGroup : partition_;
      e.explicit_partition = explicit_partition_;
      e.writer_factory = keyed_writer;
      e.input = input;
      pipeline_->AddEdge(std::move(e));
    }
  }
  template <typename Out, typename MakeOp>
  DataStream<Out> AddOneInput(std::string name, MakeOp make_op,
                              std::shared_ptr<const RecordWriterFactory> keyed_writer = nullptr,
                              bool keyed = false) {
    StreamNode node;
    node.name = std::move(name);
    node.keyed = keyed;
    node.factory =
        MakeOperatorFactory([make_op]() -> std::unique_ptr<StreamOperator> { return make_op(); });
    node.output = internal::MakeOutputInfo<Out>();
    int id = pipeline_->AddNode(std::move(node));
    ConnectTo(id, std::move(keyed_writer));
    return DataStream<Out>(pipeline_, {id});
  }
  Pipeline* pipeline_;
  std::vector<int> nodes_;
  std::vector<std::string> side_tags_;  // per node: "" main output, else a side output
  PartitionKind partition_;
  bool explicit_partition_;
};

/// A stream partitioned by key. Its operators keep keyed state and timers per key.
template <typename T, typename KS>
class KeyedStream {
 public:
  using KeyType = internal::KeyOf<T, KS>;
  static_assert(StablyHashable<KeyType>, "KeyBy(): the key type needs a stable hash");

  KeyedStream(DataStream<T> input, KS selector)
      : input_(std::move(input)), selector_(std::move(selector)) {}

  /// Runs a KeyedProcessFunction<K, T, Out> per key: keyed state and timers.
  template <typename F>
  auto Process(F fn, std::string name = "KeyedProcess") {
    using Out = typename F::OutputType;
    static_assert(std::is_base_of_v<KeyedProcessFunction<KeyType, T, Out>, F>,
                  "KeyedStream::Process() takes a KeyedProcessFunction<Key, In, Out> whose key "
                  "and input types match the stream");
    KS selector = selector_;
    DataStream<Out> out = input_.template AddOneInput<Out>(
        std::move(name),
        [fn, selector]() {
          return std::make_unique<internal::KeyedProcessOperator<KeyType, T, Out, F, KS>>(fn,
                                                                                          selector);
        },
        KeyedWriter(), /*keyed=*/true);
    out.Node("Process").open_side_outputs = true;
    return out;
  }

  /// Rolling reduce per key with `fn(const T& acc, const T& value) -> T`: emits the updated
  /// value for every record.
  template <typename F>
  DataStream<T> Reduce(F fn, std::string name = "Reduce") {
    KS selector = selector_;
    return input_.template AddOneInput<T>(
        std::move(name),
        [fn, selector]() {
          return std::make_unique<internal::KeyedReduceOperator<KeyType, T, F, KS>>(fn, selector);
        },
        KeyedWriter(), /*keyed=*/true);
  }  /// Connects this keyed stream with another keyed by the same key type, for a
  /// KeyedCoProcessFunction (sluice/api/connected_streams.h).
  template <typename U, typename KS2>
  KeyedConnectedStreams<T, KS, U, KS2> Connect(const KeyedStream<U, KS2>& other) const;
  /// An interval join with another keyed stream of the same key type (sluice/api/joins.h):
  /// `a.KeyBy(f).IntervalJoin(b.KeyBy(g)).Between(lower, upper).Process(fn)`.
  template <typename U, typename KS2>
  IntervalJoinBuilder<T, KS, U, KS2> IntervalJoin(const KeyedStream<U, KS2>& other) const;
  /// Connects this keyed stream with a broadcast stream, for a KeyedBroadcastProcessFunction.
  template <typename U>
  KeyedBroadcastConnectedStreams<T, KS, U> Connect(const BroadcastStream<U>& rules) const;

  /// Groups each key's records into windows (see sluice/operators/window/assigners.h).
  template <typename Assigner>
  auto Window(Assigner assigner, bool all = false) {
    using Spec = decltype(assigner.DefaultTrigger());
    Spec spec = assigner.DefaultTrigger();
    return WindowedStream<T, KS, Assigner, Spec>(*this, std::move(assigner), std::move(spec), all);
  }

  const KS& selector() const { return selector_; }
  const DataStream<T>& input() const { return input_; }

  std::shared_ptr<const RecordWriterFactory> KeyedWriter() const {
    return std::make_shared<TypedRecordWriterFactory<T, internal::KeyGroupPartitioner<KS>>>(
        internal::KeyGroupPartitioner<KS>(selector_));
  }

  DataStream<T> input_;
  KS selector_;
};

template <typename S>
DataStream<typename S::OutputType> Pipeline::Source(S source, std::string name) {
  using T = typename S::OutputType;
  static_assert(std::is_base_of_v<SourceFunction<T>, S>, "Source() takes a SourceFunction<T>");
  StreamNode node;
  node.name = std::move(name);
  node.is_source = true;
  node.open_side_outputs = true;
  node.non_parallel = !source.IsParallel();
  const size_t batch = BufferRecordsFor<T>(graph_.config);
  node.factory = MakeOperatorFactory([source, batch]() -> std::unique_ptr<StreamOperator> {
    return std::make_unique<internal::SourceOperator<T, S>>(source, batch);
  });
  node.output = internal::MakeOutputInfo<T>();
  int id = AddNode(std::move(node));
  return DataStream<T>(this, {id});
}

}  // namespace sluice
