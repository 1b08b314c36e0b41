// The PostgreSQL connectors against a real server (Debian's postgresql-15, one per test
// process): the polling source (order, ties, parallel splits, types, errors, lost connections,
// concurrent writes under chaos), the sink (COPY, upsert, prepared transactions across a kill
// at each point, chaos) and the `table_changes` example end to end.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sluice/sluice.h"
#include "sluice/testing/operator_harness.h"
#include "sluice/testing/postgres_server.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using testing::PostgresServer;

/// Lines by the subtask that received them.
struct BySubtask {
  explicit BySubtask(int parallelism) : lines(parallelism) {}
  std::mutex mu;
  std::vector<std::vector<std::string>> lines;
};

class CollectBySubtask final : public SinkFunction<std::string> {
 public:
  explicit CollectBySubtask(std::shared_ptr<BySubtask> into) : into_(std::move(into)) {}
  void Open(RuntimeContext& ctx) override { subtask_ = ctx.SubtaskIndex(); }
  void Invoke(const std::string& line, const SinkContext&) override {
    std::lock_guard<std::mutex> lock(into_->mu);
    into_->lines[subtask_].push_back(line);
  }

 private:
  std::shared_ptr<BySubtask> into_;
  int subtask_ = 0;
};

/// One server for every test of this process (each test runs in a process of its own under
/// ctest; run together, they share it and keep to their own tables).
class PostgresTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new PostgresServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static PostgresServer& server() { return *server_; }

  PostgresSourceOptions SourceOn(const std::string& table, const std::string& position) {
    PostgresSourceOptions o;
    o.url = server().url();
    o.table = table;
    o.position_column = position;
    o.bounded = true;
    return o;
  }

  /// The records of a bounded job reading `o` at `parallelism`, subtask by subtask.
  absl::StatusOr<std::vector<std::vector<std::string>>> ReadAll(const PostgresSourceOptions& o,
                                                                int parallelism = 1) {
    Pipeline p("read-table");
    auto collected = std::make_shared<BySubtask>(parallelism);
    p.Source(PostgresSource<std::string>(o))
        .Parallelism(parallelism)
        .Sink(CollectBySubtask(collected))
        .Parallelism(parallelism);
    auto r = ExecuteLocally(p);
    if (!r.ok()) return r.status();
    return collected->lines;
  }

  static PostgresServer* server_;
};
PostgresServer* PostgresTest::server_ = nullptr;

/// A fresh chaos seed per run (printed; SLUICE_POSTGRES_CHAOS_SEED=N repeats a run's crashes).
uint64_t ChaosSeed() {
  const char* given = std::getenv("SLUICE_POSTGRES_CHAOS_SEED");
  const uint64_t seed = given != nullptr ? std::stoull(given) : std::random_device{}();
  std::printf("chaos seed %llu (SLUICE_POSTGRES_CHAOS_SEED=%llu repeats it)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  return seed;
}

/// The integer field `name` of each JSON line.
std::vector<int64_t> Field(const std::vector<std::string>& lines, const std::string& name) {
  std::vector<int64_t> out;
  for (const auto& l : lines) out.push_back(nlohmann::json::parse(l)[name].get<int64_t>());
  return out;
}

// --- source ---

// Rows arrive in position order, each once, also when a query's fetch ends in the middle of a
// run of equal positions (fetch_size 3, ties of 7): the keys read at the last position carry
// the reading over.
TEST_F(PostgresTest, SourceReadsEveryRowOnceInPositionOrderAcrossTies) {
  server().Execute("CREATE TABLE ties (id integer PRIMARY KEY, pos integer NOT NULL, name text)");
  std::vector<int> ids(500);
  for (int i = 0; i < 500; ++i) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), std::mt19937(5));
  std::string values;
  for (int id : ids)
    absl::StrAppend(&values, values.empty() ? "" : ",", "(", id, ",", id / 7, ",'n", id, "')");
  server().Execute("INSERT INTO ties VALUES " + values);
  PostgresSourceOptions o = SourceOn("ties", "pos");
  o.fetch_size = 3;
  auto got = ReadAll(o);
  ASSERT_OK(got);
  const auto& lines = (*got)[0];
  const std::vector<int64_t> positions = Field(lines, "pos");
  EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end()));
  std::vector<int64_t> read_ids = Field(lines, "id");
  std::sort(read_ids.begin(), read_ids.end());
  std::vector<int64_t> all(500);
  for (int i = 0; i < 500; ++i) all[i] = i;
  EXPECT_EQ(read_ids, all);
  for (const auto& l : lines) {
    const auto j = nlohmann::json::parse(l);
    EXPECT_EQ(j["pos"].get<int64_t>(), j["id"].get<int64_t>() / 7) << l;
    EXPECT_EQ(j["name"].get<std::string>(), absl::StrCat("n", j["id"].get<int64_t>())) << l;
  }
}

// split_by_key at parallelism 3: the subtasks share the rows out by key, each row once, each
// subtask's rows in position order.
TEST_F(PostgresTest, SourceSplitByKeyReadsEachRowOnceOverAllSubtasks) {
  server().Execute("CREATE TABLE split (id bigint PRIMARY KEY, at timestamptz NOT NULL)");
  server().Execute(
      "INSERT INTO split SELECT i, timestamptz '2026-01-01 00:00:00+00' + (i / 10) * interval "
      "'1 second' FROM generate_series(1, 3000) AS i");
  PostgresSourceOptions o = SourceOn("split", "at");
  o.split_by_key = true;
  o.fetch_size = 64;
  auto got = ReadAll(o, 3);
  ASSERT_OK(got);
  std::vector<int64_t> ids;
  for (const auto& lines : *got) {
    EXPECT_GT(lines.size(), 500u) << "each subtask reads about a third";
    std::vector<std::string> times;
    for (const auto& l : lines) times.push_back(nlohmann::json::parse(l)["at"]);
    EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));  // ISO-8601 sorts as time
    for (int64_t id : Field(lines, "id")) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ASSERT_EQ(ids.size(), 3000u);
  for (int i = 0; i < 3000; ++i) ASSERT_EQ(ids[i], i + 1);
}

TEST_F(PostgresTest, SourceMapsEachTypeToJson) {
  server().Execute(
      "CREATE TABLE kinds (id bigint PRIMARY KEY, small smallint, flag boolean, ratio double "
      "precision, amount numeric(10,3), label varchar(20), note text, day date, at timestamp, "
      "at_tz timestamptz, doc jsonb, uid uuid, odd double precision)");
  server().Execute(
      "INSERT INTO kinds VALUES (1, -7, true, 0.25, 12.500, 'a \"quoted\" \\ label', "
      "E'line\\nbreak\\ttab', '2026-12-07', '2026-12-07 10:11:12.5', '2026-12-07 10:11:12+02', "
      "'{\"k\": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'NaN')");
  server().Execute("INSERT INTO kinds (id) VALUES (2)");
  auto got = ReadAll(SourceOn("kinds", "id"));
  ASSERT_OK(got);
  ASSERT_EQ((*got)[0].size(), 2u);
  EXPECT_EQ((*got)[0][0],
            R"({"id":1,"small":-7,"flag":true,"ratio":0.25,"amount":12.500,)"
            R"("label":"a \"quoted\" \\ label","note":"line\nbreak\ttab","day":"2026-12-07",)"
            R"("at":"2026-12-07T10:11:12.5","at_tz":"2026-12-07T08:11:12Z","doc":{"k": [1, 2]},)"
            R"("uid":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","odd":"NaN"})");
  EXPECT_EQ((*got)[0][1],
            R"({"id":2,"small":null,"flag":null,"ratio":null,"amount":null,"label":null,)"
            R"("note":null,"day":null,"at":null,"at_tz":null,"doc":null,"uid":null,"odd":null})");
  EXPECT_NO_THROW(nlohmann::json::parse((*got)[0][0]));
}

// A user type through a conversion, with typed reads (and a wrong one named).
TEST_F(PostgresTest, SourceConvertsRowsIntoAUserType) {
  server().Execute("CREATE TABLE readings (id int PRIMARY KEY, at timestamptz, value float8)");
  server().Execute(
      "INSERT INTO readings VALUES (1, '1970-01-01 00:00:01.25+00', 1.5), (2, '2026-01-01 "
      "00:00:00+00', -2)");
  struct Reading {
    int64_t id;
    int64_t micros;
    double value;
  };
  auto convert = [](const PostgresRow& row) -> absl::StatusOr<std::string> {
    auto id = row.Integer(row.Find("id"));
    auto at = row.TimestampMicros(row.Find("at"));
    auto value = row.Float(row.Find("value"));
    if (!id.ok()) return id.status();
    if (!at.ok()) return at.status();
    if (!value.ok()) return value.status();
    return absl::StrCat(*id, "@", *at, "=", *value);
  };
  Pipeline p("convert");
  auto collected = std::make_shared<CollectedRecords<std::string>>();
  p.Source(PostgresSource<std::string>(SourceOn("readings", "id"), convert))
      .Sink(CollectSink<std::string>(collected));
  ASSERT_OK(ExecuteLocally(p));
  EXPECT_THAT(collected->Values(),
              ::testing::ElementsAre("1@1250000=1.5", "2@1767225600000000=-2"));

  Pipeline wrong("convert-wrong");
  wrong
      .Source(
          PostgresSource<std::string>(SourceOn("readings", "id"),
                                      [](const PostgresRow& row) -> absl::StatusOr<std::string> {
                                        auto v = row.Integer(row.Find("value"));
                                        if (!v.ok()) return v.status();
                                        return std::to_string(*v);
                                      }))
      .Sink(DiscardingSink<std::string>());
  auto r = ExecuteLocally(wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(),
              HasSubstr("column 'value' (double precision) read as an integer"));
}

/// The error of a job reading `o` ("" if it ran to its end).
std::string FailureOf(const PostgresSourceOptions& o) {
  Pipeline p("errors");
  p.Source(PostgresSource<std::string>(o)).Sink(DiscardingSink<std::string>());
  auto r = ExecuteLocally(p);
  return r.ok() ? "" : std::string(r.status().message());
}

TEST_F(PostgresTest, SourceErrorsNameWhatIsWrong) {
  server().Execute(
      "CREATE TABLE t (id int PRIMARY KEY, pos int, doc json, flag boolean); "
      "CREATE TABLE keyless (pos int); CREATE TABLE blobs (id int PRIMARY KEY, b bytea)");
  PostgresSourceOptions o = SourceOn("t", "pos");
  o.table = "missing";
  EXPECT_THAT(FailureOf(o), HasSubstr("table 'missing' does not exist"));
  o = SourceOn("t", "nope");
  o.query = "";
  EXPECT_THAT(FailureOf(o), HasSubstr("has no column 'nope' (its columns: id, pos, doc, flag)"));
  o = SourceOn("t", "flag");
  EXPECT_THAT(FailureOf(o),
              HasSubstr("the position column 'flag' has type boolean, which cannot order rows"));
  o = SourceOn("blobs", "id");
  EXPECT_THAT(FailureOf(o), HasSubstr("column 'b' of table 'blobs' has type bytea, which the "
                                      "source cannot map"));
  o = SourceOn("keyless", "pos");
  EXPECT_THAT(FailureOf(o), HasSubstr("table 'keyless' has no primary key"));
  o = SourceOn("t", "pos");
  o.key_columns = {"ghost"};
  EXPECT_THAT(FailureOf(o), HasSubstr("has no key column 'ghost'"));
  // A query instead of a table: it needs key columns.
  o = SourceOn("", "pos");
  o.query = "SELECT id, pos FROM t";
  EXPECT_THAT(FailureOf(o), HasSubstr("the query has no primary key"));
  o.key_columns = {"id"};
  EXPECT_EQ(FailureOf(o), "") << "a query with key columns is read";
  // Nobody listens on the port.
  o = SourceOn("t", "pos");
  o.url = absl::StrCat("postgresql://postgres@127.0.0.1:", testing::PickFreePort(), "/postgres");
  EXPECT_THAT(FailureOf(o), ::testing::AllOf(HasSubstr("PostgreSQL source: connecting to "
                                                       "postgresql://postgres@127.0.0.1:"),
                                             HasSubstr("Connection refused")));
  o.url = server().url("no_such_database");
  EXPECT_THAT(FailureOf(o), HasSubstr("database \"no_such_database\" does not exist"));
}

TEST(PostgresLoginTest, ARefusedLoginIsAnErrorNamingTheUserWithoutThePassword) {
  PostgresServer server({.password_auth = true});
  server.Execute("CREATE TABLE t (id int PRIMARY KEY)");
  PostgresSourceOptions o;
  o.table = "t";
  o.position_column = "id";
  o.bounded = true;
  o.url = absl::StrCat("postgresql://postgres:wrong-secret@127.0.0.1:", server.port(), "/postgres");
  const std::string failure = FailureOf(o);
  EXPECT_THAT(failure, HasSubstr("password authentication failed for user \"postgres\""));
  EXPECT_THAT(failure, HasSubstr("postgresql://postgres:***@127.0.0.1"));
  EXPECT_THAT(failure, ::testing::Not(HasSubstr("wrong-secret")));
  o.url = absl::StrCat("postgresql://postgres:postgres@127.0.0.1:", server.port(), "/postgres");
  EXPECT_EQ(FailureOf(o), "");
}

/// The process ids of the server sessions of jobs named `job`.
std::vector<std::string> SessionsOf(PostgresServer& server, const std::string& job) {
  return server.Rows("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'sluice " + job +
                     " %'");
}

// The source's session is cut off (pg_terminate_backend), then the server is killed and
// started again: the source connects again each time and goes on from its position, so every
// row arrives once and in order.
TEST_F(PostgresTest, SourceConnectsAgainAfterLostConnectionsAndSkipsNothing) {
  server().Execute(
      "CREATE TABLE feed (id int PRIMARY KEY); "
      "INSERT INTO feed SELECT generate_series(1, 4000)");
  PostgresSourceOptions o = SourceOn("feed", "id");
  o.fetch_size = 50;
  o.reconnect_initial_backoff = absl::Milliseconds(50);
  o.reconnect_max_backoff = absl::Milliseconds(500);
  Pipeline p("reconnect");
  p.mutable_config().max_source_rate = 800;  // 5 s: time to cut it off twice
  auto collected = std::make_shared<CollectedRecords<std::string>>();
  p.Source(PostgresSource<std::string>(o)).Sink(CollectSink<std::string>(collected));
  absl::StatusOr<JobResult> result;
  std::thread job([&] { result = ExecuteLocally(p); });
  ASSERT_TRUE(testing::WaitFor([&] { return !SessionsOf(server(), "reconnect").empty(); }, 20'000));
  const auto first = SessionsOf(server(), "reconnect");
  server().Execute(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
      "application_name LIKE 'sluice reconnect %'");
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        const auto now = SessionsOf(server(), "reconnect");
        return !now.empty() && now != first;
      },
      20'000));
  server().Kill();
  server().Start();
  job.join();
  ASSERT_OK(result);
  const auto ids = Field(collected->Values(), "id");
  ASSERT_EQ(ids.size(), 4000u);
  for (int i = 0; i < 4000; ++i) ASSERT_EQ(ids[i], i + 1);
  EXPECT_GE(result->CounterTotal("postgres_reconnects"), 2);
}

/// Writes `transactions` transactions of 1-4 rows into `table` (id, pos, name, at, note) from a
/// thread of its own, `per_position` consecutive transactions at one position (ties that
/// arrive in separate commits), and keeps the JSON line the table_changes format gives each.
class TableWriter {
 public:
  /// With `pause_after` >= 0 it stops after that many transactions until Resume().
  TableWriter(PostgresServer& server, std::string table, int transactions, int per_position,
              int pause_after = -1)
      : server_(server), table_(std::move(table)) {
    server_.Execute(absl::StrCat("CREATE TABLE ", table_,
                                 " (id bigint PRIMARY KEY, pos bigint "
                                 "NOT NULL, name text, at timestamptz, note text); CREATE INDEX "
                                 "ON ",
                                 table_, " (pos)"));
    thread_ = std::thread([this, transactions, per_position, pause_after] {
      std::mt19937 rng(11);
      int64_t id = 0;
      for (int t = 0; t < transactions; ++t) {
        if (t == pause_after) {
          std::unique_lock<std::mutex> lock(mu_);
          paused_ = true;
          resumed_cv_.wait(lock, [&] { return resume_; });
        }
        std::string values;
        const int rows = 1 + static_cast<int>(rng() % 4);
        for (int r = 0; r < rows; ++r) {
          ++id;
          const int64_t pos = t / per_position;
          absl::StrAppend(&values, values.empty() ? "" : ",", "(", id, ",", pos, ",'n", id,
                          "','2026-01-01 00:00:00+00'::timestamptz + interval '", id, " seconds',",
                          id % 2 == 0 ? "NULL" : "'x'", ")");
          char at[32];
          std::snprintf(at, sizeof(at), "2026-01-01T%02d:%02d:%02dZ", static_cast<int>(id / 3600),
                        static_cast<int>(id / 60 % 60), static_cast<int>(id % 60));
          expected_.push_back(absl::StrCat(R"({"id":)", id, R"(,"pos":)", pos, R"(,"name":"n)", id,
                                           R"(","at":")", at, R"(","note":)",
                                           id % 2 == 0 ? "null" : R"("x")", "}"));
        }
        server_.Execute(absl::StrCat("INSERT INTO ", table_, " VALUES ", values));
        // Paced, so that readers meet a table still being written.
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      done_ = true;
    });
  }
  ~TableWriter() {
    Resume();
    Join();
  }
  bool paused() {
    std::lock_guard<std::mutex> lock(mu_);
    return paused_;
  }
  void Resume() {
    std::lock_guard<std::mutex> lock(mu_);
    resume_ = true;
    resumed_cv_.notify_all();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() const { return done_; }
  /// After done(): every row's line, sorted.
  std::vector<std::string> Expected() const {
    auto e = expected_;
    std::sort(e.begin(), e.end());
    return e;
  }

 private:
  PostgresServer& server_;
  std::string table_;
  std::vector<std::string> expected_;
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::condition_variable resumed_cv_;
  bool paused_ = false;
  bool resume_ = false;
  std::thread thread_;
};

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// A table written while the source follows it (ties that commit apart), the job crashing
// three times on the way (the chaos option) and restored from its checkpoints: each row is in
// the exactly-once output once.
TEST_F(PostgresTest, SourceFollowsATableBeingWrittenExactlyOnceUnderChaos) {
  TableWriter writer(server(), "log", 250, 3);
  testing::TempDir dir;
  PostgresSourceOptions o = SourceOn("log", "pos");
  o.bounded = false;
  o.poll_interval = absl::Milliseconds(20);
  o.fetch_size = 16;
  Pipeline p("follow");
  auto& c = p.mutable_config();
  c.checkpoint_interval = absl::Milliseconds(50);
  c.checkpoint_dir = dir.Join("ck");
  c.chaos_kill_every_records = 100;
  c.chaos_max_failures = 3;
  c.chaos_seed = ChaosSeed();
  const std::string out = dir.Join("out");
  p.Source(PostgresSource<std::string>(o)).Uid("read").Sink(TextFileSink<std::string>(out));
  auto graph = p.BuildJobGraph();
  ASSERT_OK(graph);
  MiniCluster cluster;
  absl::StatusOr<JobResult> result;
  std::thread job([&] { result = cluster.Execute(*graph); });
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return writer.done() && testing::ReadPartFileLines(out).size() >= writer.Expected().size();
      },
      90'000));
  // Stop it (a savepoint may fail while a crash restarts the job: again, then).
  EXPECT_TRUE(testing::WaitFor(
      [&] { return cluster.TriggerSavepoint(dir.Join("sp"), /*stop=*/true).ok(); }, 30'000));
  job.join();
  ASSERT_OK(result);
  EXPECT_EQ(result->restarts, 3) << "the chaos must have struck";
  EXPECT_EQ(Sorted(testing::ReadPartFileLines(out)), writer.Expected());
}

// --- sink ---

using IdAndText = std::pair<int64_t, std::string>;

PostgresSinkOptions SinkInto(const PostgresServer& server, const std::string& table) {
  PostgresSinkOptions o;
  o.url = server.url();
  o.table = table;
  return o;
}

void IdAndTextRow(const IdAndText& r, PostgresRowWriter& w) {
  w.Add(r.first);
  w.Add(r.second);
}

/// Makes `p` a checkpointed job of an empty source and a sink with `o`, for an
/// OperatorHarness; returns the sink's node id.
int AddSink(Pipeline& p, const PostgresSinkOptions& o) {
  p.mutable_config().checkpoint_interval = absl::Seconds(1);
  p.Source(CollectionSource<IdAndText>({})).Sink(PostgresSink<IdAndText>(o, &IdAndTextRow));
  return static_cast<int>(p.graph().nodes.size()) - 1;
}

using SinkHarness = testing::OperatorHarness<IdAndText, int>;

void Write(SinkHarness& h, int from, int to) {
  for (int i = from; i < to; ++i) h.ProcessElement({i, absl::StrCat("v", i)});
}

std::vector<std::string> Ids(int from, int to) {
  std::vector<std::string> v;
  for (int i = from; i < to; ++i) v.push_back(std::to_string(i));
  std::sort(v.begin(), v.end());
  return v;
}

/// An exactly-once sink into `table`, its transactions named after it, each row sent at once.
PostgresSinkOptions StepByStepInto(PostgresServer& server, const std::string& table) {
  server.Execute("CREATE TABLE " + table + " (id bigint PRIMARY KEY, v text)");
  PostgresSinkOptions o = SinkInto(server, table);
  o.delivery = PostgresDelivery::kExactlyOnce;
  o.transaction_id_prefix = table;
  o.buffer_bytes = 1;
  return o;
}

/// The ids in `table` as text, in byte order (as std::sort orders Ids()).
std::string IdsQuery(const std::string& table) {
  return "SELECT id::text FROM " + table + " ORDER BY id::text COLLATE \"C\"";
}

/// An exactly-once sink into `table` that took checkpoints 1 (rows 0-9) and 2 (rows 10-19),
/// heard that 1 completed while writing rows of 2, wrote rows 20-24 and died: returns the two
/// snapshots.
std::pair<OperatorSnapshot, OperatorSnapshot> KilledAfterTwoBarriers(PostgresServer& server,
                                                                     Pipeline& p, int sink,
                                                                     const std::string& table) {
  const std::string ids = IdsQuery(table);
  SinkHarness h(p.graph(), sink);
  h.Open();
  Write(h, 0, 10);
  auto cp1 = h.op().SnapshotNow(1);
  EXPECT_OK(cp1);
  EXPECT_TRUE(server.Rows(ids).empty()) << "nothing is visible before its checkpoint completes";
  // Rows go out one per COPY message (buffer_bytes 1): checkpoint 1 completes while the next
  // transaction is open and its COPY under way.
  Write(h, 10, 15);
  h.op().NotifyCheckpointComplete(1);
  EXPECT_EQ(server.Rows(ids), Ids(0, 10));
  Write(h, 15, 20);
  auto cp2 = h.op().SnapshotNow(2);
  EXPECT_OK(cp2);
  Write(h, 20, 25);  // on the server, uncommitted
  EXPECT_EQ(server.Rows(ids), Ids(0, 10));
  EXPECT_EQ(
      server.Number("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE '" + table + "-%'"), 1);
  h.Close();  // dies: its open transaction goes with its connection; checkpoint 2's stays
  return {*cp1, *cp2};
}

// Exactly-once through prepared transactions, a kill at each point: before a barrier (the open
// transaction is lost and replayed from the checkpoint), after a barrier whose checkpoint did
// not complete (its prepared transaction is rolled back by the restored sink), after one that
// completed without its commit (committed by the restored sink, also at another parallelism)
// and after the commit (restored again: nothing twice).
TEST_F(PostgresTest, SinkPreparedTransactionsAcrossAKillAtEachPoint) {
  const auto count_prepared = [&](const std::string& table) {
    return server().Number("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE '" + table +
                           "-%'");
  };
  {
    // Checkpoint 2 did not complete: the job goes back to checkpoint 1.
    const std::string table = "restored_from_1";
    Pipeline p("sink-steps");
    const int sink = AddSink(p, StepByStepInto(server(), table));
    const auto [cp1, cp2] = KilledAfterTwoBarriers(server(), p, sink, table);
    SinkHarness h(p.graph(), sink);
    h.op().InitializeState(RedistributeState({cp1}, 0, 1, 128));
    h.Open();
    EXPECT_EQ(count_prepared(table), 0) << "checkpoint 2's transaction is rolled back";
    EXPECT_EQ(h.metrics().GetCounter("postgres_transactions_rolled_back").value(), 1);
    Write(h, 10, 25);  // the replay after checkpoint 1
    ASSERT_OK(h.op().SnapshotNow(2));
    h.op().NotifyCheckpointComplete(2);
    h.Close();
    EXPECT_EQ(server().Rows(IdsQuery(table)), Ids(0, 25));
  }
  {
    // Checkpoint 2 completed but its notification never came; restored from it at parallelism
    // 2 (old subtask 0's transactions are new subtask 0's), then again from it.
    const std::string table = "restored_from_2";
    Pipeline p("sink-steps");
    const int sink = AddSink(p, StepByStepInto(server(), table));
    const auto [cp1, cp2] = KilledAfterTwoBarriers(server(), p, sink, table);
    const std::string ids = IdsQuery(table);
    {
      SinkHarness other(p.graph(), sink, /*subtask=*/1, /*parallelism=*/2);
      other.op().InitializeState(RedistributeState({cp2}, 1, 2, 128));
      other.Open();
      EXPECT_EQ(server().Rows(ids), Ids(0, 10)) << "not subtask 1's to commit";
      other.Close();
      SinkHarness h(p.graph(), sink, /*subtask=*/0, /*parallelism=*/2);
      h.op().InitializeState(RedistributeState({cp2}, 0, 2, 128));
      h.Open();
      EXPECT_EQ(server().Rows(ids), Ids(0, 20));
      EXPECT_EQ(count_prepared(table), 0);
      h.Close();
    }
    SinkHarness again(p.graph(), sink);
    again.op().InitializeState(RedistributeState({cp2}, 0, 1, 128));
    again.Open();
    Write(again, 20, 25);
    ASSERT_OK(again.op().SnapshotNow(3));
    again.op().NotifyCheckpointComplete(3);
    again.Close();
    EXPECT_EQ(server().Rows(ids), Ids(0, 25)) << "checkpoint 2's rows once";
  }
}

/// Words w0..w49 (4,000), a running count per word, "word" and count to the sink.
class SinkEndToEndTest : public PostgresTest {
 protected:
  absl::StatusOr<JobResult> RunWithChaos(const PostgresSinkOptions& o) {
    std::vector<std::string> words;
    for (int i = 0; i < 4000; ++i) words.push_back(absl::StrCat("w", (i * 7) % 50));
    for (const auto& w : words) ++occurrences_[w];
    Pipeline p("postgres-e2e");
    testing::CrashThreeTimes(p.mutable_config(), dir_.Join("ck"), ChaosSeed());
    using Count = std::pair<std::string, int64_t>;
    p.Source(CollectionSource<std::string>(words))
        .Map([](const std::string& w) { return Count(w, 1); })
        .KeyBy([](const Count& e) { return e.first; })
        .Reduce([](const Count& a, const Count& b) { return Count(a.first, a.second + b.second); })
        .Parallelism(2)
        .Sink(PostgresSink<Count>(o,
                                  [](const Count& e, PostgresRowWriter& w) {
                                    w.Add(e.first);
                                    w.Add(e.second);
                                  }))
        .Parallelism(2);
    return ExecuteLocally(p);
  }

  testing::TempDir dir_;
  std::map<std::string, int> occurrences_;
};

TEST_F(SinkEndToEndTest, ExactlyOnceUnderChaosWritesEachRowOnce) {
  server().Execute("CREATE TABLE counts (word text, n bigint)");
  PostgresSinkOptions o = SinkInto(server(), "counts");
  o.delivery = PostgresDelivery::kExactlyOnce;
  o.buffer_bytes = 64;  // rows out mid-checkpoint: commits arrive while a COPY is under way
  auto r = RunWithChaos(o);
  ASSERT_OK(r);
  EXPECT_GE(r->restarts, 3) << "the chaos must have struck";
  std::vector<std::string> expected;
  for (const auto& [w, n] : occurrences_) {
    for (int c = 1; c <= n; ++c) expected.push_back(absl::StrCat(w, "|", c));
  }
  EXPECT_EQ(Sorted(server().Rows("SELECT word, n FROM counts")), Sorted(expected));
  EXPECT_EQ(server().Number("SELECT count(*) FROM pg_prepared_xacts"), 0);
}

TEST_F(SinkEndToEndTest, UpsertAtLeastOnceUnderChaosLeavesTheLatestCountPerWord) {
  server().Execute("CREATE TABLE latest (word text PRIMARY KEY, n bigint NOT NULL)");
  PostgresSinkOptions o = SinkInto(server(), "latest");
  o.upsert = true;
  auto r = RunWithChaos(o);
  ASSERT_OK(r);
  EXPECT_GE(r->restarts, 3) << "the chaos must have struck";
  std::vector<std::string> expected;
  for (const auto& [w, n] : occurrences_) expected.push_back(absl::StrCat(w, "|", n));
  EXPECT_EQ(Sorted(server().Rows("SELECT word, n FROM latest")), Sorted(expected));
}

/// The error of a job writing `rows` with `o` ("" if it ran to its end).
std::string SinkFailureOf(const PostgresSinkOptions& o, std::vector<IdAndText> rows,
                          PostgresSink<IdAndText>::ToRow to_row = &IdAndTextRow) {
  try {
    Pipeline p("sink-errors");
    p.EnableCheckpointing(absl::Milliseconds(50), true);
    p.mutable_config().restart_strategy = RestartStrategyConfig::None();  // fail at once
    p.Source(CollectionSource<IdAndText>(std::move(rows)))
        .Sink(PostgresSink<IdAndText>(o, std::move(to_row)));
    auto r = ExecuteLocally(p);
    return r.ok() ? "" : std::string(r.status().message());
  } catch (const std::exception& e) {
    return e.what();
  }
}

TEST_F(PostgresTest, SinkErrorsNameWhatIsWrong) {
  server().Execute("CREATE TABLE typed (id bigint PRIMARY KEY, n integer)");
  server().Execute("CREATE TABLE keyless_out (id bigint, v text)");
  const std::vector<IdAndText> rows = {{1, "1"}, {2, "two"}};
  EXPECT_THAT(SinkFailureOf(SinkInto(server(), "typed"), rows),
              ::testing::AllOf(HasSubstr("invalid input syntax for type integer: \"two\""),
                               HasSubstr("column n")));
  EXPECT_EQ(server().Number("SELECT count(*) FROM typed"), 0) << "a failed batch leaves nothing";
  EXPECT_THAT(SinkFailureOf(SinkInto(server(), "nowhere"), rows),
              HasSubstr("table 'nowhere' does not exist"));
  PostgresSinkOptions o = SinkInto(server(), "typed");
  o.columns = {"id", "amount"};
  EXPECT_THAT(SinkFailureOf(o, rows), HasSubstr("table 'typed' has no column 'amount'"));
  EXPECT_THAT(SinkFailureOf(SinkInto(server(), "typed"), rows,
                            [](const IdAndText& r, PostgresRowWriter& w) { w.Add(r.first); }),
              HasSubstr("record 1 filled 1 columns of 'typed', not 2 (id, n)"));
  o = SinkInto(server(), "keyless_out");
  o.upsert = true;
  EXPECT_THAT(SinkFailureOf(o, rows), HasSubstr("which has no primary key: name upsert_keys"));
  o.delivery = PostgresDelivery::kExactlyOnce;
  EXPECT_THAT(SinkFailureOf(o, rows), HasSubstr("upsert with exactly-once delivery"));
}

// Without checkpoints nothing marks a point to commit at: the sink commits what it sent each
// time its buffer fills, so a long-running job's rows show up while it runs.
TEST_F(PostgresTest, SinkWithoutCheckpointsCommitsAsItGoes) {
  server().Execute("CREATE TABLE unchecked (id bigint PRIMARY KEY, v text)");
  PostgresSinkOptions o = SinkInto(server(), "unchecked");
  o.buffer_bytes = 200;
  Pipeline p("no-checkpoints");
  p.mutable_config().max_source_rate = 1000;  // 3 s
  p.Source(Generator([](uint64_t i) { return IdAndText(static_cast<int64_t>(i), "x"); },
                     {.count = 3000}))
      .Sink(PostgresSink<IdAndText>(o, &IdAndTextRow));
  std::atomic<bool> ended{false};
  absl::StatusOr<JobResult> result;
  std::thread job([&] {
    result = ExecuteLocally(p);
    ended = true;
  });
  bool seen_while_running = false;
  testing::WaitFor(
      [&] {
        if (ended) return true;  // read before the count: rows seen then were seen mid-run
        seen_while_running = server().Number("SELECT count(*) FROM unchecked") >= 100;
        return seen_while_running;
      },
      20'000);
  EXPECT_TRUE(seen_while_running) << "rows are committed while the job runs";
  job.join();
  ASSERT_OK(result);
  EXPECT_EQ(server().Number("SELECT count(*) FROM unchecked"), 3000);
}

TEST(PostgresNoPreparedTransactionsTest, ExactlyOnceSaysWhatTheServerLacks) {
  PostgresServer server({.max_prepared_transactions = 0});
  server.Execute("CREATE TABLE t (id bigint PRIMARY KEY, v text)");
  PostgresSinkOptions o = SinkInto(server, "t");
  o.delivery = PostgresDelivery::kExactlyOnce;
  EXPECT_THAT(SinkFailureOf(o, {{1, "a"}}), HasSubstr("has max_prepared_transactions = 0"));
  o.delivery = PostgresDelivery::kAtLeastOnce;
  EXPECT_EQ(SinkFailureOf(o, {{1, "a"}}), "");
  EXPECT_EQ(server.Rows("SELECT id, v FROM t"), std::vector<std::string>{"1|a"});
}

// --- table_changes ---

class TableChangesTest : public PostgresTest {
 protected:
  std::vector<std::string> Args(const std::string& table, const std::string& out) {
    return {testing::BuildDir() + "/examples/table_changes", "--postgres=" + server().url(),
            "--table=" + table, "--position-column=pos", "--output=" + out};
  }
  testing::TempDir dir_;
};

int CompletedCheckpoints(const std::string& dir) {
  std::error_code ec;
  int completed = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    completed += std::filesystem::exists(e.path() / "_metadata");
  }
  return completed;
}

// Following a table while it is written: SIGKILLed halfway through the writes (after three
// checkpoints), resumed from them while the rest is written, and stopped once every row is
// out: each row is one JSON line, once.
TEST_F(TableChangesTest, FollowsATableBeingWrittenExactlyOnceAcrossASigkill) {
  TableWriter writer(server(), "changes", 300, 2, /*pause_after=*/150);
  const std::string out = dir_.Join("out"), ck = dir_.Join("ck");
  auto argv = Args("changes", out);
  for (const std::string& a :
       {std::string("--poll-interval=50ms"), std::string("--checkpoint-interval=100ms"),
        "--checkpoint-dir=" + ck}) {
    argv.push_back(a);
  }
  {
    testing::ChildProcess first(argv, dir_.Join("first.log"));
    // Killed once half the table is written and checkpointed; the rest comes after.
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          return (writer.paused() && CompletedCheckpoints(ck + "/table_changes") >= 3) ||
                 !first.Running();
        },
        30'000));
    ASSERT_TRUE(first.Running()) << testing::ReadFile(dir_.Join("first.log"));
    first.Signal(SIGKILL);
    EXPECT_EQ(first.Wait(), 128 + SIGKILL);
  }
  writer.Resume();
  argv.push_back("--from-savepoint=" + ck + "/table_changes");
  testing::ChildProcess resumed(argv, dir_.Join("resumed.log"));
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return (writer.done() &&
                testing::ReadPartFileLines(out).size() >= writer.Expected().size()) ||
               !resumed.Running();
      },
      90'000));
  EXPECT_TRUE(resumed.Running()) << testing::ReadFile(dir_.Join("resumed.log"));
  EXPECT_EQ(Sorted(testing::ReadPartFileLines(out)), writer.Expected());
}

// --bounded reads what the table held at the start and ends; at parallelism 2 the subtasks
// split the keys.
TEST_F(TableChangesTest, BoundedReadsWhatThereWasAndEnds) {
  TableWriter writer(server(), "snapshot", 40, 1);
  writer.Join();
  const std::string out = dir_.Join("out");
  auto argv = Args("snapshot", out);
  argv.push_back("--bounded");
  argv.push_back("--parallelism=2");
  std::string command;
  for (const auto& a : argv) absl::StrAppend(&command, "'", a, "' ");
  const auto r = testing::RunCommand(command);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Sorted(testing::ReadPartFileLines(out)), writer.Expected());
}

}  // namespace
}  // namespace sluice
