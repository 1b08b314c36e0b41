#include "sluice/job/job_args.h"

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace sluice
