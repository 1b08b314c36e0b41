#pragma once

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "sluice/core/key_groups.h"
#include "sluice/internal/network/input_gate.h"
#include "sluice/operator/stream_operator.h"

namespace sluice::internal {

/// One channel as its producer sees it: a gate and the channel's index in it.
struct ChannelTarget {
  ChannelSink* gate = nullptr;
  int channel = 0;
};

/// Untyped part of a RecordWriter, for the task: timed flushes and end of stream.
class RecordWriterBase {
 public:
  virtual ~RecordWriterBase() = default;
  /// Sends every partly filled buffer (buffer timeout).
  virtual void FlushAll() = 0;
  /// Flushes and sends end-of-stream on every channel.
  virtual void EndOfStream() = 0;
  /// Flushes and sends checkpoint barrier `id` on every channel, after all records before it.
  virtual void BroadcastBarrier(int64_t id) = 0;
};

struct RecordWriterOptions {
  size_t buffer_records = 1024;  // records per buffer
  int subtask_index = 0;         // of the producer, to spread round-robin starts
  int target_max_parallelism = kDefaultMaxParallelism;  // key groups of the consumer
  Meter* records_sent = nullptr;                        // counts each record pushed, once
  Gauge* output_watermark = nullptr;                    // the watermark sent last, in seconds
};

/// Writes a task's output into the channels of one downstream node. Records are moved
/// into a pending buffer per channel, chosen by `Partitioner`; a full buffer goes into its
/// channel, so queues are touched once per buffer, never per record.
template <typename T, typename Partitioner>
class RecordWriter final : public Output<T>, public RecordWriterBase {
 public:
  RecordWriter(std::vector<ChannelTarget> targets, Partitioner partitioner,
               RecordWriterOptions opts)
      : targets_(std::move(targets)), partitioner_(std::move(partitioner)), opts_(opts) {
    pending_.resize(targets_.size());
    for (auto& p : pending_) p = NewBuffer();
    partitioner_.Init(static_cast<int>(targets_.size()), opts_);
  }

  void Push(Batch<T>& batch) override {
    if (opts_.records_sent != nullptr) opts_.records_sent->Mark(static_cast<int64_t>(batch.size()));
    const int n = static_cast<int>(targets_.size());
    if constexpr (Partitioner::kBroadcast) {
      for (int c = 0; c < n; ++c) {
        for (const auto& r : batch) Append(c, Record<T>{r.value, r.timestamp});
      }
    } else if (n == 1) {
      for (auto& r : batch) Append(0, std::move(r));
    } else {
      for (auto& r : batch) {
        int c = partitioner_.Select(r.value);
        Append(c, std::move(r));
      }
    }
  }

  void PushWatermark(Timestamp watermark) override {
    if (opts_.output_watermark != nullptr) {
      opts_.output_watermark->Set(static_cast<double>(watermark) / 1000);
    }
    FlushAndBroadcast(ChannelEvent::Kind::kWatermark,
                      [&](ChannelEvent& e) { e.watermark = watermark; });
  }

  void PushIdle(bool idle) override {
    FlushAndBroadcast(ChannelEvent::Kind::kIdleStatus, [&](ChannelEvent& e) { e.idle = idle; });
  }

  void FlushAll() override {
    for (size_t c = 0; c < targets_.size(); ++c) Flush(c);
  }

  void BroadcastBarrier(int64_t id) override {
    FlushAndBroadcast(ChannelEvent::Kind::kBarrier, [&](ChannelEvent& e) { e.checkpoint_id = id; });
  }

  void EndOfStream() override {
    FlushAndBroadcast(ChannelEvent::Kind::kEndOfStream, [](ChannelEvent&) {});
  }

 private:
  /// Control events follow every record before them: flush, then one event per channel.
  template <typename Fill>
  void FlushAndBroadcast(ChannelEvent::Kind kind, Fill&& fill) {
    FlushAll();
    for (size_t c = 0; c < targets_.size(); ++c) {
      ChannelEvent e;
      e.kind = kind;
      fill(e);
      Send(c, std::move(e));
    }
  }
  std::unique_ptr<Batch<T>> NewBuffer() const {
    return std::make_unique<Batch<T>>(opts_.buffer_records);
  }
  void Append(int c, Record<T>&& r) {
    auto& buf = *pending_[c];
    buf.Add(std::move(r));
    if (buf.size() >= opts_.buffer_records) Flush(c);
  }
  void Flush(size_t c) {
    if (pending_[c]->empty()) return;
    ChannelEvent e;
    e.kind = ChannelEvent::Kind::kBatch;
    e.batch = std::exchange(pending_[c], NewBuffer());
    Send(c, std::move(e));
  }
  void Send(size_t c, ChannelEvent e) {
    if (!targets_[c].gate->Push(targets_[c].channel, std::move(e))) throw TaskCanceled();
  }

  std::vector<ChannelTarget> targets_;
  Partitioner partitioner_;
  RecordWriterOptions opts_;
  std::vector<std::unique_ptr<Batch<T>>> pending_;
};

/// Partitioners choose a channel per record. `kBroadcast` ones send every record everywhere.
struct ForwardPartitioner {
  static constexpr bool kBroadcast = false;
  void Init(int, const RecordWriterOptions&) {}
  template <typename T>
  int Select(const T&) {
    return 0;
  }
};

struct RebalancePartitioner {
  static constexpr bool kBroadcast = false;
  void Init(int n, const RecordWriterOptions& o) {
    n_ = n;
    next_ = o.subtask_index % n;
  }
  template <typename T>
  int Select(const T&) {
    int c = next_;
    next_ = next_ + 1 == n_ ? 0 : next_ + 1;
    return c;
  }
  int n_ = 1;
  int next_ = 0;
};

struct BroadcastPartitioner {
  static constexpr bool kBroadcast = true;
  void Init(int, const RecordWriterOptions&) {}
  template <typename T>
  int Select(const T&) {
    return 0;
  }
};

/// Sends each record to the subtask owning its key's key group.
template <typename KeySelector>
struct KeyGroupPartitioner {
  static constexpr bool kBroadcast = false;
  explicit KeyGroupPartitioner(KeySelector selector) : selector_(std::move(selector)) {}
  void Init(int n, const RecordWriterOptions& o) {
    n_ = n;
    max_parallelism_ = o.target_max_parallelism;
  }
  template <typename T>
  int Select(const T& value) {
    int kg = KeyGroupFor(selector_(value), max_parallelism_);
    return OperatorIndexForKeyGroup(kg, n_, max_parallelism_);
  }
  KeySelector selector_;
  int max_parallelism_ = kDefaultMaxParallelism;
  int n_ = 1;
};

/// Feeds several outputs inside one chain (an operator with more than one consumer): all
/// but the last get a copy.
template <typename T>
class FanOutOutput final : public Output<T> {
 public:
  explicit FanOutOutput(std::vector<Output<T>*> outputs) : outputs_(std::move(outputs)) {}
  void Push(Batch<T>& batch) override {
    for (size_t i = 0; i + 1 < outputs_.size(); ++i) {
      copy_.clear();
      for (const auto& r : batch) copy_.Add(Record<T>{r.value, r.timestamp});
      outputs_[i]->Push(copy_);
    }
    outputs_.back()->Push(batch);
  }
  void PushWatermark(Timestamp watermark) override {
    for (auto* o : outputs_) o->PushWatermark(watermark);
  }
  void PushIdle(bool idle) override {
    for (auto* o : outputs_) o->PushIdle(idle);
  }

 private:
  std::vector<Output<T>*> outputs_;
  Batch<T> copy_;
};

}  // namespace sluice::internal
