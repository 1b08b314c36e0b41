// The windowed_stats example job, run as its executable on generated CSV, against the
// brute-force window model; and its answers to bad input.

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/testing/test_util.h"
#include "window_reference.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using testing::RefEvent;
using testing::RefSpec;
using testing::RefWindowKind;
using ::testing::UnorderedElementsAreArray;

std::string Job() { return testing::BuildDir() + "/examples/windowed_stats"; }

std::vector<RefEvent> WriteCsv(const std::string& path, uint32_t seed, int n) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> jitter(-3000, 3000);
  std::uniform_int_distribution<int> key(0, 3);
  std::uniform_int_distribution<int64_t> value(-50, 50);
  std::vector<RefEvent> events;
  std::string csv;
  for (int i = 0; i < n; ++i) {
    RefEvent e{absl::StrCat("sensor-", key(rng)), 1700000000000 + i * 100 + jitter(rng),
               value(rng)};
    csv += absl::StrCat(e.key, ",", e.ts, ",", e.value, "\n");
    events.push_back(e);
  }
  testing::WriteFile(path, csv);
  return events;
}

std::vector<std::string> Lines(const std::vector<testing::RefFiring>& firings) {
  std::vector<std::string> out;
  for (const auto& [k, s, e, c, sum, mn, mx] : firings) {
    out.push_back(absl::StrCat(k, ",", s, ",", e, ",", c, ",", sum, ",", mn, ",", mx));
  }
  return out;
}

struct Variant {
  std::string window_flag;
  RefSpec spec;
};

TEST(WindowedStatsTest, OutputMatchesReferenceForEveryWindowKind) {
  testing::TempDir dir;
  const auto events = WriteCsv(dir.Join("in.csv"), 11, 3000);
  std::vector<Variant> variants;
  {
    RefSpec s;
    s.kind = RefWindowKind::kTumbling;
    s.size = 10000;
    variants.push_back({"tumbling:10s", s});
    s.kind = RefWindowKind::kSliding;
    s.slide = 2500;
    variants.push_back({"sliding:10s:2500ms", s});
    RefSpec g;
    g.kind = RefWindowKind::kSession;
    g.gap = 500;
    variants.push_back({"session:500ms", g});
  }
  int run = 0;
  size_t total_late = 0;
  for (auto v : variants) {
    for (auto [bound, lateness] : {std::pair<int64_t, int64_t>{1000, 0}, {1000, 2000}}) {
      v.spec.out_of_orderness = bound;
      v.spec.allowed_lateness = lateness;
      const auto expected = testing::RunReference(events, v.spec);
      const std::string out = dir.Join(absl::StrCat("out", run));
      const std::string late = dir.Join(absl::StrCat("late", run++));
      auto r = testing::RunCommand(absl::StrCat(
          Job(), " --input=", dir.Join("in.csv"), " --output=", out, " --window=", v.window_flag,
          " --out-of-orderness=", bound, "ms --allowed-lateness=", lateness,
          "ms --late-output=", late, " --parallelism=2"));
      ASSERT_EQ(r.exit_code, 0) << r.output;
      SCOPED_TRACE(v.window_flag + " lateness " + std::to_string(lateness));
      EXPECT_THAT(testing::ReadPartFileLines(out),
                  UnorderedElementsAreArray(Lines(expected.firings)));
      std::vector<std::string> late_lines;
      for (const auto& e : expected.late)
        late_lines.push_back(absl::StrCat(e.key, ",", e.ts, ",", e.value));
      EXPECT_THAT(testing::ReadPartFileLines(late), UnorderedElementsAreArray(late_lines));
      total_late += late_lines.size();
    }
  }
  EXPECT_GT(total_late, 0u) << "the input must exercise late records";
}

TEST(WindowedStatsTest, MalformedLineFailsWithItsPosition) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("in.csv"), "a,1000,5\nb,notanumber,3\n");
  auto r =
      testing::RunCommand(absl::StrCat(Job(), " --input=", dir.Join("in.csv"),
                                       " --output=", dir.Join("out"), " --window=tumbling:1s"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output,
              HasSubstr("in.csv:2: expected key,timestamp_ms,value but got 'b,notanumber,3'"));
  EXPECT_TRUE(testing::ReadPartFileLines(dir.Join("out")).empty());
}

TEST(WindowedStatsTest, BadFlagsAreRefused) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("in.csv"), "a,1000,5\n");
  const std::string base =
      absl::StrCat(Job(), " --input=", dir.Join("in.csv"), " --output=", dir.Join("o"));
  auto bad_window = testing::RunCommand(base + " --window=hopping:1s");
  EXPECT_EQ(bad_window.exit_code, 2);
  EXPECT_THAT(bad_window.output,
              HasSubstr("is not tumbling:SIZE, sliding:SIZE:SLIDE or session:GAP"));
  auto bad_duration = testing::RunCommand(base + " --window=tumbling:ten");
  EXPECT_EQ(bad_duration.exit_code, 2);
  EXPECT_THAT(bad_duration.output, HasSubstr("'ten' is not a duration"));
  auto zero = testing::RunCommand(base + " --window=tumbling:0s");
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_THAT(zero.output, HasSubstr("tumbling window size must be > 0"));
}

}  // namespace
}  // namespace sluice
