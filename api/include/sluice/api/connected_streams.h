#pragma once

#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "sluice/api/datastream.h"
#include "sluice/function/co_functions.h"
#include "sluice/operators/co_operators.h"

namespace sluice {

namespace internal {

/// Adds a two-input operator fed by two streams (their edges marked first and second input).
struct TwoInputBuilder {
  template <typename Out, typename T1, typename T2, typename MakeOp>
  static DataStream<Out> Add(DataStream<T1> first, DataStream<T2> second, std::string name,
                             MakeOp make_op, bool open_side_outputs,
                             std::shared_ptr<const RecordWriterFactory> keyed_writer1 = nullptr,
                             std::shared_ptr<const RecordWriterFactory> keyed_writer2 = nullptr) {
    if (first.pipeline_ != second.pipeline_) {
      throw std::invalid_argument("Connect(): both streams must belong to the same pipeline");
    }
    StreamNode node;
    node.name = std::move(name);
    node.keyed = keyed_writer1 != nullptr;
    node.two_input = true;
    node.open_side_outputs = open_side_outputs;
    node.factory =
        MakeOperatorFactory([make_op]() -> std::unique_ptr<StreamOperator> { return make_op(); });
    node.output = MakeOutputInfo<Out>();
    const int id = first.pipeline_->AddNode(std::move(node));
    first.ConnectTo(id, std::move(keyed_writer1), 0);
    second.ConnectTo(id, std::move(keyed_writer2), 1);
    return DataStream<Out>(first.pipeline_, {id});
  }
};

}  // namespace internal

/// Two streams, possibly of different types, connected for one operator that sees both
/// (DataStream::Connect). Records of each input keep their order; between the inputs the
/// order is the arrival order. The operator's watermark is the minimum over both inputs
/// (an idle input does not hold it back).
template <typename T1, typename T2>
class ConnectedStreams {
 public:
  ConnectedStreams(DataStream<T1> first, DataStream<T2> second)
      : first_(std::move(first)), second_(std::move(second)) {}

  /// One output per record of either input: a CoMapFunction<T1, T2, Out>.
  template <typename F>
  auto Map(F fn, std::string name = "CoMap") {
    using Out = typename F::OutputType;
    static_assert(std::is_base_of_v<CoMapFunction<T1, T2, Out>, F>,
                  "ConnectedStreams::Map() takes a CoMapFunction<In1, In2, Out> whose inputs "
                  "match the connected streams");
    return internal::TwoInputBuilder::Add<Out>(
        first_, second_, std::move(name),
        [fn]() { return std::make_unique<internal::CoMapOperator<T1, T2, Out, F>>(fn); },
        /*open_side_outputs=*/false);
  }

  /// Zero or more outputs per record of either input: a CoFlatMapFunction<T1, T2, Out>.
  template <typename F>
  auto FlatMap(F fn, std::string name = "CoFlatMap") {
    using Out = typename F::OutputType;
    static_assert(std::is_base_of_v<CoFlatMapFunction<T1, T2, Out>, F>,
                  "ConnectedStreams::FlatMap() takes a CoFlatMapFunction<In1, In2, Out> whose "
                  "inputs match the connected streams");
    return internal::TwoInputBuilder::Add<Out>(
        first_, second_, std::move(name),
        [fn]() { return std::make_unique<internal::CoFlatMapOperator<T1, T2, Out, F>>(fn); },
        /*open_side_outputs=*/false);
  }

  /// Runs a CoProcessFunction<T1, T2, Out>: time access and side outputs.
  template <typename F>
  auto Process(F fn, std::string name = "CoProcess") {
    using Out = typename F::OutputType;
    static_assert(std::is_base_of_v<CoProcessFunction<T1, T2, Out>, F>,
                  "ConnectedStreams::Process() takes a CoProcessFunction<In1, In2, Out>; connect "
                  "two keyed streams for a KeyedCoProcessFunction");
    return internal::TwoInputBuilder::Add<Out>(
        first_, second_, std::move(name),
        [fn]() { return std::make_unique<internal::CoProcessOperator<T1, T2, Out, F>>(fn); },
        /*open_side_outputs=*/true);
  }

  /// Keys both inputs (each by its own selector, both giving the same key type).
  template <typename KS1, typename KS2>
  auto KeyBy(KS1 ks1, KS2 ks2) const {
    return first_.KeyBy(std::move(ks1)).Connect(second_.KeyBy(std::move(ks2)));
  }

  const DataStream<T1>& first() const { return first_; }
  const DataStream<T2>& second() const { return second_; }

 private:
  DataStream<T1> first_;
  DataStream<T2> second_;
};

/// Two keyed streams connected (KeyedStream::Connect): records of both inputs with equal
/// keys meet in the same subtask, under the same keyed state and timers.
template <typename T1, typename KS1, typename T2, typename KS2>
class KeyedConnectedStreams {
 public:
  using KeyType = typename KeyedStream<T1, KS1>::KeyType;
  static_assert(std::is_same_v<KeyType, typename KeyedStream<T2, KS2>::KeyType>,
                "Connect(): both keyed streams need the same key type");

  KeyedConnectedStreams(KeyedStream<T1, KS1> first, KeyedStream<T2, KS2> second)
      : first_(std::move(first)), second_(std::move(second)) {}

  /// Runs a KeyedCoProcessFunction<Key, T1, T2, Out>: keyed state both inputs share, timers,
  /// side outputs.
  template <typename F>
  auto Process(F fn, std::string name = "KeyedCoProcess") {
    using Out = typename F::OutputType;
    static_assert(std::is_base_of_v<KeyedCoProcessFunction<KeyType, T1, T2, Out>, F>,
                  "KeyedConnectedStreams::Process() takes a KeyedCoProcessFunction<Key, In1, "
                  "In2, Out> whose key and input types match the streams");
    KS1 s1 = first_.selector();
    KS2 s2 = second_.selector();
    return internal::TwoInputBuilder::Add<Out>(
        first_.input(), second_.input(), std::move(name),
        [fn, s1, s2]() {
          return std::make_unique<
              internal::KeyedCoProcessOperator<KeyType, T1, T2, Out, F, KS1, KS2>>(fn, s1, s2);
        },
        /*open_side_outputs=*/true, first_.KeyedWriter(), second_.KeyedWriter());
  }

  const KeyedStream<T1, KS1>& first() const { return first_; }
  const KeyedStream<T2, KS2>& second() const { return second_; }

 private:
  KeyedStream<T1, KS1> first_;
  KeyedStream<T2, KS2> second_;
};

/// A stream whose every record goes to every subtask of the operator it is connected to,
/// which keeps the broadcast states it was declared with (DataStream::Broadcast).
template <typename T>
class BroadcastStream {
 public:
  BroadcastStream(DataStream<T> stream, std::set<std::string> states)
      : stream_(std::move(stream)), states_(std::move(states)) {}
  const DataStream<T>& stream() const { return stream_; }
  const std::set<std::string>& states() const { return states_; }

 private:
  DataStream<T> stream_;
  std::set<std::string> states_;
};

/// A non-keyed stream connected to a broadcast stream.
template <typename T1, typename T2>
class BroadcastConnectedStreams {
 public:
  BroadcastConnectedStreams(DataStream<T1> data, BroadcastStream<T2> rules)
      : data_(std::move(data)), rules_(std::move(rules)) {}

  /// Runs a BroadcastProcessFunction<T1, T2, Out>.
  template <typename F>
  auto Process(F fn, std::string name = "BroadcastProcess") {
    using Out = typename F::OutputType;
    static_assert(std::is_base_of_v<BroadcastProcessFunction<T1, T2, Out>, F>,
                  "Process() on a stream connected to a broadcast stream takes a "
                  "BroadcastProcessFunction<In, BroadcastIn, Out>; key the stream first for a "
                  "KeyedBroadcastProcessFunction");
    return internal::TwoInputBuilder::Add<Out>(
        data_, rules_.stream(), std::move(name),
        [fn, states = rules_.states()]() {
          return std::make_unique<internal::BroadcastProcessOperator<T1, T2, Out, F>>(fn, states);
        },
        /*open_side_outputs=*/true);
  }

 private:
  DataStream<T1> data_;
  BroadcastStream<T2> rules_;
};

/// A keyed stream connected to a broadcast stream.
template <typename T1, typename KS, typename T2>
class KeyedBroadcastConnectedStreams {
 public:
  using KeyType = typename KeyedStream<T1, KS>::KeyType;

  KeyedBroadcastConnectedStreams(KeyedStream<T1, KS> data, BroadcastStream<T2> rules)
      : data_(std::move(data)), rules_(std::move(rules)) {}

  /// Runs a KeyedBroadcastProcessFunction<Key, T1, T2, Out>.
  template <typename F>
  auto Process(F fn, std::string name = "KeyedBroadcastProcess") {
    using Out = typename F::OutputType;
    static_assert(std::is_base_of_v<KeyedBroadcastProcessFunction<KeyType, T1, T2, Out>, F>,
                  "Process() on a keyed stream connected to a broadcast stream takes a "
                  "KeyedBroadcastProcessFunction<Key, In, BroadcastIn, Out> whose types match");
    KS selector = data_.selector();
    return internal::TwoInputBuilder::Add<Out>(
        data_.input(), rules_.stream(), std::move(name),
        [fn, selector, states = rules_.states()]() {
          return std::make_unique<
              internal::KeyedBroadcastProcessOperator<KeyType, T1, T2, Out, F, KS>>(fn, selector,
                                                                                    states);
        },
        /*open_side_outputs=*/true, data_.KeyedWriter(), nullptr);
  }

 private:
  KeyedStream<T1, KS> data_;
  BroadcastStream<T2> rules_;
};

template <typename T>
template <typename... Descriptors>
requires(sizeof...(Descriptors) >
         0) BroadcastStream<T> DataStream<T>::Broadcast(const Descriptors&... descriptors)
const {
  std::set<std::string> names;
  (names.insert(descriptors.name()), ...);
  if (names.size() != sizeof...(Descriptors)) {
    throw std::invalid_argument("Broadcast(): two broadcast states with the same name");
  }
  return BroadcastStream<T>(Broadcast(), std::move(names));
}

template <typename T>
template <typename U>
BroadcastConnectedStreams<T, U> DataStream<T>::Connect(const BroadcastStream<U>& rules) const {
  return BroadcastConnectedStreams<T, U>(*this, rules);
}

template <typename T, typename KS>
template <typename U>
KeyedBroadcastConnectedStreams<T, KS, U> KeyedStream<T, KS>::Connect(
    const BroadcastStream<U>& rules) const {
  return KeyedBroadcastConnectedStreams<T, KS, U>(*this, rules);
}

template <typename T>
template <typename U>
ConnectedStreams<T, U> DataStream<T>::Connect(const DataStream<U>& other) const {
  return ConnectedStreams<T, U>(*this, other);
}

template <typename T, typename KS>
template <typename U, typename KS2>
KeyedConnectedStreams<T, KS, U, KS2> KeyedStream<T, KS>::Connect(
    const KeyedStream<U, KS2>& other) const {
  return KeyedConnectedStreams<T, KS, U, KS2>(*this, other);
}

}  // namespace sluice
