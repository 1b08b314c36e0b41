#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "sluice/function/functions.h"

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

 private:
  std::shared_ptr<const std::vector<T>> elements_;  // shared: subtask copies are cheap
  size_t next_ = 0;
};

}  // namespace sluice
