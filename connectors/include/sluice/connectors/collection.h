#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sluice/function/functions.h"
#include "sluice/serialization/serializer.h"

namespace sluice {

/// Emits the elements of a vector, in order, then ends. Not parallel.
template <typename T>
class CollectionSource final : public SourceFunction<T> {
 public:
  explicit CollectionSource(std::vector<T> elements)
      : elements_(std::make_shared<const std::vector<T>>(std::move(elements))) {}

  SourceStatus Poll(SourceOutput<T>& out) override {
    const size_t end = std::min(elements_->size(), next_ + out.batch_hint());
    for (; next_ < end; ++next_) out.Collect((*elements_)[next_]);
    return next_ < elements_->size() ? SourceStatus::kMoreAvailable : SourceStatus::kEndOfInput;
  }
  bool IsParallel() const override { return false; }
  /// The position is the index of the next element.
  std::vector<std::string> SnapshotState(int64_t) override {
    return {SerializeToString<uint64_t>(next_)};
  }
  void RestoreState(std::vector<std::string> items) override {
    if (items.empty()) return;
    auto pos = DeserializeFromString<uint64_t>(items[0], "collection source position");
    if (!pos.ok()) throw std::runtime_error(std::string(pos.status().message()));
    next_ = *pos;
  }

 private:
  std::shared_ptr<const std::vector<T>> elements_;  // shared: subtask copies are cheap
  size_t next_ = 0;
};

}  // namespace sluice
