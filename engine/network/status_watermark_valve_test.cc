#include "sluice/internal/network/status_watermark_valve.h"

#include "gtest/gtest.h"

namespace sluice::internal {
namespace {

TEST(StatusWatermarkValveTest, OutputIsTheMinimumAndOnlyRises) {
  StatusWatermarkValve v(2);
  EXPECT_FALSE(v.OnWatermark(0, 10).watermark.has_value());  // channel 1 still at min
  EXPECT_EQ(v.OnWatermark(1, 5).watermark, 5);
  EXPECT_EQ(v.OnWatermark(1, 20).watermark, 10);
  EXPECT_FALSE(v.OnWatermark(1, 15).watermark.has_value());  // a channel never goes back
  EXPECT_EQ(v.current_watermark(), 10);
}

TEST(StatusWatermarkValveTest, IdleChannelStopsHoldingBack) {
  StatusWatermarkValve v(2);
  v.OnWatermark(0, 100);
  v.OnWatermark(1, 3);
  EXPECT_EQ(v.current_watermark(), 3);
  auto out = v.OnIdleStatus(1, true);
  EXPECT_EQ(out.watermark, 100);
  EXPECT_FALSE(out.idle_after.has_value());  // channel 0 is still active
  // Back to active with an old watermark: it does not pull the output back, and takes
  // part again once it caught up.
  EXPECT_FALSE(v.OnIdleStatus(1, false).watermark.has_value());
  EXPECT_FALSE(v.OnWatermark(1, 50).watermark.has_value());
  EXPECT_EQ(v.OnWatermark(0, 200).watermark, 200);  // channel 1 (at 50) is not aligned yet
  EXPECT_FALSE(v.OnWatermark(1, 250).watermark.has_value());  // aligned now, not the minimum
  EXPECT_EQ(v.OnWatermark(0, 300).watermark, 250);            // and now it holds the output back
}

TEST(StatusWatermarkValveTest, AllIdleMakesTheOutputIdleAndActiveAgain) {
  StatusWatermarkValve v(2);
  v.OnWatermark(0, 7);
  v.OnWatermark(1, 9);
  auto first = v.OnIdleStatus(0, true);
  EXPECT_EQ(first.watermark, 9);  // channel 0 no longer holds back
  EXPECT_FALSE(first.idle_after.has_value());
  auto out = v.OnIdleStatus(1, true);
  EXPECT_FALSE(out.watermark.has_value());
  EXPECT_EQ(out.idle_after, true);
  EXPECT_TRUE(v.idle());
  auto back = v.OnIdleStatus(0, false);
  EXPECT_EQ(back.idle_before, false);
  EXPECT_FALSE(v.idle());
}

TEST(StatusWatermarkValveTest, EndedChannelIsExcluded) {
  StatusWatermarkValve v(2);
  v.OnWatermark(0, 40);
  EXPECT_EQ(v.OnEndOfStream(1).watermark, 40);
  EXPECT_EQ(v.OnWatermark(0, 41).watermark, 41);
}

}  // namespace
}  // namespace sluice::internal
