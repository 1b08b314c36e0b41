#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "sluice/core/mutex.h"
#include "sluice/function/functions.h"

namespace sluice {

/// Where a CollectSink puts records: shared by all its subtasks, read after the job ended.
template <typename T>
class CollectedRecords {
 public:
  void Add(std::span<const Record<T>> records) {
    MutexLock lock(&mu_);
    records_.insert(records_.end(), records.begin(), records.end());
  }
  /// All records with their timestamps, in arrival order per subtask.
  std::vector<Record<T>> Records() const {
    MutexLock lock(&mu_);
    return records_;
  }
  std::vector<T> Values() const {
    MutexLock lock(&mu_);
    std::vector<T> values;
    values.reserve(records_.size());
    for (const auto& r : records_) values.push_back(r.value);
    return values;
  }

 private:
  mutable Mutex mu_;
  std::vector<Record<T>> records_ SLUICE_GUARDED_BY(mu_);
};

/// Collects every record into memory (tests, small results).
template <typename T>
class CollectSink final : public SinkFunction<T> {
 public:
  explicit CollectSink(std::shared_ptr<CollectedRecords<T>> into) : into_(std::move(into)) {}
  void Invoke(const T& value, const SinkContext& ctx) override {
    Record<T> r{value, ctx.timestamp()};
    into_->Add(std::span<const Record<T>>(&r, 1));
  }
  void InvokeBatch(std::span<const Record<T>> records, SinkContext&) override {
    into_->Add(records);
  }

 private:
  std::shared_ptr<CollectedRecords<T>> into_;
};

/// Drops every record (benchmarks); counts them in the metric "records".
template <typename T>
class DiscardingSink final : public SinkFunction<T> {
 public:
  void Open(RuntimeContext& ctx) override { counter_ = &ctx.Metrics().GetCounter("records"); }
  void Invoke(const T&, const SinkContext&) override { counter_->Inc(); }
  void InvokeBatch(std::span<const Record<T>> records, SinkContext&) override {
    counter_->Inc(static_cast<int64_t>(records.size()));
  }

 private:
  Counter* counter_ = nullptr;
};

}  // namespace sluice
