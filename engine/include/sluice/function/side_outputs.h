#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeindex>
#include <utility>

#include "sluice/core/record.h"
#include "sluice/function/runtime_context.h"

namespace sluice {

/// A tag naming a side output of type T: the late records of a window, the records a
/// process function or a source sets aside (e.g. Kafka's dead letters). Read it with
/// DataStream::GetSideOutput(tag).
template <typename T>
struct OutputTag {
  std::string id;
  explicit OutputTag(std::string tag_id) : id(std::move(tag_id)) {}
};

class ErasedOutput;

namespace internal {

/// The side outputs a function may write to, by tag. Records gather in one batch per tag
/// and go out when the operator flushes (before its next watermark, barrier or idle mark,
/// so a side output keeps the order of the main one). A tag nobody reads is dropped, as in
/// Flink; the records are counted in the operator's metric "side_output_records_dropped".
class SideOutputs {
 public:
  /// Operator set-up: where records for tags nobody reads are counted.
  void CountDroppedIn(MetricGroup& metrics) {
    dropped_ = &metrics.GetCounter("side_output_records_dropped");
  }

  /// Connects a tag the job reads (task set-up). `type` is the tag's record type.
  void Connect(const std::string& tag, std::type_index type, ErasedOutput* output) {
    channels_.insert_or_assign(tag, Channel{output, type, nullptr});
  }

  template <typename X>
  void Collect(const OutputTag<X>& tag, X value, Timestamp ts) {
    auto it = channels_.find(tag.id);
    if (it == channels_.end()) {
      if (dropped_ != nullptr) dropped_->Inc();
      return;
    }
    Channel& c = it->second;
    if (c.type != std::type_index(typeid(X))) {
      throw std::logic_error("side output '" + tag.id +
                             "' is read with another type than it is written with");
    }
    if (c.batch == nullptr) c.batch = std::make_unique<Batch<X>>();
    static_cast<Batch<X>&>(*c.batch).Add(std::move(value), ts);
    pending_ = true;
  }

  /// Sends what was collected. Cheap when nothing was.
  void Flush() {
    if (pending_) FlushAll();
  }

 private:
  struct Channel {
    ErasedOutput* output;
    std::type_index type;
    std::unique_ptr<BatchBase> batch;
  };
  void FlushAll();

  std::map<std::string, Channel> channels_;
  bool pending_ = false;
  Counter* dropped_ = nullptr;
};

}  // namespace internal
}  // namespace sluice
