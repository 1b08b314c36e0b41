#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sluice/testing/test_util.h"

namespace sluice::testing {

/// A real influxd (Debian's `influxdb` package) for one test: free loopback ports, its own
/// temporary directory and config, stopped and removed when the object dies. It can be
/// killed, restarted on the same port and data, and paused (SIGSTOP) like a hung server.
class InfluxServer {
 public:
  struct Options {
    size_t max_body_size = 25'000'000;  // [http] max-body-size: 413 beyond
    bool auth = false;                  // [http] auth-enabled (an admin "admin"/"admin")
    /// [http] max-concurrent-write-limit and max-enqueued-write-limit: beyond them influxd
    /// answers 503 "request throttled". 0: no limit.
    int max_concurrent_writes = 0;
    /// HTTPS with a self-signed certificate for 127.0.0.1 (ca_file() trusts it).
    bool tls = false;
  };
  InfluxServer() : InfluxServer(Options{}) {}
  explicit InfluxServer(Options options);
  ~InfluxServer();
  InfluxServer(const InfluxServer&) = delete;
  InfluxServer& operator=(const InfluxServer&) = delete;

  int port() const { return port_; }
  /// http://127.0.0.1:PORT (https:// with tls)
  std::string url() const;
  /// The certificate to trust with tls.
  std::string ca_file() const { return dir_.path() + "/cert.pem"; }

  /// Runs an InfluxQL statement (POST /query) and returns the JSON answer (times as epoch
  /// milliseconds).
  std::string Query(const std::string& q, const std::string& db = "");
  void CreateDatabase(const std::string& name);
  /// The one number a query such as `SELECT sum("x") FROM m` answers (0 if none).
  int64_t QueryNumber(const std::string& q, const std::string& db);
  /// `SELECT count(field) FROM measurement` in `db` (0 if there is none).
  int64_t Count(const std::string& db, const std::string& measurement, const std::string& field);

  /// SIGKILL and reap; Start() brings it back on the same port with the same data.
  void Kill();
  void Start();
  /// SIGSTOP / SIGCONT: a server that accepts connections but never answers.
  void Pause();
  void Resume();

 private:
  Options options_;
  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

/// Sends an HTTP request to 127.0.0.1 and returns the status (0 if there was no answer) and
/// the body in `body`. For fixtures and assertions (HTTPS without verifying the server).
int HttpRequest(const std::string& method, const std::string& url, const std::string& data,
                std::string* body, const std::string& user = "", const std::string& password = "");

}  // namespace sluice::testing
