#include "sluice/core/backoff.h"

#include "gtest/gtest.h"
#include "sluice/runtime/restart_strategy.h"

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

TEST(RestartStrategyTest, FixedDelayUntilTheAttemptsAreUsedUp) {
  RestartStrategy s(2, absl::Seconds(4));
  EXPECT_EQ(s.OnFailure(), absl::Seconds(4));
  EXPECT_EQ(s.OnFailure(), absl::Seconds(4));
  EXPECT_EQ(s.OnFailure(), std::nullopt);
  EXPECT_EQ(s.restarts(), 2);
  EXPECT_EQ(RestartStrategy(0, absl::Seconds(1)).OnFailure(), std::nullopt);
}

TEST(RestartStrategyTest, TheChaosOptionRaisesTheAttemptsToItsCrashes) {
  JobConfig config;
  config.restart_attempts = 1;
  config.restart_delay = absl::Milliseconds(5);
  EXPECT_EQ(RestartStrategy::Of(config).attempts(), 1);
  config.chaos_kill_every = absl::Milliseconds(100);
  config.chaos_max_failures = 3;
  RestartStrategy chaos = RestartStrategy::Of(config);
  EXPECT_EQ(chaos.attempts(), 3);
  EXPECT_EQ(chaos.OnFailure(), absl::Milliseconds(5));
  config.chaos_max_failures = 0;  // the option off
  EXPECT_EQ(RestartStrategy::Of(config).attempts(), 1);
}

}  // namespace
}  // namespace sluice
