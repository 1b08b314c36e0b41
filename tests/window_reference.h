#pragma once

// A brute-force model of event-time windows with bounded out-of-orderness watermarks after
// every record, allowed lateness and late records, written independently of the engine
// (no timers, no merging set): each step scans every live window. Tests compare the engine's
// output with it as multisets.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sluice::testing {

struct RefEvent {
  std::string key;
  int64_t ts = 0;
  int64_t value = 0;
};

/// One window firing: key, window [start, end), and count/sum/min/max of its contents.
using RefFiring = std::tuple<std::string, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;

enum class RefWindowKind { kTumbling, kSliding, kSession };

struct RefSpec {
  RefWindowKind kind = RefWindowKind::kTumbling;
  int64_t size = 0;   // tumbling, sliding
  int64_t slide = 0;  // sliding
  int64_t gap = 0;    // session
  int64_t out_of_orderness = 0;
  int64_t allowed_lateness = 0;
};

struct RefResult {
  std::vector<RefFiring> firings;
  std::vector<RefEvent> late;
};

inline RefResult RunReference(const std::vector<RefEvent>& events, const RefSpec& spec) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  struct Win {
    int64_t start, end;
    int64_t count = 0, sum = 0, min = kMax, max = kMin;
    bool pending = false;
  };
  std::map<std::string, std::vector<Win>> live;
  RefResult out;
  int64_t wm = kMin;
  int64_t max_ts = kMin;

  auto fire = [&](const std::string& key, const Win& w) {
    out.firings.emplace_back(key, w.start, w.end, w.count, w.sum, w.min, w.max);
  };
  auto add = [](Win& w, int64_t v) {
    w.count++;
    w.sum += v;
    w.min = std::min(w.min, v);
    w.max = std::max(w.max, v);
  };
  auto late_window = [&](int64_t end) { return end - 1 + spec.allowed_lateness <= wm; };
  auto advance = [&](int64_t new_wm) {
    wm = new_wm;
    for (auto& [key, wins] : live) {
      for (auto& w : wins) {
        if (w.pending && w.end - 1 <= wm) {
          fire(key, w);
          w.pending = false;
        }
      }
      wins.erase(std::remove_if(wins.begin(), wins.end(),
                                [&](const Win& w) {
                                  return wm == kMax || w.end - 1 + spec.allowed_lateness <= wm;
                                }),
                 wins.end());
    }
  };
  auto start_of = [](int64_t ts, int64_t size) {
    int64_t r = ts % size;
    return r < 0 ? ts - (r + size) : ts - r;
  };

  for (const RefEvent& e : events) {
    auto& wins = live[e.key];
    bool skipped = true;
    if (spec.kind == RefWindowKind::kSession) {
      Win merged{e.ts, e.ts + spec.gap};
      std::vector<Win> keep;
      bool merged_any = false;
      for (const Win& w : wins) {
        if (w.start <= merged.end && w.end >= merged.start) {
          merged_any = true;
          merged.start = std::min(merged.start, w.start);
          merged.end = std::max(merged.end, w.end);
          merged.count += w.count;
          merged.sum += w.sum;
          merged.min = std::min(merged.min, w.min);
          merged.max = std::max(merged.max, w.max);
        } else {
          keep.push_back(w);
        }
      }
      if (merged_any || !late_window(merged.end)) {
        skipped = false;
        add(merged, e.value);
        if (merged.end - 1 <= wm) {
          fire(e.key, merged);
        } else {
          merged.pending = true;
        }
        keep.push_back(merged);
        wins = keep;
      }
    } else {
      std::vector<std::pair<int64_t, int64_t>> assigned;
      if (spec.kind == RefWindowKind::kTumbling) {
        int64_t s = start_of(e.ts, spec.size);
        assigned.push_back({s, s + spec.size});
      } else {
        for (int64_t s = start_of(e.ts, spec.slide); s > e.ts - spec.size; s -= spec.slide) {
          assigned.push_back({s, s + spec.size});
        }
      }
      for (const auto& window : assigned) {
        const int64_t s = window.first, end = window.second;
        if (late_window(end)) continue;
        skipped = false;
        auto it =
            std::find_if(wins.begin(), wins.end(), [&](const Win& w) { return w.start == s; });
        if (it == wins.end()) {
          wins.push_back(Win{s, end});
          it = wins.end() - 1;
        }
        add(*it, e.value);
        if (end - 1 <= wm) {
          fire(e.key, *it);
          it->pending = false;
        } else {
          it->pending = true;
        }
      }
    }
    if (skipped && e.ts + spec.allowed_lateness <= wm) out.late.push_back(e);
    max_ts = std::max(max_ts, e.ts);
    int64_t candidate = max_ts - spec.out_of_orderness - 1;
    if (candidate > wm) advance(candidate);
  }
  advance(kMax);
  return out;
}

/// The firings and the late records as windowed_stats writes them
/// (`key,start,end,count,sum,min,max` and `key,timestamp_ms,value`), each sorted.
inline std::pair<std::vector<std::string>, std::vector<std::string>> WindowedStatsLines(
    const RefResult& ref) {
  std::vector<std::string> firings, late;
  for (const auto& [key, start, end, count, sum, min, max] : ref.firings) {
    firings.push_back(
        absl::StrCat(key, ",", start, ",", end, ",", count, ",", sum, ",", min, ",", max));
  }
  for (const auto& e : ref.late) late.push_back(absl::StrCat(e.key, ",", e.ts, ",", e.value));
  std::sort(firings.begin(), firings.end());
  std::sort(late.begin(), late.end());
  return {firings, late};
}

}  // namespace sluice::testing
