// socket_window_sum --port=PORT [--host=127.0.0.1] [--window=10s]
//                   [--output=influx://HOST:PORT/DB?measurement=records[&...]]
//
// The seed's socket job: integers from a TCP socket (start one with `nc -lk PORT`), one per
// line, summed over processing-time tumbling windows and printed as `window_end_ms,sum` — or,
// with --output, written to InfluxDB as the seed's final job does: one point per window,
// measurement NAME (default records), tag window=<window>, integer field sum, time = window
// end (ms).
// A line that is not an integer is reported on stderr and skipped. The job ends when the
// connection closes; a window still open then does not fire (as in Flink, processing-time
// timers do not fire at end of input).

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sluice/sluice.h"

namespace socket_window_sum {

/// (window end in ms, sum)
using WindowSum = std::pair<int64_t, int64_t>;

class Sum final : public sluice::ProcessAllWindowFunction<int64_t, WindowSum, sluice::TimeWindow> {
 public:
  void Process(Context& ctx, const std::vector<int64_t>& in,
               sluice::Collector<WindowSum>& out) override {
    out.Collect({ctx.window().end, in[0]});
  }
};

void Build(sluice::Pipeline& p) {
  const std::string host = p.Args().GetString("host", "127.0.0.1");
  const int64_t port = p.Args().GetInt("port", 0);
  if (port <= 0 || port > 65535) throw sluice::JobArgumentError("--port must be in 1..65535");
  const absl::Duration window =
      p.Args().GetDuration("window", absl::Seconds(10), /*allow_zero=*/false);
  auto sums =
      p.Source(sluice::SocketTextSource(host, static_cast<int>(port)), "Socket")
          .FlatMap<int64_t>(
              [](const std::string& line, sluice::Collector<int64_t>& out) {
                int64_t v;
                if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &v)) {
                  out.Collect(v);
                } else if (!absl::StripAsciiWhitespace(line).empty()) {
                  std::fprintf(stderr, "socket_window_sum: skipping '%s': not an integer\n",
                               line.c_str());
                }
              },
              "ParseInts")
          .WindowAll(sluice::TumblingProcessingTimeWindows::Of(window))
          .Reduce([](const int64_t& a, const int64_t& b) { return a + b; }, Sum{}, "WindowSum");
  const std::string output = p.Args().GetString("output", "");
  if (output.empty()) {
    sums.Map([](const WindowSum& s) { return absl::StrCat(s.first, ",", s.second); }, "Format")
        .Print();
    return;
  }
  const std::string window_text = absl::FormatDuration(window);  // the tag: "10s", "1m"
  std::string measurement = "records";
  auto sink = sluice::InfluxSinkFromUrl(output, &measurement);
  if (!sink.ok()) throw sluice::JobArgumentError(std::string(sink.status().message()));
  sums.Map(
          [measurement, window_text](const WindowSum& s) {
            return sluice::InfluxPoint(measurement)
                .Tag("window", window_text)
                .Field("sum", s.second)
                .Time(s.first, sluice::InfluxPrecision::kMilliseconds);
          },
          "ToPoint")
      .Sink(*sink, "WriteInflux");
}

}  // namespace socket_window_sum

SLUICE_JOB(socket_window_sum::Build)
