#include "sluice/testing/postgres_server.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace sluice::testing {
namespace {

std::string ReadFileIfExists(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr const char* kBin = "/usr/lib/postgresql/15/bin";

bool AsRoot() { return ::geteuid() == 0; }

/// Whether a process of group `group` runs (zombies aside).
bool GroupAlive(int group) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string stat = ReadFileIfExists(entry.path() / "stat");
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so parse after its ')'.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0, pgrp = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 &&
        pgrp == group && state != 'Z') {
      return true;
    }
  }
  return false;
}

/// `command` run as the postgres user when we are root.
std::string AsPostgres(const std::string& command) {
  return AsRoot() ? "runuser -u postgres -- " + command : command;
}

}  // namespace

PostgresServer::PostgresServer(Options options) : options_(options) {
  port_ = PickFreePort();
  const std::string d = dir_.path();
  if (AsRoot()) {
    const auto owned = RunCommand("chown postgres: " + d);
    EXPECT_EQ(owned.exit_code, 0) << owned.output;
  }
  const std::string auth =
      options_.password_auth ? "--auth-local=trust --auth-host=scram-sha-256" : "-A trust";
  const auto init = RunCommand(AsPostgres(
      absl::StrCat(kBin, "/initdb -D ", d, "/data ", auth, " -U postgres --no-sync -E UTF8")));
  EXPECT_EQ(init.exit_code, 0) << init.output;
  Start();
  if (options_.password_auth) {
    // Over the Unix socket, which stays trusted.
    const auto set = RunCommand(
        absl::StrCat("psql -h ", d, " -p ", port_,
                     " -U postgres -d postgres -c \"ALTER USER postgres PASSWORD 'postgres'\""));
    EXPECT_EQ(set.exit_code, 0) << set.output;
  }
}

PostgresServer::~PostgresServer() { Kill(); }

std::string PostgresServer::url(const std::string& db, const std::string& user) const {
  return absl::StrCat("postgresql://", user, "@127.0.0.1:", port_, "/", db);
}

void PostgresServer::Start() {
  const std::string d = dir_.path();
  std::vector<std::string> argv;
  if (AsRoot()) {
    // The death signal is set after the change of user (a change of user clears it).
    argv = {"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
            "--pdeathsig=SIGKILL"};
  }
  for (const std::string& a :
       {absl::StrCat(kBin, "/postgres"), std::string("-D"), d + "/data", std::string("-p"),
        std::to_string(port_), std::string("-k"), d, std::string("-c"),
        std::string("listen_addresses=127.0.0.1"), std::string("-c"),
        absl::StrCat("max_prepared_transactions=", options_.max_prepared_transactions),
        // A test's data need not survive the machine, only the server.
        std::string("-c"), std::string("fsync=off"), std::string("-c"),
        std::string("full_page_writes=off")}) {
    argv.push_back(a);
  }
  process_ = std::make_unique<ChildProcess>(argv, d + "/postgres.log");
  const std::string conninfo =
      absl::StrCat("host=127.0.0.1 port=", port_, " dbname=postgres connect_timeout=2");
  const bool up = WaitFor(
      [&] {
        if (!process_->Running()) return true;  // reported below
        return PQping(conninfo.c_str()) == PQPING_OK;
      },
      60'000);
  ASSERT_TRUE(up && process_->Running())
      << "postgres did not start on port " << port_ << ": " << ReadFile(d + "/postgres.log");
}

void PostgresServer::Kill() {
  if (!process_) return;
  const int group = process_->pid();
  process_.reset();  // SIGKILL to the group, the postmaster reaped
  // Its backends too must be gone before a restart (they hold its shared memory). Zombies
  // do not count: they hold nothing, and no init may reap them here.
  WaitFor([&] { return !GroupAlive(group); }, 30'000);
}

namespace {

/// A superuser connection over TCP (with the password where logins need one).
PGconn* Connect(const PostgresServer& server, bool password, const std::string& db) {
  const std::string url =
      password ? absl::StrCat("postgresql://postgres:postgres@127.0.0.1:", server.port(), "/", db)
               : server.url(db);
  return PQconnectdb(url.c_str());
}

}  // namespace

void PostgresServer::Execute(const std::string& sql, const std::string& db) {
  PGconn* c = Connect(*this, options_.password_auth, db);
  ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  PGresult* r = PQexec(c, sql.c_str());
  const ExecStatusType status = PQresultStatus(r);
  EXPECT_TRUE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
      << sql << ": " << PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
}

std::vector<std::string> PostgresServer::Rows(const std::string& sql, const std::string& db) {
  std::vector<std::string> out;
  PGconn* c = Connect(*this, options_.password_auth, db);
  EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  PGresult* r = PQexec(c, sql.c_str());
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << sql << ": " << PQresultErrorMessage(r);
  for (int i = 0; i < PQntuples(r); ++i) {
    std::vector<std::string> fields;
    for (int j = 0; j < PQnfields(r); ++j) {
      fields.push_back(PQgetisnull(r, i, j) ? "NULL" : PQgetvalue(r, i, j));
    }
    out.push_back(absl::StrJoin(fields, "|"));
  }
  PQclear(r);
  PQfinish(c);
  return out;
}

int64_t PostgresServer::Number(const std::string& sql, const std::string& db) {
  const auto rows = Rows(sql, db);
  int64_t n = 0;
  EXPECT_EQ(rows.size(), 1u) << sql;
  if (rows.size() == 1) n = std::stoll(rows[0]);
  return n;
}

void PostgresServer::CreateDatabase(const std::string& name) {
  Execute("CREATE DATABASE \"" + name + "\"");
}

}  // namespace sluice::testing
