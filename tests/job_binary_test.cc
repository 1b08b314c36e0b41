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

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

/// One line of the table of tasks a local run prints when its job ends.
struct TaskLine {
  std::string name;
  int64_t records_in = 0, records_sent = 0;
  int busy = 0, backpressured = 0, idle = 0;  // percent
};

/// The lines of that table in `output` (the header starts with "task").
std::vector<TaskLine> TaskTable(const std::string& output) {
  std::vector<TaskLine> table;
  bool in_table = false;
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(output, '\n'))) {
    if (absl::StartsWith(line, "task ") && absl::StrContains(line, "back-pressured")) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    // "NAME (i/n)  IN  SENT  B%  P%  I%": the name may hold spaces, the five numbers not.
    std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.size() < 6 || !absl::EndsWith(words.back(), "%")) break;
    TaskLine t;
    const size_t n = words.size();
    auto percent = [](const std::string& w) { return std::stoi(w.substr(0, w.size() - 1)); };
    t.records_in = std::stoll(words[n - 5]);
    t.records_sent = std::stoll(words[n - 4]);
    t.busy = percent(words[n - 3]);
    t.backpressured = percent(words[n - 2]);
    t.idle = percent(words[n - 1]);
    t.name = absl::StrJoin(words.begin(), words.end() - 5, " ");
    table.push_back(t);
  }
  return table;
}

/// A run's table names every subtask of both tasks of word_count; the words the splitting
/// subtasks sent add up to the words in the text, as do those the counting subtasks took in;
/// each line's shares of time add up to the whole.
void ExpectWordCountTaskTable(const std::string& output, int parallelism, int64_t words) {
  const std::vector<TaskLine> table = TaskTable(output);
  ASSERT_EQ(table.size(), static_cast<size_t>(2 * parallelism)) << output;
  int64_t split_sent = 0, counted_in = 0;
  for (int i = 0; i < parallelism; ++i) {
    const std::string subtask = absl::StrCat(" (", i + 1, "/", parallelism, ")");
    EXPECT_EQ(table[i].name, "ReadLines -> SplitWords" + subtask);
    EXPECT_EQ(table[parallelism + i].name, "CountWords -> Format -> WriteCounts" + subtask);
    split_sent += table[i].records_sent;
    counted_in += table[parallelism + i].records_in;
  }
  EXPECT_EQ(split_sent, words) << output;
  EXPECT_EQ(counted_in, words) << output;
  for (const TaskLine& t : table) {
    EXPECT_NEAR(t.busy + t.backpressured + t.idle, 100, 2) << t.name;
  }
}

TEST(JobBinaryTest, ExecutableAndCliGiveTheSameResult) {
  testing::TempDir dir;
  const std::string text = MakeCorpus(200);
  testing::WriteFile(dir.Join("in.txt"), text);
  const auto expected = ReferenceWordCount(text);

  int64_t words = 0;
  for (const std::string& line : expected) {
    words += std::stoll(line.substr(line.find('\t') + 1));
  }

  auto exe = RunCommand(Example("word_count") + " --input=" + dir.Join("in.txt") +
                        " --output=" + dir.Join("exe") + " --parallelism=2");
  ASSERT_EQ(exe.exit_code, 0) << exe.output;
  EXPECT_THAT(testing::ReadPartFileLines(dir.Join("exe")), UnorderedElementsAreArray(expected));
  ExpectWordCountTaskTable(exe.output, 2, words);

  auto cli = RunCommand(Bin("sluice") + " run --local " + Example("word_count.so") +
                        " --parallelism=3 -- --input=" + dir.Join("in.txt") +
                        " --output=" + dir.Join("cli"));
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_THAT(testing::ReadPartFileLines(dir.Join("cli")), UnorderedElementsAreArray(expected));
  EXPECT_THAT(cli.output, HasSubstr("finished"));
  ExpectWordCountTaskTable(cli.output, 3, words);
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
