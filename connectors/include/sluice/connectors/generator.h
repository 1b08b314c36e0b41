#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "sluice/core/stable_hash.h"
#include "sluice/function/functions.h"
#include "sluice/serialization/serializer.h"

namespace sluice {

struct GeneratorOptions {
  /// Records in all; unbounded if not set.
  std::optional<uint64_t> count;
  /// Total records per second over all subtasks; unlimited if 0.
  double records_per_second = 0;
  /// Seed of the per-record random value handed to a two-argument function.
  uint64_t seed = 42;
};

namespace internal {
template <typename F, bool kIndexOnly = std::is_invocable_v<F, uint64_t>>
struct GeneratorOutput {
  using Type = std::decay_t<std::invoke_result_t<F, uint64_t>>;
};
template <typename F>
struct GeneratorOutput<F, false> {
  using Type = std::decay_t<std::invoke_result_t<F, uint64_t, uint64_t>>;
};

inline uint64_t GeneratorRandom(uint64_t seed, uint64_t index) {
  return sluice::internal::Mix64(seed ^ sluice::internal::Mix64(index + 0x9e3779b97f4a7c15ULL));
}
}  // namespace internal

/// A deterministic source: record i is fn(i) (or fn(i, random_i), where random_i depends
/// only on the seed and i). Subtask s of p produces the indices s, s+p, s+2p, ..., so the
/// set of records does not depend on parallelism. Bounded when a count is given.
template <typename F>
class Generator final : public SourceFunction<typename internal::GeneratorOutput<F>::Type> {
 public:
  using T = typename internal::GeneratorOutput<F>::Type;

  explicit Generator(F fn, GeneratorOptions options = {}) : fn_(std::move(fn)), opts_(options) {}

  /// The position is the next index of this subtask's stride.
  std::vector<std::string> SnapshotState(int64_t) override {
    return {SerializeToString(std::make_pair(next_, stride_))};
  }
  void RestoreState(std::vector<std::string> items) override {
    if (items.empty()) return;
    auto pos = DeserializeFromString<std::pair<uint64_t, uint64_t>>(items[0], "generator position");
    if (!pos.ok()) throw std::runtime_error(std::string(pos.status().message()));
    restored_next_ = pos->first;
  }

  void Open(RuntimeContext& ctx) override {
    next_ = restored_next_ ? *restored_next_ : static_cast<uint64_t>(ctx.SubtaskIndex());
    stride_ = static_cast<uint64_t>(ctx.Parallelism());
    if (opts_.records_per_second > 0) {
      rate_ = opts_.records_per_second / static_cast<double>(ctx.Parallelism());
      start_ = std::chrono::steady_clock::now();
    }
  }

  SourceStatus Poll(SourceOutput<T>& out) override {
    uint64_t n = out.batch_hint();
    if (rate_ > 0) {
      double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      double allowed = rate_ * elapsed - static_cast<double>(emitted_);
      if (allowed < 1) {
        // Rate limit: wait for the next record's slot, at most 10 ms so the task stays live.
        double wait_s = std::min((1 - allowed) / rate_, 0.01);
        std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
        return SourceStatus::kNothingAvailable;
      }
      n = std::min<uint64_t>(n, static_cast<uint64_t>(allowed));
    }
    for (uint64_t i = 0; i < n; ++i) {
      if (opts_.count && next_ >= *opts_.count) return SourceStatus::kEndOfInput;
      if constexpr (std::is_invocable_v<F, uint64_t>) {
        out.Collect(fn_(next_));
      } else {
        out.Collect(fn_(next_, internal::GeneratorRandom(opts_.seed, next_)));
      }
      next_ += stride_;
      ++emitted_;
    }
    if (opts_.count && next_ >= *opts_.count) return SourceStatus::kEndOfInput;
    return SourceStatus::kMoreAvailable;
  }

 private:
  F fn_;
  GeneratorOptions opts_;
  uint64_t next_ = 0;
  uint64_t stride_ = 1;
  uint64_t emitted_ = 0;
  std::optional<uint64_t> restored_next_;
  double rate_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace sluice
