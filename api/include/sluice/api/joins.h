#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "sluice/api/connected_streams.h"
#include "sluice/api/windowed_stream.h"
#include "sluice/function/co_functions.h"
#include "sluice/operators/interval_join.h"

namespace sluice {

namespace internal {

/// A record of either side of a window join or co-group on their way through one window
/// operator: exactly one of the two is set.
template <typename L, typename R>
using EitherSide = std::pair<std::optional<L>, std::optional<R>>;

/// Runs a CoGroupFunction over a window's records, split back into the two sides (in
/// arrival order within each).
template <typename L, typename R, typename Out, typename K, typename W, typename F>
class CoGroupWindowFunction final : public ProcessWindowFunction<EitherSide<L, R>, Out, K, W> {
 public:
  explicit CoGroupWindowFunction(F fn) : fn_(std::move(fn)) {}
  void Open(RuntimeContext& ctx) override { fn_.Open(ctx); }
  void Close() override { fn_.Close(); }
  void Process(const K&, typename ProcessWindowFunction<EitherSide<L, R>, Out, K, W>::Context&,
               const std::vector<EitherSide<L, R>>& elements, Collector<Out>& out) override {
    left_.clear();
    right_.clear();
    for (const auto& e : elements) {
      if (e.first) {
        left_.push_back(*e.first);
      } else {
        right_.push_back(*e.second);
      }
    }
    fn_.CoGroup(left_, right_, out);
  }

 private:
  F fn_;
  std::vector<L> left_;
  std::vector<R> right_;
};

/// A window join as a co-group: every pair of the window's two sides.
template <typename L, typename R, typename Out, typename F>
class JoinAsCoGroup final : public CoGroupFunction<L, R, Out> {
 public:
  explicit JoinAsCoGroup(F fn) : fn_(std::move(fn)) {}
  void Open(RuntimeContext& ctx) override { fn_.Open(ctx); }
  void Close() override { fn_.Close(); }
  void CoGroup(const std::vector<L>& left, const std::vector<R>& right,
               Collector<Out>& out) override {
    for (const L& l : left) {
      for (const R& r : right) out.Collect(fn_.Join(l, r));
    }
  }

 private:
  F fn_;
};

}  // namespace internal

template <typename L, typename R, bool kJoin, typename KL, typename KR>
class TwoStreamKeys;

/// Two streams grouped by key and window together (DataStream::Join, DataStream::CoGroup):
/// `a.CoGroup(b).Where(key_of_a).EqualTo(key_of_b).Window(assigner).Apply(fn)`. Both sides
/// go through one window operator, tagged with their side, so windows, lateness and state
/// behave as for any keyed window; `fn` sees each key's records of both sides per window.
/// Join calls a JoinFunction for every pair (an inner join); CoGroup a CoGroupFunction once
/// per key and window with both lists (outer joins, differences, ...).
template <typename L, typename R, bool kJoin>
class TwoStreamWindows {
 public:
  TwoStreamWindows(DataStream<L> left, DataStream<R> right)
      : left_(std::move(left)), right_(std::move(right)) {}

  /// The left side's key: a callable `K(const L&)` or a pointer to a member of L.
  template <typename KL>
  auto Where(KL left_key) const {
    return TwoStreamLeftKey<decltype(internal::MakeKeySelector<L>(left_key))>(
        left_, right_, internal::MakeKeySelector<L>(std::move(left_key)));
  }

  template <typename KL>
  class TwoStreamLeftKey {
   public:
    TwoStreamLeftKey(DataStream<L> left, DataStream<R> right, KL left_key)
        : left_(std::move(left)), right_(std::move(right)), left_key_(std::move(left_key)) {}
    /// The right side's key, of the same type as the left side's.
    template <typename KR>
    auto EqualTo(KR right_key) const {
      auto rk = internal::MakeKeySelector<R>(std::move(right_key));
      return TwoStreamKeys<L, R, kJoin, KL, decltype(rk)>(left_, right_, left_key_, std::move(rk));
    }

   private:
    DataStream<L> left_;
    DataStream<R> right_;
    KL left_key_;
  };

 private:
  DataStream<L> left_;
  DataStream<R> right_;
};

namespace internal {

/// Both key selectors and the window of a window join or co-group, until Apply.
template <typename L, typename R, bool kJoin, typename KL, typename KR, typename Assigner>
class TwoStreamWindowed {
 public:
  using K = KeyOf<L, KL>;
  static_assert(std::is_same_v<K, KeyOf<R, KR>>,
                "Where() and EqualTo() must give the same key type");

  TwoStreamWindowed(DataStream<L> left, DataStream<R> right, KL left_key, KR right_key,
                    Assigner assigner)
      : left_(std::move(left)),
        right_(std::move(right)),
        left_key_(std::move(left_key)),
        right_key_(std::move(right_key)),
        assigner_(std::move(assigner)) {}

  /// Late records (behind the watermark by up to `lateness`) still update their window.
  TwoStreamWindowed& AllowedLateness(absl::Duration lateness) {
    lateness_ = lateness;
    return *this;
  }

  /// Join: a JoinFunction<L, R, Out>; CoGroup: a CoGroupFunction<L, R, Out>.
  template <typename F>
  auto Apply(F fn, std::string name = kJoin ? "WindowJoin" : "CoGroup") {
    using Out = typename F::OutputType;
    using Either = EitherSide<L, R>;
    using W = typename Assigner::WindowType;
    auto group = [&] {
      if constexpr (kJoin) {
        static_assert(std::is_base_of_v<JoinFunction<L, R, Out>, F>,
                      "Join(...).Apply() takes a JoinFunction<Left, Right, Out>");
        return JoinAsCoGroup<L, R, Out, F>(std::move(fn));
      } else {
        static_assert(std::is_base_of_v<CoGroupFunction<L, R, Out>, F>,
                      "CoGroup(...).Apply() takes a CoGroupFunction<Left, Right, Out>");
        return std::move(fn);
      }
    }();
    auto left = left_.Map([](const L& l) { return Either{l, std::nullopt}; }, name + "/left");
    auto right = right_.Map([](const R& r) { return Either{std::nullopt, r}; }, name + "/right");
    auto windowed = left.Union(right)
                        .KeyBy([lk = left_key_, rk = right_key_](const Either& e) -> K {
                          return e.first ? K(lk(*e.first)) : K(rk(*e.second));
                        })
                        .Window(assigner_);
    if (lateness_ > absl::ZeroDuration()) windowed.AllowedLateness(lateness_);
    return windowed.Process(
        CoGroupWindowFunction<L, R, Out, K, W, decltype(group)>(std::move(group)), std::move(name));
  }

 private:
  DataStream<L> left_;
  DataStream<R> right_;
  KL left_key_;
  KR right_key_;
  Assigner assigner_;
  absl::Duration lateness_ = absl::ZeroDuration();
};

}  // namespace internal

/// Both keys of a window join or co-group, until its window is chosen.
template <typename L, typename R, bool kJoin, typename KL, typename KR>
class TwoStreamKeys {
 public:
  TwoStreamKeys(DataStream<L> left, DataStream<R> right, KL left_key, KR right_key)
      : left_(std::move(left)),
        right_(std::move(right)),
        left_key_(std::move(left_key)),
        right_key_(std::move(right_key)) {}
  /// Any window assigner (sluice/operators/window/assigners.h).
  template <typename Assigner>
  auto Window(Assigner assigner) const {
    return internal::TwoStreamWindowed<L, R, kJoin, KL, KR, Assigner>(left_, right_, left_key_,
                                                                      right_key_, assigner);
  }

 private:
  DataStream<L> left_;
  DataStream<R> right_;
  KL left_key_;
  KR right_key_;
};

/// The builder of an interval join (KeyedStream::IntervalJoin): `Between(lower, upper)`.
template <typename L, typename KSL, typename R, typename KSR>
class IntervalJoinBuilder {
 public:
  using KeyType = typename KeyedStream<L, KSL>::KeyType;
  static_assert(std::is_same_v<KeyType, typename KeyedStream<R, KSR>::KeyType>,
                "IntervalJoin(): both keyed streams need the same key type");

  IntervalJoinBuilder(KeyedStream<L, KSL> left, KeyedStream<R, KSR> right)
      : left_(std::move(left)), right_(std::move(right)) {}

  /// A left record at time t joins the right records of its key at [t + lower, t + upper]
  /// (both bounds inclusive unless made exclusive); lower <= upper, either may be negative.
  IntervalJoinBuilder& Between(absl::Duration lower, absl::Duration upper) {
    lower_ = absl::ToInt64Milliseconds(lower);
    upper_ = absl::ToInt64Milliseconds(upper);
    if (lower_ > upper_) {
      throw std::invalid_argument("IntervalJoin().Between(lower, upper): lower exceeds upper");
    }
    between_ = true;
    return *this;
  }
  IntervalJoinBuilder& LowerBoundExclusive() {
    lower_exclusive_ = true;
    return *this;
  }
  IntervalJoinBuilder& UpperBoundExclusive() {
    upper_exclusive_ = true;
    return *this;
  }

  /// Runs a ProcessJoinFunction<L, R, Out> for every pair; each result carries the later
  /// of the pair's timestamps.
  template <typename F>
  auto Process(F fn, std::string name = "IntervalJoin") {
    using Out = typename F::OutputType;
    static_assert(std::is_base_of_v<ProcessJoinFunction<L, R, Out>, F>,
                  "IntervalJoin(...).Process() takes a ProcessJoinFunction<Left, Right, Out>");
    if (!between_) throw std::logic_error("IntervalJoin(): call Between(lower, upper) first");
    internal::IntervalBounds bounds{lower_ + (lower_exclusive_ ? 1 : 0),
                                    upper_ - (upper_exclusive_ ? 1 : 0)};
    if (bounds.lower > bounds.upper) {
      throw std::invalid_argument("IntervalJoin(): the exclusive bounds leave no interval");
    }
    using Joiner = internal::IntervalJoiner<KeyType, L, R, Out, F>;
    return left_.Connect(right_).Process(Joiner(std::move(fn), bounds), std::move(name));
  }

 private:
  KeyedStream<L, KSL> left_;
  KeyedStream<R, KSR> right_;
  int64_t lower_ = 0;
  int64_t upper_ = 0;
  bool lower_exclusive_ = false;
  bool upper_exclusive_ = false;
  bool between_ = false;
};

template <typename T>
template <typename U>
TwoStreamWindows<T, U, true> DataStream<T>::Join(const DataStream<U>& other) const {
  return TwoStreamWindows<T, U, true>(*this, other);
}

template <typename T>
template <typename U>
TwoStreamWindows<T, U, false> DataStream<T>::CoGroup(const DataStream<U>& other) const {
  return TwoStreamWindows<T, U, false>(*this, other);
}

template <typename T, typename KS>
template <typename U, typename KS2>
IntervalJoinBuilder<T, KS, U, KS2> KeyedStream<T, KS>::IntervalJoin(
    const KeyedStream<U, KS2>& other) const {
  return IntervalJoinBuilder<T, KS, U, KS2>(*this, other);
}

}  // namespace sluice
