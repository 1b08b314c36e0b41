#include "sluice/core/log_rate_limiter.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(LogRateLimiterTest, OneLinePerKeyAndIntervalWithTheCountOfTheOthers) {
  LogRateLimiter limiter(absl::Seconds(10));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  int64_t suppressed = -1;
  EXPECT_TRUE(limiter.Allow("broker", t0, &suppressed));
  EXPECT_EQ(suppressed, 0);
  // An outage: a line every 100 ms for 9.9 s, all held back.
  int allowed = 0;
  for (int i = 1; i < 100; ++i) {
    allowed += limiter.Allow("broker", t0 + absl::Milliseconds(100 * i), &suppressed);
  }
  EXPECT_EQ(allowed, 0);
  // Another key is not held back by the first.
  EXPECT_TRUE(limiter.Allow("fetch", t0 + absl::Seconds(1), &suppressed));
  EXPECT_EQ(suppressed, 0);
  // The interval passed: the next line goes out, saying how many it stands for.
  EXPECT_TRUE(limiter.Allow("broker", t0 + absl::Seconds(10), &suppressed));
  EXPECT_EQ(suppressed, 99);
  EXPECT_FALSE(limiter.Allow("broker", t0 + absl::Seconds(11), &suppressed));
  EXPECT_TRUE(limiter.Allow("broker", t0 + absl::Seconds(25), &suppressed));
  EXPECT_EQ(suppressed, 1);
  EXPECT_EQ(SuppressedNote(0), "");
  EXPECT_EQ(SuppressedNote(1), " (1 similar line held back)");
  EXPECT_EQ(SuppressedNote(99), " (99 similar lines held back)");
}

}  // namespace
}  // namespace sluice
