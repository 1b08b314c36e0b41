// enrich --input=FILE --service=URL --output=DIR [--capacity=N] [--timeout=DUR] [--ordered]
//        [--attempts=N] [--parallelism=N]
//
// Reads `key,value` lines (the key ends at the first comma), asks a REST service for each
// key's name — GET URL?key=KEY, the key URL-encoded, answered by a JSON object with a string
// field `name` — and writes `key,value,name` lines to exactly-once part files in DIR. The
// requests go out asynchronously (AsyncWait on an AsyncHttpClient: one event-loop thread per
// subtask, keep-alive connections): up to --capacity (100) per subtask in flight. With
// --ordered the lines keep their input order (at --parallelism=1 the output is the input's
// order); otherwise they leave as answered. Every standard job argument applies
// (checkpoints, restarts, the chaos option): requests in flight are part of checkpoints.
//
// Sizing. A subtask carries at most capacity / latency lines per second: for R lines/s per
// subtask against a service answering in L seconds, --capacity must be at least R x L (2,000
// lines/s at 50 ms: 100), with room for the service's slow moments. --timeout (10s) must be
// above the service's slowest normal answer (its p99.9): a request without an answer within
// it fails the job, naming the line. A 5xx or 429 answer, or a lost connection, is tried again
// with backoff, --attempts (3) times in all; any other answer that is not 200 with a name
// fails the job, naming the line and the answer. A line without a comma fails the job.

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "sluice/sluice.h"

namespace {

/// "key,value" -> "key,value,name", the name from the service.
class LookUpName final : public sluice::AsyncFunction<std::string, std::string> {
 public:
  LookUpName(std::string service, int connections)
      : service_(std::move(service)), connections_(connections) {}

  void Open(sluice::RuntimeContext&) override {
    sluice::AsyncHttpClientOptions o;
    o.max_connections = connections_;
    client_ = std::make_shared<sluice::AsyncHttpClient>(o);
  }
  void Close() override { client_.reset(); }  // cancels what is still in flight

  void AsyncInvoke(const std::string& line, sluice::ResultFuture<std::string> result) override {
    const size_t comma = line.find(',');
    if (comma == std::string::npos) {
      throw std::invalid_argument(absl::StrCat("line '", line, "' is not key,value"));
    }
    const std::string url =
        absl::StrCat(service_, service_.find('?') == std::string::npos ? "?" : "&",
                     "key=", sluice::AsyncHttpClient::UrlEncode(line.substr(0, comma)));
    client_->Get(url, [line, url, result](absl::StatusOr<sluice::HttpResponse> r) mutable {
      if (!r.ok()) {
        result.CompleteExceptionally(r.status());
        return;
      }
      if (r->status >= 500 || r->status == 429) {
        result.CompleteExceptionally(
            absl::UnavailableError(absl::StrCat("GET ", url, " answered ", r->status)));
        return;
      }
      const auto json = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
      if (r->status != 200 || !json.is_object() || !json.contains("name") ||
          !json["name"].is_string()) {
        result.CompleteExceptionally(absl::FailedPreconditionError(absl::StrCat(
            "GET ", url, " answered ", r->status, " without a string 'name': ", r->body)));
        return;
      }
      result.Complete(absl::StrCat(line, ",", json["name"].get<std::string>()));
    });
  }

 private:
  std::string service_;
  int connections_;
  std::shared_ptr<sluice::AsyncHttpClient> client_;
};

void Build(sluice::Pipeline& p) {
  const sluice::JobArgs& args = p.Args();
  const std::string input = args.GetString("input");
  const std::string service = args.GetString("service");
  const std::string output = args.GetString("output");
  p.SetParallelism(static_cast<int>(args.GetInt("parallelism", p.config().default_parallelism)));
  sluice::AsyncOptions o;
  o.capacity = static_cast<int>(args.GetInt("capacity", 100));
  if (o.capacity < 1) throw sluice::JobArgumentError("--capacity must be >= 1");
  o.timeout = args.GetDuration("timeout", absl::Seconds(10));
  o.ordered = args.GetBool("ordered", false);
  o.retry.max_attempts = static_cast<int>(args.GetInt("attempts", 3));
  if (o.retry.max_attempts < 1) throw sluice::JobArgumentError("--attempts must be >= 1");
  o.retry.retry_if = [](const absl::Status& s) { return absl::IsUnavailable(s); };

  // As many connections as requests may be in flight, within reason: beyond the service's
  // own concurrency more connections only queue there.
  const int connections = std::min(o.capacity, 64);
  p.Source(sluice::TextFileSource(input), "ReadLines")
      .AsyncWait(LookUpName(service, connections), o, "LookUpName")
      .Uid("look-up-name")
      .Sink(sluice::TextFileSink<std::string>(output), "WriteLines");
}

}  // namespace

SLUICE_JOB(Build)
