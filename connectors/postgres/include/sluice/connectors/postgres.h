#pragma once

// PostgreSQL through libpq: a polling source (rows in the order of a position column, the
// position checkpointed) and a sink (COPY; at-least-once, upsert, or exactly-once through
// prepared transactions). libpq stays out of this header: jobs need not find it.

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sluice/core/time.h"
#include "sluice/function/checkpointed_function.h"
#include "sluice/function/functions.h"
#include "sluice/function/runtime_context.h"
#include "sluice/serialization/struct_macro.h"

namespace sluice {

/// The kinds of column the connectors map (any other column type is an error naming it).
enum class PostgresType {
  kBool,         // boolean
  kInteger,      // smallint, integer, bigint, oid
  kFloat,        // real, double precision
  kNumeric,      // numeric: kept as its exact decimal text
  kText,         // text, varchar, char, name, uuid, date, time, interval, inet, cidr
  kTimestamp,    // timestamp (without time zone), read as UTC
  kTimestampTz,  // timestamp with time zone
  kJson,         // json, jsonb: the document's text
};

struct PostgresColumn {
  std::string name;
  PostgresType type = PostgresType::kText;
  std::string type_name;  // as the server names it ("integer", "timestamp with time zone")
};

namespace internal {
struct PostgresRowData;
}

/// One row as the source read it (valid only during the call that gets it). Values are read
/// by column index; a value read as the wrong kind is an error naming the column.
class PostgresRow {
 public:
  explicit PostgresRow(const internal::PostgresRowData& data) : data_(data) {}

  const std::vector<PostgresColumn>& columns() const;
  size_t size() const { return columns().size(); }
  /// The index of column `name`; -1 if there is none.
  int Find(std::string_view name) const;

  bool IsNull(int column) const;
  /// The value as the server wrote it in text (ISO dates, UTC times): every kind has one.
  std::string_view Text(int column) const;
  absl::StatusOr<int64_t> Integer(int column) const;
  absl::StatusOr<double> Float(int column) const;  // kFloat, kInteger and kNumeric
  absl::StatusOr<bool> Bool(int column) const;
  /// kTimestamp and kTimestampTz, as microseconds since the epoch (UTC).
  absl::StatusOr<int64_t> TimestampMicros(int column) const;

  /// The row as one JSON object: column names as keys; integers, floats and numerics as
  /// numbers (NaN and infinities as strings); booleans; text as strings; timestamps as
  /// ISO-8601 strings (with a trailing Z for timestamp with time zone); json as the document
  /// itself; NULL as null.
  std::string ToJson() const;

 private:
  const internal::PostgresRowData& data_;
};

/// A polling source's settings.
struct PostgresSourceOptions {
  /// libpq's connection URI: postgresql://USER[:PASSWORD]@HOST:PORT/DB[?PARAM=VALUE...].
  std::string url;
  /// The table to read ("name" or "schema.name"), or else a `query` (a SELECT) read as if
  /// it were one.
  std::string table;
  std::string query;
  /// Rows are read in the order of this column (integer, numeric, date or timestamp), which
  /// must not decrease in commit order: a row committed after rows at position P has a
  /// position >= P (equal positions are fine: the keys read at the last position are
  /// checkpointed with it). An index on it keeps each poll cheap.
  std::string position_column;
  /// The row's identity among rows of equal position. Default: the table's primary key
  /// (required for a query).
  std::vector<std::string> key_columns;
  /// How long a subtask that has read everything waits before it asks again.
  absl::Duration poll_interval = absl::Seconds(1);
  /// Reads up to the largest position the table holds when the job first starts, then ends
  /// (the bound is checkpointed: a restored job ends at the same place).
  bool bounded = false;
  /// Parallel reading: subtask i of p reads the rows whose key hashes (hashtextextended, on
  /// the server) to i modulo p. Without it the source runs as one subtask. A split source is
  /// restored at the parallelism it was checkpointed at.
  bool split_by_key = false;
  /// Rows per query.
  int fetch_size = 10'000;
  /// Reconnection after a lost connection: delays between attempts (counted as
  /// postgres_reconnects); a poll never skips a row across it.
  absl::Duration reconnect_initial_backoff = absl::Milliseconds(100);
  absl::Duration reconnect_max_backoff = absl::Seconds(10);
};

namespace internal {

/// Receives a poll's rows (the typed source turns them into records).
class PostgresEmitter {
 public:
  virtual ~PostgresEmitter() = default;
  virtual void Emit(const PostgresRow& row) = 0;
};

/// The untyped source: connection, queries, position and ties (task thread only).
class PostgresSourceCore {
 public:
  explicit PostgresSourceCore(PostgresSourceOptions options);
  PostgresSourceCore(const PostgresSourceCore& other);
  ~PostgresSourceCore();

  void Open(RuntimeContext& ctx);
  SourceStatus Poll(PostgresEmitter& emitter, size_t max_rows);
  void Close();
  std::vector<std::string> SnapshotState(int64_t checkpoint_id);
  void RestoreState(std::vector<std::string> items);
  const PostgresSourceOptions& options() const { return options_; }

 private:
  class Reader;
  PostgresSourceOptions options_;
  std::vector<std::string> restored_;
  std::unique_ptr<Reader> reader_;
};

}  // namespace internal

/// Reads a PostgreSQL table (or query) as a stream: rows in position order, each once, also
/// across failures (the last position read and the keys read at it are the checkpointed
/// state). Unbounded, it polls every poll_interval for rows past its position; bounded, it
/// ends at the largest position there was at its first start. Rows become records through
/// `convert` (default for std::string: the row as a JSON object, PostgresRow::ToJson).
///
/// Errors name what is wrong: an unreachable server or a refused login (libpq's message and
/// the URL without its password), a missing table or column, a position column that cannot
/// order rows, a column type it cannot map (column and type). A connection lost while
/// polling is opened again with backoff (counter postgres_reconnects). Counters:
/// postgres_rows_read, postgres_queries, postgres_reconnects.
template <typename T>
class PostgresSource final : public SourceFunction<T> {
 public:
  using Convert = std::function<absl::StatusOr<T>(const PostgresRow&)>;

  PostgresSource(PostgresSourceOptions options, Convert convert)
      : core_(std::move(options)), convert_(std::move(convert)) {}
  explicit PostgresSource(PostgresSourceOptions options) requires std::is_same_v<T, std::string>
      : core_(std::move(options)),
        convert_([](const PostgresRow& row) -> absl::StatusOr<T> { return row.ToJson(); }) {}

  void Open(RuntimeContext& ctx) override { core_.Open(ctx); }
  SourceStatus Poll(SourceOutput<T>& out) override {
    Emitter emitter(*this, out);
    return core_.Poll(emitter, out.batch_hint());
  }
  void Close() override { core_.Close(); }
  bool IsParallel() const override { return core_.options().split_by_key; }
  std::vector<std::string> SnapshotState(int64_t checkpoint_id) override {
    return core_.SnapshotState(checkpoint_id);
  }
  void RestoreState(std::vector<std::string> items) override {
    core_.RestoreState(std::move(items));
  }
  /// Every subtask sees every position and takes its own split's.
  OperatorStateMode StateMode() const override { return OperatorStateMode::kUnion; }

 private:
  class Emitter final : public internal::PostgresEmitter {
   public:
    Emitter(PostgresSource& source, SourceOutput<T>& out) : source_(source), out_(out) {}
    void Emit(const PostgresRow& row) override {
      absl::StatusOr<T> value = source_.convert_(row);
      if (!value.ok()) {
        throw std::runtime_error(absl::StrCat("PostgreSQL source: converting the row ",
                                              row.ToJson(), ": ", value.status().message()));
      }
      out_.Collect(std::move(*value));
    }

   private:
    PostgresSource& source_;
    SourceOutput<T>& out_;
  };

  internal::PostgresSourceCore core_;
  Convert convert_;
};

/// Builds one row of the sink's COPY input: one call per column, in the sink's column order.
class PostgresRowWriter {
 public:
  void Add(int64_t value) { Separate(), absl::StrAppend(&out_, value); }
  void Add(int value) { Add(static_cast<int64_t>(value)); }
  void Add(double value);
  void Add(bool value) { Separate(), out_.append(value ? "t" : "f"); }
  /// Text (or any value in PostgreSQL's input syntax for the column's type).
  void Add(std::string_view text);
  void Add(const char* text) { Add(std::string_view(text)); }
  void Add(const std::string& text) { Add(std::string_view(text)); }
  void AddNull() { Separate(), out_.append("\\N"); }
  /// A timestamp (with time zone or without, as UTC) from milliseconds since the epoch.
  void AddTimestampMillis(int64_t millis_since_epoch);

  // Used by the sink.
  void BeginRow() { fields_ = 0; }
  int fields() const { return fields_; }
  std::string& buffer() { return out_; }

 private:
  void Separate() {
    if (fields_++ > 0) out_.push_back('\t');
  }
  std::string out_;
  int fields_ = 0;
};

enum class PostgresDelivery {
  kAtLeastOnce,  // committed at every checkpoint barrier (and at the end)
  kExactlyOnce,  // one transaction per checkpoint, prepared at its barrier, committed when
                 // the checkpoint completes
};

struct PostgresSinkOptions {
  std::string url;  // as PostgresSourceOptions::url
  std::string table;
  /// The columns each row fills, in order. Default: every column of the table, in order.
  std::vector<std::string> columns;
  /// Upsert: INSERT ... ON CONFLICT (upsert_keys) DO UPDATE the other columns (the last row
  /// of a key in a batch wins). Upserts are idempotent, so at-least-once delivery already
  /// leaves the table as exactly-once would; upsert with exactly-once is refused.
  bool upsert = false;
  std::vector<std::string> upsert_keys;  // default: the table's primary key
  PostgresDelivery delivery = PostgresDelivery::kAtLeastOnce;
  /// Exactly-once: prepared transactions are named "<prefix>-<subtask>-<checkpoint>" (a
  /// restore finds its own by it). Default: "sluice-<job>-<operator>". Unique per sink.
  std::string transaction_id_prefix;
  /// Rows kept before they go to the server in one COPY message (within the transaction).
  size_t buffer_bytes = 1 << 20;
};

/// One prepared transaction of an exactly-once sink, not yet known to be committed.
struct PostgresPreparedTransaction {
  std::string gid;
  int32_t subtask = 0;
  int64_t checkpoint_id = 0;
  int64_t rows = 0;
};
SLUICE_SERIALIZABLE(PostgresPreparedTransaction, gid, subtask, checkpoint_id, rows)

namespace internal {

/// The untyped sink (task thread only).
class PostgresSinkCore {
 public:
  explicit PostgresSinkCore(PostgresSinkOptions options);
  PostgresSinkCore(const PostgresSinkCore& other);
  ~PostgresSinkCore();

  void Open(RuntimeContext& ctx);
  PostgresRowWriter& writer() { return writer_; }
  /// After the writer got one row's fields.
  void EndRow();
  void Finish();
  void Close();
  std::vector<PostgresPreparedTransaction> SnapshotState(int64_t checkpoint_id);
  void RestoreState(std::vector<PostgresPreparedTransaction> items);
  void NotifyCheckpointComplete(int64_t checkpoint_id);

 private:
  class Session;
  bool exactly_once() const;
  void FlushBuffer();
  void CommitOpenTransaction();

  PostgresSinkOptions options_;
  bool checkpointing_ = false;
  int subtask_ = 0;
  std::string prefix_;
  std::vector<std::string> columns_;
  PostgresRowWriter writer_;
  int64_t rows_ = 0;          // rows given to the sink
  int64_t rows_pending_ = 0;  // rows of the open transaction
  absl::Time transaction_start_;
  std::vector<PostgresPreparedTransaction> restored_;
  std::vector<PostgresPreparedTransaction> pending_;
  std::unique_ptr<Session> session_;
  MetricGroup* metrics_ = nullptr;
};

}  // namespace internal

/// Writes records into a PostgreSQL table through COPY, `to_row` filling each row's columns.
/// At-least-once: committed at every checkpoint barrier (with upsert, a table keyed as the
/// records are ends up as exactly-once would leave it). Exactly-once: the rows between two
/// barriers go into one transaction, PREPAREd at the second barrier and COMMIT PREPAREd when
/// that checkpoint completes; a restored sink commits the prepared transactions of the
/// restored checkpoint that are still there and rolls back its other ones (needs the
/// server's max_prepared_transactions > 0). Without checkpoints it commits about every second
/// (when a buffer goes out) and at the end.
/// A failed write fails the task with the server's message (row and column included).
/// Counters: postgres_rows_written, postgres_transactions_committed,
/// postgres_transactions_rolled_back.
template <typename T>
class PostgresSink final : public SinkFunction<T>,
                           public CheckpointedFunction<PostgresPreparedTransaction>,
                           public CheckpointListener {
 public:
  using ToRow = std::function<void(const T&, PostgresRowWriter&)>;

  PostgresSink(PostgresSinkOptions options, ToRow to_row)
      : core_(std::move(options)), to_row_(std::move(to_row)) {}

  void Open(RuntimeContext& ctx) override { core_.Open(ctx); }
  void Invoke(const T& value, const SinkContext&) override {
    PostgresRowWriter& w = core_.writer();
    w.BeginRow();
    to_row_(value, w);
    core_.EndRow();
  }
  void Finish() override { core_.Finish(); }
  void Close() override { core_.Close(); }

  std::vector<PostgresPreparedTransaction> SnapshotState(int64_t checkpoint_id) override {
    return core_.SnapshotState(checkpoint_id);
  }
  void RestoreState(std::vector<PostgresPreparedTransaction> items) override {
    core_.RestoreState(std::move(items));
  }
  /// Every subtask sees every prepared transaction and takes those of its old index modulo
  /// the new parallelism.
  OperatorStateMode StateMode() const override { return OperatorStateMode::kUnion; }
  void NotifyCheckpointComplete(int64_t checkpoint_id) override {
    core_.NotifyCheckpointComplete(checkpoint_id);
  }

 private:
  internal::PostgresSinkCore core_;
  ToRow to_row_;
};

}  // namespace sluice
