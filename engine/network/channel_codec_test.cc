#include "sluice/internal/network/channel_codec.h"

#include <string>

#include "gtest/gtest.h"
#include "sluice/graph/stream_graph.h"

namespace sluice::internal {
namespace {

TEST(ChannelCodecTest, EveryEventKindRoundTrips) {
  TypedOutputTypeOps<std::pair<std::string, int64_t>> codec;
  ChannelEvent batch;
  auto b = std::make_unique<Batch<std::pair<std::string, int64_t>>>();
  b->Add({"a", 1}, 100);
  b->Add({std::string(1000, 'x'), -7}, kNoTimestamp);
  batch.batch = std::move(b);
  std::string bytes;
  EncodeChannelEvent(batch, codec, &bytes);
  auto decoded = DecodeChannelEvent(bytes, codec);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->kind, ChannelEvent::Kind::kBatch);
  const auto& got = static_cast<const Batch<std::pair<std::string, int64_t>>&>(*decoded->batch);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].value, (std::pair<std::string, int64_t>{"a", 1}));
  EXPECT_EQ(got[0].timestamp, 100);
  EXPECT_EQ(got[1].value.first.size(), 1000u);
  EXPECT_EQ(got[1].timestamp, kNoTimestamp);

  ChannelEvent wm;
  wm.kind = ChannelEvent::Kind::kWatermark;
  wm.watermark = 12345;
  ChannelEvent idle;
  idle.kind = ChannelEvent::Kind::kIdleStatus;
  idle.idle = true;
  ChannelEvent barrier;
  barrier.kind = ChannelEvent::Kind::kBarrier;
  barrier.checkpoint_id = 42;
  ChannelEvent end;
  end.kind = ChannelEvent::Kind::kEndOfStream;
  for (const ChannelEvent* e : {&wm, &idle, &barrier, &end}) {
    std::string encoded;
    EncodeChannelEvent(*e, codec, &encoded);
    auto d = DecodeChannelEvent(encoded, codec);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->kind, e->kind);
    EXPECT_EQ(d->watermark, e->watermark);
    EXPECT_EQ(d->idle, e->idle);
    EXPECT_EQ(d->checkpoint_id, e->checkpoint_id);
  }
}

TEST(ChannelCodecTest, DamagedBytesAreRefused) {
  TypedOutputTypeOps<std::string> codec;
  ChannelEvent batch;
  auto b = std::make_unique<Batch<std::string>>();
  b->Add("hello", 1);
  batch.batch = std::move(b);
  std::string bytes;
  EncodeChannelEvent(batch, codec, &bytes);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(DecodeChannelEvent(bytes.substr(0, cut), codec).ok()) << "cut at " << cut;
  }
  EXPECT_FALSE(DecodeChannelEvent(bytes + "x", codec).ok());
  EXPECT_EQ(DecodeChannelEvent("\x09", codec).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace sluice::internal
