#pragma once

#include <type_traits>
#include <utility>

#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/function/checkpointed_function.h"
#include "sluice/function/collector.h"
#include "sluice/function/functions.h"

namespace sluice::internal {

// Built-in operators take either a function object derived from one of the function
// interfaces (MapFunction, ...) or a plain callable. These helpers call either kind without
// a virtual call when the concrete type is known.

template <typename F, typename In>
decltype(auto) CallMap(F& f, const In& v) {
  if constexpr (requires { f.Map(v); }) {
    return f.Map(v);
  } else {
    return f(v);
  }
}

template <typename F, typename In>
using MapResult = std::decay_t<decltype(CallMap(std::declval<F&>(), std::declval<const In&>()))>;

template <typename F, typename In>
bool CallFilter(F& f, const In& v) {
  if constexpr (requires { f.Filter(v); }) {
    return f.Filter(v);
  } else {
    return f(v);
  }
}

template <typename F, typename In, typename Out>
void CallFlatMap(F& f, const In& v, Collector<Out>& out) {
  if constexpr (requires { f.FlatMap(v, out); }) {
    f.FlatMap(v, out);
  } else {
    f(v, out);
  }
}

template <typename F>
void OpenIfRich(F& f, RuntimeContext& ctx) {
  if constexpr (std::is_base_of_v<RichFunction, F>) f.Open(ctx);
}

template <typename F>
void CloseIfRich(F& f) {
  if constexpr (std::is_base_of_v<RichFunction, F>) f.Close();
}

// Checkpoint hooks of user functions that implement CheckpointedFunction and/or
// CheckpointListener; no-ops for other functions.

template <typename F>
void SnapshotFunctionState(F& f, int64_t checkpoint_id, OperatorSnapshot& out) {
  if constexpr (std::is_base_of_v<CheckpointedFunctionBase, F>) {
    out.operator_state = f.SnapshotItems(checkpoint_id);
  }
}

template <typename F>
absl::Status RestoreFunctionState(F& f, const RestoredOperatorState& state) {
  if constexpr (std::is_base_of_v<CheckpointedFunctionBase, F>) {
    return f.RestoreItems(state.Items(f.StateMode()));
  }
  return absl::OkStatus();
}

template <typename F>
void NotifyFunctionCheckpointComplete(F& f, int64_t checkpoint_id) {
  if constexpr (std::is_base_of_v<CheckpointListener, F>) f.NotifyCheckpointComplete(checkpoint_id);
}

template <typename F>
void NotifyFunctionCheckpointAborted(F& f, int64_t checkpoint_id) {
  if constexpr (std::is_base_of_v<CheckpointListener, F>) f.NotifyCheckpointAborted(checkpoint_id);
}

}  // namespace sluice::internal
