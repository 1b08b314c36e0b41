#include "sluice/core/backoff.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(BackoffTest, DelaysGrowByTheMultiplierUpToTheMaximum) {
  Backoff b({.initial = absl::Milliseconds(100), .max = absl::Seconds(1), .multiplier = 3});
  EXPECT_EQ(b.Next(), absl::Milliseconds(100));
  EXPECT_EQ(b.Next(), absl::Milliseconds(300));
  EXPECT_EQ(b.Next(), absl::Milliseconds(900));
  EXPECT_EQ(b.Next(), absl::Seconds(1));
  for (int i = 0; i < 100; ++i) b.Next();
  EXPECT_EQ(b.Next(), absl::Seconds(1)) << "no overflow after many retries";
  EXPECT_EQ(b.retries(), 105);
  b.Reset();
  EXPECT_EQ(b.Next(), absl::Milliseconds(100));
}

TEST(BackoffTest, JitterStaysWithinItsShareAndTheMaximum) {
  Backoff b({.initial = absl::Seconds(1), .max = absl::Seconds(3), .multiplier = 2, .jitter = 0.5},
            /*seed=*/42);
  bool varied = false;
  absl::Duration first = b.Next();
  EXPECT_GE(first, absl::Milliseconds(500));
  EXPECT_LE(first, absl::Milliseconds(1500));
  for (int i = 0; i < 50; ++i) {
    const absl::Duration d = b.Next();
    EXPECT_LE(d, absl::Seconds(3));
    EXPECT_GE(d, absl::Milliseconds(1000)) << "from the second retry on: 2 s * 0.5 at least";
    varied = varied || d != absl::Seconds(3);
  }
  EXPECT_TRUE(varied) << "jitter that never changes a delay";
}

}  // namespace
}  // namespace sluice
