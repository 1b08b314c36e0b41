#include "pg_connection.h"

#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "sluice/core/status_macros.h"

namespace sluice::internal {
namespace {

// pg_type's OIDs of the built-in types (fixed since PostgreSQL 7).
enum : Oid {
  kBoolOid = 16,
  kCharOid = 18,
  kNameOid = 19,
  kInt8Oid = 20,
  kInt2Oid = 21,
  kInt4Oid = 23,
  kTextOid = 25,
  kOidOid = 26,
  kJsonOid = 114,
  kCidrOid = 650,
  kFloat4Oid = 700,
  kFloat8Oid = 701,
  kInetOid = 869,
  kBpcharOid = 1042,
  kVarcharOid = 1043,
  kDateOid = 1082,
  kTimeOid = 1083,
  kTimestampOid = 1114,
  kTimestampTzOid = 1184,
  kIntervalOid = 1186,
  kTimeTzOid = 1266,
  kNumericOid = 1700,
  kUuidOid = 2950,
  kJsonbOid = 3802,
};

std::string Trimmed(const char* message) {
  return std::string(absl::StripTrailingAsciiWhitespace(message == nullptr ? "" : message));
}

}  // namespace

std::string RedactPassword(const std::string& url) {
  // postgresql://user:password@host... (a password in a key=value string is left to libpq)
  static const std::regex kPassword(R"(^(postgres(?:ql)?://[^:/@]*:)[^@]*@)");
  return std::regex_replace(url, kPassword, "$1***@");
}

std::string QuoteName(const std::string& name) {
  std::string out;
  for (const auto& part : absl::StrSplit(name, '.')) {
    if (!out.empty()) out.push_back('.');
    out.push_back('"');
    for (char c : part) {
      if (c == '"') out.push_back('"');
      out.push_back(c);
    }
    out.push_back('"');
  }
  return out;
}

std::string QuoteLiteral(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::optional<PostgresType> MapType(Oid type) {
  switch (type) {
    case kBoolOid:
      return PostgresType::kBool;
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid:
      return PostgresType::kInteger;
    case kFloat4Oid:
    case kFloat8Oid:
      return PostgresType::kFloat;
    case kNumericOid:
      return PostgresType::kNumeric;
    case kTextOid:
    case kVarcharOid:
    case kBpcharOid:
    case kCharOid:
    case kNameOid:
    case kUuidOid:
    case kDateOid:
    case kTimeOid:
    case kTimeTzOid:
    case kIntervalOid:
    case kInetOid:
    case kCidrOid:
      return PostgresType::kText;
    case kTimestampOid:
      return PostgresType::kTimestamp;
    case kTimestampTzOid:
      return PostgresType::kTimestampTz;
    case kJsonOid:
    case kJsonbOid:
      return PostgresType::kJson;
    default:
      return std::nullopt;
  }
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Open(
    const std::string& url, const std::string& application_name, const std::string& who) {
  auto c = std::unique_ptr<PgConnection>(new PgConnection());
  c->who_ = who;
  // The URL's own settings first; ours after it win (connect_timeout only if it has none).
  const char* keys[] = {"dbname", "application_name", "fallback_application_name",
                        "connect_timeout", nullptr};
  const char* values[] = {url.c_str(), application_name.c_str(), "sluice", "10", nullptr};
  c->conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c->conn_ == nullptr) return absl::ResourceExhaustedError(who + ": out of memory");
  if (PQstatus(c->conn_) != CONNECTION_OK) {
    const std::string message = Trimmed(PQerrorMessage(c->conn_));
    const std::string text =
        absl::StrCat(who, ": connecting to ", RedactPassword(url), ": ", message);
    // libpq has no code for it; the server's words for a refused login are these.
    if (message.find("authentication failed") != std::string::npos ||
        message.find("no password supplied") != std::string::npos ||
        message.find("no pg_hba.conf entry") != std::string::npos) {
      return absl::UnauthenticatedError(text);
    }
    if (message.find("does not exist") != std::string::npos) return absl::NotFoundError(text);
    return absl::UnavailableError(text);
  }
  // Timestamps in UTC and ISO 8601, whatever the server's defaults.
  SLUICE_RETURN_IF_ERROR(
      c->Run("SET client_encoding = 'UTF8'; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
             "SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 3",
             "setting the session's time zone and date style"));
  return c;
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

std::string PgConnection::where() const {
  return absl::StrCat(PQhost(conn_), ":", PQport(conn_), "/", PQdb(conn_));
}

absl::Status PgConnection::ResultError(const PGresult* result, const std::string& what) const {
  const char* state = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const std::string sqlstate = state == nullptr ? "" : state;
  std::string message =
      Trimmed(result == nullptr ? PQerrorMessage(conn_) : PQresultErrorMessage(result));
  if (message.empty()) message = Trimmed(PQerrorMessage(conn_));
  const std::string text = absl::StrCat(who_, ": ", what, " (", where(), "): ", message,
                                        sqlstate.empty() ? "" : " [SQLSTATE " + sqlstate + "]");
  // Class 08: connection exceptions; 57P01-57P03: the server shut down or kicked us out.
  if (broken() || absl::StartsWith(sqlstate, "08") || absl::StartsWith(sqlstate, "57P")) {
    return absl::UnavailableError(text);
  }
  // 42P01 undefined_table, 42703 undefined_column, 3F000 invalid_schema_name.
  if (sqlstate == "42P01" || sqlstate == "42703" || sqlstate == "3F000") {
    return absl::NotFoundError(text);
  }
  if (absl::StartsWith(sqlstate, "28") || sqlstate == "42501") {
    return absl::PermissionDeniedError(text);
  }
  return absl::FailedPreconditionError(text);
}

absl::StatusOr<PgResult> PgConnection::Exec(const std::string& sql, const std::string& what,
                                            const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResult result(params.empty() ? PQexec(conn_, sql.c_str())
                                 : PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()),
                                                nullptr, values.data(), nullptr, nullptr, 0),
                  &PQclear);
  const ExecStatusType status =
      result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return ResultError(result.get(), what);
  }
  return result;
}

absl::Status PgConnection::Run(const std::string& sql, const std::string& what) {
  auto r = Exec(sql, what);
  return r.ok() ? absl::OkStatus() : r.status();
}

absl::Status PgConnection::BeginCopy(const std::string& sql, const std::string& what) {
  PgResult result(PQexec(conn_, sql.c_str()), &PQclear);
  if (result == nullptr || PQresultStatus(result.get()) != PGRES_COPY_IN) {
    return ResultError(result.get(), what);
  }
  copying_ = true;
  copy_what_ = what;
  return absl::OkStatus();
}

absl::Status PgConnection::PutCopyData(const std::string& data) {
  if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1) {
    copying_ = false;
    return ResultError(nullptr, copy_what_);
  }
  return absl::OkStatus();
}

absl::Status PgConnection::EndCopy() {
  copying_ = false;
  if (PQputCopyEnd(conn_, nullptr) != 1) return ResultError(nullptr, copy_what_);
  absl::Status s;
  // The COPY's result, then nothing.
  while (PGresult* r = PQgetResult(conn_)) {
    PgResult result(r, &PQclear);
    if (s.ok() && PQresultStatus(r) != PGRES_COMMAND_OK) s = ResultError(r, copy_what_);
  }
  return s;
}

}  // namespace sluice::internal
