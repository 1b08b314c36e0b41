// Exactly-once end to end: the example jobs, run as their executables with checkpoints every
// 100 ms and the chaos option (several simulated crashes per run, between records, during
// alignment and during the asynchronous snapshot phase), write exactly the output of a
// failure-free run; at-least-once mode loses nothing.

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

std::string Example(const std::string& name) { return testing::BuildDir() + "/examples/" + name; }

/// Words of letters only (the job splits on anything else).
void WriteWords(const std::string& path, int lines) {
  std::mt19937 rng(3);
  std::string text;
  for (int i = 0; i < lines; ++i) {
    for (int w = 0; w < 10; ++w) {
      uint32_t n = rng() % 3000 + 1;
      std::string word;
      while (n != 0) {
        word.push_back(static_cast<char>('a' + n % 26));
        n /= 26;
      }
      text += word;
      text += w == 9 ? '\n' : ' ';
    }
  }
  testing::WriteFile(path, text);
}

/// Readings no more than 2 s out of order: with 5 s of allowed out-of-orderness none is
/// late, so the output does not depend on when watermarks happen to be emitted.
void WriteReadings(const std::string& path, int lines) {
  std::mt19937 rng(5);
  std::string csv;
  for (int i = 0; i < lines; ++i) {
    const int64_t ts = 1700000000000 + i * 10 + static_cast<int64_t>(rng() % 2000);
    absl::StrAppend(&csv, "sensor-", rng() % 50, ",", ts, ",", static_cast<int>(rng() % 101) - 50,
                    "\n");
  }
  testing::WriteFile(path, csv);
}

struct Job {
  std::string binary;
  std::vector<std::string> args;  // besides --output and --parallelism
  int input_lines;
  bool parallel_source;  // windowed_stats reads its file with one subtask, in order
};

/// A source rate at which the job takes about `seconds` at any parallelism: long enough for
/// checkpoints and for the chaos to strike several times, whatever the machine's speed.
std::string RateFor(const Job& job, int parallelism, double seconds) {
  const int readers = job.parallel_source ? parallelism : 1;
  return absl::StrCat("--max-source-rate=",
                      static_cast<int>(job.input_lines / (readers * seconds)));
}

std::vector<std::string> SortedOutput(const std::string& dir) {
  auto lines = testing::ReadPartFileLines(dir);
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// Runs `job` and returns its sorted output lines; `extra` are further flags.
std::vector<std::string> RunJob(const Job& job, int parallelism, const std::string& out,
                                const std::vector<std::string>& extra, std::string* log = nullptr) {
  std::string command = Example(job.binary);
  for (const auto& a : job.args) absl::StrAppend(&command, " '", a, "'");
  absl::StrAppend(&command, " '--output=", out, "' --parallelism=", parallelism);
  for (const auto& a : extra) absl::StrAppend(&command, " '", a, "'");
  auto r = testing::RunCommand(command);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (log != nullptr) *log = r.output;
  return SortedOutput(out);
}

class ExactlyOnceTest : public ::testing::TestWithParam<int> {
 protected:
  static constexpr int kWordLines = 100'000;
  static constexpr int kReadingLines = 200'000;
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    WriteWords(dir_->Join("words.txt"), kWordLines);
    WriteReadings(dir_->Join("readings.csv"), kReadingLines);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::vector<Job> Jobs() {
    return {
        {"word_count", {"--input=" + dir_->Join("words.txt")}, kWordLines, true},
        {"windowed_stats",
         {"--input=" + dir_->Join("readings.csv"), "--window=tumbling:10s",
          "--out-of-orderness=5s"},
         kReadingLines,
         false},
    };
  }
  static testing::TempDir* dir_;
};
testing::TempDir* ExactlyOnceTest::dir_ = nullptr;

/// The chaos run for one state backend.
void ExpectChaosRunEqualsPlainRun(const std::vector<Job>& jobs, testing::TempDir& dir,
                                  int parallelism, const std::string& backend) {
  for (const Job& job : jobs) {
    SCOPED_TRACE(job.binary);
    const std::string tag = absl::StrCat(job.binary, "-p", parallelism, "-", backend);
    const auto expected = RunJob(job, parallelism, dir.Join(tag + "-plain"), {});
    ASSERT_GT(expected.size(), 100u);
    std::string log;
    const auto got = RunJob(
        job, parallelism, dir.Join(tag + "-chaos"),
        {"--checkpoint-interval=100ms", "--checkpoint-dir=" + dir.Join(tag + "-ck"),
         "--state-backend=" + backend, "--chaos-kill-task-every=150ms", "--chaos-max-failures=3",
         absl::StrCat("--chaos-seed=", 17 + parallelism), RateFor(job, parallelism, 1.5)},
        &log);
    EXPECT_THAT(log, HasSubstr("simulated crash 3 of 3")) << "the chaos must have struck";
    EXPECT_EQ(got, expected) << "every result exactly once";
  }
}

TEST_P(ExactlyOnceTest, OutputUnderChaosEqualsAFailureFreeRunOnTheHeap) {
  ExpectChaosRunEqualsPlainRun(Jobs(), *dir_, GetParam(), "heap");
}

TEST_P(ExactlyOnceTest, OutputUnderChaosEqualsAFailureFreeRunOnRocksDb) {
  ExpectChaosRunEqualsPlainRun(Jobs(), *dir_, GetParam(), "rocksdb");
}

TEST_P(ExactlyOnceTest, AtLeastOnceLosesNothing) {
  const int parallelism = GetParam();
  const Job job = Jobs()[0];
  const auto expected = RunJob(job, parallelism, dir_->Join("alo-plain"), {});
  std::string log;
  const auto got = RunJob(
      job, parallelism, dir_->Join("alo-chaos"),
      {"--checkpoint-interval=100ms", "--checkpoint-mode=at-least-once",
       "--chaos-kill-task-every=150ms", "--chaos-max-failures=2", RateFor(job, parallelism, 1.0)},
      &log);
  EXPECT_THAT(log, HasSubstr("simulated crash 2 of 2"));
  // Word counts are final values per word: a record counted twice shows up as a higher
  // count; none may be missing or lower.
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const auto tab_got = got[i].find('\t');
    const auto tab_exp = expected[i].find('\t');
    ASSERT_EQ(got[i].substr(0, tab_got), expected[i].substr(0, tab_exp));
    EXPECT_GE(std::stoll(got[i].substr(tab_got + 1)), std::stoll(expected[i].substr(tab_exp + 1)));
  }
}

INSTANTIATE_TEST_SUITE_P(Parallelism, ExactlyOnceTest, ::testing::Values(1, 2, 4));

class ProcessRestoreTest : public ExactlyOnceTest {
 protected:
  /// Runs windowed_stats at parallelism 2 on `backend` until its first checkpoint is on
  /// disk, kills it with SIGKILL, resumes it from the checkpoint directory with `resume`
  /// flags, and expects the output of a run without the kill.
  void KillAndResume(const std::string& tag, const std::string& backend,
                     const std::vector<std::string>& resume, int resume_parallelism) {
    const Job job = Jobs()[1];
    const auto expected = RunJob(job, 2, dir_->Join(tag + "-plain"), {});
    const std::string out = dir_->Join(tag + "-out");
    const std::string checkpoints = dir_->Join(tag + "-ck");
    std::vector<std::string> argv = {Example(job.binary)};
    argv.insert(argv.end(), job.args.begin(), job.args.end());
    for (const std::string& a :
         {"--output=" + out, std::string("--parallelism=2"),
          std::string("--checkpoint-interval=50ms"), "--checkpoint-dir=" + checkpoints,
          "--state-backend=" + backend, RateFor(job, 2, 3.0)}) {
      argv.push_back(a);
    }
    {
      testing::ChildProcess process(argv, dir_->Join(tag + ".log"));
      ASSERT_TRUE(testing::WaitFor(
          [&] { return testing::HasCompletedCheckpoint(checkpoints + "/windowed_stats"); }, 20'000))
          << testing::ReadFile(dir_->Join(tag + ".log"));
      process.Signal(SIGKILL);
      EXPECT_EQ(process.Wait(), 128 + SIGKILL);
    }
    const auto partial = SortedOutput(out);
    EXPECT_LT(partial.size(), expected.size()) << "killed before the end";
    std::vector<std::string> flags = {"--from-savepoint=" + checkpoints + "/windowed_stats"};
    flags.insert(flags.end(), resume.begin(), resume.end());
    EXPECT_EQ(RunJob(job, resume_parallelism, out, flags), expected);
  }
};

/// The completed checkpoints (those with metadata) of a job's checkpoint directory, oldest
/// first.
std::vector<std::filesystem::path> CompletedCheckpoints(const std::string& job_dir) {
  std::vector<std::pair<int64_t, std::filesystem::path>> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(job_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("chk-") && std::filesystem::exists(e.path() / "_metadata")) {
      found.emplace_back(std::stoll(name.substr(4)), e.path());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::filesystem::path> out;
  for (auto& [id, path] : found) out.push_back(path);
  return out;
}

/// Flips one bit of `file`, at a place chosen by `seed`.
void FlipABit(const std::filesystem::path& file, uint32_t seed) {
  std::string bytes = testing::ReadFile(file.string());
  ASSERT_FALSE(bytes.empty()) << file;
  std::mt19937 rng(seed);
  const size_t at = rng() % bytes.size();
  bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));
  testing::WriteFile(file.string(), bytes);
}

enum class AfterDamage {
  kExactOutput,
  kRefusedNamingIt,         // by the checkpoint loader, before any task starts
  kRefusedByATaskNamingIt,  // by the task that fetches the file (shared files' checksums)
};

/// Kills the job once it has completed at least three checkpoints (and `ready` holds for its
/// checkpoint directory, if given), lets `damage` act
/// on the checkpoint directory (given the newest completed checkpoint), and resumes from the
/// directory: either the output is exactly that of a run without the kill, or the resumed
/// job refuses to start, naming the damaged checkpoint and file, and its output holds
/// nothing beyond what the failure-free run wrote. Never another output.
void KillDamageAndResume(testing::TempDir& dir, const Job& job, const std::string& tag,
                         const std::string& backend, AfterDamage want,
                         const std::function<std::string(const std::filesystem::path&)>& damage,
                         const std::function<bool(const std::string&)>& ready = nullptr) {
  const auto expected = RunJob(job, 2, dir.Join(tag + "-plain"), {});
  const std::string out = dir.Join(tag + "-out");
  const std::string checkpoints = dir.Join(tag + "-ck");
  const std::string job_dir = checkpoints + "/" + job.binary;
  std::vector<std::string> argv = {Example(job.binary)};
  argv.insert(argv.end(), job.args.begin(), job.args.end());
  for (const std::string& a :
       {"--output=" + out, std::string("--parallelism=2"),
        std::string("--checkpoint-interval=50ms"), "--checkpoint-dir=" + checkpoints,
        std::string("--checkpoints-retained=3"), "--state-backend=" + backend,
        RateFor(job, 2, 3.0)}) {
    argv.push_back(a);
  }
  {
    testing::ChildProcess process(argv, dir.Join(tag + ".log"));
    ASSERT_TRUE(testing::WaitFor(
        [&] { return CompletedCheckpoints(job_dir).size() >= 3 && (!ready || ready(job_dir)); },
        20'000))
        << testing::ReadFile(dir.Join(tag + ".log"));
    process.Signal(SIGKILL);
    EXPECT_EQ(process.Wait(), 128 + SIGKILL);
  }
  const auto completed = CompletedCheckpoints(job_dir);
  ASSERT_GE(completed.size(), 2u);
  const std::string damaged_file = damage(completed.back());
  std::string command = Example(job.binary);
  for (const auto& a : job.args) absl::StrAppend(&command, " '", a, "'");
  absl::StrAppend(&command, " '--output=", out, "' --parallelism=2 '--from-savepoint=", job_dir,
                  "'");
  const auto resumed = testing::RunCommand(command);
  if (want == AfterDamage::kExactOutput) {
    EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_EQ(SortedOutput(out), expected);
    return;
  }
  EXPECT_NE(resumed.exit_code, 0) << "a damaged newest checkpoint must not be passed over";
  if (want == AfterDamage::kRefusedNamingIt) {
    EXPECT_THAT(resumed.output,
                HasSubstr(absl::StrCat("the newest completed checkpoint ",
                                       completed.back().filename().string().substr(4))));
  }
  EXPECT_THAT(resumed.output, HasSubstr(damaged_file));
  // Nothing was written twice: what is there is part of the failure-free output.
  std::vector<std::string> got = SortedOutput(out);
  EXPECT_TRUE(std::includes(expected.begin(), expected.end(), got.begin(), got.end()))
      << "output beyond the failure-free run's";
}

/// Flips a bit in the first file of `chk` whose name ends with `suffix`; returns its name.
std::string FlipABitIn(const std::filesystem::path& chk, const std::string& suffix, uint32_t seed) {
  for (const auto& e : std::filesystem::directory_iterator(chk)) {
    if (e.path().filename().string().ends_with(suffix)) {
      FlipABit(e.path(), seed);
      return e.path().filename().string();
    }
  }
  ADD_FAILURE() << "no " << suffix << " file in " << chk;
  return "";
}

// A bit flipped in a file of the newest checkpoint. It completed, so its output may have
// been committed: an older checkpoint would write that again. The restore refuses, naming
// the file (before: it fell back silently, and windows fired twice in the output).
TEST_F(ProcessRestoreTest, ABitFlipInTheNewestCheckpointIsRefusedNamingTheFile) {
  const Job job = Jobs()[1];
  KillDamageAndResume(*dir_, job, "flip-metadata", "heap", AfterDamage::kRefusedNamingIt,
                      [](const std::filesystem::path& chk) {
                        FlipABitIn(chk, "_metadata", 11);
                        return std::string("_metadata");
                      });
  KillDamageAndResume(
      *dir_, job, "flip-state", "heap", AfterDamage::kRefusedNamingIt,
      [](const std::filesystem::path& chk) { return FlipABitIn(chk, ".state", 13); });
  KillDamageAndResume(
      *dir_, job, "flip-rocks", "rocksdb", AfterDamage::kRefusedNamingIt,
      [](const std::filesystem::path& chk) { return FlipABitIn(chk, ".state", 23); });
}

// The shared files of incremental RocksDB checkpoints (SST files a checkpoint references
// instead of copying): a bit flipped in each, or each one gone. The newest checkpoint
// references some of them, so the restore refuses it, naming a shared file: a missing one
// before anything starts, a damaged one when the task fetching it checks its checksum.
TEST_F(ProcessRestoreTest, ADamagedOrMissingSharedRocksDbFileIsRefusedNamingIt) {
  // word_count writes its state with every word: its log outgrows what a checkpoint copies,
  // and checkpoints flush it into shared SST files.
  const Job job = Jobs()[0];
  // Ready once a completed checkpoint is newer than a shared file: it references the file
  // (shared files of a checkpoint still being written are referenced by none yet).
  auto completed_checkpoint_references_shared_files = [](const std::string& job_dir) {
    const auto completed = CompletedCheckpoints(job_dir);
    if (completed.empty()) return false;
    std::error_code ec;
    const auto newest = std::filesystem::last_write_time(completed.back() / "_metadata", ec);
    for (const auto& e : std::filesystem::directory_iterator(job_dir + "/shared", ec)) {
      std::error_code time_ec;
      if (std::filesystem::last_write_time(e.path(), time_ec) < newest && !time_ec) return true;
    }
    return false;
  };
  auto each_shared_file = [](const std::filesystem::path& chk, const auto& act) {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(chk.parent_path() / "shared")) {
      act(e.path(), n++);
    }
    return std::string("shared/");
  };
  KillDamageAndResume(
      *dir_, job, "flip-shared", "rocksdb", AfterDamage::kRefusedByATaskNamingIt,
      [&](const std::filesystem::path& chk) {
        return each_shared_file(chk,
                                [](const std::filesystem::path& f, int n) { FlipABit(f, 29 + n); });
      },
      completed_checkpoint_references_shared_files);
  KillDamageAndResume(
      *dir_, job, "missing-shared", "rocksdb", AfterDamage::kRefusedNamingIt,
      [&](const std::filesystem::path& chk) {
        return each_shared_file(
            chk, [](const std::filesystem::path& f, int) { std::filesystem::remove(f); });
      },
      completed_checkpoint_references_shared_files);
}

// A half-written checkpoint after the newest completed one (the kill came while it was
// written: state files, no metadata) is passed over: the output is exact.
TEST_F(ProcessRestoreTest, AHalfWrittenCheckpointIsPassedOver) {
  const Job job = Jobs()[1];
  KillDamageAndResume(
      *dir_, job, "half-written", "heap", AfterDamage::kExactOutput,
      [](const std::filesystem::path& chk) {
        const int64_t id = std::stoll(chk.filename().string().substr(4));
        const std::filesystem::path next = chk.parent_path() / absl::StrCat("chk-", id + 1);
        std::filesystem::create_directories(next);
        for (const auto& e : std::filesystem::directory_iterator(chk)) {
          if (e.path().filename() != "_metadata") {
            std::filesystem::copy_file(e.path(), next / e.path().filename(),
                                       std::filesystem::copy_options::overwrite_existing);
          }
        }
        return std::string();
      });
}

// The checkpoints on disk survive the process: kill -9 mid-run, start again from the
// checkpoint directory, and the output is that of a run without the kill.
TEST_F(ProcessRestoreTest, KilledProcessResumesFromItsCheckpointDirectory) {
  KillAndResume("kill-heap", "heap", {}, 2);
}

// RocksDB checkpoints are the database's own files: resumed as the database (same
// parallelism), split by key groups (another parallelism), or read into the heap backend.
TEST_F(ProcessRestoreTest, KilledRocksDbProcessResumesFromItsDatabaseFiles) {
  KillAndResume("kill-rocks", "rocksdb", {"--state-backend=rocksdb"}, 2);
}
TEST_F(ProcessRestoreTest, KilledRocksDbProcessResumesAtAnotherParallelism) {
  KillAndResume("kill-rocks-p3", "rocksdb", {"--state-backend=rocksdb"}, 3);
}
TEST_F(ProcessRestoreTest, KilledRocksDbProcessResumesOnTheHeap) {
  KillAndResume("kill-rocks-heap", "rocksdb", {"--state-backend=heap"}, 1);
}

// With --savepoint-dir, SIGTERM stops the job with a savepoint (exit code 0, the path
// logged); the job resumes from it.
TEST_F(ProcessRestoreTest, SigtermStopsWithASavepointToResumeFrom) {
  const Job job = Jobs()[1];
  const auto expected = RunJob(job, 2, dir_->Join("term-plain"), {});
  const std::string out = dir_->Join("term-out");
  const std::string savepoints = dir_->Join("term-sp");
  const std::string checkpoints = dir_->Join("term-ck");
  std::vector<std::string> argv = {Example(job.binary)};
  argv.insert(argv.end(), job.args.begin(), job.args.end());
  for (const std::string& a :
       {"--output=" + out, std::string("--parallelism=2"),
        std::string("--checkpoint-interval=50ms"), "--checkpoint-dir=" + checkpoints,
        "--savepoint-dir=" + savepoints, RateFor(job, 2, 3.0)}) {
    argv.push_back(a);
  }
  const std::string log = dir_->Join("term.log");
  {
    testing::ChildProcess process(argv, log);
    ASSERT_TRUE(testing::WaitFor(
        [&] { return testing::HasCompletedCheckpoint(checkpoints + "/windowed_stats"); }, 20'000));
    process.Signal(SIGTERM);
    EXPECT_EQ(process.Wait(), 0) << testing::ReadFile(log);
  }
  EXPECT_THAT(testing::ReadFile(log), HasSubstr("stopped with savepoint"));
  std::vector<std::string> written;
  for (const auto& e : std::filesystem::directory_iterator(savepoints)) {
    written.push_back(e.path().string());
  }
  ASSERT_EQ(written.size(), 1u);
  EXPECT_LT(SortedOutput(out).size(), expected.size());
  EXPECT_EQ(RunJob(job, 2, out, {"--from-savepoint=" + written[0]}), expected);
}

}  // namespace
}  // namespace sluice
