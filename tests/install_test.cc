// Jobs built outside this tree: `cmake --install` into a temporary prefix, `sluice new job`
// writes a project, CMake builds it against the prefix with find_package(Sluice), and the
// installed `sluice` runs it locally and on a cluster started from the installed daemons; the
// Debian package (cpack) holds the same, relocatable. Counts are checked against a word
// count written here.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/testing/local_cluster.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

// Every command below ends within this (a cold build of the job's two targets takes ~1 min).
constexpr char kCommandTimeout[] = "timeout 600 ";

/// An independent model: words are maximal runs of ASCII letters, lower-cased.
std::map<std::string, int64_t> CountWords(const std::string& text) {
  std::map<std::string, int64_t> counts;
  std::string word;
  for (char c : text + " ") {
    if (absl::ascii_isalpha(static_cast<unsigned char>(c))) {
      word.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      ++counts[word];
      word.clear();
    }
  }
  return counts;
}

/// `word<TAB>count` lines as a map; a malformed or repeated line fails the test.
std::map<std::string, int64_t> ParseCounts(const std::vector<std::string>& lines) {
  std::map<std::string, int64_t> counts;
  for (const std::string& line : lines) {
    std::vector<std::string> parts = absl::StrSplit(line, '\t');
    int64_t n = 0;
    EXPECT_TRUE(parts.size() == 2 && absl::SimpleAtoi(parts[1], &n)) << "line '" << line << "'";
    if (parts.size() != 2) continue;
    EXPECT_TRUE(counts.emplace(parts[0], n).second) << "'" << parts[0] << "' twice";
  }
  return counts;
}

class InstallTest : public ::testing::Test {
 protected:
  // One install and one out-of-tree build for every case.
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    prefix_ = dir_->Join("prefix");
    auto install = testing::RunCommand(absl::StrCat(kCommandTimeout, "cmake --install ",
                                                    testing::BuildDir(), " --prefix ", prefix_));
    ASSERT_EQ(install.exit_code, 0) << install.output;

    project_ = dir_->Join("word-counter");
    auto created = testing::RunCommand(absl::StrCat(prefix_, "/bin/sluice new job ", project_));
    ASSERT_EQ(created.exit_code, 0) << created.output;
    EXPECT_THAT(created.output, HasSubstr("job 'word_counter' written to " + project_));
    const std::string generator =
        testing::RunCommand("command -v ninja").exit_code == 0 ? "-G Ninja" : "";
    auto configure = testing::RunCommand(
        absl::StrCat(kCommandTimeout, "cmake -S ", project_, " -B ", project_, "/build ", generator,
                     " -DCMAKE_PREFIX_PATH=", prefix_, " -DCMAKE_CXX_COMPILER_LAUNCHER=ccache"));
    ASSERT_EQ(configure.exit_code, 0) << configure.output;
    auto build = testing::RunCommand(
        absl::StrCat(kCommandTimeout, "cmake --build ", project_, "/build -j2"));
    ASSERT_EQ(build.exit_code, 0) << build.output;

    input_ = dir_->Join("words.txt");
    std::string text;
    for (int i = 0; i < 2000; ++i) {
      absl::StrAppend(&text, "Stream", i % 7, "ing words, the the ", (i % 13 == 0 ? "Rare" : ""),
                      " end-of-line\n");
    }
    testing::WriteFile(input_, text);
    expected_ = new std::map<std::string, int64_t>(CountWords(text));
  }
  static void TearDownTestSuite() {
    delete expected_;
    delete dir_;
  }

  static std::string JobBinary() { return project_ + "/build/word_counter.so"; }

  static testing::TempDir* dir_;
  static std::string prefix_;
  static std::string project_;
  static std::string input_;
  static std::map<std::string, int64_t>* expected_;
};
testing::TempDir* InstallTest::dir_ = nullptr;
std::string InstallTest::prefix_;
std::string InstallTest::project_;
std::string InstallTest::input_;
std::map<std::string, int64_t>* InstallTest::expected_ = nullptr;

TEST_F(InstallTest, TheNewProjectHasItsFilesAndAFolderInUseIsRefused) {
  for (const char* file : {"CMakeLists.txt", "word_counter.cc", "README.md"}) {
    EXPECT_TRUE(std::filesystem::exists(project_ + "/" + file)) << file;
  }
  const std::string cmake = testing::ReadFile(project_ + "/CMakeLists.txt");
  EXPECT_THAT(cmake, HasSubstr("find_package(Sluice REQUIRED)"));
  EXPECT_THAT(cmake, HasSubstr("sluice_add_job(word_counter SOURCES word_counter.cc)"));
  EXPECT_THAT(testing::ReadFile(project_ + "/README.md"),
              HasSubstr("-DCMAKE_PREFIX_PATH=" + prefix_));
  EXPECT_TRUE(std::filesystem::exists(project_ + "/build/word_counter")) << "the executable";

  auto again = testing::RunCommand(absl::StrCat(prefix_, "/bin/sluice new job ", project_));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.output, HasSubstr("exists and is not empty: nothing written"));
}

TEST_F(InstallTest, TheInstalledSluiceRunsTheJobLocally) {
  const std::string out = dir_->Join("local-out");
  auto r = testing::RunCommand(absl::StrCat(kCommandTimeout, prefix_, "/bin/sluice run --local ",
                                            JobBinary(), " --parallelism=2 -- --input=", input_,
                                            " --output=", out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ParseCounts(testing::ReadPartFileLines(out)), *expected_);

  // The executable the same source built runs it on the mini-cluster too.
  auto direct = testing::RunCommand(
      absl::StrCat(kCommandTimeout, project_, "/build/word_counter --input=", input_));
  ASSERT_EQ(direct.exit_code, 0) << direct.output;
  EXPECT_THAT(direct.output, HasSubstr(absl::StrCat("the\t", expected_->at("the"), "\n")));
}

TEST_F(InstallTest, AClusterOfTheInstalledDaemonsRunsTheJob) {
  const std::string bin = prefix_ + "/bin";
  testing::JobManagerProcess jm({}, 0, bin);
  ASSERT_FALSE(jm.address().empty()) << jm.log();
  testing::TaskManagerProcess tm1(jm.address(), 2, "tm-1", {}, bin);
  testing::TaskManagerProcess tm2(jm.address(), 2, "tm-2", {}, bin);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return absl::StrContains(
            testing::RunCommand(bin + "/sluice status --jobmanager=" + jm.address()).output,
            "TaskManagers: 2, slots: 4 total, 4 free");
      },
      20000))
      << jm.log();
  const std::string out = dir_->Join("cluster-out");
  auto r = testing::RunCommand(
      absl::StrCat(kCommandTimeout, bin, "/sluice run --jobmanager=", jm.address(), " ",
                   JobBinary(), " --parallelism=4 -- --input=", input_, " --output=", out));
  ASSERT_EQ(r.exit_code, 0) << r.output << jm.log() << tm1.log() << tm2.log();
  EXPECT_THAT(r.output, HasSubstr("job-1 finished"));
  EXPECT_EQ(ParseCounts(testing::ReadPartFileLines(out)), *expected_);
}

TEST_F(InstallTest, TheDebianPackageHoldsTheSameAndRunsFromWhereverItIsUnpacked) {
  const std::string packages = dir_->Join("packages");
  auto pack =
      testing::RunCommand(absl::StrCat(kCommandTimeout, "cpack --config ", testing::BuildDir(),
                                       "/CPackConfig.cmake -G DEB -B ", packages));
  ASSERT_EQ(pack.exit_code, 0) << pack.output;
  std::string deb;
  for (const auto& e : std::filesystem::directory_iterator(packages)) {
    const std::string name = e.path().filename().string();
    if (absl::StartsWith(name, "sluice_") && absl::EndsWith(name, "_amd64.deb")) deb = e.path();
  }
  ASSERT_FALSE(deb.empty()) << "no sluice_VERSION_amd64.deb in " << packages << pack.output;

  const std::string root = dir_->Join("unpacked");
  auto unpack = testing::RunCommand(absl::StrCat("dpkg-deb -x ", deb, " ", root));
  ASSERT_EQ(unpack.exit_code, 0) << unpack.output;
  for (const char* file :
       {"usr/bin/sluice", "usr/bin/sluice-jobmanager", "usr/bin/sluice-taskmanager",
        "usr/include/sluice/sluice.h", "usr/include/sluice/connectors/kafka.h",
        "usr/lib/libsluice_api.so", "usr/lib/cmake/Sluice/SluiceConfig.cmake",
        "usr/lib/cmake/Sluice/SluiceJob.cmake"}) {
    EXPECT_TRUE(std::filesystem::exists(root + "/" + file)) << file << " missing from " << deb;
  }
  auto info = testing::RunCommand("dpkg-deb -f " + deb + " Depends");
  EXPECT_THAT(info.output, HasSubstr("libgrpc++"));  // from dpkg-shlibdeps

  // Unpacked anywhere, its sluice finds its libraries beside it and runs the job built
  // against the other install (the same engine ABI).
  const std::string out = dir_->Join("deb-out");
  auto r =
      testing::RunCommand(absl::StrCat(kCommandTimeout, root, "/usr/bin/sluice run --local ",
                                       JobBinary(), " -- --input=", input_, " --output=", out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ParseCounts(testing::ReadPartFileLines(out)), *expected_);
}

}  // namespace
}  // namespace sluice
