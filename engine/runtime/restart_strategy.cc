#include "sluice/runtime/restart_strategy.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/job/job_args.h"

namespace sluice {

namespace {

std::string Flag(const char* name, const std::string& value) {
  return absl::StrCat("--restart-", name, "=", value);
}
std::string Flag(const char* name, absl::Duration value) {
  return Flag(name, absl::FormatDuration(value));
}

// Which strategy each parameter belongs to.
struct Parameter {
  const char* name;  // after "restart-"
  std::vector<RestartStrategyKind> kinds;
};
const std::vector<Parameter>& Parameters() {
  using K = RestartStrategyKind;
  static const std::vector<Parameter> parameters = {
      {"attempts", {K::kFixedDelay, K::kExponentialDelay}},
      {"delay", {K::kFixedDelay, K::kFailureRate}},
      {"initial-delay", {K::kExponentialDelay}},
      {"max-delay", {K::kExponentialDelay}},
      {"multiplier", {K::kExponentialDelay}},
      {"jitter", {K::kExponentialDelay}},
      {"reset-after", {K::kExponentialDelay}},
      {"max-failures", {K::kFailureRate}},
      {"failure-interval", {K::kFailureRate}},
  };
  return parameters;
}

int PositiveInt(const JobArgs& args, const std::string& name, int min) {
  const int64_t v = args.GetInt(name, 0);
  if (v < min || v > 1'000'000'000) {
    throw JobArgumentError(absl::StrCat("--", name, " must be an integer >= ", min));
  }
  return static_cast<int>(v);
}

double Number(const JobArgs& args, const std::string& name, double min, double max) {
  const std::string text = args.GetString(name);
  double v = 0;
  if (!absl::SimpleAtod(text, &v) || v < min || v > max) {
    throw JobArgumentError(absl::StrCat("--", name, " must be a number from ", min, " to ", max,
                                        ", got '", text, "'"));
  }
  return v;
}

}  // namespace

const char* RestartStrategyKindName(RestartStrategyKind kind) {
  switch (kind) {
    case RestartStrategyKind::kNone:
      return "none";
    case RestartStrategyKind::kFixedDelay:
      return "fixed-delay";
    case RestartStrategyKind::kExponentialDelay:
      return "exponential-delay";
    case RestartStrategyKind::kFailureRate:
      return "failure-rate";
  }
  return "?";
}

RestartStrategyConfig RestartStrategyConfig::FixedDelay(int attempts, absl::Duration delay) {
  RestartStrategyConfig c;
  c.kind = RestartStrategyKind::kFixedDelay;
  c.attempts = attempts;
  c.delay = delay;
  return c;
}

RestartStrategyConfig RestartStrategyConfig::ExponentialDelay(BackoffPolicy backoff,
                                                              absl::Duration reset_after,
                                                              int attempts) {
  RestartStrategyConfig c;
  c.kind = RestartStrategyKind::kExponentialDelay;
  c.backoff = backoff;
  c.reset_after = reset_after;
  c.attempts = attempts;
  return c;
}

RestartStrategyConfig RestartStrategyConfig::FailureRate(int max_failures, absl::Duration interval,
                                                         absl::Duration delay) {
  RestartStrategyConfig c;
  c.kind = RestartStrategyKind::kFailureRate;
  c.max_failures = max_failures;
  c.failure_interval = interval;
  c.delay = delay;
  return c;
}

std::string RestartStrategyConfig::ToString() const {
  std::vector<std::string> flags;
  const std::string attempts_text =
      attempts == kUnlimited ? std::string("unlimited") : absl::StrCat(attempts);
  switch (kind) {
    case RestartStrategyKind::kNone:
      return "none";
    case RestartStrategyKind::kFixedDelay:
      flags = {Flag("attempts", attempts_text), Flag("delay", delay)};
      break;
    case RestartStrategyKind::kExponentialDelay:
      flags = {Flag("initial-delay", backoff.initial),
               Flag("max-delay", backoff.max),
               Flag("multiplier", absl::StrCat(backoff.multiplier)),
               Flag("jitter", absl::StrCat(backoff.jitter)),
               Flag("reset-after", reset_after),
               Flag("attempts", attempts_text)};
      break;
    case RestartStrategyKind::kFailureRate:
      flags = {Flag("max-failures", absl::StrCat(max_failures)),
               Flag("failure-interval", failure_interval), Flag("delay", delay)};
      break;
  }
  return absl::StrCat(RestartStrategyKindName(kind), " (", absl::StrJoin(flags, " "), ")");
}

const std::vector<std::string>& RestartStrategyFlagNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out = {"restart-strategy"};
    for (const Parameter& p : Parameters()) out.push_back(absl::StrCat("restart-", p.name));
    return out;
  }();
  return names;
}

std::optional<RestartStrategyConfig> ReadRestartStrategy(const JobArgs& args) {
  using K = RestartStrategyKind;
  std::optional<K> kind;
  if (args.Has("restart-strategy")) {
    const std::string name = args.GetString("restart-strategy");
    for (K k : {K::kNone, K::kFixedDelay, K::kExponentialDelay, K::kFailureRate}) {
      if (name == RestartStrategyKindName(k)) kind = k;
    }
    if (!kind) {
      throw JobArgumentError(absl::StrCat(
          "--restart-strategy must be none, fixed-delay, exponential-delay or failure-rate, got '",
          name, "'"));
    }
  } else if (args.Has("restart-attempts")) {
    kind = K::kFixedDelay;  // as before strategies had names
  }
  for (const Parameter& p : Parameters()) {
    const std::string flag = absl::StrCat("restart-", p.name);
    if (!args.Has(flag)) continue;
    if (!kind) {
      throw JobArgumentError(absl::StrCat(
          "--", flag, " needs --restart-strategy=", RestartStrategyKindName(p.kinds.front())));
    }
    if (std::find(p.kinds.begin(), p.kinds.end(), *kind) == p.kinds.end()) {
      throw JobArgumentError(absl::StrCat("--", flag, " is not a parameter of --restart-strategy=",
                                          RestartStrategyKindName(*kind)));
    }
  }
  if (!kind) return std::nullopt;
  RestartStrategyConfig c;
  c.kind = *kind;
  if (*kind == K::kFixedDelay) c.attempts = 1;  // fixed-delay without attempts: one restart
  if (args.Has("restart-attempts")) {
    c.attempts = args.GetString("restart-attempts") == "unlimited"
                     ? RestartStrategyConfig::kUnlimited
                     : PositiveInt(args, "restart-attempts", 0);
  }
  if (args.Has("restart-delay")) c.delay = args.GetDuration("restart-delay", /*allow_zero=*/false);
  if (args.Has("restart-initial-delay")) {
    c.backoff.initial = args.GetDuration("restart-initial-delay", /*allow_zero=*/false);
  }
  if (args.Has("restart-max-delay")) {
    c.backoff.max = args.GetDuration("restart-max-delay", /*allow_zero=*/false);
  }
  if (c.backoff.max < c.backoff.initial) {
    throw JobArgumentError(absl::StrCat(
        "--restart-max-delay (", absl::FormatDuration(c.backoff.max),
        ") is below --restart-initial-delay (", absl::FormatDuration(c.backoff.initial), ")"));
  }
  if (args.Has("restart-multiplier")) {
    c.backoff.multiplier = Number(args, "restart-multiplier", 1, 100);
  }
  if (args.Has("restart-jitter")) c.backoff.jitter = Number(args, "restart-jitter", 0, 1);
  if (args.Has("restart-reset-after")) {
    c.reset_after = args.GetDuration("restart-reset-after", /*allow_zero=*/false);
  }
  if (args.Has("restart-max-failures")) {
    c.max_failures = PositiveInt(args, "restart-max-failures", 1);
  }
  if (args.Has("restart-failure-interval")) {
    c.failure_interval = args.GetDuration("restart-failure-interval", /*allow_zero=*/false);
  }
  return c;
}

RestartStrategy::RestartStrategy(RestartStrategyConfig config, Clock now, uint64_t seed)
    : config_(config), now_(std::move(now)), backoff_(config.backoff, seed) {}

RestartStrategyConfig RestartStrategy::ConfigOf(
    const JobConfig& config, const std::optional<RestartStrategyConfig>& cluster_default) {
  const std::optional<RestartStrategyConfig> named =
      config.restart_strategy ? config.restart_strategy : cluster_default;
  RestartStrategyConfig c;
  if (named) {
    c = *named;
  } else if (config.chaos_enabled()) {
    c = RestartStrategyConfig::FixedDelay(config.chaos_max_failures, absl::Milliseconds(100));
  } else if (config.checkpoint_interval > absl::ZeroDuration()) {
    c = RestartStrategyConfig::ExponentialDelay(RestartStrategyConfig().backoff);
  }
  if (config.chaos_enabled()) {
    switch (c.kind) {
      case RestartStrategyKind::kNone:
        c = RestartStrategyConfig::FixedDelay(config.chaos_max_failures, c.delay);
        break;
      case RestartStrategyKind::kFixedDelay:
      case RestartStrategyKind::kExponentialDelay:
        c.attempts = std::max(c.attempts, config.chaos_max_failures);
        break;
      case RestartStrategyKind::kFailureRate:
        c.max_failures = std::max(c.max_failures, config.chaos_max_failures);
        break;
    }
  }
  return c;
}

std::optional<absl::Duration> RestartStrategy::OnFailure(std::string why, std::string where) {
  const absl::Time now = now_();
  failures_.push_back({now, std::move(why), std::move(where)});
  if (failures_.size() > kHistory) failures_.pop_front();
  std::optional<absl::Duration> delay;
  switch (config_.kind) {
    case RestartStrategyKind::kNone:
      break;
    case RestartStrategyKind::kFixedDelay:
      if (restarts_ < config_.attempts) delay = config_.delay;
      break;
    case RestartStrategyKind::kExponentialDelay:
      // A run that went long enough without failing: the failures before it are history.
      if (now - restarted_at_ >= config_.reset_after) {
        backoff_.Reset();
        restarts_in_sequence_ = 0;
      }
      if (restarts_in_sequence_ < config_.attempts) {
        delay = backoff_.Next();
        ++restarts_in_sequence_;
      }
      break;
    case RestartStrategyKind::kFailureRate:
      recent_failures_.push_back(now);
      while (!recent_failures_.empty() &&
             now - recent_failures_.front() >= config_.failure_interval) {
        recent_failures_.pop_front();
      }
      if (static_cast<int>(recent_failures_.size()) <= config_.max_failures) delay = config_.delay;
      break;
  }
  if (delay) {
    ++restarts_;
    restarted_at_ = now + *delay;
  }
  return delay;
}

std::string RestartStrategy::GaveUpMessage() const {
  std::vector<std::string> lines;
  int n = 0;
  for (const Failure& f : failures_) {
    lines.push_back(absl::StrCat(++n, ". ",
                                 absl::FormatTime("%Y-%m-%d %H:%M:%E3S", f.at, absl::UTCTimeZone()),
                                 ": ", f.why));
  }
  return absl::StrCat("restart strategy ", config_.ToString(), " gave up after ", restarts_,
                      restarts_ == 1 ? " restart" : " restarts", "; failures, oldest first",
                      failures_.size() == kHistory ? " (the newest only)" : "", ": ",
                      absl::StrJoin(lines, "; "));
}

}  // namespace sluice
