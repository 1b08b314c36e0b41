// influx_bench [--points=N] [--batch=N] [--parallelism=N]
//
// Points per second through the InfluxDB sink into a local influxd (started here, on a free
// loopback port), beside the baseline: the same line protocol, in batches of the same size,
// written with the curl command line (one process, one kept-alive connection). Both write
// into fresh databases of the same server in the same run; prints both rates and the ratio.

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "bench_util.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/sluice.h"
#include "sluice/testing/influx_server.h"

ABSL_FLAG(int64_t, points, 1'000'000, "points to write");
ABSL_FLAG(int64_t, batch, 5000, "points per request");
ABSL_FLAG(int, parallelism, 1, "sink subtasks");

namespace {

sluice::InfluxPoint PointOf(uint64_t i) {
  return sluice::InfluxPoint("bench")
      .Tag("host", absl::StrCat("host-", i % 100))
      .Field("value", static_cast<int64_t>(i))
      .Time(1'700'000'000'000 + static_cast<int64_t>(i / 100),
            sluice::InfluxPrecision::kMilliseconds);
}

}  // namespace

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  const int64_t points = absl::GetFlag(FLAGS_points);
  const int64_t batch = absl::GetFlag(FLAGS_batch);
  const int parallelism = absl::GetFlag(FLAGS_parallelism);
  sluice::testing::InfluxServer server;
  sluice::testing::TempDir dir;

  // Baseline: curl posting the same lines, batch by batch, over one connection.
  server.CreateDatabase("curl");
  std::string config;
  for (int64_t start = 0; start < points; start += batch) {
    std::string body;
    for (int64_t i = start; i < std::min(points, start + batch); ++i) {
      body +=
          *PointOf(static_cast<uint64_t>(i)).ToLineProtocol(sluice::InfluxPrecision::kMilliseconds);
      body.push_back('\n');
    }
    const std::string file = dir.Join(absl::StrCat("batch-", start));
    sluice::testing::WriteFile(file, body);
    absl::StrAppend(&config, start == 0 ? "" : "next\n", "url = \"", server.url(),
                    "/write?db=curl&precision=ms\"\n", "data-binary = \"@", file, "\"\n",
                    "silent\n", "fail\n");
  }
  sluice::testing::WriteFile(dir.Join("curl.config"), config);
  const absl::Time curl_start = absl::Now();
  const auto curl = sluice::testing::RunCommand("curl -K " + dir.Join("curl.config"));
  const double curl_seconds = absl::ToDoubleSeconds(absl::Now() - curl_start);
  if (curl.exit_code != 0) {
    std::fprintf(stderr, "curl failed: %s\n", curl.output.c_str());
    return 1;
  }

  server.CreateDatabase("sink");
  sluice::Pipeline p("influx-bench");
  p.Source(
       sluice::Generator([](uint64_t i) { return i; }, {.count = static_cast<uint64_t>(points)}))
      .Parallelism(parallelism)
      .Map([](const uint64_t& i) { return PointOf(i); })
      .Sink(sluice::InfluxSink::Builder()
                .Url(server.url())
                .Database("sink")
                .BatchPoints(static_cast<size_t>(batch))
                .Build())
      .Parallelism(parallelism);
  const double sink_seconds = sluice::bench::RunSeconds(p);

  const int64_t in_curl = server.Count("curl", "bench", "value");
  const int64_t in_sink = server.Count("sink", "bench", "value");
  std::printf("%lld points, batches of %lld, into influxd 1.6 on loopback\n",
              static_cast<long long>(points), static_cast<long long>(batch));
  std::printf("curl bulk write          %8.0f points/s  (%lld stored)\n", points / curl_seconds,
              static_cast<long long>(in_curl));
  std::printf("InfluxSink, parallelism %d %8.0f points/s  (%lld stored): %.0f%% of curl\n",
              parallelism, points / sink_seconds, static_cast<long long>(in_sink),
              100.0 * curl_seconds / sink_seconds);
  return in_curl == points && in_sink == points ? 0 : 1;
}
