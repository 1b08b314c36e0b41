// session_alerts --input=CSV [--gap-ms=N] [--output=DIR]
//
// A custom-operator example: a user-written source and a KeyedProcessFunction with state
// and timers. The input has `user,timestamp_ms,page` lines in time order; a user's session
// ends when no click follows for gap-ms, and the job emits one alert per ended session:
// `user,session_start_ms,session_end_ms,clicks`.

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sluice/sluice.h"

namespace example {

struct Click {
  std::string user;
  int64_t timestamp_ms = 0;
  std::string page;
};
SLUICE_SERIALIZABLE(Click, user, timestamp_ms, page)

struct Session {
  int64_t start_ms = 0;
  int64_t last_ms = 0;
  int64_t clicks = 0;
};
SLUICE_SERIALIZABLE(Session, start_ms, last_ms, clicks)

/// Reads clicks from a CSV file with their event timestamps; since the file is in time
/// order, each click's time is also the watermark. A malformed line fails the job with its
/// line number.
class ClickFileSource final : public sluice::SourceFunction<Click> {
 public:
  explicit ClickFileSource(std::string path) : path_(std::move(path)) {}
  ClickFileSource(const ClickFileSource& o) : path_(o.path_) {}

  void Open(sluice::RuntimeContext& ctx) override {
    lines_ = std::make_unique<sluice::TextFileSource>(path_);
    lines_->Open(ctx);
  }
  sluice::SourceStatus Poll(sluice::SourceOutput<Click>& out) override {
    sluice::Batch<std::string> batch;
    sluice::SourceOutput<std::string> line_out(&batch, out.batch_hint(), &IgnoreWatermark, nullptr);
    sluice::SourceStatus status = lines_->Poll(line_out);
    for (auto& r : batch) {
      ++line_number_;
      std::vector<std::string> f = absl::StrSplit(r.value, ',');
      Click c;
      if (f.size() != 3 || !absl::SimpleAtoi(f[1], &c.timestamp_ms)) {
        throw std::runtime_error(absl::StrCat(
            path_, ":", line_number_, ": expected user,timestamp_ms,page but got '", r.value, "'"));
      }
      c.user = f[0];
      c.page = f[2];
      int64_t ts = c.timestamp_ms;
      out.CollectWithTimestamp(std::move(c), ts);
      out.EmitWatermark(ts - 1);
    }
    return status;
  }
  bool IsParallel() const override { return false; }

 private:
  static void IgnoreWatermark(void*, sluice::Timestamp) {}
  std::string path_;
  std::unique_ptr<sluice::TextFileSource> lines_;
  int64_t line_number_ = 0;
};

/// Tracks each user's session in keyed state and moves a timer `gap` past the last click.
class SessionTimeout final : public sluice::KeyedProcessFunction<std::string, Click, std::string> {
 public:
  explicit SessionTimeout(int64_t gap_ms) : gap_ms_(gap_ms) {}

  void Open(sluice::KeyedRuntimeContext<std::string>& ctx) override {
    session_ = &ctx.GetState(sluice::ValueStateDescriptor<Session>("session"));
  }
  void ProcessElement(const Click& click, Context& ctx,
                      sluice::Collector<std::string>& out) override {
    std::optional<Session> current = session_->Value();
    if (current) {
      ctx.Timers().DeleteEventTimeTimer(current->last_ms + gap_ms_);
      if (click.timestamp_ms >= current->last_ms + gap_ms_) {
        // The session ended before this click; its timer had not fired yet only because
        // the watermark lags the click.
        Emit(ctx.CurrentKey(), *current, out);
        current.reset();
      }
    }
    Session s = current.value_or(Session{click.timestamp_ms, click.timestamp_ms, 0});
    s.last_ms = click.timestamp_ms;
    s.clicks++;
    session_->Update(s);
    ctx.Timers().RegisterEventTimeTimer(s.last_ms + gap_ms_);
  }
  void OnTimer(sluice::Timestamp, OnTimerContext& ctx,
               sluice::Collector<std::string>& out) override {
    auto s = session_->Value();
    if (!s) return;
    Emit(ctx.CurrentKey(), *s, out);
    session_->Clear();
  }

 private:
  void Emit(const std::string& user, const Session& s, sluice::Collector<std::string>& out) {
    out.Collect(absl::StrCat(user, ",", s.start_ms, ",", s.last_ms + gap_ms_, ",", s.clicks));
  }

  int64_t gap_ms_;
  sluice::ValueState<Session>* session_ = nullptr;
};

void Build(sluice::Pipeline& p) {
  const std::string input = p.Args().GetString("input");
  const int64_t gap_ms = p.Args().GetInt("gap-ms", 30 * 60 * 1000);
  const std::string output = p.Args().GetString("output", "");
  if (gap_ms <= 0) throw sluice::JobArgumentError("--gap-ms must be positive");
  p.SetParallelism(
      static_cast<int>(p.Args().GetInt("parallelism", p.config().default_parallelism)));

  auto alerts = p.Source(ClickFileSource(input), "ReadClicks")
                    .KeyBy(&Click::user)
                    .Process(SessionTimeout(gap_ms), "SessionTimeout")
                    .Uid("session-timeout");
  if (output.empty()) {
    alerts.Print();
  } else {
    alerts.Sink(sluice::TextFileSink<std::string>(output), "WriteAlerts");
  }
}

}  // namespace example

SLUICE_JOB(example::Build)
