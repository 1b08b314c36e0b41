#pragma once

#include <utility>

#include "sluice/core/record.h"

namespace sluice {

/// Where a function emits its results. Appends to the operator's output batch: no virtual
/// call and no allocation per record once the batch has grown. The timestamp of emitted
/// records is that of the input record (or the timer) unless given.
template <typename T>
class Collector {
 public:
  Collector(Batch<T>* out, Timestamp timestamp) : out_(out), timestamp_(timestamp) {}

  void Collect(const T& value) { out_->Add(value, timestamp_); }
  void Collect(T&& value) { out_->Add(std::move(value), timestamp_); }
  void CollectWithTimestamp(T value, Timestamp ts) { out_->Add(std::move(value), ts); }

  void set_timestamp(Timestamp ts) { timestamp_ = ts; }

 private:
  Batch<T>* out_;
  Timestamp timestamp_;
};

}  // namespace sluice
