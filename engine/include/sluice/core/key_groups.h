#pragma once

#include <cstdint>

#include "sluice/core/stable_hash.h"

namespace sluice {

/// The default number of key groups (DESIGN.md): the upper bound of a keyed operator's
/// parallelism and the unit of state redistribution on rescale.
inline constexpr int kDefaultMaxParallelism = 128;

/// A contiguous, inclusive range of key groups owned by one subtask.
struct KeyGroupRange {
  int start = 0;
  int end = -1;  // inclusive; end < start means empty

  int size() const { return end >= start ? end - start + 1 : 0; }
  bool Contains(int key_group) const { return key_group >= start && key_group <= end; }
  bool operator==(const KeyGroupRange&) const = default;
};

/// Maps a key hash to its key group in [0, max_parallelism).
inline int KeyGroupForHash(uint64_t hash, int max_parallelism) {
  // Multiply-shift keeps the distribution even without a division per record.
  return static_cast<int>((static_cast<unsigned __int128>(hash) * max_parallelism) >> 64);
}

template <typename K>
int KeyGroupFor(const K& key, int max_parallelism) {
  return KeyGroupForHash(StableHash(key), max_parallelism);
}

/// The subtask that owns a key group, as in Flink: key_group * parallelism / max_parallelism.
inline int OperatorIndexForKeyGroup(int key_group, int parallelism, int max_parallelism) {
  return static_cast<int>(static_cast<int64_t>(key_group) * parallelism / max_parallelism);
}

/// The key groups subtask `index` of `parallelism` owns; the inverse of
/// OperatorIndexForKeyGroup.
inline KeyGroupRange KeyGroupRangeForOperator(int index, int parallelism, int max_parallelism) {
  int64_t start = (static_cast<int64_t>(index) * max_parallelism + parallelism - 1) / parallelism;
  int64_t end = (static_cast<int64_t>(index + 1) * max_parallelism - 1) / parallelism;
  return KeyGroupRange{static_cast<int>(start), static_cast<int>(end)};
}

}  // namespace sluice
