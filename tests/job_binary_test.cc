// Job binaries: the same word_count source built as an executable and as a .so, run via the
// executable, via `sluice run --local`, and via JobLibrary at several parallelisms; bad job
// binaries and bad arguments are refused with clear messages.

#include <sys/wait.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

using testing::RunCommand;

std::string Bin(const std::string& name) { return testing::BuildDir() + "/bin/" + name; }
std::string Example(const std::string& name) { return testing::BuildDir() + "/examples/" + name; }

/// The reference word count, computed here independently of the engine.
std::vector<std::string> ReferenceWordCount(const std::string& text) {
  std::map<std::string, int64_t> counts;
  std::string word;
  for (char c : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      counts[word]++;
      word.clear();
    }
  }
  std::vector<std::string> lines;
  for (const auto& [w, c] : counts) lines.push_back(absl::StrCat(w, "\t", c));
  return lines;
}

std::string MakeCorpus(int lines) {
  std::string text;
  const char* words[] = {"Alpha", "beta", "GAMMA", "delta", "epsilon", "zeta", "eta", "theta"};
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < lines; ++i) {
    for (int w = 0; w < 12; ++w) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      text += words[x % 8];
      text += (x >> 8) % 5 == 0 ? ", " : " ";
      if ((x >> 12) % 17 == 0) text += absl::StrCat("w", x % 300, "-x ");
    }
    text += "\n";
  }
  return text;
}

TEST(JobBinaryTest, WordCountMatchesReferenceAtParallelism1_2_4) {
  testing::TempDir dir;
  const std::string text = MakeCorpus(3000);
  testing::WriteFile(dir.Join("in.txt"), text);
  const auto expected = ReferenceWordCount(text);

  auto library = JobLibrary::Load(Example("word_count.so"));
  ASSERT_OK(library);
  for (int parallelism : {1, 2, 4}) {
    const std::string out = dir.Join(absl::StrCat("out-", parallelism));
    Pipeline p("word_count", JobArgs::Parse({"--input=" + dir.Join("in.txt"), "--output=" + out,
                                             absl::StrCat("--parallelism=", parallelism)}));
    ASSERT_OK(BuildPipeline((*library)->build(), p));
    ASSERT_OK(ExecuteLocally(p));
    EXPECT_THAT(testing::ReadPartFileLines(out), UnorderedElementsAreArray(expected))
        << "parallelism " << parallelism;
  }
}

TEST(JobBinaryTest, ExecutableAndCliGiveTheSameResult) {
  testing::TempDir dir;
  const std::string text = MakeCorpus(200);
  testing::WriteFile(dir.Join("in.txt"), text);
  const auto expected = ReferenceWordCount(text);

  auto exe = RunCommand(Example("word_count") + " --input=" + dir.Join("in.txt") +
                        " --output=" + dir.Join("exe") + " --parallelism=2");
  ASSERT_EQ(exe.exit_code, 0) << exe.output;
  EXPECT_THAT(testing::ReadPartFileLines(dir.Join("exe")), UnorderedElementsAreArray(expected));

  auto cli = RunCommand(Bin("sluice") + " run --local " + Example("word_count.so") +
                        " --parallelism=3 -- --input=" + dir.Join("in.txt") +
                        " --output=" + dir.Join("cli"));
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_THAT(testing::ReadPartFileLines(dir.Join("cli")), UnorderedElementsAreArray(expected));
  EXPECT_THAT(cli.output, HasSubstr("finished"));
}

TEST(JobBinaryTest, PrintsResultWithoutOutputDirectory) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("in.txt"), "b a b\n");
  auto r = RunCommand(Example("word_count") + " --input=" + dir.Join("in.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("a\t1\n"));
  EXPECT_THAT(r.output, HasSubstr("b\t2\n"));
}

TEST(JobBinaryTest, CustomOperatorExampleEmitsSessions) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("clicks.csv"),
                     "ann,1000,/a\nbob,1500,/b\nann,2000,/c\nann,9000,/d\nbob,20000,/e\n");
  auto r = RunCommand(Example("session_alerts") + " --input=" + dir.Join("clicks.csv") +
                      " --gap-ms=5000 --output=" + dir.Join("out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(testing::ReadPartFileLines(dir.Join("out")),
              UnorderedElementsAreArray(
                  {"ann,1000,7000,2", "ann,9000,14000,1", "bob,1500,6500,1", "bob,20000,25000,1"}));
  testing::WriteFile(dir.Join("bad.csv"), "ann,1000,/a\nann,notatime,/b\n");
  auto bad = RunCommand(Example("session_alerts") + " --input=" + dir.Join("bad.csv"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output,
              HasSubstr("bad.csv:2: expected user,timestamp_ms,page but got 'ann,notatime,/b'"));
}

TEST(JobBinaryTest, RefusesFilesThatAreNotJobBinaries) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("notes.txt"), "hello");
  auto missing = RunCommand(Bin("sluice") + " run --local " + dir.Join("nope.so"));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("No such file"));

  auto text = RunCommand(Bin("sluice") + " run --local " + dir.Join("notes.txt"));
  EXPECT_EQ(text.exit_code, 2);
  EXPECT_THAT(text.output, HasSubstr("not an ELF shared library"));

  auto engine = RunCommand(Bin("sluice") + " run --local " + testing::BuildDir() +
                           "/lib/libsluice_engine.so");
  EXPECT_EQ(engine.exit_code, 2);
  EXPECT_THAT(engine.output, HasSubstr("no SLUICE_JOB entry point"));

  auto exe = RunCommand(Bin("sluice") + " run --local " + Example("word_count"));
  EXPECT_EQ(exe.exit_code, 2);
  EXPECT_THAT(exe.output, HasSubstr("cannot be loaded as a job binary"));
}

TEST(JobBinaryTest, RefusesJobBuiltForAnotherEngineAbi) {
  auto r =
      RunCommand(Bin("sluice") + " run --local " + testing::BuildDir() + "/tests/foreign_abi.so");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("built against engine ABI 'sluice-engine-abi-0/other'"));
  EXPECT_THAT(r.output, HasSubstr(EngineAbi()));
}

TEST(JobBinaryTest, BadJobArgumentsAreRefusedBeforeRunning) {
  auto missing = RunCommand(Example("word_count"));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("missing required argument --input"));

  auto typo = RunCommand(Bin("sluice") + " run --local " + Example("word_count.so") +
                         " -- --input=/x --ouput=/y");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_THAT(typo.output, HasSubstr("unknown argument(s) for this job: --ouput"));

  auto bad_int = RunCommand(Example("word_count") + " --input=/x --parallelism=many");
  EXPECT_EQ(bad_int.exit_code, 2);
  EXPECT_THAT(bad_int.output, HasSubstr("--parallelism must be an integer"));
}

TEST(JobBinaryTest, EveryJobTakesCheckpointFlags) {
  testing::TempDir dir;
  const std::string text = MakeCorpus(40000);
  testing::WriteFile(dir.Join("in.txt"), text);
  auto r = RunCommand(Example("word_count") + " --input=" + dir.Join("in.txt") + " --output=" +
                      dir.Join("out") + " --parallelism=2 --checkpoint-interval=2ms" +
                      " --checkpoint-dir=" + dir.Join("checkpoints") + " --restart-attempts=2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(testing::ReadPartFileLines(dir.Join("out")),
              UnorderedElementsAreArray(ReferenceWordCount(text)));
  int completed = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.Join("checkpoints/word_count"))) {
    if (std::filesystem::exists(e.path() / "_metadata")) ++completed;
  }
  EXPECT_GE(completed, 1) << "checkpoints were written";
  EXPECT_LE(completed, 2) << "and only the retained ones kept";

  auto bad = RunCommand(Example("word_count") + " --input=/x --checkpoint-interval=soon");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("--checkpoint-interval: 'soon' is not a positive duration"));
}

}  // namespace
}  // namespace sluice
