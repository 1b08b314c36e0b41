// The polling PostgreSQL source: one query per fetch_size rows, in position order, resuming
// after the last position read and the keys already read at it.

#include <chrono>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "pg_connection.h"
#include "sluice/connectors/postgres.h"
#include "sluice/core/backoff.h"
#include "sluice/core/log_rate_limiter.h"
#include "sluice/core/status_macros.h"
#include "sluice/metrics/metrics.h"
#include "sluice/serialization/serializer.h"

namespace sluice::internal {

/// Where a subtask's reading stands (its checkpointed state).
struct PostgresReadPosition {
  int32_t split_index = 0;
  int32_t split_count = 1;
  bool has_position = false;
  std::string position;              // the last position read, as the server writes it
  std::vector<std::string> ties;     // the keys read at `position`
  bool has_bound = false;            // bounded: the bound is known (decided at the first start)
  std::optional<std::string> bound;  // the largest position then; nullopt: the table was empty
};
SLUICE_SERIALIZABLE(PostgresReadPosition, split_index, split_count, has_position, position, ties,
                    has_bound, bound)

namespace {

constexpr const char* kWho = "PostgreSQL source";

/// A text[] literal: {"a","b"} with quotes and backslashes escaped.
std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('"');
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

bool Orders(const PostgresColumn& c) {
  return c.type == PostgresType::kInteger || c.type == PostgresType::kNumeric ||
         c.type == PostgresType::kTimestamp || c.type == PostgresType::kTimestampTz ||
         c.type_name == "date";
}

}  // namespace

class PostgresSourceCore::Reader {
 public:
  Reader(const PostgresSourceOptions& options, RuntimeContext& ctx) : options_(options) {
    metrics_ = &ctx.Metrics();
    backoff_policy_.initial = options.reconnect_initial_backoff;
    backoff_policy_.max = options.reconnect_max_backoff;
    backoff_policy_.jitter = 0.2;
    backoff_ = std::make_unique<Backoff>(backoff_policy_);
    application_name_ =
        absl::StrCat("sluice ", ctx.task_info().job_name, " ", ctx.task_info().operator_name, " ",
                     ctx.SubtaskIndex() + 1, "/", ctx.Parallelism());
    name_ = absl::StrCat(kWho, " ", ctx.SubtaskIndex() + 1, "/", ctx.Parallelism());
    state_.split_index = options.split_by_key ? ctx.SubtaskIndex() : 0;
    state_.split_count = options.split_by_key ? ctx.Parallelism() : 1;
  }

  absl::Status Open(const std::vector<std::string>& restored) {
    SLUICE_RETURN_IF_ERROR(TakeRestored(restored));
    SLUICE_ASSIGN_OR_RETURN(conn_, PgConnection::Open(options_.url, application_name_, kWho));
    SLUICE_RETURN_IF_ERROR(Describe());
    if (options_.bounded && !state_.has_bound) {
      SLUICE_ASSIGN_OR_RETURN(PgResult r, conn_->Exec(absl::StrCat("SELECT max(", position_,
                                                                   ")::text FROM ", relation_),
                                                      "finding the largest position (bounded)"));
      state_.has_bound = true;
      if (!PQgetisnull(r.get(), 0, 0)) state_.bound = PQgetvalue(r.get(), 0, 0);
    }
    return absl::OkStatus();
  }

  SourceStatus Poll(PostgresEmitter& emitter, size_t max_rows) {
    if (result_ != nullptr && next_row_ < PQntuples(result_.get())) {
      Emit(emitter, max_rows);
      return SourceStatus::kMoreAvailable;
    }
    result_.reset();
    if (options_.bounded && !state_.bound.has_value()) return SourceStatus::kEndOfInput;
    const absl::Time now = absl::Now();
    if (now < next_attempt_) {
      // Nothing to do until then; a short nap keeps the task's loop from spinning.
      std::this_thread::sleep_for(std::chrono::microseconds(
          std::min<int64_t>(absl::ToInt64Microseconds(next_attempt_ - now), 5'000)));
      return SourceStatus::kNothingAvailable;
    }
    if (conn_ == nullptr && !Reconnect()) return SourceStatus::kNothingAvailable;
    auto r = conn_->Exec(PollQuery(), "reading rows", PollParameters());
    metrics_->GetCounter("postgres_queries").Inc();
    if (!r.ok()) {
      if (!absl::IsUnavailable(r.status())) ThrowIfError(r.status());
      LOG(WARNING) << name_ << ": " << r.status().message() << "; connecting again";
      Disconnected();
      return SourceStatus::kNothingAvailable;
    }
    const int rows = PQntuples(r->get());
    if (rows == 0 && options_.bounded) return SourceStatus::kEndOfInput;
    // Caught up: ask again after the poll interval (bounded: at once, for the empty answer
    // that ends it).
    if (rows < options_.fetch_size && !options_.bounded) {
      next_attempt_ = absl::Now() + options_.poll_interval;
    }
    if (rows == 0) return SourceStatus::kNothingAvailable;
    result_ = std::move(*r);
    next_row_ = 0;
    Emit(emitter, max_rows);
    return SourceStatus::kMoreAvailable;
  }

  std::string Snapshot() const { return SerializeToString(state_); }

 private:
  absl::Status TakeRestored(const std::vector<std::string>& restored) {
    if (restored.empty()) return absl::OkStatus();
    std::set<int32_t> counts;
    for (const std::string& item : restored) {
      SLUICE_ASSIGN_OR_RETURN(
          auto p, DeserializeFromString<PostgresReadPosition>(item, "PostgreSQL source position"));
      counts.insert(p.split_count);
      if (p.split_count == state_.split_count && p.split_index == state_.split_index) {
        state_ = std::move(p);
        return absl::OkStatus();
      }
    }
    return absl::FailedPreconditionError(absl::StrCat(
        kWho, ": the restored positions are those of ", *counts.rbegin(),
        " split(s); a PostgreSQL source is restored at the parallelism (and split_by_key) it "
        "was checkpointed with, here ",
        state_.split_count));
  }

  /// Columns, their kinds, the position and key columns, checked against the table.
  absl::Status Describe() {
    const std::string what =
        options_.table.empty() ? "the query" : "table '" + options_.table + "'";
    if (options_.table.empty() == options_.query.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(kWho, ": give a table or a query (one)"));
    }
    if (!options_.table.empty()) {
      SLUICE_ASSIGN_OR_RETURN(
          PgResult r, conn_->Exec("SELECT to_regclass($1)::oid::text", "looking the table up",
                                  {QuoteName(options_.table)}));
      if (PQgetisnull(r.get(), 0, 0)) {
        return absl::NotFoundError(absl::StrCat(kWho, ": table '", options_.table,
                                                "' does not exist in ", conn_->where()));
      }
      table_oid_ = PQgetvalue(r.get(), 0, 0);
      relation_ = QuoteName(options_.table) + " AS r";
    } else {
      relation_ = absl::StrCat("(", options_.query, ") AS r");
    }
    SLUICE_ASSIGN_OR_RETURN(PgResult shape,
                            conn_->Exec(absl::StrCat("SELECT * FROM ", relation_, " LIMIT 0"),
                                        "reading the columns of " + what));
    std::vector<std::string> names;
    for (int i = 0; i < PQnfields(shape.get()); ++i) {
      PostgresColumn c;
      c.name = PQfname(shape.get(), i);
      const Oid type = PQftype(shape.get(), i);
      SLUICE_ASSIGN_OR_RETURN(
          PgResult t, conn_->Exec("SELECT format_type($1::oid, NULL)", "naming a column's type",
                                  {std::to_string(type)}));
      c.type_name = PQgetvalue(t.get(), 0, 0);
      const auto kind = MapType(type);
      if (!kind) {
        return absl::InvalidArgumentError(absl::StrCat(
            kWho, ": column '", c.name, "' of ", what, " has type ", c.type_name,
            ", which the source cannot map (read it through a query that casts it, e.g. to "
            "text)"));
      }
      c.type = *kind;
      names.push_back(c.name);
      columns_.push_back(std::move(c));
    }
    auto find = [&](const std::string& name) -> const PostgresColumn* {
      for (const auto& c : columns_) {
        if (c.name == name) return &c;
      }
      return nullptr;
    };
    const PostgresColumn* position = find(options_.position_column);
    if (position == nullptr) {
      return absl::NotFoundError(absl::StrCat(kWho, ": ", what, " has no column '",
                                              options_.position_column,
                                              "' (its columns: ", absl::StrJoin(names, ", "), ")"));
    }
    if (!Orders(*position)) {
      return absl::InvalidArgumentError(absl::StrCat(
          kWho, ": the position column '", position->name, "' has type ", position->type_name,
          ", which cannot order rows: use an integer, numeric, date or timestamp column"));
    }
    position_ = "r." + QuoteName(position->name);
    position_type_ = position->type_name;
    std::vector<std::string> keys = options_.key_columns;
    if (keys.empty() && !table_oid_.empty()) {
      SLUICE_ASSIGN_OR_RETURN(
          PgResult pk,
          conn_->Exec("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                      "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::oid AND "
                      "i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
                      "reading the primary key", {table_oid_}));
      for (int i = 0; i < PQntuples(pk.get()); ++i) keys.push_back(PQgetvalue(pk.get(), i, 0));
    }
    if (keys.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kWho, ": ", what,
                       " has no primary key: name the columns that identify a row "
                       "(key_columns), which tell rows of equal position apart"));
    }
    std::vector<std::string> quoted;
    for (const auto& k : keys) {
      if (find(k) == nullptr) {
        return absl::NotFoundError(absl::StrCat(kWho, ": ", what, " has no key column '", k,
                                                "' (its columns: ", absl::StrJoin(names, ", "),
                                                ")"));
      }
      quoted.push_back("r." + QuoteName(k));
    }
    key_ = quoted.size() == 1 ? absl::StrCat("(", quoted[0], ")::text")
                              : absl::StrCat("ROW(", absl::StrJoin(quoted, ", "), ")::text");
    position_index_ = static_cast<int>(find(options_.position_column) - columns_.data());
    return absl::OkStatus();
  }

  std::string PollQuery() const {
    std::vector<std::string> where = {position_ + " IS NOT NULL"};
    int parameter = 0;
    if (state_.has_position) {
      const std::string p = absl::StrCat("$", ++parameter, "::", position_type_);
      const std::string ties = absl::StrCat("$", ++parameter, "::text[]");
      where.push_back(absl::StrCat(position_, " >= ", p, " AND (", position_, " > ", p, " OR NOT (",
                                   key_, " = ANY(", ties, ")))"));
    }
    if (options_.bounded) {
      where.push_back(absl::StrCat(position_, " <= $", ++parameter, "::", position_type_));
    }
    if (state_.split_count > 1) {
      // "Not one of the others' splits", not "= mine": the planner guesses 0.5% of rows for
      // an equality on an expression, and would then sort the whole table for each fetch
      // rather than walk the position's index; it guesses 99.5% for each inequality.
      std::vector<int> others;
      for (int i = 0; i < state_.split_count; ++i) {
        if (i != state_.split_index) others.push_back(i);
      }
      where.push_back(absl::StrCat("abs(hashtextextended(", key_, ", 0) % ", state_.split_count,
                                   ") NOT IN (", absl::StrJoin(others, ", "), ")"));
    }
    return absl::StrCat("SELECT r.*, ", key_, " FROM ", relation_, " WHERE ",
                        absl::StrJoin(where, " AND "), " ORDER BY ", position_, " LIMIT ",
                        options_.fetch_size);
  }

  std::vector<std::optional<std::string>> PollParameters() const {
    std::vector<std::optional<std::string>> p;
    if (state_.has_position) {
      p.push_back(state_.position);
      p.push_back(TextArray(state_.ties));
    }
    if (options_.bounded) p.push_back(state_.bound);
    return p;
  }

  void Emit(PostgresEmitter& emitter, size_t max_rows) {
    const int rows = PQntuples(result_.get());
    const int key_field = static_cast<int>(columns_.size());
    PostgresRowData data{&columns_, result_.get(), 0};
    const PostgresRow row(data);
    size_t emitted = 0;
    for (; next_row_ < rows && emitted < std::max<size_t>(max_rows, 1); ++next_row_, ++emitted) {
      data.row = next_row_;
      const char* position = PQgetvalue(result_.get(), next_row_, position_index_);
      std::string key(PQgetvalue(result_.get(), next_row_, key_field),
                      static_cast<size_t>(PQgetlength(result_.get(), next_row_, key_field)));
      // Rows come in position order: a new text is a larger position.
      if (!state_.has_position || state_.position != position) {
        state_.has_position = true;
        state_.position = position;
        state_.ties.clear();
      }
      state_.ties.push_back(std::move(key));
      emitter.Emit(row);
    }
    metrics_->GetCounter("postgres_rows_read").Inc(static_cast<int64_t>(emitted));
  }

  void Disconnected() {
    conn_.reset();
    result_.reset();
    next_attempt_ = absl::Now() + backoff_->Next();
  }

  bool Reconnect() {
    auto c = PgConnection::Open(options_.url, application_name_, kWho);
    metrics_->GetCounter("postgres_reconnects").Inc();
    if (!c.ok()) {
      // A refused login or a database that is gone will not heal by waiting.
      if (!absl::IsUnavailable(c.status())) ThrowIfError(c.status());
      int64_t held_back = 0;
      if (log_limiter_.Allow("reconnect", absl::Now(), &held_back)) {
        LOG(WARNING) << name_ << ": " << c.status().message() << SuppressedNote(held_back);
      }
      next_attempt_ = absl::Now() + backoff_->Next();
      return false;
    }
    LOG(INFO) << name_ << ": connected again to " << (*c)->where();
    conn_ = std::move(*c);
    backoff_->Reset();
    return true;
  }

  const PostgresSourceOptions& options_;
  MetricGroup* metrics_ = nullptr;
  BackoffPolicy backoff_policy_;
  std::unique_ptr<Backoff> backoff_;
  LogRateLimiter log_limiter_{absl::Seconds(10)};
  std::string application_name_;
  std::string name_;
  std::unique_ptr<PgConnection> conn_;
  std::vector<PostgresColumn> columns_;
  std::string table_oid_;
  std::string relation_;       // FROM what, aliased r
  std::string position_;       // r."column"
  std::string position_type_;  // its type as the server names it (for the parameters' casts)
  int position_index_ = 0;
  std::string key_;  // the key's text
  PostgresReadPosition state_;
  PgResult result_{nullptr, &PQclear};
  int next_row_ = 0;
  absl::Time next_attempt_ = absl::InfinitePast();
};

PostgresSourceCore::PostgresSourceCore(PostgresSourceOptions options)
    : options_(std::move(options)) {}
PostgresSourceCore::PostgresSourceCore(const PostgresSourceCore& other)
    : options_(other.options_) {}
PostgresSourceCore::~PostgresSourceCore() = default;

void PostgresSourceCore::Open(RuntimeContext& ctx) {
  if (options_.fetch_size < 1) {
    throw std::invalid_argument(absl::StrCat(kWho, ": fetch_size must be >= 1"));
  }
  reader_ = std::make_unique<Reader>(options_, ctx);
  ThrowIfError(reader_->Open(restored_));
  restored_.clear();
}

SourceStatus PostgresSourceCore::Poll(PostgresEmitter& emitter, size_t max_rows) {
  return reader_->Poll(emitter, max_rows);
}

void PostgresSourceCore::Close() { reader_.reset(); }

std::vector<std::string> PostgresSourceCore::SnapshotState(int64_t) {
  if (reader_ == nullptr) return restored_;  // not opened yet: what it was restored with
  return {reader_->Snapshot()};
}

void PostgresSourceCore::RestoreState(std::vector<std::string> items) {
  restored_ = std::move(items);
}

}  // namespace sluice::internal
