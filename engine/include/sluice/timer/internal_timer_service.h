#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "sluice/core/key_groups.h"
#include "sluice/core/time.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/void_namespace.h"
#include "sluice/timer/timer_service.h"

namespace sluice {

/// A timer: when, for which key, in which namespace.
template <typename K, typename N>
struct Timer {
  Timestamp timestamp;
  K key;
  N ns;
  bool operator==(const Timer&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const Timer& t) {
    return H::combine(std::move(h), t.timestamp, t.key, t.ns);
  }
};

/// A min-heap of timers with de-duplication. Deletion is lazy: a deleted timer stays in the
/// heap until it reaches the top and is skipped there, which keeps both operations O(log n).
template <typename K, typename N>
class TimerQueue {
 public:
  /// Returns true if the timer was new.
  bool Add(Timer<K, N> t) {
    if (!live_.insert(t).second) return false;
    heap_.push_back(std::move(t));
    std::push_heap(heap_.begin(), heap_.end(), Later);
    return true;
  }
  void Delete(const Timer<K, N>& t) { live_.erase(t); }
  bool empty() const { return live_.empty(); }
  /// The live timers, in no particular order.
  const absl::flat_hash_set<Timer<K, N>>& live() const { return live_; }
  /// Appends the live timers to `out`. From the heap's array when it holds no deleted
  /// timers (one contiguous copy: a checkpoint's synchronous part), else from the set.
  void CopyLiveTo(std::vector<Timer<K, N>>& out) const {
    if (heap_.size() == live_.size()) {
      out.insert(out.end(), heap_.begin(), heap_.end());
    } else {
      out.insert(out.end(), live_.begin(), live_.end());
    }
  }
  size_t size() const { return live_.size(); }

  /// The earliest live timer's time, or kMaxWatermark if none.
  Timestamp PeekTime() {
    DropDeleted();
    return heap_.empty() ? kMaxWatermark : heap_.front().timestamp;
  }
  /// Removes and returns the earliest live timer if its time is <= `time`.
  bool PopUntil(Timestamp time, Timer<K, N>* out) {
    DropDeleted();
    if (heap_.empty() || heap_.front().timestamp > time) return false;
    std::pop_heap(heap_.begin(), heap_.end(), Later);
    *out = std::move(heap_.back());
    heap_.pop_back();
    live_.erase(*out);
    return true;
  }

 private:
  static bool Later(const Timer<K, N>& a, const Timer<K, N>& b) {
    return a.timestamp > b.timestamp;
  }
  void DropDeleted() {
    while (!heap_.empty() && !live_.contains(heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), Later);
      heap_.pop_back();
    }
  }

  std::vector<Timer<K, N>> heap_;
  absl::flat_hash_set<Timer<K, N>> live_;
};

/// The timers of one keyed operator. The operator supplies the current key (and namespace)
/// through `key_context` and receives due timers through its `Triggerable`. Task thread only.
template <typename K, typename N>
class InternalTimerService final : public TimerService, private ProcessingTimeService::Target {
 public:
  /// Called for each due timer with the key already set as the current key.
  class Triggerable {
   public:
    virtual ~Triggerable() = default;
    virtual void OnEventTime(const Timer<K, N>& timer) = 0;
    virtual void OnProcessingTime(const Timer<K, N>& timer) = 0;
  };
  /// Where the current key and namespace come from, and how to make a timer's key current.
  struct KeyContext {
    std::function<const K&()> current_key;
    std::function<void(const K&)> set_current_key;
  };

  InternalTimerService(ProcessingTimeService* processing_time, KeyContext key_context,
                       Triggerable* triggerable)
      : processing_time_(processing_time),
        key_context_(std::move(key_context)),
        triggerable_(triggerable) {}

  void SetCurrentNamespace(N ns) { current_namespace_ = std::move(ns); }

  Timestamp CurrentProcessingTime() const override {
    return processing_time_->CurrentProcessingTime();
  }
  Timestamp CurrentWatermark() const override { return watermark_; }

  void RegisterEventTimeTimer(Timestamp time) override {
    event_timers_.Add({time, key_context_.current_key(), current_namespace_});
  }
  void RegisterProcessingTimeTimer(Timestamp time) override {
    if (processing_timers_.Add({time, key_context_.current_key(), current_namespace_}) &&
        time < next_processing_wakeup_) {
      next_processing_wakeup_ = time;
      processing_time_->ScheduleAt(time, this);
    }
  }
  void DeleteEventTimeTimer(Timestamp time) override {
    event_timers_.Delete({time, key_context_.current_key(), current_namespace_});
  }
  void DeleteProcessingTimeTimer(Timestamp time) override {
    processing_timers_.Delete({time, key_context_.current_key(), current_namespace_});
  }

  /// Fires every event-time timer up to `watermark`, in time order, then records it.
  /// Timers that fire register further timers that are already due: those fire too. A
  /// watermark that does not advance does nothing (a restored task hears its own again).
  void AdvanceWatermark(Timestamp watermark) {
    if (watermark <= watermark_) return;
    watermark_ = watermark;
    FireDue(event_timers_, watermark, &Triggerable::OnEventTime);
  }
  /// Continues from a checkpoint's watermark without firing anything: timers due by then
  /// fired before the checkpoint, and those registered in the past since fire, as they would
  /// have, with the next watermark.
  void RestoreWatermark(Timestamp watermark) { watermark_ = std::max(watermark_, watermark); }

  /// Serializes the timers per key group (event-time, then processing-time ones), for a
  /// snapshot that can be split across subtasks on rescale.
  /// The live timers, copied: the cheap half of a snapshot, on the task thread.
  struct TimersCopy {
    std::vector<Timer<K, N>> event;
    std::vector<Timer<K, N>> processing;
  };
  TimersCopy CopyTimers() const {
    TimersCopy copy;
    event_timers_.CopyLiveTo(copy.event);
    processing_timers_.CopyLiveTo(copy.processing);
    return copy;
  }
  /// Serializes copied timers per key group (any thread).
  static std::map<int, std::string> SerializeByKeyGroup(const TimersCopy& timers,
                                                        int max_parallelism) {
    std::map<int, std::vector<const Timer<K, N>*>> event, processing;
    for (const auto& t : timers.event) event[KeyGroupFor(t.key, max_parallelism)].push_back(&t);
    for (const auto& t : timers.processing) {
      processing[KeyGroupFor(t.key, max_parallelism)].push_back(&t);
    }
    std::map<int, std::string> out;
    auto write = [](ByteWriter& w, const std::vector<const Timer<K, N>*>* list) {
      w.WriteVarint(list ? list->size() : 0);
      if (!list) return;
      for (const Timer<K, N>* t : *list) {
        w.WriteRaw(t->timestamp);
        Serializer<K>::Write(t->key, w);
        Serializer<N>::Write(t->ns, w);
      }
    };
    std::set<int> groups;
    for (const auto& [kg, v] : event) groups.insert(kg);
    for (const auto& [kg, v] : processing) groups.insert(kg);
    for (int kg : groups) {
      ByteWriter w(&out[kg]);
      auto e = event.find(kg);
      auto p = processing.find(kg);
      write(w, e == event.end() ? nullptr : &e->second);
      write(w, p == processing.end() ? nullptr : &p->second);
    }
    return out;
  }
  std::map<int, std::string> SnapshotByKeyGroup(int max_parallelism) const {
    return SerializeByKeyGroup(CopyTimers(), max_parallelism);
  }

  /// Adds the timers of one key group written by SnapshotByKeyGroup.
  absl::Status RestoreKeyGroup(std::string_view bytes) {
    ByteReader r(bytes);
    for (int pass = 0; pass < 2; ++pass) {
      uint64_t n;
      if (!r.ReadVarint(&n) || !r.CheckCount(n, 8))
        return absl::DataLossError("timer snapshot is corrupt");
      for (uint64_t i = 0; i < n; ++i) {
        Timer<K, N> t{};
        if (!r.ReadRaw(&t.timestamp) || !Serializer<K>::Read(r, &t.key) ||
            !Serializer<N>::Read(r, &t.ns)) {
          return absl::DataLossError("timer snapshot is corrupt");
        }
        if (pass == 0) {
          event_timers_.Add(std::move(t));
        } else {
          const Timestamp time = t.timestamp;
          if (processing_timers_.Add(std::move(t)) && time < next_processing_wakeup_) {
            next_processing_wakeup_ = time;
            processing_time_->ScheduleAt(time, this);
          }
        }
      }
    }
    if (!r.AtEnd()) return absl::DataLossError("timer snapshot has trailing bytes");
    return absl::OkStatus();
  }

  size_t NumEventTimeTimers() const { return event_timers_.size(); }
  size_t NumProcessingTimeTimers() const { return processing_timers_.size(); }

 private:
  void OnProcessingTime(Timestamp now) override {
    next_processing_wakeup_ = kMaxWatermark;
    FireDue(processing_timers_, now, &Triggerable::OnProcessingTime);
    Timestamp next = processing_timers_.PeekTime();
    if (next != kMaxWatermark && next < next_processing_wakeup_) {
      next_processing_wakeup_ = next;
      processing_time_->ScheduleAt(next, this);
    }
  }

  /// Fires the timers of `queue` up to `time` in order, each with its key made current.
  void FireDue(TimerQueue<K, N>& queue, Timestamp time,
               void (Triggerable::*fire)(const Timer<K, N>&)) {
    Timer<K, N> t;
    while (queue.PopUntil(time, &t)) {
      key_context_.set_current_key(t.key);
      current_namespace_ = t.ns;
      (triggerable_->*fire)(t);
    }
  }

  ProcessingTimeService* processing_time_;
  KeyContext key_context_;
  Triggerable* triggerable_;
  N current_namespace_{};
  Timestamp watermark_ = kMinWatermark;
  Timestamp next_processing_wakeup_ = kMaxWatermark;
  TimerQueue<K, N> event_timers_;
  TimerQueue<K, N> processing_timers_;
};

}  // namespace sluice
