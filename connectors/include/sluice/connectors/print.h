#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "sluice/connectors/internal/io.h"
#include "sluice/core/format.h"
#include "sluice/function/functions.h"

namespace sluice {

/// Prints each record as a line on stdout; with parallelism > 1 prefixed by "<subtask>> "
/// as Flink does. Lines of parallel subtasks never interleave.
template <typename T>
class PrintSink final : public SinkFunction<T> {
 public:
  void Open(RuntimeContext& ctx) override {
    prefix_ = ctx.Parallelism() > 1 ? absl::StrCat(ctx.SubtaskIndex() + 1, "> ") : "";
  }
  void Invoke(const T& value, const SinkContext&) override {
    internal::WriteToStdout(absl::StrCat(prefix_, ToString(value), "\n"));
  }
  void InvokeBatch(std::span<const Record<T>> records, SinkContext&) override {
    std::string text;
    for (const auto& r : records) {
      text.append(prefix_);
      internal::AppendText(text, r.value);
      text.push_back('\n');
    }
    internal::WriteToStdout(text);
  }

 private:
  std::string prefix_;
};

}  // namespace sluice
