#include "sluice/internal/network/input_gate.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace sluice::internal {
namespace {

ChannelEvent BatchOf(int records) {
  auto b = std::make_unique<Batch<int>>();
  for (int i = 0; i < records; ++i) b->Add(i, kNoTimestamp);
  ChannelEvent e;
  e.kind = ChannelEvent::Kind::kBatch;
  e.batch = std::move(b);
  return e;
}

ChannelEvent WatermarkEvent(Timestamp wm) {
  ChannelEvent e;
  e.kind = ChannelEvent::Kind::kWatermark;
  e.watermark = wm;
  return e;
}

TEST(InputGateTest, ProducerBlocksAtCapacityUntilTheConsumerTakes) {
  InputGate gate(1, 2);
  ASSERT_TRUE(gate.Push(0, BatchOf(10)));
  ASSERT_TRUE(gate.Push(0, BatchOf(10)));
  std::atomic<bool> third_pushed{false};
  std::thread producer([&] {
    EXPECT_TRUE(gate.Push(0, BatchOf(10)));
    third_pushed = true;
  });
  // The producer cannot get past a full channel: the gate never holds more than 2 batches.
  int channel;
  ChannelEvent e;
  ASSERT_EQ(gate.Next(absl::InfiniteFuture(), &channel, &e), InputGate::NextResult::kEvent);
  producer.join();
  EXPECT_TRUE(third_pushed);
  EXPECT_EQ(gate.max_queued_records(), 20);
}

TEST(InputGateTest, ControlEventsDoNotBlockOnAFullChannel) {
  InputGate gate(1, 1);
  ASSERT_TRUE(gate.Push(0, BatchOf(1)));
  ASSERT_TRUE(gate.Push(0, WatermarkEvent(5)));  // would deadlock if it counted
  int channel;
  ChannelEvent e;
  ASSERT_EQ(gate.Next(absl::InfiniteFuture(), &channel, &e), InputGate::NextResult::kEvent);
  EXPECT_EQ(e.kind, ChannelEvent::Kind::kBatch);
  ASSERT_EQ(gate.Next(absl::InfiniteFuture(), &channel, &e), InputGate::NextResult::kEvent);
  EXPECT_EQ(e.kind, ChannelEvent::Kind::kWatermark);
  EXPECT_EQ(e.watermark, 5);
}

TEST(InputGateTest, ReportsEachBatchTheConsumerTookButNotControlEvents) {
  InputGate gate(2, 4);
  std::vector<int> consumed;
  gate.SetBatchConsumedCallback([&](int channel) { consumed.push_back(channel); });
  ASSERT_TRUE(gate.Push(1, BatchOf(3)));
  ASSERT_TRUE(gate.Push(0, WatermarkEvent(1)));
  ASSERT_TRUE(gate.Push(0, BatchOf(3)));
  int channel;
  ChannelEvent e;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(gate.Next(absl::InfiniteFuture(), &channel, &e), InputGate::NextResult::kEvent);
  }
  std::sort(consumed.begin(), consumed.end());
  EXPECT_EQ(consumed, (std::vector<int>{0, 1}));
}

TEST(InputGateTest, NextTimesOutWhenEmpty) {
  InputGate gate(2, 1);
  int channel;
  ChannelEvent e;
  EXPECT_EQ(gate.Next(absl::Now() + absl::Milliseconds(1), &channel, &e),
            InputGate::NextResult::kTimeout);
}

TEST(InputGateTest, CancelWakesABlockedProducerAndTheConsumer) {
  InputGate gate(1, 1);
  ASSERT_TRUE(gate.Push(0, BatchOf(1)));
  absl::Notification producer_done;
  std::thread producer([&] {
    EXPECT_FALSE(gate.Push(0, BatchOf(1)));
    producer_done.Notify();
  });
  gate.Cancel();
  producer.join();
  EXPECT_TRUE(producer_done.HasBeenNotified());
  int channel;
  ChannelEvent e;
  EXPECT_EQ(gate.Next(absl::InfiniteFuture(), &channel, &e), InputGate::NextResult::kCanceled);
}

TEST(InputGateTest, ServesChannelsRoundRobin) {
  InputGate gate(3, 4);
  for (int c = 0; c < 3; ++c) {
    ASSERT_TRUE(gate.Push(c, BatchOf(1)));
    ASSERT_TRUE(gate.Push(c, BatchOf(1)));
  }
  std::vector<int> order;
  for (int i = 0; i < 6; ++i) {
    int channel;
    ChannelEvent e;
    ASSERT_EQ(gate.Next(absl::InfiniteFuture(), &channel, &e), InputGate::NextResult::kEvent);
    order.push_back(channel);
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 0, 1, 2}));
}

}  // namespace
}  // namespace sluice::internal
