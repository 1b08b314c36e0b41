// `sluice dev kafka`: librdkafka's Kafka-protocol mock cluster in a process of its own, the
// embedded Kafka of demos and tests. Prints the bootstrap address on its first line, then
// reads control commands on stdin, one per line, answering each with one line: "ok" or
// "error: ...". It stays up until killed (or `quit`), also when stdin closes.
//
// Commands (ERROR is a librdkafka error name such as NOT_LEADER_FOR_PARTITION or _TRANSPORT,
// or its number; BROKER is a broker id from 1, or all):
//   topic NAME PARTITIONS [REPLICATION]     create a topic
//   broker-down BROKER | broker-up BROKER   disconnect and refuse / accept again
//   leader TOPIC PARTITION BROKER           move a partition's leadership
//   request-errors API_KEY ERROR[,ERROR...] the next requests of that API key fail so
//   rtt BROKER MS                           delay every response of a broker
//   request-error-rtts BROKER API_KEY ERROR:MS[,ERROR:MS...]
//                                           per-broker errors with response delays
//   quit

#include "dev_kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sluice::cli {
namespace {

/// A librdkafka error by name ("NOT_LEADER_FOR_PARTITION", "_TRANSPORT") or number.
bool ParseError(const std::string& text, rd_kafka_resp_err_t* out) {
  int code = 0;
  if (absl::SimpleAtoi(text, &code)) {
    *out = static_cast<rd_kafka_resp_err_t>(code);
    return true;
  }
  const rd_kafka_err_desc* descs = nullptr;
  size_t n = 0;
  rd_kafka_get_err_descs(&descs, &n);
  for (size_t i = 0; i < n; ++i) {
    if (descs[i].name != nullptr && text == descs[i].name) {
      *out = descs[i].code;
      return true;
    }
  }
  return false;
}

bool ParseBroker(const std::string& text, int32_t* out) {
  if (text == "all") {
    *out = -1;
    return true;
  }
  return absl::SimpleAtoi(text, out) && *out >= 1;
}

std::string Result(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_NO_ERROR ? "ok" : absl::StrCat("error: ", rd_kafka_err2str(err));
}

std::string Execute(rd_kafka_mock_cluster_t* mc, const std::vector<std::string>& w) {
  const std::string usage =
      "error: unknown command or wrong arguments (see `sluice dev kafka --help`)";
  if (w.empty()) return usage;
  const std::string& cmd = w[0];
  int32_t broker = 0;
  int n = 0;
  if (cmd == "topic" && (w.size() == 3 || w.size() == 4) && absl::SimpleAtoi(w[2], &n) && n > 0) {
    int replication = 1;
    if (w.size() == 4 && !absl::SimpleAtoi(w[3], &replication)) return usage;
    return Result(rd_kafka_mock_topic_create(mc, w[1].c_str(), n, replication));
  }
  if ((cmd == "broker-down" || cmd == "broker-up") && w.size() == 2 && ParseBroker(w[1], &broker)) {
    return Result(cmd == "broker-down" ? rd_kafka_mock_broker_set_down(mc, broker)
                                       : rd_kafka_mock_broker_set_up(mc, broker));
  }
  if (cmd == "leader" && w.size() == 4 && absl::SimpleAtoi(w[2], &n) &&
      absl::SimpleAtoi(w[3], &broker)) {
    return Result(rd_kafka_mock_partition_set_leader(mc, w[1].c_str(), n, broker));
  }
  if (cmd == "rtt" && w.size() == 3 && ParseBroker(w[1], &broker) && absl::SimpleAtoi(w[2], &n)) {
    return Result(rd_kafka_mock_broker_set_rtt(mc, broker, n));
  }
  int api_key = 0;
  if (cmd == "request-errors" && w.size() == 3 && absl::SimpleAtoi(w[1], &api_key)) {
    std::vector<rd_kafka_resp_err_t> errors;
    for (const std::string& e : std::vector<std::string>(absl::StrSplit(w[2], ','))) {
      rd_kafka_resp_err_t err;
      if (!ParseError(e, &err)) return absl::StrCat("error: unknown error '", e, "'");
      errors.push_back(err);
    }
    rd_kafka_mock_push_request_errors_array(mc, static_cast<int16_t>(api_key), errors.size(),
                                            errors.data());
    return "ok";
  }
  if (cmd == "request-error-rtts" && w.size() == 4 && ParseBroker(w[1], &broker) && broker > 0 &&
      absl::SimpleAtoi(w[2], &api_key)) {
    for (const std::string& pair : std::vector<std::string>(absl::StrSplit(w[3], ','))) {
      std::vector<std::string> parts = absl::StrSplit(pair, ':');
      rd_kafka_resp_err_t err;
      int rtt = 0;
      if (parts.size() != 2 || !ParseError(parts[0], &err) || !absl::SimpleAtoi(parts[1], &rtt)) {
        return absl::StrCat("error: expected ERROR:MS, got '", pair, "'");
      }
      const rd_kafka_resp_err_t r = rd_kafka_mock_broker_push_request_error_rtts(
          mc, broker, static_cast<int16_t>(api_key), 1, err, rtt);
      if (r != RD_KAFKA_RESP_ERR_NO_ERROR) return Result(r);
    }
    return "ok";
  }
  return usage;
}

}  // namespace

int DevKafka(const std::vector<std::string>& args) {
  int brokers = 3;
  std::vector<std::pair<std::string, int>> topics;
  for (const std::string& a : args) {
    if (a == "--help") {
      std::puts(kDevKafkaUsage);
      return 0;
    }
    if (a.starts_with("--brokers=")) {
      if (!absl::SimpleAtoi(a.substr(10), &brokers) || brokers < 1) {
        std::fprintf(stderr, "sluice dev kafka: --brokers must be a positive integer\n");
        return 2;
      }
    } else if (a.starts_with("--topic=")) {
      std::vector<std::string> parts = absl::StrSplit(a.substr(8), ':');
      int partitions = 1;
      if (parts[0].empty() || parts.size() > 2 ||
          (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &partitions) || partitions < 1))) {
        std::fprintf(stderr, "sluice dev kafka: --topic takes NAME or NAME:PARTITIONS, got '%s'\n",
                     a.substr(8).c_str());
        return 2;
      }
      topics.emplace_back(parts[0], partitions);
    } else {
      std::fprintf(stderr, "sluice dev kafka: unknown option '%s'\n%s\n", a.c_str(),
                   kDevKafkaUsage);
      return 2;
    }
  }
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The handle only keeps the brokers alive; it never connects anywhere.
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) {
    std::fprintf(stderr, "sluice dev kafka: %s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (mc == nullptr) {
    std::fprintf(stderr, "sluice dev kafka: could not start the mock cluster\n");
    return 1;
  }
  for (const auto& [name, partitions] : topics) {
    const int replication = std::min(brokers, 3);
    if (rd_kafka_mock_topic_create(mc, name.c_str(), partitions, replication) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::fprintf(stderr, "sluice dev kafka: could not create topic '%s'\n", name.c_str());
      return 1;
    }
  }
  std::printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
  std::fflush(stdout);
  std::string line;
  bool quit = false;
  while (!quit && std::getline(std::cin, line)) {
    std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    quit = words.size() == 1 && words[0] == "quit";
    if (!quit) {
      std::printf("%s\n", Execute(mc, words).c_str());
      std::fflush(stdout);
    }
  }
  if (!quit) {
    // stdin closed (started in the background): stay up until killed.
    for (;;) ::pause();
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}

}  // namespace sluice::cli
