#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

// The keyed state a user function sees. Every call acts on the state of the current key
// (the key of the record or timer being processed), as in Flink. Handles are owned by the
// operator's state backend and valid from Open() to Close(); use them only on the task's
// thread.

/// One value per key.
template <typename V>
class ValueState {
 public:
  virtual ~ValueState() = default;
  /// Returns the value, or nothing if none was set for the current key.
  virtual std::optional<V> Value() const = 0;
  /// Returns the value, or `fallback` if none was set.
  V ValueOr(V fallback) const {
    auto v = Value();
    return v ? std::move(*v) : std::move(fallback);
  }
  virtual void Update(V value) = 0;
  virtual void Clear() = 0;
};

/// A list of values per key.
template <typename V>
class ListState {
 public:
  virtual ~ListState() = default;
  /// Returns the list (empty if none).
  virtual std::vector<V> Get() const = 0;
  virtual void Add(V value) = 0;
  virtual void AddAll(std::vector<V> values) = 0;
  /// Replaces the whole list.
  virtual void Update(std::vector<V> values) = 0;
  virtual void Clear() = 0;
};

/// A map per key.
template <typename UK, typename UV>
class MapState {
 public:
  virtual ~MapState() = default;
  virtual std::optional<UV> Get(const UK& key) const = 0;
  virtual void Put(UK key, UV value) = 0;
  virtual void Remove(const UK& key) = 0;
  virtual bool Contains(const UK& key) const = 0;
  /// Returns all entries of the current key's map, in no particular order.
  virtual std::vector<std::pair<UK, UV>> Entries() const = 0;
  virtual bool IsEmpty() const = 0;
  virtual void Clear() = 0;
};

/// A value per key that folds every added value in with a reduce function.
template <typename V>
class ReducingState {
 public:
  virtual ~ReducingState() = default;
  virtual std::optional<V> Get() const = 0;
  virtual void Add(V value) = 0;
  virtual void Clear() = 0;
};

/// An accumulator per key, fed with inputs and read as a result (AggregateFunction).
template <typename In, typename Out>
class AggregatingState {
 public:
  virtual ~AggregatingState() = default;
  virtual std::optional<Out> Get() const = 0;
  virtual void Add(const In& value) = 0;
  virtual void Clear() = 0;
};

/// Incremental aggregation: an accumulator created empty, fed inputs, merged (for merging
/// windows), and turned into a result.
template <typename In, typename Acc, typename Out>
class AggregateFunction {
 public:
  using InputType = In;
  using AccumulatorType = Acc;
  using OutputType = Out;
  virtual ~AggregateFunction() = default;
  virtual Acc CreateAccumulator() const = 0;
  virtual void Add(const In& value, Acc& accumulator) const = 0;
  virtual Out GetResult(const Acc& accumulator) const = 0;
  virtual Acc Merge(Acc a, const Acc& b) const = 0;
};

}  // namespace sluice
