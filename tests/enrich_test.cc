// The asynchronous HTTP client and the `enrich` example against a real HTTP server run by the
// test (cpp-httplib on a free loopback port): a name endpoint answering after random delays,
// a slow one, one that fails twice per key before answering, one that answers garbage.
// Output is compared with a model computed here from the input.

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/sluice.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

std::string NameOf(const std::string& key) { return "name-of-" + key; }

/// cpp-httplib 0.11 listens with a backlog of 5 and offers no way to change it: a client
/// opening dozens of connections at once then loses SYNs and waits seconds to retransmit. The
/// listening socket on `port` (found among this process's descriptors) gets a real backlog;
/// listen() again on a listening socket only changes that.
void RaiseListenBacklog(int port) {
  for (int fd = 3; fd < 65536; ++fd) {
    sockaddr_in addr{};
    socklen_t len = sizeof(addr);
    int listening = 0;
    socklen_t size = sizeof(listening);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        addr.sin_family != AF_INET || ntohs(addr.sin_port) != port ||
        ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || !listening) {
      continue;
    }
    ASSERT_EQ(::listen(fd, 1024), 0);
    return;
  }
  FAIL() << "no listening socket on port " << port;
}

/// The service. /name answers {"name": NameOf(key)} after up to 3 ms; /slow only when the
/// server stops; /flaky answers 503 to the first two requests for a key (per `round`); /bad answers
/// 200 with a body that is not JSON. Counts requests, the most served at once, and connections.
class NameService {
 public:
  NameService() {
    // A thread per kept-alive connection: more than all clients of a test open at once.
    server_.new_task_queue = [] { return new httplib::ThreadPool(300); };
    server_.set_keep_alive_max_count(100000);
    server_.set_tcp_nodelay(true);  // else Nagle holds each answer's body for a delayed ACK
    server_.Get("/name", [this](const httplib::Request& req, httplib::Response& res) {
      Enter(req);
      std::this_thread::sleep_for(std::chrono::microseconds(Random() % 3000));
      Answer(req, res);
      Leave();
    });
    server_.Get("/slow", [this](const httplib::Request& req, httplib::Response& res) {
      Enter(req);
      std::unique_lock<std::mutex> lock(mu_);
      stop_cv_.wait(lock, [&] { return stopping_; });
      lock.unlock();
      Answer(req, res);
      Leave();
    });
    server_.Get("/flaky", [this](const httplib::Request& req, httplib::Response& res) {
      Enter(req);
      int attempt;
      {
        std::lock_guard<std::mutex> lock(mu_);
        attempt = attempts_[req.get_param_value("round") + "/" + req.get_param_value("key")]++;
      }
      if (attempt < 2) {
        res.status = 503;
        res.set_content("try later", "text/plain");
      } else {
        Answer(req, res);
      }
      Leave();
    });
    server_.Get("/bad", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<html>oops</html>", "text/html");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    RaiseListenBacklog(port_);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // The socket listens from bind_to_any_port on: early connections wait in its backlog.
  }
  ~NameService() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }
  int requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  int max_concurrent() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_concurrent_;
  }
  size_t connections() {
    std::lock_guard<std::mutex> lock(mu_);
    return peers_.size();
  }
  std::map<std::string, int> attempts() {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }

 private:
  void Enter(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_;
    max_concurrent_ = std::max(max_concurrent_, ++concurrent_);
    peers_.insert(req.remote_port);
  }
  void Leave() {
    std::lock_guard<std::mutex> lock(mu_);
    --concurrent_;
  }
  /// {"id": 7, "name": NameOf(key)}, written by hand (the test's model of the service).
  static void Answer(const httplib::Request& req, httplib::Response& res) {
    const std::string name = NameOf(req.get_param_value("key"));
    std::string escaped;
    for (char c : name) {
      if (c == '"' || c == '\\') escaped.push_back('\\');
      escaped.push_back(c);
    }
    res.set_content(absl::StrCat("{\"id\": 7, \"name\": \"", escaped, "\"}"), "application/json");
  }
  uint64_t Random() {
    std::lock_guard<std::mutex> lock(mu_);
    return random_();
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::mt19937_64 random_{11};
  int requests_ = 0, concurrent_ = 0, max_concurrent_ = 0;
  std::set<int> peers_;
  std::map<std::string, int> attempts_;
};

/// Waits for `n` callbacks of the client and keeps their results.
class Answers {
 public:
  AsyncHttpClient::Callback Take(std::string tag) {
    return [this, tag](absl::StatusOr<HttpResponse> r) {
      std::lock_guard<std::mutex> lock(mu_);
      results_.emplace(tag, std::move(r));
      order_.push_back(tag);
      cv_.notify_all();
    };
  }
  bool Await(size_t n, absl::Duration timeout = absl::Seconds(30)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [&] { return results_.size() >= n; });
  }
  absl::StatusOr<HttpResponse> Get(const std::string& tag) {
    std::lock_guard<std::mutex> lock(mu_);
    return results_.at(tag);
  }
  std::vector<std::string> order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, absl::StatusOr<HttpResponse>> results_;
  std::vector<std::string> order_;
};

TEST(AsyncHttpClientTest, ManyConcurrentRequestsShareFewKeptAliveConnections) {
  NameService service;
  AsyncHttpClientOptions o;
  o.max_connections = 8;
  AsyncHttpClient client(o);
  Answers answers;
  constexpr int kRequests = 400;
  for (int i = 0; i < kRequests; ++i) {
    const std::string key = absl::StrCat("k", i, " &=/?ü");
    client.Get(service.url("/name?key=") + AsyncHttpClient::UrlEncode(key), answers.Take(key));
  }
  ASSERT_TRUE(answers.Await(kRequests));
  for (int i = 0; i < kRequests; ++i) {
    const std::string key = absl::StrCat("k", i, " &=/?ü");
    auto r = answers.Get(key);
    ASSERT_OK(r.status());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, absl::StrCat("{\"id\": 7, \"name\": \"", NameOf(key), "\"}"));
  }
  EXPECT_EQ(client.in_flight(), 0);
  EXPECT_EQ(service.requests(), kRequests);
  EXPECT_LE(service.max_concurrent(), o.max_connections);
  EXPECT_GT(service.max_concurrent(), 1) << "requests must overlap";
  EXPECT_LE(service.connections(), static_cast<size_t>(o.max_connections))
      << "connections are kept alive and reused";
}

TEST(AsyncHttpClientTest, ASlowAnswerTimesOutWithoutHoldingUpOthersAndErrorsNameTheUrl) {
  NameService service;
  AsyncHttpClientOptions o;
  o.request_timeout = absl::Milliseconds(300);
  AsyncHttpClient client(o);
  Answers answers;
  const absl::Time start = absl::Now();
  client.Get(service.url("/slow?key=s"), answers.Take("slow"));
  client.Get(service.url("/name?key=f"), answers.Take("fast"));
  testing::ClosedPort closed;  // refuses connections
  const std::string nowhere = absl::StrCat("http://127.0.0.1:", closed.port(), "/x");
  client.Get(nowhere, answers.Take("nowhere"));
  client.Get("htp:/malformed", answers.Take("malformed"));
  ASSERT_TRUE(answers.Await(4));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(answers.order().back(), "slow") << "the slow request holds up no other";
  auto slow = answers.Get("slow");
  EXPECT_TRUE(absl::IsDeadlineExceeded(slow.status())) << slow.status();
  EXPECT_THAT(std::string(slow.status().message()), HasSubstr(service.url("/slow?key=s")));
  EXPECT_GE(took, o.request_timeout * 0.9);  // libcurl's clock, not quite ours
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_EQ(answers.Get("fast")->body, "{\"id\": 7, \"name\": \"name-of-f\"}");
  auto refused = answers.Get("nowhere");
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr(nowhere));
  EXPECT_FALSE(answers.Get("malformed").ok());
}

TEST(AsyncHttpClientTest, ClosingCancelsWhatIsInFlight) {
  NameService service;
  Answers answers;
  {
    AsyncHttpClient client;
    for (int i = 0; i < 5; ++i) {
      client.Get(service.url(absl::StrCat("/slow?key=", i)), answers.Take(absl::StrCat(i)));
    }
    ASSERT_TRUE(testing::WaitFor([&] { return service.requests() == 5; }, 10'000));
  }  // the client closes with five requests out
  ASSERT_TRUE(answers.Await(5, absl::ZeroDuration()));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(absl::IsCancelled(answers.Get(absl::StrCat(i)).status()));
}

std::string Example(const std::string& name) { return testing::BuildDir() + "/examples/" + name; }

class EnrichTest : public ::testing::Test {
 protected:
  static constexpr int kLines = 3000;
  void SetUp() override {
    std::mt19937 rng(5);
    std::string text;
    for (int i = 0; i < kLines; ++i) {
      const std::string key = absl::StrCat("user ", rng() % 500, "-", i, i % 7 == 0 ? "/é&x" : "");
      const std::string value = absl::StrCat(i, ",extra");  // a comma in the value stays
      absl::StrAppend(&text, key, ",", value, "\n");
      expected_.push_back(absl::StrCat(key, ",", value, ",", NameOf(key)));
    }
    testing::WriteFile(dir_.Join("in.txt"), text);
    expected_text_ = text;
  }
  /// Runs enrich with `args` (besides --input and --output); returns its exit code and log.
  testing::CommandResult Enrich(const std::string& tag, const std::vector<std::string>& args) {
    std::string command = absl::StrCat(Example("enrich"), " '--input=", dir_.Join("in.txt"),
                                       "' '--output=", dir_.Join(tag), "'");
    for (const auto& a : args) absl::StrAppend(&command, " '", a, "'");
    return testing::RunCommand(command);
  }
  std::vector<std::string> Output(const std::string& tag) {
    return testing::ReadPartFileLines(dir_.Join(tag));
  }
  static std::vector<std::string> Sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }

  testing::TempDir dir_;
  NameService service_;
  std::vector<std::string> expected_;
  std::string expected_text_;  // the input file's text
};

TEST_F(EnrichTest, OrderedAtParallelism1KeepsTheInputOrder) {
  auto r = Enrich("ordered", {"--service=" + service_.url("/name"), "--ordered", "--capacity=40",
                              "--parallelism=1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Output("ordered"), expected_);
  EXPECT_GT(service_.max_concurrent(), 1) << "requests must overlap";
  EXPECT_LE(service_.max_concurrent(), 40);
}

TEST_F(EnrichTest, UnorderedUnderChaosWritesEachLineOnce) {
  auto r = Enrich("chaos", {"--service=" + service_.url("/name"), "--parallelism=2",
                            "--checkpoint-interval=100ms", "--checkpoint-dir=" + dir_.Join("ck"),
                            "--chaos-kill-task-every=150ms", "--chaos-max-failures=3",
                            "--chaos-seed=3", absl::StrCat("--max-source-rate=", kLines / 2)});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("simulated crash 3 of 3"));
  EXPECT_EQ(Sorted(Output("chaos")), Sorted(expected_));
}

TEST_F(EnrichTest, ServerErrorsAreRetriedAndOtherAnswersFailNamingTheLine) {
  auto flaky = Enrich("flaky", {"--service=" + service_.url("/flaky"), "--ordered"});
  ASSERT_EQ(flaky.exit_code, 0) << flaky.output;
  EXPECT_EQ(Output("flaky"), expected_);
  for (const auto& [key, attempts] : service_.attempts()) EXPECT_EQ(attempts, 3) << key;

  auto too_few = Enrich("too-few", {"--service=" + service_.url("/flaky?round=2"), "--attempts=2"});
  EXPECT_EQ(too_few.exit_code, 1);
  EXPECT_THAT(too_few.output, HasSubstr("after 2 attempts"));
  EXPECT_THAT(too_few.output, HasSubstr("answered 503"));

  auto bad = Enrich("bad", {"--service=" + service_.url("/bad")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("for record 'user "));
  EXPECT_THAT(bad.output, HasSubstr("without a string 'name': <html>oops</html>"));

  // A line without a comma fails the job naming it; nothing is committed past it.
  testing::WriteFile(dir_.Join("in.txt"), "a,1\nno comma here\nb,2\n");
  auto malformed = Enrich("malformed", {"--service=" + service_.url("/name")});
  EXPECT_EQ(malformed.exit_code, 1);
  EXPECT_THAT(malformed.output, HasSubstr("line 'no comma here' is not key,value"));
  EXPECT_TRUE(Output("malformed").empty()) << "a failed job commits nothing";
  testing::WriteFile(dir_.Join("in.txt"), expected_text_);

  auto slow = Enrich("slow", {"--service=" + service_.url("/slow"), "--timeout=300ms"});
  EXPECT_EQ(slow.exit_code, 1);
  EXPECT_THAT(slow.output, HasSubstr("timed out"));
  EXPECT_THAT(slow.output, HasSubstr("for record 'user "));
}

}  // namespace
}  // namespace sluice
