// Failure and restart on the mini-cluster: after a crash in user code the job restarts from
// its latest completed checkpoint (sources rewind to their checkpointed positions, keyed
// state and timers come back), and the final result is exactly that of a run without
// failure.

#include <atomic>
#include <cctype>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::UnorderedElementsAreArray;
using WordCount = std::pair<std::string, int64_t>;

class CountUntilEnd final : public KeyedProcessFunction<std::string, std::string, WordCount> {
 public:
  void Open(KeyedRuntimeContext<std::string>& ctx) override {
    count_ = &ctx.GetState(ValueStateDescriptor<int64_t>("count"));
  }
  void ProcessElement(const std::string&, Context& ctx, Collector<WordCount>&) override {
    if (!count_->Value()) ctx.Timers().RegisterEventTimeTimer(kEndOfTime);
    count_->Update(count_->ValueOr(0) + 1);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<WordCount>& out) override {
    out.Collect({ctx.CurrentKey(), *count_->Value()});
  }

 private:
  ValueState<int64_t>* count_ = nullptr;
};

struct Chaos {
  std::atomic<bool> checkpoint_completed{false};
  std::atomic<int> crashes_left{1};
};

std::string Corpus(int lines) {
  std::string text;
  uint64_t x = 0x2545f4914f6cdd1dULL;
  for (int i = 0; i < lines; ++i) {
    for (int w = 0; w < 8; ++w) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      text += absl::StrCat("w", x % 500, " ");
    }
    text += "\n";
  }
  return text;
}

std::vector<WordCount> Reference(const std::string& text) {
  std::map<std::string, int64_t> counts;
  std::string word;
  for (char c : text) {
    if (c == ' ' || c == '\n') {
      if (!word.empty()) counts[word]++;
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  return {counts.begin(), counts.end()};
}

std::vector<WordCount> RunWithCrash(const std::string& path, bool checkpoints, JobResult* result) {
  auto chaos = std::make_shared<Chaos>();
  Pipeline p("restart");
  p.SetParallelism(2);
  p.SetRestartStrategy(3, absl::Milliseconds(10));
  if (checkpoints) p.EnableCheckpointing(absl::Milliseconds(2));
  auto out = std::make_shared<CollectedRecords<WordCount>>();
  p.Source(TextFileSource(path))
      .FlatMap<std::string>([](const std::string& line, Collector<std::string>& words) {
        std::string w;
        for (char c : line + " ") {
          if (c == ' ') {
            if (!w.empty()) words.Collect(w);
            w.clear();
          } else {
            w.push_back(c);
          }
        }
      })
      .Map(
          [chaos, checkpoints](const std::string& w) {
            // One simulated crash, once a checkpoint exists (or at once without checkpoints).
            if ((!checkpoints || chaos->checkpoint_completed.load()) &&
                chaos->crashes_left.fetch_sub(1) == 1) {
              throw std::runtime_error("simulated crash");
            }
            return w;
          },
          "Chaos")
      .KeyBy([](const std::string& w) -> const std::string& { return w; })
      .Process(CountUntilEnd{})
      .Uid("count")
      .Sink(CollectSink<WordCount>(out));
  auto r = ExecuteLocally(
      p, {.clock = nullptr, .on_checkpoint_complete = [chaos](const CompletedCheckpoint&) {
            chaos->checkpoint_completed.store(true);
          }});
  EXPECT_OK(r);
  if (r.ok()) *result = *r;
  return out->Values();
}

TEST(RestartTest, RestoresFromTheLatestCheckpointExactlyOnce) {
  testing::TempDir dir;
  const std::string text = Corpus(100000);
  testing::WriteFile(dir.Join("in.txt"), text);
  JobResult result;
  auto counts = RunWithCrash(dir.Join("in.txt"), /*checkpoints=*/true, &result);
  EXPECT_EQ(result.restarts, 1);
  EXPECT_GE(result.completed_checkpoints, 1);
  EXPECT_THAT(counts, UnorderedElementsAreArray(Reference(text)));
}

TEST(RestartTest, WithoutCheckpointsARestartReplaysFromTheBeginning) {
  testing::TempDir dir;
  const std::string text = Corpus(2000);
  testing::WriteFile(dir.Join("in.txt"), text);
  JobResult result;
  auto counts = RunWithCrash(dir.Join("in.txt"), /*checkpoints=*/false, &result);
  EXPECT_EQ(result.restarts, 1);
  EXPECT_THAT(counts, UnorderedElementsAreArray(Reference(text)));
}

TEST(RestartTest, GivesUpWhenAttemptsRunOut) {
  Pipeline p("always-fails");
  p.SetRestartStrategy(2, absl::Milliseconds(1));
  auto attempts = std::make_shared<std::atomic<int>>(0);
  p.Source(CollectionSource<int64_t>({1, 2, 3}))
      .Map(
          [attempts](const int64_t& v) -> int64_t {
            if (v == 2) {
              attempts->fetch_add(1);
              throw std::runtime_error("bad record");
            }
            return v;
          },
          "Bad")
      .Sink(DiscardingSink<int64_t>{});
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("bad record"));
  EXPECT_EQ(attempts->load(), 3) << "the first run and two restarts";
}

}  // namespace
}  // namespace sluice
