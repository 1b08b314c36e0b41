#pragma once

// One libpq connection with the errors the connectors report: each names what was asked and
// the server's (or libpq's) words, never the password.

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/connectors/postgres.h"

namespace sluice::internal {

using PgResult = std::unique_ptr<PGresult, decltype(&PQclear)>;

/// `url` with its password (if any) replaced by "***", for messages and logs.
std::string RedactPassword(const std::string& url);

/// "name" or "schema.name" quoted as identifiers ("Odd""Name" stays one identifier).
std::string QuoteName(const std::string& name);
/// A string literal.
std::string QuoteLiteral(const std::string& text);

/// The kind a column type maps to; nullopt for a type the connectors cannot map.
std::optional<PostgresType> MapType(Oid type);

/// What a PostgresRow reads: row `row` of a query's text-format result, whose first
/// columns.size() fields are the row's columns.
struct PostgresRowData {
  const std::vector<PostgresColumn>* columns = nullptr;
  const PGresult* result = nullptr;
  int row = 0;
};

class PgConnection {
 public:
  /// Connects (`who` starts every message: "PostgreSQL source"); the session then speaks UTC
  /// and ISO dates. UNAVAILABLE when the server cannot be reached, UNAUTHENTICATED when it
  /// refuses the login.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Open(const std::string& url,
                                                            const std::string& application_name,
                                                            const std::string& who);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  /// Runs `sql` with text parameters (nullopt: NULL). A failure names `what`; it is
  /// UNAVAILABLE when the connection is gone (broken() is then true), NOT_FOUND for a missing
  /// table or column, else FAILED_PRECONDITION, with the server's message and SQLSTATE.
  absl::StatusOr<PgResult> Exec(const std::string& sql, const std::string& what,
                                const std::vector<std::optional<std::string>>& params = {});
  /// Exec for statements whose result is not needed.
  absl::Status Run(const std::string& sql, const std::string& what);

  /// COPY ... FROM STDIN: Begin, Put (any number of times), End (the server's verdict).
  absl::Status BeginCopy(const std::string& sql, const std::string& what);
  absl::Status PutCopyData(const std::string& data);
  absl::Status EndCopy();
  bool copying() const { return copying_; }

  bool broken() const { return PQstatus(conn_) == CONNECTION_BAD; }
  /// host:port/database, for messages.
  std::string where() const;

 private:
  PgConnection() = default;
  absl::Status ResultError(const PGresult* result, const std::string& what) const;

  PGconn* conn_ = nullptr;
  std::string who_;
  std::string copy_what_;
  bool copying_ = false;
};

}  // namespace sluice::internal
