#pragma once

#include <string>
#include <vector>

namespace sluice::cli {

inline constexpr char kDevKafkaUsage[] =
    "  sluice dev kafka [--brokers=3] [--topic=NAME:PARTITIONS ...]\n"
    "      Runs librdkafka's Kafka-protocol mock cluster (the embedded Kafka of demos and\n"
    "      tests) until killed. Prints the bootstrap address on its first line, then takes\n"
    "      control commands on stdin, answering each with 'ok' or 'error: ...':\n"
    "        topic NAME PARTITIONS [REPLICATION]\n"
    "        broker-down BROKER|all, broker-up BROKER|all\n"
    "        leader TOPIC PARTITION BROKER\n"
    "        request-errors API_KEY ERROR[,ERROR...]   (e.g. 1 NOT_LEADER_FOR_PARTITION)\n"
    "        request-error-rtts BROKER API_KEY ERROR:MS[,...]\n"
    "        rtt BROKER|all MS\n"
    "        quit\n";

/// `sluice dev kafka ARGS`: returns the process exit code.
int DevKafka(const std::vector<std::string>& args);

}  // namespace sluice::cli
