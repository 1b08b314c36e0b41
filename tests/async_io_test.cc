// Asynchronous I/O in running jobs (DataStream::AsyncWait on the mini-cluster): a service
// written here answers every request from threads of its own after a random delay; the
// output, in exactly-once part files, is compared with the input, under the chaos option
// (simulated crashes while requests are in flight, restores from checkpoints). Part files are
// read in the order the sink wrote them, so the ordered run's lines keep their order.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/slow_service.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

/// Answers each request after a random delay up to 2 ms, from threads of its own: answers come
/// back in another order than the requests went out. Outlives every job of the test.
using Service = testing::SlowService;

/// "n" -> "n,<n squared>", answered by the service.
class Square final : public AsyncFunction<std::string, std::string> {
 public:
  explicit Square(std::shared_ptr<Service> service) : service_(std::move(service)) {}
  void AsyncInvoke(const std::string& line, ResultFuture<std::string> result) override {
    service_->Submit([result, line]() mutable {
      const int64_t n = std::stoll(line);
      result.Complete(absl::StrCat(line, ",", n * n));
    });
  }

 private:
  std::shared_ptr<Service> service_;
};

constexpr int kLines = 20'000;

/// What the job of the running test uses (a job's build function takes nothing else).
struct {
  std::shared_ptr<Service> service;
  bool ordered = true;
} the_job;

void BuildAsyncJob(Pipeline* p) {
  p->SetParallelism(static_cast<int>(p->Args().GetInt("parallelism", 1)));
  AsyncOptions o;
  o.capacity = 50;
  o.ordered = the_job.ordered;
  p->Source(TextFileSource(p->Args().GetString("input")), "ReadLines")
      .AsyncWait(Square(the_job.service), o, "Square")
      .Uid("square")
      .Sink(TextFileSink<std::string>(p->Args().GetString("output")), "Write");
}

class AsyncIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string text;
    for (int i = 0; i < kLines; ++i) absl::StrAppend(&text, i, "\n");
    testing::WriteFile(dir_.Join("in.txt"), text);
  }

  /// Runs input -> AsyncWait(Square) -> part files with `args` (the standard job arguments
  /// applied as a job binary's are) and returns the output lines in the order written.
  std::vector<std::string> Run(const std::string& tag, bool ordered,
                               std::vector<std::string> args) {
    args.push_back("--input=" + dir_.Join("in.txt"));
    args.push_back("--output=" + dir_.Join(tag));
    the_job = {service_, ordered};
    Pipeline p("async", JobArgs::Parse(args));
    const absl::Status built = BuildPipeline(&BuildAsyncJob, p);
    EXPECT_OK(built);
    if (!built.ok()) return {};
    auto result = ExecuteLocally(p);
    EXPECT_OK(result);
    if (result.ok()) result_ = *result;
    return LinesInPartOrder(dir_.Join(tag));
  }

  /// The lines of the part files "part-<subtask>-<n>" in `dir`, by subtask and then n.
  static std::vector<std::string> LinesInPartOrder(const std::string& dir) {
    std::vector<std::pair<std::pair<int, int>, std::string>> parts;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      int subtask = 0, n = 0;
      if (std::sscanf(name.c_str(), "part-%d-%d", &subtask, &n) != 2) continue;
      parts.push_back({{subtask, n}, entry.path().string()});
    }
    std::sort(parts.begin(), parts.end());
    std::vector<std::string> lines;
    for (const auto& [order, path] : parts) {
      std::vector<std::string> part =
          absl::StrSplit(testing::ReadFile(path), '\n', absl::SkipEmpty());
      lines.insert(lines.end(), part.begin(), part.end());
    }
    return lines;
  }

  static std::vector<std::string> Expected() {
    std::vector<std::string> lines;
    for (int64_t i = 0; i < kLines; ++i) lines.push_back(absl::StrCat(i, ",", i * i));
    return lines;
  }

  /// The chaos option: three simulated crashes while the job runs about 1.5 s.
  std::vector<std::string> Chaos(const std::string& tag, int parallelism) {
    return {"--checkpoint-interval=100ms",
            "--checkpoint-dir=" + dir_.Join(tag + "-ck"),
            "--chaos-kill-task-every=150ms",
            "--chaos-max-failures=3",
            absl::StrCat("--chaos-seed=", 7 + parallelism),
            absl::StrCat("--parallelism=", parallelism),
            absl::StrCat("--max-source-rate=", static_cast<int>(kLines / 1.5 / parallelism))};
  }

  testing::TempDir dir_;
  std::shared_ptr<Service> service_ =
      std::make_shared<Service>(absl::Milliseconds(2), /*seed=*/42, /*threads=*/4);
  JobResult result_;
};

TEST_F(AsyncIoTest, OrderedOutputKeepsInputOrderAndIsExactlyOnceUnderChaos) {
  EXPECT_EQ(Run("plain", true, {}), Expected());
  EXPECT_EQ(result_.CounterTotal("async_completed"), kLines);

  const auto got = Run("chaos", true, Chaos("chaos", 1));
  EXPECT_EQ(result_.restarts, 3) << "the chaos must have struck";
  EXPECT_EQ(got, Expected()) << "in input order, each line once";
}

TEST_F(AsyncIoTest, UnorderedOutputIsExactlyOnceUnderChaosAtParallelism2) {
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  const auto plain = Run("plain", false, {"--parallelism=2"});
  EXPECT_EQ(sorted(plain), sorted(Expected()));

  const auto got = Run("chaos", false, Chaos("chaos", 2));
  EXPECT_EQ(result_.restarts, 3) << "the chaos must have struck";
  EXPECT_EQ(sorted(got), sorted(Expected())) << "each line once";
}

}  // namespace
}  // namespace sluice
