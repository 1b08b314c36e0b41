// kafka:// URLs: a source's and a sink's options from one string (the examples' --input and
// --output).

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "sluice/connectors/internal/connector_url.h"
#include "sluice/connectors/kafka.h"
#include "sluice/core/status_macros.h"

namespace sluice {

namespace {

const internal::ConnectorUrlForm kKafkaUrl{
    "Kafka URL",
    {"kafka"},
    "expected kafka://BOOTSTRAP/TOPIC",
    "expected kafka://HOST:PORT[,HOST:PORT...]/TOPIC[,TOPIC...]"};

absl::Status BadUrl(const std::string& url, const std::string& why) {
  return internal::BadConnectorUrl(kKafkaUrl, url, why);
}

}  // namespace

absl::StatusOr<KafkaSourceOptions> ParseKafkaUrl(const std::string& url) {
  auto bad = [&](const std::string& why) { return BadUrl(url, why); };
  SLUICE_ASSIGN_OR_RETURN(auto parts, internal::SplitConnectorUrl(url, kKafkaUrl));
  KafkaSourceOptions o;
  o.bootstrap_servers = parts.authority;
  o.topics = absl::StrSplit(parts.path, ',', absl::SkipEmpty());
  for (const auto& [key, value] : parts.parameters) {
    auto offsets = [&](KafkaStartingOffsets* out) {
      if (value == "earliest")
        *out = KafkaStartingOffsets::kEarliest;
      else if (value == "latest")
        *out = KafkaStartingOffsets::kLatest;
      else if (value == "committed")
        *out = KafkaStartingOffsets::kCommitted;
      else
        return false;
      return true;
    };
    if (key == "group") {
      o.group_id = value;
    } else if (key == "starting_offsets") {
      if (!offsets(&o.starting_offsets))
        return bad("starting_offsets: earliest, latest or committed");
    } else if (key == "starting_timestamp") {
      if (!absl::SimpleAtoi(value, &o.starting_timestamp_ms) || o.starting_timestamp_ms < 0) {
        return bad("starting_timestamp: milliseconds since the epoch");
      }
      o.starting_offsets = KafkaStartingOffsets::kTimestamp;
    } else if (key == "deserialization_errors") {
      if (value == "fail")
        o.deserialization_errors = KafkaDeserializationErrors::kFail;
      else if (value == "skip")
        o.deserialization_errors = KafkaDeserializationErrors::kSkip;
      else if (value == "dead_letter")
        o.deserialization_errors = KafkaDeserializationErrors::kDeadLetter;
      else
        return bad("deserialization_errors: fail, skip or dead_letter");
    } else if (key == "reset") {
      if (!offsets(&o.reset) || o.reset == KafkaStartingOffsets::kCommitted) {
        return bad("reset: earliest or latest");
      }
    } else if (key == "out_of_range") {
      if (value == "earliest")
        o.out_of_range = KafkaOffsetReset::kEarliest;
      else if (value == "latest")
        o.out_of_range = KafkaOffsetReset::kLatest;
      else if (value == "fail")
        o.out_of_range = KafkaOffsetReset::kFail;
      else
        return bad("out_of_range: earliest, latest or fail");
    } else if (key == "max_records_per_second") {
      if (!absl::SimpleAtod(value, &o.max_records_per_second) || o.max_records_per_second < 0) {
        return bad("max_records_per_second: a number >= 0");
      }
    } else if (key == "pattern") {
      o.topic_pattern = value;
    } else if (key == "discovery_interval") {
      if (!absl::ParseDuration(value, &o.discovery_interval)) {
        return bad("discovery_interval: a duration such as 30s");
      }
    } else if (key == "bounded") {
      if (!absl::SimpleAtob(value, &o.bounded)) return bad("bounded: true or false");
    } else {
      o.properties[key] = value;  // librdkafka's own settings
    }
  }
  if (o.topics.empty() && o.topic_pattern.empty()) return bad("no topic and no pattern");
  return o;
}

absl::StatusOr<KafkaSinkOptions> ParseKafkaSinkUrl(const std::string& url) {
  auto bad = [&](const std::string& why) { return BadUrl(url, why); };
  SLUICE_ASSIGN_OR_RETURN(auto parts, internal::SplitConnectorUrl(url, kKafkaUrl));
  KafkaSinkOptions o;
  o.bootstrap_servers = parts.authority;
  o.topic = parts.path;
  if (o.topic.empty() || o.topic.find(',') != std::string::npos) return bad("expected one topic");
  for (const auto& [key, value] : parts.parameters) {
    if (key == "delivery") {
      if (value == "exactly_once")
        o.delivery = KafkaDelivery::kExactlyOnce;
      else if (value == "at_least_once")
        o.delivery = KafkaDelivery::kAtLeastOnce;
      else
        return bad("delivery: exactly_once or at_least_once");
    } else if (key == "transactional_id_prefix") {
      o.transactional_id_prefix = value;
    } else if (key == "commit_marker_topic") {
      if (value.empty()) return bad("commit_marker_topic: a topic name");
      o.commit_marker_topic = value;
    } else {
      o.properties[key] = value;  // librdkafka's own settings
    }
  }
  return o;
}

}  // namespace sluice
