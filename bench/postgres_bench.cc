// postgres_bench [--rows=N] [--rounds=N] [--parallelism=N] [--checkpoint-interval=DUR]
//
// Rows per second through the PostgreSQL connectors against a local server (started here,
// on a free loopback port, fsync off), beside libpq's COPY in the same run:
// - the source (bounded, rows parsed into a struct; also as JSON lines; also split by key at
//   --parallelism) reading a table of --rows rows in position order, beside one connection
//   running `COPY (SELECT * FROM t ORDER BY pos) TO STDOUT` (the same rows in the same order)
//   and `COPY t TO STDOUT` (in storage order, no index);
// - the sink (at-least-once, and exactly-once with a checkpoint every 250 ms) writing --rows
//   generated rows, beside one connection sending the same rows as COPY text through
//   `COPY t FROM STDIN` in one transaction.
// Medians of --rounds alternating rounds.

#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench_util.h"
#include "sluice/job/abseil_flags.h"
#include "sluice/sluice.h"
#include "sluice/testing/postgres_server.h"

ABSL_FLAG(int64_t, rows, 1'000'000, "rows to read and to write");
ABSL_FLAG(int, rounds, 3, "alternating rounds (medians)");
ABSL_FLAG(int, parallelism, 2, "subtasks of the split source");
ABSL_FLAG(absl::Duration, checkpoint_interval, absl::Milliseconds(250),
          "checkpoints of the exactly-once sink run");

namespace {

struct Reading {
  int64_t id = 0;
  double value = 0;
};
SLUICE_SERIALIZABLE(Reading, id, value)

constexpr const char* kColumns =
    "(id bigint, pos bigint, name text, value double precision, at "
    "timestamptz)";

PGconn* Connect(const sluice::testing::PostgresServer& server) {
  PGconn* c = PQconnectdb(server.url().c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::fprintf(stderr, "connecting: %s\n", PQerrorMessage(c));
    std::exit(1);
  }
  return c;
}

void Check(PGresult* r, ExecStatusType wanted, const char* what) {
  if (PQresultStatus(r) != wanted) {
    std::fprintf(stderr, "%s: %s\n", what, PQresultErrorMessage(r));
    std::exit(1);
  }
  PQclear(r);
}

/// Seconds for one connection to receive `sql`'s COPY TO output (rows counted).
double CopyOut(const sluice::testing::PostgresServer& server, const std::string& sql,
               int64_t expected_rows) {
  PGconn* c = Connect(server);
  const absl::Time start = absl::Now();
  Check(PQexec(c, sql.c_str()), PGRES_COPY_OUT, "COPY TO");
  int64_t rows = 0;
  char* line = nullptr;
  int n = 0;
  while ((n = PQgetCopyData(c, &line, 0)) > 0) {
    ++rows;
    PQfreemem(line);
  }
  Check(PQgetResult(c), PGRES_COMMAND_OK, "COPY TO end");
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  PQfinish(c);
  if (rows != expected_rows) {
    std::fprintf(stderr, "COPY TO gave %lld rows, not %lld\n", static_cast<long long>(rows),
                 static_cast<long long>(expected_rows));
    std::exit(1);
  }
  return seconds;
}

/// Row i of the written table, as the raw loop formats it (COPY text).
void AppendRow(int64_t i, std::string* out) {
  absl::StrAppend(
      out, i, "\t", i / 4, "\tname-", i % 1000, "\t", static_cast<double>(i) * 0.5, "\t",
      absl::FormatTime("%Y-%m-%d %H:%M:%E3S+00", absl::FromUnixMillis(1'700'000'000'000 + i),
                       absl::UTCTimeZone()),
      "\n");
}

/// Seconds for one connection to COPY `rows` rows into `table` in one transaction.
double CopyIn(const sluice::testing::PostgresServer& server, const std::string& table,
              int64_t rows) {
  PGconn* c = Connect(server);
  const absl::Time start = absl::Now();
  Check(PQexec(c, "BEGIN"), PGRES_COMMAND_OK, "BEGIN");
  Check(PQexec(c, ("COPY " + table + " FROM STDIN").c_str()), PGRES_COPY_IN, "COPY FROM");
  std::string buffer;
  for (int64_t i = 0; i < rows; ++i) {
    AppendRow(i, &buffer);
    if (buffer.size() >= (1 << 20) || i + 1 == rows) {
      if (PQputCopyData(c, buffer.data(), static_cast<int>(buffer.size())) != 1) {
        std::fprintf(stderr, "COPY FROM: %s\n", PQerrorMessage(c));
        std::exit(1);
      }
      buffer.clear();
    }
  }
  PQputCopyEnd(c, nullptr);
  Check(PQgetResult(c), PGRES_COMMAND_OK, "COPY FROM end");
  Check(PQexec(c, "COMMIT"), PGRES_COMMAND_OK, "COMMIT");
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  PQfinish(c);
  return seconds;
}

/// One result line: rows/s and, if given, the ratio to the raw COPY.
void Report(const std::string& what, int64_t rows, double seconds, double raw_rate = 0) {
  const double rate = static_cast<double>(rows) / seconds;
  std::printf("%-52s %7.3f M rows/s", what.c_str(), rate / 1e6);
  if (raw_rate > 0) std::printf("  / raw = %.2f", rate / raw_rate);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  sluice::ParseAbseilFlags(argc, argv);
  const int64_t rows = absl::GetFlag(FLAGS_rows);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  const int parallelism = absl::GetFlag(FLAGS_parallelism);
  sluice::testing::PostgresServer server;
  sluice::testing::TempDir dir;
  // The table read, with its position index; the sink's tables have none (as COPY's).
  server.Execute(
      absl::StrCat("CREATE TABLE src (id bigint PRIMARY KEY, pos bigint NOT NULL, "
                   "name text, value double precision, at timestamptz); "
                   "INSERT INTO src SELECT i, i / 4, 'name-' || (i % 1000), i * 0.5, "
                   "timestamptz '2026-01-01 00:00:00+00' + i * interval '1 ms' FROM "
                   "generate_series(0, ",
                   rows - 1, ") AS i; CREATE INDEX ON src (pos)"));
  server.Execute("VACUUM ANALYZE src");

  sluice::PostgresSourceOptions in;
  in.url = server.url();
  in.table = "src";
  in.position_column = "pos";
  in.bounded = true;
  auto read = [&](bool json, int p) {
    sluice::Pipeline job("postgres-bench-source");
    sluice::PostgresSourceOptions o = in;
    o.split_by_key = p > 1;
    if (json) {
      job.Source(sluice::PostgresSource<std::string>(o))
          .Parallelism(p)
          .Sink(sluice::DiscardingSink<std::string>())
          .Parallelism(p);
    } else {
      job.Source(sluice::PostgresSource<Reading>(
                     o,
                     [](const sluice::PostgresRow& row) -> absl::StatusOr<Reading> {
                       auto id = row.Integer(0);
                       auto value = row.Float(3);
                       if (!id.ok()) return id.status();
                       if (!value.ok()) return value.status();
                       return Reading{*id, *value};
                     }))
          .Parallelism(p)
          .Sink(sluice::DiscardingSink<Reading>())
          .Parallelism(p);
    }
    const sluice::JobResult r = sluice::bench::Run(job);
    if (r.CounterTotal("records") != rows) {
      std::fprintf(stderr, "the source read %lld rows, not %lld\n",
                   static_cast<long long>(r.CounterTotal("records")), static_cast<long long>(rows));
      std::exit(1);
    }
    return absl::ToDoubleSeconds(r.duration);
  };

  auto write = [&](sluice::PostgresDelivery delivery, const std::string& table) {
    server.Execute(
        absl::StrCat("DROP TABLE IF EXISTS ", table, "; CREATE TABLE ", table, " ", kColumns));
    sluice::Pipeline job("postgres-bench-sink");
    if (delivery == sluice::PostgresDelivery::kExactlyOnce) {
      job.EnableCheckpointing(absl::GetFlag(FLAGS_checkpoint_interval), true);
      job.SetCheckpointDir(dir.Join("ck"));
    }
    sluice::PostgresSinkOptions o;
    o.url = server.url();
    o.table = table;
    o.delivery = delivery;
    job.Source(sluice::Generator([](uint64_t i) { return static_cast<int64_t>(i); },
                                 {.count = static_cast<uint64_t>(rows)}))
        .Sink(sluice::PostgresSink<int64_t>(o, [](const int64_t& i, sluice::PostgresRowWriter& w) {
          w.Add(i);
          w.Add(i / 4);
          w.Add(absl::StrCat("name-", i % 1000));
          w.Add(static_cast<double>(i) * 0.5);
          w.AddTimestampMillis(1'700'000'000'000 + i);
        }));
    const double seconds = sluice::bench::RunSeconds(job);
    if (server.Number("SELECT count(*) FROM " + table) != rows) {
      std::fprintf(stderr, "the sink wrote %lld rows into %s, not %lld\n",
                   static_cast<long long>(server.Number("SELECT count(*) FROM " + table)),
                   table.c_str(), static_cast<long long>(rows));
      std::exit(1);
    }
    return seconds;
  };

  std::vector<double> copy_ordered, copy_plain, source, source_json, source_split;
  std::vector<double> copy_in, sink, sink_exactly_once;
  for (int round = 0; round < rounds; ++round) {
    copy_ordered.push_back(
        CopyOut(server, "COPY (SELECT * FROM src ORDER BY pos) TO STDOUT", rows));
    copy_plain.push_back(CopyOut(server, "COPY src TO STDOUT", rows));
    source.push_back(read(false, 1));
    source_json.push_back(read(true, 1));
    source_split.push_back(read(false, parallelism));
    server.Execute(absl::StrCat("DROP TABLE IF EXISTS raw_dst; CREATE TABLE raw_dst ", kColumns));
    copy_in.push_back(CopyIn(server, "raw_dst", rows));
    sink.push_back(write(sluice::PostgresDelivery::kAtLeastOnce, "sink_dst"));
    sink_exactly_once.push_back(write(sluice::PostgresDelivery::kExactlyOnce, "sink_eo_dst"));
  }
  const double ordered_rate = static_cast<double>(rows) / sluice::bench::Median(copy_ordered);
  const double copy_in_rate = static_cast<double>(rows) / sluice::bench::Median(copy_in);
  std::printf("%lld rows of 5 columns, medians of %d rounds\n", static_cast<long long>(rows),
              rounds);
  Report("raw COPY (SELECT ... ORDER BY pos) TO STDOUT", rows, sluice::bench::Median(copy_ordered));
  Report("raw COPY src TO STDOUT (storage order)", rows, sluice::bench::Median(copy_plain),
         ordered_rate);
  Report("PostgresSource p=1, rows into a struct", rows, sluice::bench::Median(source),
         ordered_rate);
  Report("PostgresSource p=1, rows as JSON lines", rows, sluice::bench::Median(source_json),
         ordered_rate);
  Report(absl::StrCat("PostgresSource p=", parallelism, " split by key, struct"), rows,
         sluice::bench::Median(source_split), ordered_rate);
  Report("raw COPY FROM STDIN, one transaction", rows, sluice::bench::Median(copy_in));
  Report("PostgresSink at-least-once", rows, sluice::bench::Median(sink), copy_in_rate);
  Report(absl::StrCat("PostgresSink exactly-once, checkpoints every ",
                      absl::FormatDuration(absl::GetFlag(FLAGS_checkpoint_interval))),
         rows, sluice::bench::Median(sink_exactly_once), copy_in_rate);
  return 0;
}
