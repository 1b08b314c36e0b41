#include "sluice/testing/influx_server.h"

#include <curl/curl.h>
#include <signal.h>

#include <mutex>
#include <regex>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice::testing {
namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

int HttpRequest(const std::string& method, const std::string& url, const std::string& data,
                std::string* body, const std::string& user, const std::string& password) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* c = curl_easy_init();
  std::string out;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, data.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(data.size()));
  }
  if (!user.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, password.c_str());
  }
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10'000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (body != nullptr) *body = std::move(out);
  return static_cast<int>(status);
}

InfluxServer::InfluxServer(Options options) : options_(options) {
  port_ = PickFreePort();
  const int rpc_port = PickFreePort();
  const std::string d = dir_.path();
  std::string config = absl::StrCat(
      "reporting-disabled = true\n", "bind-address = \"127.0.0.1:", rpc_port, "\"\n",
      "[meta]\n  dir = \"", d, "/meta\"\n", "[data]\n  dir = \"", d, "/data\"\n  wal-dir = \"", d,
      "/wal\"\n", "  query-log-enabled = false\n", "[http]\n  bind-address = \"127.0.0.1:", port_,
      "\"\n  log-enabled = false\n", "  max-body-size = ", options.max_body_size, "\n",
      "  auth-enabled = ", options.auth ? "true" : "false", "\n");
  if (options.tls) {
    const auto made = RunCommand(absl::StrCat(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 ",
        "-addext subjectAltName=IP:127.0.0.1 -keyout ", d, "/key.pem -out ", d, "/cert.pem"));
    EXPECT_EQ(made.exit_code, 0) << made.output;
    absl::StrAppend(&config, "  https-enabled = true\n  https-certificate = \"", d,
                    "/cert.pem\"\n  https-private-key = \"", d, "/key.pem\"\n");
  }
  if (options.max_concurrent_writes > 0) {
    absl::StrAppend(&config, "  max-concurrent-write-limit = ", options.max_concurrent_writes,
                    "\n  max-enqueued-write-limit = 1\n  enqueued-write-timeout = \"1ms\"\n");
  }
  absl::StrAppend(&config, "[monitor]\n  store-enabled = false\n",
                  "[continuous_queries]\n  enabled = false\n", "[subscriber]\n  enabled = false\n",
                  "[logging]\n  level = \"warn\"\n");
  WriteFile(d + "/influxdb.conf", config);
  Start();
  if (options.auth) {
    // The first user must be an admin, created before auth applies.
    std::string body;
    HttpRequest("POST",
                url() + "/query?q=" +
                    "CREATE%20USER%20admin%20WITH%20PASSWORD%20%27admin%27%20"
                    "WITH%20ALL%20PRIVILEGES",
                "", &body);
  }
}

InfluxServer::~InfluxServer() {
  if (process_) {
    process_->Signal(SIGCONT);
    process_->Signal(SIGTERM);
    process_->Wait();
  }
}

std::string InfluxServer::url() const {
  return absl::StrCat(options_.tls ? "https" : "http", "://127.0.0.1:", port_);
}

void InfluxServer::Start() {
  process_ =
      std::make_unique<ChildProcess>(std::vector<std::string>{"/usr/bin/influxd", "run", "-config",
                                                              dir_.path() + "/influxdb.conf"},
                                     dir_.path() + "/influxd.log");
  const bool up =
      WaitFor([&] { return HttpRequest("GET", url() + "/ping", "", nullptr) == 204; }, 30'000);
  ASSERT_TRUE(up) << "influxd did not start: " << ReadFile(dir_.path() + "/influxd.log");
}

void InfluxServer::Kill() {
  process_->Signal(SIGKILL);
  process_->Wait();
  process_.reset();
}

void InfluxServer::Pause() { process_->Signal(SIGSTOP); }
void InfluxServer::Resume() { process_->Signal(SIGCONT); }

std::string InfluxServer::Query(const std::string& q, const std::string& db) {
  char* escaped = curl_easy_escape(nullptr, q.c_str(), static_cast<int>(q.size()));
  std::string target = absl::StrCat(url(), "/query?epoch=ms&q=", escaped);
  curl_free(escaped);
  if (!db.empty()) absl::StrAppend(&target, "&db=", db);
  std::string body;
  const int status = options_.auth ? HttpRequest("POST", target, "", &body, "admin", "admin")
                                   : HttpRequest("POST", target, "", &body);
  EXPECT_EQ(status, 200) << q << ": " << body;
  return body;
}

void InfluxServer::CreateDatabase(const std::string& name) {
  Query("CREATE DATABASE \"" + name + "\"");
}

int64_t InfluxServer::Count(const std::string& db, const std::string& measurement,
                            const std::string& field) {
  return QueryNumber(absl::StrCat("SELECT count(\"", field, "\") FROM \"", measurement, "\""), db);
}

int64_t InfluxServer::QueryNumber(const std::string& q, const std::string& db) {
  const std::string answer = Query(q, db);
  // {"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","count"],
  //   "values":[[0,42]]}]}]}
  std::smatch m;
  static const std::regex kCount(R"re("values":\[\[[^,\]]*,(\d+)\]\])re");
  if (std::regex_search(answer, m, kCount)) return std::stoll(m[1]);
  return 0;
}

}  // namespace sluice::testing
