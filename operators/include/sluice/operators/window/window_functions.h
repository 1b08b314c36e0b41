#pragma once

#include <string>
#include <vector>

#include "sluice/function/collector.h"
#include "sluice/function/runtime_context.h"
#include "sluice/function/side_outputs.h"
#include "sluice/state/any_keyed_backend.h"

namespace sluice {

/// What a ProcessWindowFunction sees besides the elements: the window, time, and state.
template <typename K, typename W>
class ProcessWindowContext {
 public:
  const W& window() const { return *window_; }
  Timestamp CurrentWatermark() const { return watermark_; }
  Timestamp CurrentProcessingTime() const { return processing_time_; }
  /// State of this key and this window; cleared with the window (see Clear()).
  template <typename V>
  ValueState<V>& WindowState(const ValueStateDescriptor<V>& d) {
    return backend_.Visit([&](auto& b) -> ValueState<V>& {
      auto* h = b.template GetState<W>(d);
      h->SetCurrentNamespace(*window_);
      return *h;
    });
  }
  /// State of this key across all windows.
  template <typename V>
  ValueState<V>& GlobalState(const ValueStateDescriptor<V>& d) {
    return backend_.Visit([&](auto& b) -> ValueState<V>& { return *b.GetUserState(d); });
  }

  // Set by the window operator.
  void Bind(AnyKeyedBackend<K> backend, const W* window, Timestamp watermark,
            Timestamp processing_time) {
    backend_ = backend;
    window_ = window;
    watermark_ = watermark;
    processing_time_ = processing_time;
  }

 private:
  AnyKeyedBackend<K> backend_;
  const W* window_ = nullptr;
  Timestamp watermark_ = kMinWatermark;
  Timestamp processing_time_ = 0;
};

/// Processes the contents of one window of one key when it fires: all its elements (or the
/// single pre-aggregated result when combined with Reduce/Aggregate), with the window and
/// per-window state at hand. One copy per subtask, on the task thread.
template <typename In, typename Out, typename K, typename W>
class ProcessWindowFunction {
 public:
  using InputType = In;
  using OutputType = Out;
  using KeyType = K;
  using WindowType = W;

  using Context = ProcessWindowContext<K, W>;

  virtual ~ProcessWindowFunction() = default;
  virtual void Open(RuntimeContext& /*ctx*/) {}
  virtual void Process(const K& key, Context& ctx, const std::vector<In>& elements,
                       Collector<Out>& out) = 0;
  /// The window is discarded: clear its per-window state here.
  virtual void Clear(Context& /*ctx*/) {}
  virtual void Close() {}
};

/// ProcessWindowFunction for WindowAll (no key).
template <typename In, typename Out, typename W>
class ProcessAllWindowFunction {
 public:
  using InputType = In;
  using OutputType = Out;
  using WindowType = W;
  using Context = ProcessWindowContext<uint8_t, W>;

  virtual ~ProcessAllWindowFunction() = default;
  virtual void Open(RuntimeContext& /*ctx*/) {}
  virtual void Process(Context& ctx, const std::vector<In>& elements, Collector<Out>& out) = 0;
  virtual void Clear(Context& /*ctx*/) {}
  virtual void Close() {}
};

}  // namespace sluice
