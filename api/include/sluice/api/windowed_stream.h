#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/time/time.h"
#include "sluice/api/datastream.h"
#include "sluice/operators/window/assigners.h"
#include "sluice/operators/window/triggers.h"
#include "sluice/operators/window/window_functions.h"
#include "sluice/operators/window/window_operator.h"

namespace sluice {

namespace internal {

/// A user-written trigger (a class derived from Trigger<K, T, W>) used as a trigger spec.
template <typename Tr>
struct UserTriggerSpec {
  Tr trigger;
  template <typename K, typename T, typename W>
  std::unique_ptr<Trigger<K, T, W>> Create() const {
    static_assert(std::is_base_of_v<Trigger<K, T, W>, Tr>,
                  "the trigger's key, element or window type does not match the windowed stream");
    return std::make_unique<Tr>(trigger);
  }
};

template <typename S>
auto AsTriggerSpec(S s) {
  if constexpr (requires { s.Clone(); }) {
    return UserTriggerSpec<S>{std::move(s)};
  } else {
    return s;
  }
}

/// Lets a ProcessAllWindowFunction run where a keyed ProcessWindowFunction is expected.
template <typename P>
struct AllWindowProcessAdapter {
  using InputType = typename P::InputType;
  using OutputType = typename P::OutputType;
  P fn;
  void Open(RuntimeContext& ctx) { fn.Open(ctx); }
  void Close() { fn.Close(); }
  template <typename Ctx, typename Out>
  void Process(const uint8_t&, Ctx& ctx, const std::vector<InputType>& elements,
               Collector<Out>& out) {
    fn.Process(ctx, elements, out);
  }
  template <typename Ctx>
  void Clear(Ctx& ctx) {
    fn.Clear(ctx);
  }
};

struct Identity {
  template <typename X>
  const X& operator()(const X& x) const {
    return x;
  }
};

template <typename A>
struct AggregateResultOf {
  A fn;
  template <typename Acc>
  auto operator()(const Acc& acc) const {
    return fn.GetResult(acc);
  }
};

}  // namespace internal

/// A keyed stream cut into windows (or, from WindowAll, the whole stream). Configure the
/// trigger, allowed lateness and the late-data side output, then reduce, aggregate or
/// process each window. Semantics follow Flink's WindowedStream.
template <typename T, typename KS, typename Assigner, typename TriggerSpec, typename Ev>
class WindowedStream {
 public:
  using K = typename KeyedStream<T, KS>::KeyType;
  using W = typename Assigner::WindowType;

  WindowedStream(KeyedStream<T, KS> input, Assigner assigner, TriggerSpec trigger, bool all,
                 Ev evictor = {})
      : input_(std::move(input)),
        assigner_(std::move(assigner)),
        trigger_(std::move(trigger)),
        all_(all),
        evictor_(std::move(evictor)) {}

  /// Replaces the assigner's default trigger: a built-in (sluice::triggers::Count(100), ...)
  /// or a class derived from Trigger<K, T, W>.
  template <typename S>
  auto Trigger(S spec) const {
    auto s = internal::AsTriggerSpec(std::move(spec));
    WindowedStream<T, KS, Assigner, decltype(s), Ev> out(input_, assigner_, std::move(s), all_,
                                                         evictor_);
    out.lateness_ms_ = lateness_ms_;
    out.late_tag_ = late_tag_;
    return out;
  }

  /// Removes elements of a window when it fires, before the window function sees them or
  /// after (sluice/operators/window/evictors.h: evictors::Count, Time, Delta, or a class of
  /// your own). The window then keeps all its elements; Reduce and Aggregate run over what
  /// the evictor left at each firing.
  template <typename E>
  auto Evictor(E evictor) const {
    WindowedStream<T, KS, Assigner, TriggerSpec, E> out(input_, assigner_, trigger_, all_,
                                                        std::move(evictor));
    out.lateness_ms_ = lateness_ms_;
    out.late_tag_ = late_tag_;
    return out;
  }

  /// Keeps windows this long after the watermark passed their end: a late record re-fires
  /// its window with the updated result. Event time only; default 0.
  WindowedStream& AllowedLateness(absl::Duration lateness) {
    if (!Assigner::kEventTime) {
      throw std::invalid_argument("AllowedLateness() applies to event-time windows only");
    }
    if (lateness < absl::ZeroDuration()) {
      throw std::invalid_argument("AllowedLateness() must be >= 0");
    }
    lateness_ms_ = absl::ToInt64Milliseconds(lateness);
    return *this;
  }

  /// Sends records later than the allowed lateness to this side output instead of dropping
  /// them (dropped records are counted in the metric "late_records_dropped").
  WindowedStream& SideOutputLateData(const OutputTag<T>& tag) {
    late_tag_ = tag.id;
    return *this;
  }

  /// Incremental reduce `T fn(const T&, const T&)`: one T per window firing.
  template <typename F>
  DataStream<T> Reduce(F fn, std::string name = "WindowReduce") {
    return Build<T>(std::move(name), internal::ReduceContents<T, F>{std::move(fn)},
                    internal::PassThroughEmitter{});
  }

  /// Incremental reduce, then a ProcessWindowFunction that receives the reduced value.
  template <typename F, typename P>
  requires(!std::is_convertible_v<P, std::string>) auto Reduce(F fn, P process,
                                                               std::string name = "WindowReduce") {
    using Out = typename P::OutputType;
    return Build<Out>(std::move(name), internal::ReduceContents<T, F>{std::move(fn)},
                      internal::ProcessEmitter<decltype(Adapt(process)), internal::Identity>{
                          Adapt(std::move(process)), {}});
  }

  /// Incremental aggregation with an AggregateFunction<T, Acc, Out>; accumulators merge
  /// when session windows do.
  template <typename A>
  auto Aggregate(A fn, std::string name = "WindowAggregate") {
    using Out = typename A::OutputType;
    return Build<Out>(std::move(name), internal::AggregateContents<T, A>{fn},
                      internal::AggregateResultEmitter<A>{fn});
  }

  /// Incremental aggregation, then a ProcessWindowFunction that receives the result.
  template <typename A, typename P>
  requires(!std::is_convertible_v<P, std::string>) auto Aggregate(
      A fn, P process, std::string name = "WindowAggregate") {
    using Out = typename P::OutputType;
    return Build<Out>(
        std::move(name), internal::AggregateContents<T, A>{fn},
        internal::ProcessEmitter<decltype(Adapt(process)), internal::AggregateResultOf<A>>{
            Adapt(std::move(process)), {fn}});
  }

  /// A ProcessWindowFunction<T, Out, K, W> (or, after WindowAll, a
  /// ProcessAllWindowFunction<T, Out, W>) over all elements of each window.
  template <typename P>
  auto Process(P process, std::string name = "WindowProcess") {
    using Out = typename P::OutputType;
    return Build<Out>(std::move(name), internal::ListContents<T>{},
                      internal::ProcessEmitter<decltype(Adapt(process)), void*>{
                          Adapt(std::move(process)), nullptr});
  }

 private:
  template <typename U, typename KS2, typename A2, typename TS2, typename E2>
  friend class WindowedStream;

  template <typename P>
  static auto Adapt(P p) {
    using PIn = typename P::InputType;
    using POut = typename P::OutputType;
    if constexpr (std::is_base_of_v<ProcessAllWindowFunction<PIn, POut, W>, P>) {
      return internal::AllWindowProcessAdapter<P>{std::move(p)};
    } else {
      static_assert(std::is_base_of_v<ProcessWindowFunction<PIn, POut, K, W>, P>,
                    "Process() takes a ProcessWindowFunction<In, Out, Key, Window> whose key "
                    "and window types match the windowed stream");
      return p;
    }
  }

  template <typename Out, typename Contents, typename Emitter>
  DataStream<Out> Build(std::string name, Contents contents, Emitter emitter) {
    if constexpr (std::is_same_v<Ev, internal::NoEvictor>) {
      return BuildWith<Out>(std::move(name), std::move(contents), std::move(emitter));
    } else {
      return BuildWith<Out>(std::move(name), internal::EvictingContents<T>{},
                            internal::EvictingEmitter<Emitter, Contents, Ev>{
                                std::move(emitter), std::move(contents), evictor_});
    }
  }

  template <typename Out, typename Contents, typename Emitter>
  DataStream<Out> BuildWith(std::string name, Contents contents, Emitter emitter) {
    using Op = internal::WindowOperator<K, T, Out, Assigner, Contents, Emitter, KS>;
    internal::WindowSettings<T> settings{lateness_ms_, late_tag_};
    KS selector = input_.selector();
    Assigner assigner = assigner_;
    TriggerSpec trigger = trigger_;
    DataStream<T> in = input_.input();
    DataStream<Out> out = in.template AddOneInput<Out>(
        std::move(name),
        [selector, assigner, trigger, contents, emitter, settings]() {
          return std::make_unique<Op>(selector, assigner, trigger.template Create<K, T, W>(),
                                      contents, emitter, settings);
        },
        input_.KeyedWriter(), /*keyed=*/true);
    StreamNode& node = in.pipeline()->graph().nodes[out.nodes()[0]];
    if (!late_tag_.empty()) node.side_outputs[late_tag_] = internal::MakeOutputInfo<T>();
    if (all_) {
      node.parallelism = 1;
      node.non_parallel = true;
    }
    return out;
  }

  KeyedStream<T, KS> input_;
  Assigner assigner_;
  TriggerSpec trigger_;
  bool all_;
  Ev evictor_;
  int64_t lateness_ms_ = 0;
  std::string late_tag_;
};

}  // namespace sluice
