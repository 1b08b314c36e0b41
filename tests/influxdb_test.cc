// The InfluxDB sink against a real influxd (one per test suite, or per test where the test
// kills or pauses it), with a TCP fault proxy in between where the network misbehaves.

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <random>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/connectors/internal/influx_writer.h"
#include "sluice/sluice.h"
#include "sluice/testing/fault_proxy.h"
#include "sluice/testing/influx_server.h"
#include "sluice/testing/log_capture.h"
#include "sluice/testing/operator_harness.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using internal::InfluxWriter;
using testing::FaultProxy;
using ::testing::HasSubstr;
using testing::InfluxServer;

using testing::LogCapture;

InfluxSinkOptions Options(const std::string& url, const std::string& db) {
  InfluxSinkOptions o;
  o.urls = {url};
  o.database = db;
  o.flush_interval = absl::Milliseconds(50);
  o.retry_initial = absl::Milliseconds(10);
  o.retry_max = absl::Milliseconds(200);
  o.connect_timeout = absl::Seconds(2);
  o.request_timeout = absl::Seconds(5);
  return o;
}

std::string Line(const std::string& measurement, int64_t i) {
  return *InfluxPoint(measurement)
              .Tag("id", std::to_string(i))
              .Field("value", i)
              .Time(1'700'000'000'000 + i)
              .ToLineProtocol(InfluxPrecision::kMilliseconds);
}

class InfluxSinkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new InfluxServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  /// A database of its own for each test.
  std::string NewDatabase() {
    const std::string db = absl::StrCat(
        "db_", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_", ++dbs_);
    server_->CreateDatabase(db);
    return db;
  }
  int64_t Count(const std::string& db, const std::string& m = "m") {
    return server_->Count(db, m, "value");
  }
  bool EventuallyCount(const std::string& db, int64_t n, int timeout_ms = 20'000) {
    return testing::WaitFor([&] { return Count(db) == n; }, timeout_ms);
  }

  static InfluxServer* server_;
  int dbs_ = 0;
};
InfluxServer* InfluxSinkTest::server_ = nullptr;

// --- the seed's tests ---

TEST_F(InfluxSinkTest, HostileNamesAndStringsRoundTrip) {
  const std::string db = NewDatabase();
  Pipeline p("influx-escaping");
  p.Source(CollectionSource<int64_t>({1}))
      .Map([](const int64_t&) {
        return InfluxPoint("my meas,x")
            .Tag("tag key=1", "tag,val ue")
            .Field("field k=y", "str \"quoted\" \\ back")
            .Field("value", int64_t{7})
            .Time(400, InfluxPrecision::kMilliseconds);
      })
      .Sink(InfluxSink(Options(server_->url(), db)));
  ASSERT_OK(ExecuteLocally(p));
  const std::string answer = server_->Query("SELECT * FROM \"my meas,x\"", db);
  EXPECT_THAT(answer, HasSubstr("\"name\":\"my meas,x\""));
  EXPECT_THAT(answer, HasSubstr("\"columns\":[\"time\",\"field k=y\",\"tag key=1\",\"value\"]"));
  EXPECT_THAT(answer, HasSubstr("\"str \\\"quoted\\\" \\\\ back\",\"tag,val ue\",7"));
}

TEST_F(InfluxSinkTest, ASinglePointIsWrittenAndReadBack) {
  const std::string db = NewDatabase();
  Pipeline p("influx-single");
  p.Source(CollectionSource<int64_t>({42}))
      .Map([](const int64_t& v) {
        return InfluxPoint("m").Tag("host", "a").Field("value", v).Time(1'700'000'000'000);
      })
      .Sink(InfluxSink::Builder()
                .Url(server_->url())
                .Database(db)
                .BatchPoints(100)
                .FlushInterval(absl::Hours(1))  // only the end of input flushes it
                .Build());
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_THAT(server_->Query("SELECT * FROM m", db), HasSubstr("[1700000000000,\"a\",42]"));
}

TEST_F(InfluxSinkTest, BatchesBySize) {
  const std::string db = NewDatabase();
  InfluxSinkOptions o = Options(server_->url(), db);
  o.batch_points = 10;
  o.flush_interval = absl::Hours(1);
  InfluxWriter writer(o, "test");
  for (int i = 0; i < 25; ++i) ASSERT_OK(writer.Add(Line("m", i)));
  ASSERT_TRUE(EventuallyCount(db, 20)) << Count(db);
  ASSERT_TRUE(testing::WaitFor([&] { return writer.stats().batches == 2; }, 5'000));
  EXPECT_EQ(writer.buffered(), 5u) << "the rest waits for a full batch or the interval";
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(Count(db), 25);
  EXPECT_EQ(writer.stats().batches, 3);
}

TEST_F(InfluxSinkTest, BatchesByTime) {
  const std::string db = NewDatabase();
  InfluxSinkOptions o = Options(server_->url(), db);
  o.batch_points = 1000;
  o.flush_interval = absl::Milliseconds(100);
  InfluxWriter writer(o, "test");
  const absl::Time start = absl::Now();
  for (int i = 0; i < 3; ++i) ASSERT_OK(writer.Add(Line("m", i)));
  ASSERT_TRUE(EventuallyCount(db, 3));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(80)) << "held until the interval (jitter 10%)";
  ASSERT_TRUE(testing::WaitFor([&] { return writer.stats().batches == 1; }, 5'000))
      << "all three in one batch";
}

TEST_F(InfluxSinkTest, BatchesByBytes) {
  const std::string db = NewDatabase();
  InfluxSinkOptions o = Options(server_->url(), db);
  o.batch_bytes = 400;  // about 10 lines of ~38 bytes
  o.flush_interval = absl::Hours(1);
  InfluxWriter writer(o, "test");
  for (int i = 0; i < 100; ++i) ASSERT_OK(writer.Add(Line("m", i)));
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(Count(db), 100);
  EXPECT_GE(writer.stats().batches, 9);
  EXPECT_LE(writer.stats().batches, 12);
}

TEST_F(InfluxSinkTest, ASlowLinkWithinTheTimeoutIsOnlySlow) {
  const std::string db = NewDatabase();
  FaultProxy proxy(server_->port());
  proxy.Delay(absl::Milliseconds(100));
  InfluxWriter writer(Options(proxy.url(), db), "test");
  for (int i = 0; i < 20; ++i) ASSERT_OK(writer.Add(Line("m", i)));
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(Count(db), 20);
  EXPECT_EQ(writer.stats().points_retried, 0);
}

TEST_F(InfluxSinkTest, SurvivesAFrozenThenClosedLinkAndLogsTheRecovery) {
  const std::string db = NewDatabase();
  FaultProxy proxy(server_->port());
  InfluxSinkOptions o = Options(proxy.url(), db);
  o.request_timeout = absl::Milliseconds(300);
  LogCapture log;
  InfluxWriter writer(o, "test sink");
  proxy.Freeze();
  ASSERT_OK(writer.Add(Line("m", 1)));
  ASSERT_TRUE(testing::WaitFor([&] { return writer.stats().points_retried > 0; }, 10'000));
  proxy.Close();
  ASSERT_TRUE(testing::WaitFor([&] { return writer.stats().points_retried > 2; }, 10'000));
  EXPECT_EQ(Count(db), 0);
  proxy.Pass();
  proxy.Open();
  ASSERT_TRUE(EventuallyCount(db, 1));
  ASSERT_TRUE(
      testing::WaitFor([&] { return log.text().find("recovered") != std::string::npos; }, 5'000));
  EXPECT_THAT(log.text(), HasSubstr("test sink: retrying batch of 1 points (1)"));
  EXPECT_THAT(log.text(), HasSubstr("test sink: batch of 1 points recovered"));
}

// --- checkpoints ---

TEST_F(InfluxSinkTest, ACheckpointHoldsTheUnacknowledgedPointsAndARestoreSendsThem) {
  const std::string db = NewDatabase();
  FaultProxy proxy(server_->port());
  proxy.Close();
  auto make_graph = [&](const std::string& url) {
    auto p = std::make_unique<Pipeline>("influx-harness");
    p->Source(CollectionSource<InfluxPoint>({})).Sink(InfluxSink(Options(url, db)));
    return p;
  };
  auto first = make_graph(proxy.url());
  const int sink = static_cast<int>(first->graph().nodes.size()) - 1;
  OperatorSnapshot saved;
  {
    testing::OperatorHarness<InfluxPoint, int> h(first->graph(), sink);
    h.Open();
    for (int i = 0; i < 30; ++i) {
      h.ProcessElement(InfluxPoint("m").Tag("id", std::to_string(i)).Field("value", i).Time(i));
    }
    auto snapshot = h.op().SnapshotNow(1);  // InfluxDB unreachable: nothing acknowledged
    ASSERT_OK(snapshot);
    saved = *snapshot;
    EXPECT_EQ(h.metrics().GetGauge("influx_buffered_points").value(), 30);
    EXPECT_EQ(h.metrics().GetCounter("influx_points_written").value(), 0);
    h.Close();
  }
  EXPECT_EQ(Count(db), 0);
  auto second = make_graph(server_->url());
  testing::OperatorHarness<InfluxPoint, int> h(second->graph(), sink);
  h.op().InitializeState(RedistributeState({saved}, 0, 1, 128));
  h.Open();
  h.Finish();
  EXPECT_EQ(Count(db), 30);
  EXPECT_EQ(h.metrics().GetCounter("influx_points_written").value(), 30);
  EXPECT_EQ(h.metrics().GetGauge("influx_buffered_points").value(), 0);
  EXPECT_GE(h.metrics().GetCounter("influx_batches").value(), 1);
  // Every written batch's request is in the duration histogram.
  EXPECT_EQ(h.metrics().GetHistogram("influx_batch_duration_seconds").count(),
            h.metrics().GetCounter("influx_batches").value());
  h.Close();
}

// --- what InfluxDB answers ---

TEST_F(InfluxSinkTest, ServerErrorsAreRetriedUntilTheWriteSucceeds) {
  const std::string db = NewDatabase();
  FaultProxy proxy(server_->port());
  proxy.Respond(
      {FaultProxy::HttpResponse(500, "Internal Server Error", "", R"({"error":"timeout"})"),
       FaultProxy::HttpResponse(502, "Bad Gateway", "", "")});
  InfluxWriter writer(Options(proxy.url(), db), "test");
  for (int i = 0; i < 5; ++i) ASSERT_OK(writer.Add(Line("m", i)));
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(Count(db), 5);
  EXPECT_EQ(proxy.responses_left(), 0);
  EXPECT_EQ(writer.stats().points_retried, 10);
}

TEST_F(InfluxSinkTest, RetryAfterIsHonoured) {
  const std::string db = NewDatabase();
  FaultProxy proxy(server_->port());
  proxy.Respond({FaultProxy::HttpResponse(503, "Service Unavailable", "Retry-After: 1\r\n",
                                          R"({"error":"request throttled"})"),
                 FaultProxy::HttpResponse(429, "Too Many Requests", "Retry-After: 1\r\n", "")});
  InfluxWriter writer(Options(proxy.url(), db), "test");  // backoff alone: 10-200 ms
  const absl::Time start = absl::Now();
  ASSERT_OK(writer.Add(Line("m", 1)));
  ASSERT_OK(writer.Flush());
  EXPECT_GE(absl::Now() - start, absl::Seconds(2)) << "twice Retry-After: 1";
  EXPECT_EQ(Count(db), 1);
}

TEST_F(InfluxSinkTest, RetryAfterAsAnHttpDateIsHonouredToo) {
  const std::string db = NewDatabase();
  FaultProxy proxy(server_->port());
  // Three seconds ahead (a date has whole seconds: at least two of them remain).
  const std::string date = absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT",
                                            absl::Now() + absl::Seconds(3), absl::UTCTimeZone());
  proxy.Respond({FaultProxy::HttpResponse(503, "Service Unavailable",
                                          absl::StrCat("Retry-After: ", date, "\r\n"), "")});
  InfluxWriter writer(Options(proxy.url(), db), "test");  // backoff alone: 10-200 ms
  const absl::Time start = absl::Now();
  ASSERT_OK(writer.Add(Line("m", 1)));
  ASSERT_OK(writer.Flush());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1900)) << "Retry-After: " << date;
  EXPECT_EQ(Count(db), 1);
}

std::string Point(const std::string& measurement, const std::string& id,
                  InfluxPoint::FieldValue v) {
  InfluxPoint p(measurement);
  p.Tag("id", id).Time(1'700'000'000'000 + static_cast<int64_t>(id.size()));
  std::visit([&](const auto& x) { p.Field("value", x); }, v);
  return *p.ToLineProtocol(InfluxPrecision::kMilliseconds);
}

TEST_F(InfluxSinkTest, ABadPointIsReportedAndTheGoodOnesAreKept) {
  const std::string db = NewDatabase();
  InfluxSinkOptions o = Options(server_->url(), db);
  o.flush_interval = absl::Hours(1);
  LogCapture log;
  InfluxWriter writer(o, "test");
  ASSERT_OK(writer.Add(Point("m", "a", int64_t{1})));
  ASSERT_OK(writer.Flush());  // "value" is an integer field now
  // A float is a field type conflict: InfluxDB writes the rest (a partial write).
  ASSERT_OK(writer.Add(Point("m", "bb", int64_t{2})));
  ASSERT_OK(writer.Add(Point("m", "ccc", 2.5)));
  ASSERT_OK(writer.Add(Point("m", "dddd", int64_t{4})));
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(Count(db), 3);
  EXPECT_EQ(writer.stats().points_rejected, 1);
  EXPECT_EQ(writer.stats().points_written, 3);
  EXPECT_THAT(log.text(), HasSubstr("rejected 1 of 3 points (not retried): partial write: field "
                                    "type conflict"));
}

TEST_F(InfluxSinkTest, ABatchRefusedAsAWholeIsHalvedUntilOnlyTheBadPointIsLeft) {
  const std::string db = NewDatabase();
  InfluxSinkOptions o = Options(server_->url(), db);
  o.flush_interval = absl::Hours(1);
  InfluxWriter writer(o, "test");
  // A new field with two types in one batch: InfluxDB refuses the whole batch.
  ASSERT_OK(writer.Add(Point("m", "a", int64_t{1})));
  ASSERT_OK(writer.Add(Point("m", "bb", int64_t{2})));
  ASSERT_OK(writer.Add(Point("m", "ccc", 2.5)));
  ASSERT_OK(writer.Add(Point("m", "dddd", int64_t{4})));
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(Count(db), 3);
  EXPECT_EQ(writer.stats().points_rejected, 1);
}

TEST_F(InfluxSinkTest, AnUnknownDatabaseFailsWithTheServersText) {
  InfluxWriter writer(Options(server_->url(), "no_such_db"), "test");
  ASSERT_OK(writer.Add(Line("m", 1)));
  const absl::Status s = writer.Flush();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("(HTTP 404): database not found"));
  EXPECT_THAT(std::string(writer.Add(Line("m", 2)).message()), HasSubstr("database not found"))
      << "a failed writer takes nothing more";
}

TEST_F(InfluxSinkTest, AnUnknownRetentionPolicyFailsTheJob) {
  const std::string db = NewDatabase();
  InfluxSinkOptions o = Options(server_->url(), db);
  o.retention_policy = "nope";
  Pipeline p("influx-rp");
  p.Source(CollectionSource<int64_t>({1}))
      .Map([](const int64_t& v) { return InfluxPoint("m").Field("value", v).Time(1); })
      .Sink(InfluxSink(o));
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("retention policy not found"));
}

TEST(InfluxAuthTest, MissingOrInsufficientCredentialsFailWithTheServersText) {
  InfluxServer server(InfluxServer::Options{.auth = true});
  server.CreateDatabase("d");
  server.Query("CREATE USER reader WITH PASSWORD 'r'");
  {
    InfluxWriter writer(Options(server.url(), "d"), "test");
    ASSERT_OK(writer.Add(Line("m", 1)));
    const absl::Status s = writer.Flush();
    EXPECT_THAT(std::string(s.message()), HasSubstr("(HTTP 401)"));
  }
  {
    InfluxSinkOptions o = Options(server.url(), "d");
    o.user = "reader";
    o.password = "r";
    InfluxWriter writer(o, "test");
    ASSERT_OK(writer.Add(Line("m", 1)));
    EXPECT_THAT(std::string(writer.Flush().message()), HasSubstr("(HTTP 403)"));
  }
  InfluxSinkOptions o = Options(server.url(), "d");
  o.user = "admin";
  o.password = "admin";
  InfluxWriter writer(o, "test");
  ASSERT_OK(writer.Add(Line("m", 1)));
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(server.Count("d", "m", "value"), 1);
}

TEST(InfluxBodyLimitTest, ATooLargeBatchIsSplitInHalves) {
  InfluxServer server(InfluxServer::Options{.max_body_size = 2000});
  server.CreateDatabase("d");
  InfluxSinkOptions o = Options(server.url(), "d");
  o.batch_points = 200;
  o.flush_interval = absl::Hours(1);
  LogCapture log;
  InfluxWriter writer(o, "test");
  for (int i = 0; i < 200; ++i) ASSERT_OK(writer.Add(Line("m", i)));  // about 7 KB
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(server.Count("d", "m", "value"), 200);
  EXPECT_EQ(writer.stats().points_rejected, 0);
  EXPECT_THAT(log.text(), HasSubstr("too large for the server (413): sending it in two halves"));
}

TEST(InfluxTlsTest, WritesOverHttpsTrustingTheGivenCertificate) {
  InfluxServer server(InfluxServer::Options{.tls = true});
  server.CreateDatabase("d");
  {
    InfluxWriter untrusting(Options(server.url(), "d"), "test");
    ASSERT_OK(untrusting.Add(Line("m", 1)));
    const absl::Status s = untrusting.Flush();
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << "not retried: it cannot help";
    EXPECT_THAT(std::string(s.message()), HasSubstr("cannot write to InfluxDB at https://"));
  }
  InfluxSinkOptions o = Options(server.url(), "d");
  o.ca_file = server.ca_file();
  o.gzip = true;
  InfluxWriter writer(o, "test");
  for (int i = 0; i < 10; ++i) ASSERT_OK(writer.Add(Line("m", i)));
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(server.Count("d", "m", "value"), 10);
}

// InfluxDB 2.x is not packaged here: the request is checked as a 2.x server would see it.
TEST(InfluxV2Test, WritesToTheV2EndpointWithTheToken) {
  FaultProxy server(testing::PickFreePort());  // answers every request itself
  server.Respond({FaultProxy::HttpResponse(204, "No Content", "", "")});
  InfluxSinkOptions o = Options(server.url(), "");
  o.api_version = 2;
  o.org = "acme corp";
  o.bucket = "metrics";
  o.token = "s3cr3t";
  InfluxWriter writer(o, "test");
  ASSERT_OK(writer.Add(Line("m", 1)));
  ASSERT_OK(writer.Flush());
  ASSERT_EQ(server.answered_requests().size(), 1u);
  const std::string request = server.answered_requests()[0];
  EXPECT_THAT(request,
              HasSubstr("POST /api/v2/write?org=acme%20corp&bucket=metrics&precision=ms HTTP/1.1"));
  EXPECT_THAT(request, HasSubstr("Authorization: Token s3cr3t"));
  EXPECT_THAT(request, HasSubstr("\r\n\r\n" + Line("m", 1) + "\n"));
}

// --- faults of the server and the network ---

// influxd's own write throttling answers 503 "request throttled": four sink subtasks against
// one concurrent write get some, and every point still arrives.
TEST(InfluxServerFaultTest, ThrottledWritesAreRetried) {
  InfluxServer server(InfluxServer::Options{.max_concurrent_writes = 1});
  server.CreateDatabase("d");
  InfluxSinkOptions o = Options(server.url(), "d");
  o.batch_points = 50;
  Pipeline p("influx-throttled");
  p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }, {.count = 20'000}))
      .Parallelism(4)
      .Map([](const int64_t& v) {
        return InfluxPoint("m").Tag("id", std::to_string(v)).Field("value", v).Time(v);
      })
      .Sink(InfluxSink(o))
      .Parallelism(4);
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_EQ(server.Count("d", "m", "value"), 20'000);
}

TEST(InfluxServerFaultTest, KilledDuringAFlushAndRestarted) {
  InfluxServer server;
  server.CreateDatabase("d");
  InfluxWriter writer(Options(server.url(), "d"), "test");
  for (int i = 0; i < 100; ++i) ASSERT_OK(writer.Add(Line("m", i)));
  server.Kill();
  for (int i = 100; i < 200; ++i) ASSERT_OK(writer.Add(Line("m", i)));
  ASSERT_TRUE(testing::WaitFor([&] { return writer.stats().points_retried > 0; }, 10'000));
  server.Start();
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(server.Count("d", "m", "value"), 200);
}

TEST(InfluxServerFaultTest, AHungServerTimesOutAndNothingIsDuplicated) {
  InfluxServer server;
  server.CreateDatabase("d");
  InfluxSinkOptions o = Options(server.url(), "d");
  o.request_timeout = absl::Milliseconds(300);
  InfluxWriter writer(o, "test");
  server.Pause();
  for (int i = 0; i < 50; ++i) ASSERT_OK(writer.Add(Line("m", i)));
  // Several timed-out requests: the server may apply each of them once it runs again.
  ASSERT_TRUE(testing::WaitFor([&] { return writer.stats().points_retried >= 100; }, 20'000));
  server.Resume();
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(server.Count("d", "m", "value"), 50) << "resent points overwrite themselves";
}

TEST_F(InfluxSinkTest, AConnectionResetInTheMiddleOfTheBodyIsRetried) {
  const std::string db = NewDatabase();
  FaultProxy proxy(server_->port());
  proxy.ResetAfter(300);
  InfluxSinkOptions o = Options(proxy.url(), db);
  o.flush_interval = absl::Hours(1);
  InfluxWriter writer(o, "test");
  for (int i = 0; i < 100; ++i) ASSERT_OK(writer.Add(Line("m", i)));  // about 3.5 KB
  std::thread flush([&] { EXPECT_OK(writer.Flush()); });
  ASSERT_TRUE(testing::WaitFor([&] { return writer.stats().points_retried >= 200; }, 10'000));
  EXPECT_EQ(Count(db), 0) << "no partial batch is stored";
  proxy.Pass();
  flush.join();
  EXPECT_EQ(Count(db), 100);
}

TEST_F(InfluxSinkTest, ALongOutageBackPressuresThenEverythingArrives) {
  const std::string db = NewDatabase();
  FaultProxy proxy(server_->port());
  InfluxSinkOptions o = Options(proxy.url(), db);
  o.batch_points = 10;
  o.max_buffered_points = 50;
  InfluxWriter writer(o, "test");
  proxy.Close();
  std::atomic<int> added{0};
  std::thread producer([&] {
    for (int i = 0; i < 200; ++i) {
      EXPECT_OK(writer.Add(Line("m", i)));
      ++added;
    }
  });
  ASSERT_TRUE(testing::WaitFor([&] { return added == 50; }, 10'000));
  // Blocked: the buffer holds its bound and no more.
  ASSERT_TRUE(testing::WaitFor([&] { return writer.stats().points_retried >= 30; }, 10'000));
  EXPECT_EQ(added, 50);
  EXPECT_EQ(writer.buffered(), 50u);
  proxy.Open();
  producer.join();
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(Count(db), 200);
}

TEST_F(InfluxSinkTest, GivingUpAfterTheRetryTimeFailsTheJobNamingTheError) {
  const std::string db = NewDatabase();
  FaultProxy proxy(server_->port());
  proxy.Close();
  InfluxSinkOptions o = Options(proxy.url(), db);
  o.max_retry_time = absl::Milliseconds(300);
  Pipeline p("influx-give-up");
  p.Source(CollectionSource<int64_t>({1, 2, 3}))
      .Map([](const int64_t& v) { return InfluxPoint("m").Field("value", v).Time(v); })
      .Sink(InfluxSink(o));
  auto r = ExecuteLocally(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("InfluxDB did not take a batch of 3 points within 300ms"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no answer from " + proxy.url()));
}

TEST_F(InfluxSinkTest, TheNextUrlTakesOverWhenOneIsDown) {
  const std::string db = NewDatabase();
  FaultProxy dead(server_->port());
  dead.Close();
  InfluxSinkOptions o = Options(dead.url(), db);
  o.urls.push_back(server_->url());
  o.gzip = true;
  InfluxWriter writer(o, "test");
  for (int i = 0; i < 10; ++i) ASSERT_OK(writer.Add(Line("m", i)));
  ASSERT_OK(writer.Flush());
  EXPECT_EQ(Count(db), 10);
}

TEST_F(InfluxSinkTest, PendingPointsAreFlushedAtTheEndOfInput) {
  const std::string db = NewDatabase();
  InfluxSinkOptions o = Options(server_->url(), db);
  o.batch_points = 100'000;
  o.flush_interval = absl::Hours(1);
  Pipeline p("influx-end");
  p.Source(Generator([](uint64_t i) { return static_cast<int64_t>(i); }, {.count = 1000}))
      .Map([](const int64_t& v) {
        return InfluxPoint("m").Tag("id", std::to_string(v)).Field("value", v).Time(v);
      })
      .Sink(InfluxSink(o))
      .Parallelism(2);
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_EQ(Count(db), 1000);
}

// --- the windowed_stats example writing to InfluxDB ---

/// The id of the newest completed checkpoint in a job's checkpoint directory (0: none).
int64_t NewestCheckpoint(const std::string& job_dir) {
  int64_t newest = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(job_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("chk-") && std::filesystem::exists(e.path() / "_metadata")) {
      newest = std::max<int64_t>(newest, std::stoll(name.substr(4)));
    }
  }
  return newest;
}

class WindowedStatsToInfluxTest : public InfluxSinkTest {
 protected:
  static std::string Binary() { return testing::BuildDir() + "/examples/windowed_stats"; }

  /// Readings no more than 2 s out of order (none late with 5 s of out-of-orderness).
  void WriteReadings(const std::string& path, int lines) {
    std::mt19937 rng(11);
    std::string csv;
    for (int i = 0; i < lines; ++i) {
      const int64_t ts = 1700000000000 + i * 10 + static_cast<int64_t>(rng() % 2000);
      absl::StrAppend(&csv, "sensor-", rng() % 20, ",", ts, ",", static_cast<int>(rng() % 101) - 50,
                      "\n");
    }
    testing::WriteFile(path, csv);
  }

  std::vector<std::string> Args(const std::string& input, const std::string& output) {
    return {Binary(),
            "--input=" + input,
            "--output=" + output,
            "--window=tumbling:10s",
            "--out-of-orderness=5s",
            "--parallelism=2"};
  }

  /// What a run to files writes, sorted.
  std::vector<std::string> FileOutput(const std::string& input) {
    const std::string out = dir_.Join("file-out");
    std::string command;
    for (const auto& a : Args(input, out)) absl::StrAppend(&command, "'", a, "' ");
    auto r = testing::RunCommand(command);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto lines = testing::ReadPartFileLines(out);
    std::sort(lines.begin(), lines.end());
    return lines;
  }

  /// The firings in InfluxDB as the same lines, sorted.
  std::vector<std::string> InfluxOutput(const std::string& db) {
    // Columns: time, count, key, max, min, start, sum.
    const std::string answer = server_->Query("SELECT * FROM \"stats\"", db);
    static const std::regex kRow(
        R"re(\[(\d+),(-?\d+),"([^"]*)",(-?\d+),(-?\d+),"(\d+)",(-?\d+)\])re");
    std::vector<std::string> lines;
    for (auto it = std::sregex_iterator(answer.begin(), answer.end(), kRow);
         it != std::sregex_iterator(); ++it) {
      const std::smatch& m = *it;
      lines.push_back(absl::StrCat(m[3].str(), ",", m[6].str(), ",", m[1].str(), ",", m[2].str(),
                                   ",", m[7].str(), ",", m[5].str(), ",", m[4].str()));
    }
    std::sort(lines.begin(), lines.end());
    return lines;
  }

  testing::TempDir dir_;
};

TEST_F(WindowedStatsToInfluxTest, OnePointPerWindowEqualToTheFileOutput) {
  const std::string db = NewDatabase();
  WriteReadings(dir_.Join("in.csv"), 20'000);
  const auto expected = FileOutput(dir_.Join("in.csv"));
  ASSERT_GT(expected.size(), 100u);
  std::string command;
  for (const auto& a :
       Args(dir_.Join("in.csv"), absl::StrCat("influx://127.0.0.1:", server_->port(), "/", db,
                                              "?measurement=stats&batch_points=500"))) {
    absl::StrAppend(&command, "'", a, "' ");
  }
  auto r = testing::RunCommand(command);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(InfluxOutput(db), expected);
}

TEST_F(WindowedStatsToInfluxTest, BadInfluxUrlIsAClearArgumentError) {
  std::string command;
  for (const auto& a : Args(dir_.Join("none.csv"), "influx://127.0.0.1:1/db?batch=1")) {
    absl::StrAppend(&command, "'", a, "' ");
  }
  auto r = testing::RunCommand(command);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("unknown parameter 'batch'"));
}

// The job with checkpoints every 50 ms, killed with SIGKILL and resumed from its checkpoint
// directory: InfluxDB ends up with every window's result exactly as a run without failures
// writes it.
class KilledWindowedStatsTest : public WindowedStatsToInfluxTest {
 protected:
  /// Runs the job until `ready` holds (or fails the test), kills it, runs `between`, resumes.
  void KillAndResume(const std::string& db, FaultProxy& proxy, const std::function<bool()>& ready,
                     const std::function<void()>& between) {
    WriteReadings(dir_.Join("in.csv"), 20'000);
    const auto expected = FileOutput(dir_.Join("in.csv"));
    checkpoints_ = dir_.Join("ck");
    log_ = dir_.Join("first.log");
    const std::string output =
        absl::StrCat("influx://127.0.0.1:", proxy.port(), "/", db,
                     "?measurement=stats&flush_interval=20ms&retry_initial=10ms&retry_max=50ms");
    std::vector<std::string> argv = Args(dir_.Join("in.csv"), output);
    for (const std::string& a :
         {std::string("--checkpoint-interval=50ms"), "--checkpoint-dir=" + checkpoints_,
          std::string("--max-source-rate=5000")}) {
      argv.push_back(a);
    }
    {
      testing::ChildProcess process(argv, log_);
      ASSERT_TRUE(testing::WaitFor([&] { return !process.Running() || ready(); }, 20'000));
      ASSERT_TRUE(process.Running()) << testing::ReadFile(log_);
      process.Signal(SIGKILL);
      EXPECT_EQ(process.Wait(), 128 + SIGKILL);
    }
    between();
    std::string command;
    for (const auto& a : argv) absl::StrAppend(&command, "'", a, "' ");
    absl::StrAppend(&command, "'--from-savepoint=", checkpoints_, "/windowed_stats'");
    auto r = testing::RunCommand(command);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(InfluxOutput(db), expected);
  }
  int64_t Newest() { return NewestCheckpoint(checkpoints_ + "/windowed_stats"); }

  std::string checkpoints_;
  std::string log_;
};

// Killed after points were written and before the next checkpoint: the replay writes them
// again, and they overwrite themselves.
TEST_F(KilledWindowedStatsTest, KilledAfterAWriteReplaysWithoutDuplicates) {
  const std::string db = NewDatabase();
  FaultProxy proxy(server_->port());
  int64_t at_checkpoint = -1;
  KillAndResume(
      db, proxy,
      [&] {
        // Kill just after a write that followed a completed checkpoint.
        if (at_checkpoint < 0 && Newest() > 0) at_checkpoint = InfluxOutput(db).size();
        return at_checkpoint >= 0 && static_cast<int64_t>(InfluxOutput(db).size()) > at_checkpoint;
      },
      [] {});
}

// Killed while InfluxDB is unreachable: the points of completed checkpoints exist only in the
// sink's checkpointed state, and the resumed job sends them.
TEST_F(KilledWindowedStatsTest, KilledWhileInfluxIsDownResumesWithNothingLost) {
  const std::string db = NewDatabase();
  FaultProxy proxy(server_->port());
  proxy.Close();
  int64_t seen = -1;
  KillAndResume(
      db, proxy,
      [&] {
        // Undeliverable firings, then two checkpoints that hold them.
        if (seen < 0 && testing::ReadFile(log_).find("retrying batch") != std::string::npos) {
          seen = Newest();
        }
        return seen >= 0 && Newest() >= seen + 2;
      },
      [&] {
        EXPECT_TRUE(InfluxOutput(db).empty());
        proxy.Open();
      });
}

// The seed's final job: integers from a socket, summed over 10 s (here 300 ms) windows, one
// point per window in InfluxDB.
TEST_F(InfluxSinkTest, TheSeedsSocketJobWritesItsWindowSums) {
  const std::string db = NewDatabase();
  int port = 0;
  const int listener = testing::ListenOnLoopback(&port);
  ASSERT_GE(listener, 0);
  std::atomic<bool> close_now{false};
  std::thread server([&] {
    const int conn = ::accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    const std::string lines = "1\n2\nx\n3\n";
    (void)!::write(conn, lines.data(), lines.size());
    while (!close_now) ::usleep(10'000);  // open until the sums are in InfluxDB
    ::close(conn);
  });
  testing::TempDir dir;
  const std::string log = dir.Join("socket.log");
  testing::ChildProcess job({testing::BuildDir() + "/examples/socket_window_sum",
                             absl::StrCat("--port=", port), "--window=300ms",
                             absl::StrCat("--output=influx://127.0.0.1:", server_->port(), "/", db,
                                          "?measurement=records&flush_interval=50ms")},
                            log);
  const bool arrived = testing::WaitFor(
      [&] { return server_->QueryNumber("SELECT sum(\"sum\") FROM records", db) == 6; }, 20'000);
  close_now = true;
  server.join();
  ::close(listener);
  EXPECT_EQ(job.Wait(), 0) << testing::ReadFile(log);
  EXPECT_TRUE(arrived) << testing::ReadFile(log);
  EXPECT_THAT(server_->Query("SELECT * FROM records", db), HasSubstr("\"300ms\""))
      << "tagged with the window";
}

}  // namespace
}  // namespace sluice
