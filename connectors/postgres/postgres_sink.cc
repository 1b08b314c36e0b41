// The PostgreSQL sink: rows stream into an open transaction through COPY; the transaction is
// committed at a barrier (at-least-once) or prepared there and committed when its checkpoint
// completes (exactly-once).

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "pg_connection.h"
#include "sluice/connectors/postgres.h"
#include "sluice/core/status_macros.h"
#include "sluice/metrics/metrics.h"

namespace sluice::internal {
namespace {

constexpr const char* kWho = "PostgreSQL sink";
constexpr const char* kStage = "sluice_upsert_stage";
constexpr size_t kMaxGidLength = 199;  // PostgreSQL's GIDSIZE - 1
constexpr absl::Duration kUncheckpointedCommitInterval = absl::Seconds(1);

std::string QuotedList(const std::vector<std::string>& names) {
  std::vector<std::string> quoted;
  for (const auto& n : names) quoted.push_back(QuoteName(n));
  return absl::StrJoin(quoted, ", ");
}

/// The subtask a transaction name "<prefix>-<subtask>-<checkpoint>" belongs to; -1 if the
/// name is not one of `prefix`'s.
int SubtaskOf(const std::string& gid, const std::string& prefix) {
  if (gid.size() <= prefix.size() + 1 || gid.compare(0, prefix.size() + 1, prefix + "-") != 0) {
    return -1;
  }
  std::vector<std::string> parts = absl::StrSplit(gid.substr(prefix.size() + 1), '-');
  int subtask = -1;
  int64_t checkpoint = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &subtask) ||
      !absl::SimpleAtoi(parts[1], &checkpoint)) {
    return -1;
  }
  return subtask;
}

}  // namespace

/// The connection and its open transaction.
class PostgresSinkCore::Session {
 public:
  Session(std::unique_ptr<PgConnection> conn, const PostgresSinkOptions& options,
          std::vector<std::string> columns, std::vector<std::string> keys)
      : conn_(std::move(conn)),
        options_(options),
        columns_(std::move(columns)),
        keys_(std::move(keys)) {}

  absl::Status PrepareUpsert() {
    // A session's own table, emptied after every merge.
    SLUICE_RETURN_IF_ERROR(
        conn_->Run(absl::StrCat("CREATE TEMP TABLE ", kStage, " AS SELECT ", QuotedList(columns_),
                                " FROM ", QuoteName(options_.table), " WITH NO DATA; ALTER TABLE ",
                                kStage, " ADD COLUMN sluice_seq bigserial"),
                   "creating the upsert stage table"));
    std::vector<std::string> updates;
    const std::set<std::string> keys(keys_.begin(), keys_.end());
    for (const auto& c : columns_) {
      if (!keys.contains(c)) {
        updates.push_back(absl::StrCat(QuoteName(c), " = EXCLUDED.", QuoteName(c)));
      }
    }
    // The last row of a key in the batch wins (one row per key: ON CONFLICT cannot update a
    // row twice in one statement).
    merge_ = absl::StrCat(
        "INSERT INTO ", QuoteName(options_.table), " (", QuotedList(columns_), ") SELECT ",
        QuotedList(columns_), " FROM (SELECT DISTINCT ON (", QuotedList(keys_), ") * FROM ", kStage,
        " ORDER BY ", QuotedList(keys_), ", sluice_seq DESC) AS s ON CONFLICT (", QuotedList(keys_),
        ") DO ", updates.empty() ? "NOTHING" : "UPDATE SET " + absl::StrJoin(updates, ", "),
        "; TRUNCATE ", kStage);
    return absl::OkStatus();
  }

  /// Sends `rows` (COPY text) into the open transaction, opening it first if needed.
  absl::Status Write(const std::string& rows) {
    if (!in_transaction_) {
      SLUICE_RETURN_IF_ERROR(conn_->Run("BEGIN", "beginning a transaction"));
      in_transaction_ = true;
    }
    if (!conn_->copying()) {
      SLUICE_RETURN_IF_ERROR(conn_->BeginCopy(
          absl::StrCat("COPY ", options_.upsert ? kStage : QuoteName(options_.table), " (",
                       QuotedList(columns_), ") FROM STDIN"),
          "writing rows into '" + options_.table + "'"));
    }
    return conn_->PutCopyData(rows);
  }

  /// Ends the COPY (the server's verdict on the rows) and merges upserts.
  absl::Status EndWrites() {
    if (conn_->copying()) SLUICE_RETURN_IF_ERROR(conn_->EndCopy());
    if (options_.upsert && in_transaction_) {
      SLUICE_RETURN_IF_ERROR(
          conn_->Run(merge_, "merging the upserted rows into '" + options_.table + "'"));
    }
    return absl::OkStatus();
  }

  absl::Status Commit() {
    if (!in_transaction_) return absl::OkStatus();
    SLUICE_RETURN_IF_ERROR(EndWrites());
    SLUICE_RETURN_IF_ERROR(conn_->Run("COMMIT", "committing"));
    in_transaction_ = false;
    return absl::OkStatus();
  }

  /// PREPARE TRANSACTION `gid`; false if no transaction was open (nothing to prepare).
  absl::StatusOr<bool> Prepare(const std::string& gid) {
    if (!in_transaction_) return false;
    SLUICE_RETURN_IF_ERROR(EndWrites());
    SLUICE_RETURN_IF_ERROR(conn_->Run("PREPARE TRANSACTION " + QuoteLiteral(gid),
                                      "preparing transaction '" + gid + "'"));
    in_transaction_ = false;
    return true;
  }

  /// Exactly-once: a second connection for COMMIT / ROLLBACK PREPARED, which cannot run
  /// inside the transaction (and its COPY) that the rows after a barrier are going into.
  void SetCommitter(std::unique_ptr<PgConnection> committer) { committer_ = std::move(committer); }

  absl::Status Finish(const std::string& verb, const std::string& gid) {
    return committer_->Run(absl::StrCat(verb, " PREPARED ", QuoteLiteral(gid)),
                           absl::StrCat(verb, " PREPARED '", gid, "'"));
  }

  /// The names of this database's prepared transactions that start with `prefix`-.
  absl::StatusOr<std::set<std::string>> PreparedOf(const std::string& prefix) {
    SLUICE_ASSIGN_OR_RETURN(PgResult r,
                            committer_->Exec("SELECT gid FROM pg_prepared_xacts WHERE database = "
                                             "current_database() AND starts_with(gid, $1)",
                                             "listing prepared transactions", {prefix + "-"}));
    std::set<std::string> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.insert(PQgetvalue(r.get(), i, 0));
    return out;
  }

  PgConnection& conn() { return *conn_; }

 private:
  std::unique_ptr<PgConnection> conn_;
  std::unique_ptr<PgConnection> committer_;
  const PostgresSinkOptions& options_;
  std::vector<std::string> columns_;
  std::vector<std::string> keys_;
  std::string merge_;
  bool in_transaction_ = false;
};

PostgresSinkCore::PostgresSinkCore(PostgresSinkOptions options) : options_(std::move(options)) {
  if (options_.table.empty()) throw std::invalid_argument(absl::StrCat(kWho, ": no table"));
  if (options_.upsert && options_.delivery == PostgresDelivery::kExactlyOnce) {
    throw std::invalid_argument(absl::StrCat(
        kWho,
        ": upsert with exactly-once delivery: upserts are idempotent, so at-least-once "
        "already leaves the table as exactly-once would (and prepared transactions cannot "
        "use the upsert's staging table)"));
  }
}
PostgresSinkCore::PostgresSinkCore(const PostgresSinkCore& other) : options_(other.options_) {}
PostgresSinkCore::~PostgresSinkCore() = default;

bool PostgresSinkCore::exactly_once() const {
  return options_.delivery == PostgresDelivery::kExactlyOnce && checkpointing_;
}

namespace {

/// The table's columns (not generated ones) in order, and its primary key.
absl::Status DescribeTable(PgConnection& conn, const std::string& table,
                           std::vector<std::string>* columns, std::vector<std::string>* key) {
  SLUICE_ASSIGN_OR_RETURN(PgResult t, conn.Exec("SELECT to_regclass($1)::oid::text",
                                                "looking the table up", {QuoteName(table)}));
  if (PQgetisnull(t.get(), 0, 0)) {
    return absl::NotFoundError(
        absl::StrCat(kWho, ": table '", table, "' does not exist in ", conn.where()));
  }
  const std::string oid = PQgetvalue(t.get(), 0, 0);
  SLUICE_ASSIGN_OR_RETURN(
      PgResult c, conn.Exec("SELECT attname FROM pg_attribute WHERE attrelid = $1::oid AND "
                            "attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
                            "reading the table's columns", {oid}));
  for (int i = 0; i < PQntuples(c.get()); ++i) columns->push_back(PQgetvalue(c.get(), i, 0));
  SLUICE_ASSIGN_OR_RETURN(
      PgResult k, conn.Exec("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid "
                            "= i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = "
                            "$1::oid AND i.indisprimary ORDER BY array_position(i.indkey::int2[], "
                            "a.attnum)",
                            "reading the primary key", {oid}));
  for (int i = 0; i < PQntuples(k.get()); ++i) key->push_back(PQgetvalue(k.get(), i, 0));
  return absl::OkStatus();
}

}  // namespace

void PostgresSinkCore::Open(RuntimeContext& ctx) {
  metrics_ = &ctx.Metrics();
  checkpointing_ = ctx.task_info().checkpointing;
  subtask_ = ctx.SubtaskIndex();
  const std::string application_name =
      absl::StrCat("sluice ", ctx.task_info().job_name, " ", ctx.task_info().operator_name, " ",
                   subtask_ + 1, "/", ctx.Parallelism());
  auto conn = PgConnection::Open(options_.url, application_name, kWho);
  ThrowIfError(conn.status());
  std::vector<std::string> table_columns, primary_key;
  ThrowIfError(DescribeTable(**conn, options_.table, &table_columns, &primary_key));
  columns_ = options_.columns.empty() ? table_columns : options_.columns;
  const std::set<std::string> known(table_columns.begin(), table_columns.end());
  for (const auto& c : columns_) {
    if (!known.contains(c)) {
      throw std::invalid_argument(
          absl::StrCat(kWho, ": table '", options_.table, "' has no column '", c,
                       "' (its columns: ", absl::StrJoin(table_columns, ", "), ")"));
    }
  }
  std::vector<std::string> keys = options_.upsert_keys.empty() ? primary_key : options_.upsert_keys;
  if (options_.upsert && keys.empty()) {
    throw std::invalid_argument(absl::StrCat(kWho, ": upsert into '", options_.table,
                                             "', which has no primary key: name upsert_keys"));
  }
  session_ = std::make_unique<Session>(std::move(*conn), options_, columns_, keys);
  transaction_start_ = absl::Now();
  if (options_.upsert) ThrowIfError(session_->PrepareUpsert());
  if (!exactly_once()) return;

  auto committer = PgConnection::Open(options_.url, application_name + " commits", kWho);
  ThrowIfError(committer.status());
  session_->SetCommitter(std::move(*committer));
  auto max_prepared =
      session_->conn().Exec("SHOW max_prepared_transactions", "reading max_prepared_transactions");
  ThrowIfError(max_prepared.status());
  if (std::string(PQgetvalue(max_prepared->get(), 0, 0)) == "0") {
    throw std::runtime_error(
        absl::StrCat(kWho, ": exactly-once needs prepared transactions, but the server at ",
                     session_->conn().where(),
                     " has max_prepared_transactions = 0 (set it above the "
                     "sink's parallelism x the checkpoints that may be pending, and restart it)"));
  }
  prefix_ =
      options_.transaction_id_prefix.empty()
          ? absl::StrCat("sluice-", ctx.task_info().job_name, "-", ctx.task_info().operator_name)
          : options_.transaction_id_prefix;
  if (prefix_.size() + 42 > kMaxGidLength) {
    throw std::invalid_argument(absl::StrCat(kWho, ": transaction_id_prefix '", prefix_,
                                             "' is too long (at most ", kMaxGidLength - 42,
                                             " bytes)"));
  }
  // Recovery. The restored checkpoint completed: its prepared transactions must be committed
  // (those still prepared were not yet). Any other prepared transaction of ours belongs to a
  // checkpoint that did not complete: rolled back. Old subtask i's are this one's when
  // i mod parallelism == this subtask.
  auto prepared = session_->PreparedOf(prefix_);
  ThrowIfError(prepared.status());
  std::set<std::string> restored_gids;
  for (const auto& t : restored_) restored_gids.insert(t.gid);
  for (const auto& t : restored_) {
    if (t.subtask % ctx.Parallelism() != subtask_ || !prepared->contains(t.gid)) continue;
    LOG(INFO) << application_name << ": committing prepared transaction '" << t.gid << "' ("
              << t.rows << " rows) of completed checkpoint " << t.checkpoint_id;
    ThrowIfError(session_->Finish("COMMIT", t.gid));
    metrics_->GetCounter("postgres_transactions_committed").Inc();
    metrics_->GetCounter("postgres_rows_written").Inc(t.rows);
  }
  for (const auto& gid : *prepared) {
    const int owner = SubtaskOf(gid, prefix_);
    if (owner < 0 || owner % ctx.Parallelism() != subtask_ || restored_gids.contains(gid)) {
      continue;
    }
    LOG(INFO) << application_name << ": rolling back prepared transaction '" << gid
              << "' of a checkpoint that did not complete";
    ThrowIfError(session_->Finish("ROLLBACK", gid));
    metrics_->GetCounter("postgres_transactions_rolled_back").Inc();
  }
  restored_.clear();
}

void PostgresSinkCore::EndRow() {
  ++rows_;
  if (writer_.fields() != static_cast<int>(columns_.size())) {
    throw std::invalid_argument(absl::StrCat(
        kWho, ": record ", rows_, " filled ", writer_.fields(), " columns of '", options_.table,
        "', not ", columns_.size(), " (", absl::StrJoin(columns_, ", "), ")"));
  }
  std::string& buffer = writer_.buffer();
  buffer.push_back('\n');
  ++rows_pending_;
  if (buffer.size() >= options_.buffer_bytes) {
    ThrowIfError(session_->Write(buffer));
    buffer.clear();
    // Without checkpoints nothing else would end the transaction of an unbounded stream: a
    // commit a second (not per message, which would stop the server's work on one message
    // from overlapping the sink's on the next).
    if (!checkpointing_ && absl::Now() - transaction_start_ >= kUncheckpointedCommitInterval) {
      CommitOpenTransaction();
    }
  }
}

void PostgresSinkCore::CommitOpenTransaction() {
  ThrowIfError(session_->Commit());
  transaction_start_ = absl::Now();
  metrics_->GetCounter("postgres_rows_written").Inc(rows_pending_);
  rows_pending_ = 0;
}

void PostgresSinkCore::FlushBuffer() {
  std::string& buffer = writer_.buffer();
  if (buffer.empty()) return;
  ThrowIfError(session_->Write(buffer));
  buffer.clear();
}

void PostgresSinkCore::Finish() {
  if (exactly_once()) return;  // the final checkpoint commits
  FlushBuffer();
  CommitOpenTransaction();
}

void PostgresSinkCore::Close() { session_.reset(); }  // an open transaction rolls back

std::vector<PostgresPreparedTransaction> PostgresSinkCore::SnapshotState(int64_t checkpoint_id) {
  FlushBuffer();
  if (!exactly_once()) {
    CommitOpenTransaction();
    return {};
  }
  const std::string gid = absl::StrCat(prefix_, "-", subtask_, "-", checkpoint_id);
  auto prepared = session_->Prepare(gid);
  ThrowIfError(prepared.status());
  if (*prepared) pending_.push_back({gid, subtask_, checkpoint_id, rows_pending_});
  rows_pending_ = 0;
  return pending_;
}

void PostgresSinkCore::RestoreState(std::vector<PostgresPreparedTransaction> items) {
  restored_ = std::move(items);
}

void PostgresSinkCore::NotifyCheckpointComplete(int64_t checkpoint_id) {
  if (!exactly_once()) return;
  // Completion of N covers every earlier checkpoint too.
  size_t done = 0;
  while (done < pending_.size() && pending_[done].checkpoint_id <= checkpoint_id) {
    ThrowIfError(session_->Finish("COMMIT", pending_[done].gid));
    metrics_->GetCounter("postgres_transactions_committed").Inc();
    metrics_->GetCounter("postgres_rows_written").Inc(pending_[done].rows);
    ++done;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
}

}  // namespace sluice::internal
