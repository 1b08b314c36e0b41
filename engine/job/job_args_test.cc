#include "sluice/job/job_args.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "sluice/job/flag_spelling.h"

namespace sluice {
namespace {

TEST(JobArgsTest, ParsesNamedFlagsAndPositionals) {
  JobArgs a = JobArgs::Parse({"--input=/x", "--verbose", "pos", "--n=5", "--empty="});
  EXPECT_EQ(a.GetString("input"), "/x");
  EXPECT_TRUE(a.GetBool("verbose", false));
  EXPECT_EQ(a.GetInt("n", 0), 5);
  EXPECT_EQ(a.GetString("empty"), "");
  EXPECT_EQ(a.positional(), std::vector<std::string>{"pos"});
  EXPECT_EQ(a.GetString("missing", "dflt"), "dflt");
}

TEST(JobArgsTest, ErrorsNameTheArgument) {
  JobArgs a = JobArgs::Parse({"--n=five"});
  try {
    a.GetInt("n", 0);
    FAIL();
  } catch (const JobArgumentError& e) {
    EXPECT_STREQ(e.what(), "argument --n must be an integer, got 'five'");
  }
  try {
    a.GetString("input");
    FAIL();
  } catch (const JobArgumentError& e) {
    EXPECT_STREQ(e.what(), "missing required argument --input");
  }
  EXPECT_THROW(JobArgs::Parse({"--=x"}), JobArgumentError);
}

TEST(JobArgsTest, ReportsArgumentsNeverRead) {
  JobArgs a = JobArgs::Parse({"--input=x", "--ouptut=typo"});
  a.GetString("input");
  a.GetString("output", "");
  EXPECT_EQ(a.Unused(), std::vector<std::string>{"ouptut"});
}

TEST(JobArgsTest, TheUnderscoreSpellingIsAnAliasOfTheDashedName) {
  JobArgs a = JobArgs::Parse({"--checkpoint_interval=1s", "--state-backend=rocksdb", "--a_b"});
  EXPECT_EQ(a.GetString("checkpoint-interval"), "1s");
  EXPECT_EQ(a.GetString("state-backend"), "rocksdb");
  EXPECT_TRUE(a.GetBool("a-b", false));
  EXPECT_TRUE(a.Unused().empty());
  // Values keep their underscores.
  EXPECT_EQ(JobArgs::Parse({"--input=/x_y/a_b"}).GetString("input"), "/x_y/a_b");
}

TEST(JobArgsTest, DurationsAreParsedAndBadOnesNamed) {
  JobArgs a = JobArgs::Parse({"--d=1h30m", "--zero=0s", "--neg=-5s", "--word=soon"});
  EXPECT_EQ(a.GetDuration("d"), absl::Minutes(90));
  EXPECT_EQ(a.GetDuration("zero"), absl::ZeroDuration());
  EXPECT_EQ(a.GetDuration("missing", absl::Seconds(7)), absl::Seconds(7));
  try {
    a.GetDuration("zero", /*allow_zero=*/false);
    FAIL();
  } catch (const JobArgumentError& e) {
    EXPECT_STREQ(e.what(), "--zero: '0s' is not a positive duration (e.g. 500ms, 10s, 5m)");
  }
  EXPECT_THROW(a.GetDuration("neg"), JobArgumentError);
  try {
    a.GetDuration("word", absl::Seconds(1));
    FAIL();
  } catch (const JobArgumentError& e) {
    EXPECT_STREQ(e.what(), "--word: 'soon' is not a duration (e.g. 500ms, 10s, 5m)");
  }
  EXPECT_THROW(a.GetDuration("missing"), JobArgumentError);
}

TEST(FlagSpellingTest, OnlyTheNameIsRespelled) {
  EXPECT_EQ(DashedFlag("--blob_dir=/a_b"), "--blob-dir=/a_b");
  EXPECT_EQ(DashedFlag("--local"), "--local");
  EXPECT_EQ(DashedFlag("not_a_flag"), "not_a_flag");
  EXPECT_EQ(DashedFlag("-x_y"), "-x_y");
}

std::vector<std::string> AbseilSpelled(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  auto out = AbseilSpelledCommandLine(static_cast<int>(argv.size()), argv.data());
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<std::string>{};
}

TEST(FlagSpellingTest, AbseilProgramsTakeDashesOnTheCommandLineAndInFlagFiles) {
  const std::string dir = ::testing::TempDir();
  const std::string inner = dir + "/inner.flags", outer = dir + "/outer.flags";
  std::ofstream(inner) << "--slot-strategy=pack\n";
  std::ofstream(outer) << "# settings\n\n  --heartbeat-interval=100ms  \n--flagfile=" << inner
                       << "\n";
  EXPECT_EQ(
      AbseilSpelled(
          {"prog", "--blob-dir=/a-b", "--flagfile=" + outer, "pos-x", "--", "--after-terminator"}),
      (std::vector<std::string>{"prog", "--blob_dir=/a-b", "--heartbeat_interval=100ms",
                                "--slot_strategy=pack", "pos-x", "--", "--after-terminator"}));
  std::filesystem::remove(inner);
  std::filesystem::remove(outer);
}

TEST(FlagSpellingTest, AMissingFlagFileIsNamed) {
  std::string prog = "prog", flag = "--flagfile=/nonexistent/x.flags";
  char* argv[] = {prog.data(), flag.data()};
  auto out = AbseilSpelledCommandLine(2, argv);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().message(), "cannot read the flag file '/nonexistent/x.flags'");
}

}  // namespace
}  // namespace sluice
