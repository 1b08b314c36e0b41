#include "sluice/runtime/restart_strategy.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/job/job_args.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

/// A clock the test moves.
struct TestClock {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  RestartStrategy::Clock Fn() {
    return [this] { return now; };
  }
};

JobArgs Args(std::vector<std::string> args) { return JobArgs::Parse(args); }

TEST(RestartStrategyTest, NoneNeverRestarts) {
  RestartStrategy s(RestartStrategyConfig::None());
  EXPECT_EQ(s.OnFailure("boom"), std::nullopt);
  EXPECT_EQ(s.restarts(), 0);
}

TEST(RestartStrategyTest, FixedDelayUntilTheAttemptsAreUsedUp) {
  RestartStrategy s(RestartStrategyConfig::FixedDelay(2, absl::Seconds(4)));
  EXPECT_THAT(s.OnFailure("a"), Optional(absl::Seconds(4)));
  EXPECT_THAT(s.OnFailure("b"), Optional(absl::Seconds(4)));
  EXPECT_EQ(s.OnFailure("c"), std::nullopt);
  EXPECT_EQ(s.restarts(), 2);
  EXPECT_EQ(RestartStrategy(RestartStrategyConfig::FixedDelay(0, absl::Seconds(1))).OnFailure("x"),
            std::nullopt);
}

TEST(RestartStrategyTest, ExponentialDelayGrowsToItsMaximumAndResetsAfterAStableRun) {
  TestClock clock;
  RestartStrategy s(
      RestartStrategyConfig::ExponentialDelay(
          {.initial = absl::Milliseconds(100), .max = absl::Seconds(1), .multiplier = 3},
          /*reset_after=*/absl::Minutes(5)),
      clock.Fn());
  // Independent model: min(100 ms * 3^n, 1 s) for failures that come quickly.
  for (absl::Duration expected : {absl::Milliseconds(100), absl::Milliseconds(300),
                                  absl::Milliseconds(900), absl::Seconds(1), absl::Seconds(1)}) {
    const auto delay = s.OnFailure("quick");
    ASSERT_TRUE(delay.has_value());
    EXPECT_EQ(*delay, expected);
    clock.now += *delay + absl::Seconds(1);  // the next run fails a second after it started
  }
  // A run that lasted the reset period: the delays start again from the first.
  clock.now += absl::Minutes(5);
  EXPECT_THAT(s.OnFailure("after a long run"), Optional(absl::Milliseconds(100)));
  EXPECT_EQ(s.restarts(), 6);
}

TEST(RestartStrategyTest, ExponentialDelayJitterStaysWithinItsShare) {
  TestClock clock;
  RestartStrategy s(
      RestartStrategyConfig::ExponentialDelay(
          {.initial = absl::Seconds(1), .max = absl::Seconds(1), .multiplier = 2, .jitter = 0.2}),
      clock.Fn(), /*seed=*/7);
  bool varied = false;
  for (int i = 0; i < 50; ++i) {
    const auto delay = s.OnFailure("x");
    ASSERT_TRUE(delay.has_value());
    EXPECT_GE(*delay, absl::Milliseconds(800));
    EXPECT_LE(*delay, absl::Seconds(1));
    varied = varied || *delay != absl::Seconds(1);
  }
  EXPECT_TRUE(varied);
}

TEST(RestartStrategyTest, ExponentialDelayGivesUpAfterItsAttemptsInOneSequence) {
  TestClock clock;
  RestartStrategy s(RestartStrategyConfig::ExponentialDelay({.initial = absl::Milliseconds(10)},
                                                            absl::Minutes(1), /*attempts=*/2),
                    clock.Fn());
  EXPECT_TRUE(s.OnFailure("1").has_value());
  EXPECT_TRUE(s.OnFailure("2").has_value());
  EXPECT_EQ(s.OnFailure("3"), std::nullopt);
}

TEST(RestartStrategyTest, FailureRateGivesUpAtTooManyFailuresWithinTheInterval) {
  TestClock clock;
  RestartStrategy s(RestartStrategyConfig::FailureRate(2, absl::Minutes(1), absl::Seconds(3)),
                    clock.Fn());
  EXPECT_THAT(s.OnFailure("1"), Optional(absl::Seconds(3)));
  clock.now += absl::Seconds(40);
  EXPECT_THAT(s.OnFailure("2"), Optional(absl::Seconds(3)));
  clock.now += absl::Seconds(30);  // the first failure is now 70 s old: out of the interval
  EXPECT_THAT(s.OnFailure("3"), Optional(absl::Seconds(3)));
  clock.now += absl::Seconds(10);  // 2 and 3 are 40 s and 10 s old: a third within 1 min
  EXPECT_EQ(s.OnFailure("4"), std::nullopt);
  EXPECT_EQ(s.restarts(), 3);
}

TEST(RestartStrategyTest, GivingUpTellsTheHistoryOfFailures) {
  TestClock clock;
  RestartStrategy s(RestartStrategyConfig::FixedDelay(1, absl::Milliseconds(5)), clock.Fn());
  s.OnFailure("disk full on tm-1");
  clock.now += absl::Seconds(2);
  EXPECT_EQ(s.OnFailure("operator 'Sink' failed"), std::nullopt);
  const std::string message = s.GaveUpMessage();
  EXPECT_THAT(message, HasSubstr("fixed-delay (--restart-attempts=1 --restart-delay=5ms) gave up "
                                 "after 1 restart"));
  EXPECT_THAT(message, HasSubstr("1. 2027-01-15 08:00:00.000: disk full on tm-1; "
                                 "2. 2027-01-15 08:00:02.000: operator 'Sink' failed"));
  ASSERT_EQ(s.failures().size(), 2u);
  EXPECT_EQ(s.FailureMessage("last"), "last (" + message + ")");
  EXPECT_EQ(RestartStrategy(RestartStrategyConfig::None()).FailureMessage("last"), "last")
      << "a job that never restarts fails with its error alone";
}

TEST(RestartStrategyTest, ACheckpointedJobRestartsWithExponentialDelaysUnlessItNamesAStrategy) {
  JobConfig config;
  EXPECT_EQ(RestartStrategy::ConfigOf(config).kind, RestartStrategyKind::kNone);
  config.checkpoint_interval = absl::Seconds(1);
  const RestartStrategyConfig checkpointed = RestartStrategy::ConfigOf(config);
  EXPECT_EQ(checkpointed.kind, RestartStrategyKind::kExponentialDelay);
  EXPECT_EQ(checkpointed.attempts, RestartStrategyConfig::kUnlimited);
  // The cluster's default comes before the built-in one; the job's own before both.
  const auto cluster = RestartStrategyConfig::FixedDelay(4, absl::Seconds(1));
  EXPECT_EQ(RestartStrategy::ConfigOf(config, cluster), cluster);
  config.restart_strategy = RestartStrategyConfig::None();
  EXPECT_EQ(RestartStrategy::ConfigOf(config, cluster).kind, RestartStrategyKind::kNone);
}

TEST(RestartStrategyTest, TheChaosOptionRaisesTheAttemptsToItsCrashes) {
  JobConfig config;
  config.restart_strategy = RestartStrategyConfig::FixedDelay(1, absl::Milliseconds(5));
  EXPECT_EQ(RestartStrategy::ConfigOf(config).attempts, 1);
  config.chaos_kill_every = absl::Milliseconds(100);
  config.chaos_max_failures = 3;
  EXPECT_EQ(RestartStrategy::ConfigOf(config),
            RestartStrategyConfig::FixedDelay(3, absl::Milliseconds(5)));
  config.restart_strategy =
      RestartStrategyConfig::FailureRate(1, absl::Minutes(1), absl::Seconds(1));
  EXPECT_EQ(RestartStrategy::ConfigOf(config).max_failures, 3);
  config.restart_strategy.reset();  // none named: a fixed delay, not growing delays
  config.checkpoint_interval = absl::Seconds(1);
  EXPECT_EQ(RestartStrategy::ConfigOf(config).kind, RestartStrategyKind::kFixedDelay);
  config.chaos_max_failures = 0;  // the option off
  EXPECT_EQ(RestartStrategy::ConfigOf(config).kind, RestartStrategyKind::kExponentialDelay);
}

TEST(RestartStrategyTest, FlagsNameTheStrategyAndItsParameters) {
  EXPECT_EQ(ReadRestartStrategy(Args({})), std::nullopt);
  EXPECT_EQ(ReadRestartStrategy(Args({"--restart-attempts=3", "--restart-delay=2s"})),
            RestartStrategyConfig::FixedDelay(3, absl::Seconds(2)));
  EXPECT_EQ(ReadRestartStrategy(Args({"--restart-strategy=none"})), RestartStrategyConfig::None());
  EXPECT_EQ(ReadRestartStrategy(
                Args({"--restart-strategy=exponential-delay", "--restart-initial-delay=50ms",
                      "--restart-max-delay=5s", "--restart-multiplier=1.5", "--restart-jitter=0",
                      "--restart-reset-after=1h", "--restart-attempts=9"})),
            RestartStrategyConfig::ExponentialDelay({.initial = absl::Milliseconds(50),
                                                     .max = absl::Seconds(5),
                                                     .multiplier = 1.5,
                                                     .jitter = 0},
                                                    absl::Hours(1), 9));
  EXPECT_EQ(ReadRestartStrategy(
                Args({"--restart-strategy=exponential-delay", "--restart-attempts=unlimited"}))
                ->attempts,
            RestartStrategyConfig::kUnlimited)
      << "what ToString() prints reads back";
  EXPECT_EQ(ReadRestartStrategy(Args({"--restart-strategy=failure-rate", "--restart-max-failures=5",
                                      "--restart-failure-interval=10m", "--restart-delay=1s"})),
            RestartStrategyConfig::FailureRate(5, absl::Minutes(10), absl::Seconds(1)));
}

TEST(RestartStrategyTest, BadRestartFlagsAreNamed) {
  auto error = [](std::vector<std::string> args) {
    try {
      ReadRestartStrategy(Args(std::move(args)));
    } catch (const JobArgumentError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error({"--restart-strategy=sometimes"}),
              HasSubstr("--restart-strategy must be none, fixed-delay, exponential-delay or "
                        "failure-rate, got 'sometimes'"));
  EXPECT_THAT(error({"--restart-strategy=fixed-delay", "--restart-multiplier=2"}),
              HasSubstr("--restart-multiplier is not a parameter of "
                        "--restart-strategy=fixed-delay"));
  EXPECT_THAT(error({"--restart-max-failures=2"}),
              HasSubstr("--restart-max-failures needs --restart-strategy=failure-rate"));
  EXPECT_THAT(error({"--restart-strategy=exponential-delay", "--restart-jitter=2"}),
              HasSubstr("--restart-jitter must be a number from 0 to 1, got '2'"));
  EXPECT_THAT(error({"--restart-strategy=exponential-delay", "--restart-initial-delay=10s",
                     "--restart-max-delay=1s"}),
              HasSubstr("--restart-max-delay (1s) is below --restart-initial-delay (10s)"));
  EXPECT_THAT(error({"--restart-attempts=-1"}),
              HasSubstr("--restart-attempts must be an integer >= 0"));
}

}  // namespace
}  // namespace sluice
