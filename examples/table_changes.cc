// table_changes --postgres=postgresql://USER@HOST:PORT/DB --table=NAME --position-column=COL
//               [--poll-interval=DUR] [--bounded] [--key-columns=A,B] [--parallelism=N]
//               --output=DIR
//
// Follows a PostgreSQL table: reads its rows in the order of the position column (an integer,
// numeric, date or timestamp that grows as rows are written: an id from a sequence, a
// `modified_at`), and writes each row as one JSON object per line to exactly-once part files
// in DIR: column names as keys, integers and floats as numbers, text as strings, timestamps as
// ISO-8601 strings, NULL as null. It asks again every --poll-interval (1s) for rows past the
// last position read; rows of equal position are told apart by the table's primary key (or
// --key-columns). With --bounded it reads up to the largest position there was when it first
// started, then ends. At --parallelism above 1 each subtask reads the keys that hash to it.
// Every standard job argument applies; the last position read (and the keys read at it) is
// checkpointed, so a restored job neither repeats nor skips a row. A lost connection is opened
// again with backoff.

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "sluice/sluice.h"

namespace {

void Build(sluice::Pipeline& p) {
  const sluice::JobArgs& args = p.Args();
  sluice::PostgresSourceOptions o;
  o.url = args.GetString("postgres");
  o.table = args.GetString("table");
  o.position_column = args.GetString("position-column");
  o.poll_interval = args.GetDuration("poll-interval", absl::Seconds(1));
  o.bounded = args.GetBool("bounded", false);
  if (args.Has("key-columns")) {
    o.key_columns = absl::StrSplit(args.GetString("key-columns"), ',', absl::SkipEmpty());
  }
  const std::string output = args.GetString("output");
  const int parallelism =
      static_cast<int>(args.GetInt("parallelism", p.config().default_parallelism));
  if (parallelism < 1) throw sluice::JobArgumentError("--parallelism must be >= 1");
  o.split_by_key = parallelism > 1;
  p.SetParallelism(parallelism);
  p.Source(sluice::PostgresSource<std::string>(o), "ReadTable")
      .Uid("read-table")
      .Sink(sluice::TextFileSink<std::string>(output), "WriteJsonLines");
}

}  // namespace

SLUICE_JOB(Build)
