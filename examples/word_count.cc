// word_count --input=PATH [--output=DIR] [--parallelism=N]
//
// Counts words (lower-cased, split on non-letters) and emits one `word<TAB>count` line per
// distinct word when the input ends: the count lives in keyed state and an event-time timer
// at the end of time fires with the final watermark. Without --output it prints the lines.

#include <cctype>
#include <string>
#include <utility>

#include "sluice/sluice.h"

namespace {

using WordCount = std::pair<std::string, int64_t>;

class CountUntilEnd final
    : public sluice::KeyedProcessFunction<std::string, std::string, WordCount> {
 public:
  void Open(sluice::KeyedRuntimeContext<std::string>& ctx) override {
    count_ = &ctx.GetState(sluice::ValueStateDescriptor<int64_t>("count"));
  }
  void ProcessElement(const std::string&, Context& ctx, sluice::Collector<WordCount>&) override {
    int64_t count = count_->ValueOr(0);
    if (count == 0) ctx.Timers().RegisterEventTimeTimer(sluice::kEndOfTime);
    count_->Update(count + 1);
  }
  void OnTimer(sluice::Timestamp, OnTimerContext& ctx, sluice::Collector<WordCount>& out) override {
    out.Collect({ctx.CurrentKey(), count_->ValueOr(0)});
  }

 private:
  sluice::ValueState<int64_t>* count_ = nullptr;
};

void SplitWords(const std::string& line, sluice::Collector<std::string>& out) {
  std::string word;
  for (char c : line) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!word.empty()) {
      out.Collect(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) out.Collect(std::move(word));
}

void Build(sluice::Pipeline& p) {
  const std::string input = p.Args().GetString("input");
  const std::string output = p.Args().GetString("output", "");
  p.SetParallelism(
      static_cast<int>(p.Args().GetInt("parallelism", p.config().default_parallelism)));

  auto lines = p.Source(sluice::TextFileSource(input), "ReadLines");
  auto counts =
      lines.FlatMap<std::string>(&SplitWords, "SplitWords")
          .KeyBy([](const std::string& w) -> const std::string& { return w; })
          .Process(CountUntilEnd{}, "CountWords")
          .Uid("count-words")
          .Map([](const WordCount& wc) { return wc.first + "\t" + std::to_string(wc.second); },
               "Format");
  if (output.empty()) {
    counts.Print();
  } else {
    counts.Sink(sluice::TextFileSink<std::string>(output), "WriteCounts");
  }
}

}  // namespace

SLUICE_JOB(Build)
