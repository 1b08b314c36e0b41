#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/testing/test_util.h"

namespace sluice::testing {

/// A real PostgreSQL server (Debian's postgresql-15) for one test or suite: `initdb` in a
/// temporary directory, `postgres` on a free loopback port, killed and removed when the
/// object dies. PostgreSQL refuses to run as root, so as root it runs as the `postgres` system
/// user (setpriv, dying with the test). It can be killed (SIGKILL, as a crash) and started
/// again on the same port and data.
class PostgresServer {
 public:
  struct Options {
    /// 0 turns prepared transactions (the exactly-once sink) off.
    int max_prepared_transactions = 32;
    /// Logins over TCP need a password (scram-sha-256); the superuser `postgres` has the
    /// password `postgres`. Without it every login is trusted.
    bool password_auth = false;
  };
  PostgresServer() : PostgresServer(Options{}) {}
  explicit PostgresServer(Options options);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  /// postgresql://USER@127.0.0.1:PORT/DB
  std::string url(const std::string& db = "postgres", const std::string& user = "postgres") const;

  /// Runs SQL (several statements allowed) as the superuser; fails the test on an error.
  void Execute(const std::string& sql, const std::string& db = "postgres");
  /// The rows a query answers, each as its columns' text joined by '|' (NULL as "NULL").
  std::vector<std::string> Rows(const std::string& sql, const std::string& db = "postgres");
  /// The one integer a query answers.
  int64_t Number(const std::string& sql, const std::string& db = "postgres");
  void CreateDatabase(const std::string& name);

  /// SIGKILL (a crash: committed data survives, open transactions are gone, prepared ones
  /// stay); Start() brings it back on the same port and data.
  void Kill();
  void Start();

 private:
  Options options_;
  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace sluice::testing
