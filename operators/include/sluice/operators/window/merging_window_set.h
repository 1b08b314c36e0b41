#pragma once

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

namespace sluice::internal {

/// The windows of one key of a merging assigner (sessions), each mapped to the window whose
/// namespace holds its state. When windows merge, the merged window keeps one of their state
/// windows, so merging moves no more state than needed. A port of Flink's MergingWindowSet;
/// the mapping lives in keyed state between elements.
template <typename W>
class MergingWindowSet {
 public:
  using Mapping = std::vector<std::pair<W, W>>;  // window -> state window

  explicit MergingWindowSet(Mapping mapping) : mapping_(std::move(mapping)) {}

  std::optional<W> StateWindow(const W& window) const {
    for (const auto& [w, s] : mapping_) {
      if (w == window) return s;
    }
    return std::nullopt;
  }

  void Retire(const W& window) {
    auto it = std::find_if(mapping_.begin(), mapping_.end(),
                           [&](const auto& e) { return e.first == window; });
    if (it != mapping_.end()) {
      mapping_.erase(it);
      changed_ = true;
    }
  }

  /// Adds a new window, merging it with existing ones as the assigner says. For each merge,
  /// calls merge(result, merged_windows, result_state_window, merged_state_windows) so the
  /// caller merges triggers and state. Returns the window the new one ended up in.
  template <typename Assigner, typename MergeFn>
  W AddWindow(const W& new_window, const Assigner& assigner, MergeFn&& merge) {
    std::vector<W> windows;
    windows.reserve(mapping_.size() + 1);
    for (const auto& e : mapping_) windows.push_back(e.first);
    windows.push_back(new_window);

    std::vector<std::pair<W, std::vector<W>>> merges;
    assigner.MergeWindows(windows, [&](const W& result, const std::vector<W>& merged) {
      merges.push_back({result, merged});
    });

    W result_window = new_window;
    bool merged_new_window = false;
    for (auto& [merge_result, merged_windows] : merges) {
      if (std::find(merged_windows.begin(), merged_windows.end(), new_window) !=
          merged_windows.end()) {
        merged_new_window = true;
        result_window = merge_result;
      }
      // Keep the state window of one of the existing windows; the others are merged in.
      std::optional<W> kept_state;
      std::vector<W> merged_state_windows;
      for (const W& w : merged_windows) {
        auto it = std::find_if(mapping_.begin(), mapping_.end(),
                               [&](const auto& e) { return e.first == w; });
        if (it == mapping_.end()) continue;  // the new window has no state yet
        if (!kept_state) {
          kept_state = it->second;
        } else {
          merged_state_windows.push_back(it->second);
        }
        mapping_.erase(it);
      }
      mapping_.push_back({merge_result, *kept_state});
      changed_ = true;
      // A merge that only replaces a window by itself needs no work.
      if (!(merged_windows.size() == 1 && merged_windows[0] == merge_result)) {
        merge(merge_result, merged_windows, *kept_state, merged_state_windows);
      }
    }
    if (merges.empty() || (result_window == new_window && !merged_new_window)) {
      mapping_.push_back({result_window, result_window});
      changed_ = true;
    }
    return result_window;
  }

  const Mapping& mapping() const { return mapping_; }
  bool changed() const { return changed_; }

 private:
  Mapping mapping_;
  bool changed_ = false;
};

}  // namespace sluice::internal
