#pragma once

#include <utility>
#include <vector>

#include "sluice/core/time.h"

namespace sluice {

/// One element of a stream: a value and its event timestamp (kNoTimestamp if none).
template <typename T>
struct Record {
  T value;
  Timestamp timestamp = kNoTimestamp;
};

/// A type-erased batch: the unit that crosses thread boundaries. Type erasure happens per
/// batch, never per record (DESIGN.md, "Where the speed comes from").
class BatchBase {
 public:
  virtual ~BatchBase() = default;
  virtual size_t size() const = 0;
  virtual void clear() = 0;
};

/// A batch of records of one type. Operators process whole batches; a receiver may move
/// records out of a batch it was handed, and the sender clears it afterwards.
template <typename T>
class Batch final : public BatchBase {
 public:
  Batch() = default;
  explicit Batch(size_t capacity) { records_.reserve(capacity); }

  size_t size() const override { return records_.size(); }
  bool empty() const { return records_.empty(); }
  void clear() override { records_.clear(); }
  void reserve(size_t n) { records_.reserve(n); }
  size_t capacity() const { return records_.capacity(); }

  void Add(const T& value, Timestamp ts) { records_.push_back(Record<T>{value, ts}); }
  void Add(T&& value, Timestamp ts) { records_.push_back(Record<T>{std::move(value), ts}); }
  void Add(Record<T>&& record) { records_.push_back(std::move(record)); }

  Record<T>& operator[](size_t i) { return records_[i]; }
  const Record<T>& operator[](size_t i) const { return records_[i]; }
  auto begin() { return records_.begin(); }
  auto end() { return records_.end(); }
  auto begin() const { return records_.begin(); }
  auto end() const { return records_.end(); }

  std::vector<Record<T>>& records() { return records_; }
  const std::vector<Record<T>>& records() const { return records_; }

 private:
  std::vector<Record<T>> records_;
};

}  // namespace sluice
