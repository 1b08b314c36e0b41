#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "sluice/serialization/serializer.h"
#include "sluice/state/state.h"
#include "sluice/state/state_ttl.h"

namespace sluice {

// Descriptors name a piece of keyed state and fix its types. The name is the state's
// identity within its operator: checkpoints (and savepoints) map state by operator uid and
// state name. Every state type must be serializable, checked at compile time.

class StateDescriptorBase {
 public:
  explicit StateDescriptorBase(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }

  /// Expires values of this state after `config.ttl_ms` of processing time, or of event time
  /// (StateTtlConfig::InEventTime).
  void EnableTimeToLive(StateTtlConfig config) { ttl_ = config; }
  const std::optional<StateTtlConfig>& ttl() const { return ttl_; }

 private:
  std::string name_;
  std::optional<StateTtlConfig> ttl_;
};

template <typename V>
class ValueStateDescriptor : public StateDescriptorBase {
 public:
  using StateType = ValueState<V>;
  explicit ValueStateDescriptor(std::string name) : StateDescriptorBase(std::move(name)) {
    RequireSerializable<V>();
  }
};

template <typename V>
class ListStateDescriptor : public StateDescriptorBase {
 public:
  using StateType = ListState<V>;
  explicit ListStateDescriptor(std::string name) : StateDescriptorBase(std::move(name)) {
    RequireSerializable<V>();
  }
};

template <typename UK, typename UV>
class MapStateDescriptor : public StateDescriptorBase {
 public:
  using StateType = MapState<UK, UV>;
  explicit MapStateDescriptor(std::string name) : StateDescriptorBase(std::move(name)) {
    RequireSerializable<UK>();
    RequireSerializable<UV>();
  }
};

template <typename V>
class ReducingStateDescriptor : public StateDescriptorBase {
 public:
  using StateType = ReducingState<V>;
  using ReduceFn = std::function<V(const V&, const V&)>;
  ReducingStateDescriptor(std::string name, ReduceFn reduce)
      : StateDescriptorBase(std::move(name)), reduce_(std::move(reduce)) {
    RequireSerializable<V>();
  }
  const ReduceFn& reduce() const { return reduce_; }

 private:
  ReduceFn reduce_;
};

template <typename In, typename Acc, typename Out>
class AggregatingStateDescriptor : public StateDescriptorBase {
 public:
  using StateType = AggregatingState<In, Out>;
  using Function = AggregateFunction<In, Acc, Out>;
  AggregatingStateDescriptor(std::string name, std::shared_ptr<const Function> fn)
      : StateDescriptorBase(std::move(name)), fn_(std::move(fn)) {
    RequireSerializable<Acc>();
  }
  /// Takes a copy of a concrete aggregate function.
  template <typename F>
  requires std::is_base_of_v<Function, F> AggregatingStateDescriptor(std::string name, F fn)
      : AggregatingStateDescriptor(std::move(name), std::make_shared<const F>(std::move(fn))) {}
  const Function& function() const { return *fn_; }

 private:
  std::shared_ptr<const Function> fn_;
};

}  // namespace sluice
