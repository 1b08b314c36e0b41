#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/connectors/kafka.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

TEST(KafkaUrlTest, ParsesTopicsGroupAndPassThroughSettings) {
  auto o = ParseKafkaUrl(
      "kafka://h1:9092,h2:9092/a,b?group=g&starting_offsets=committed&reset=latest&bounded=true"
      "&fetch.max.bytes=1000&out_of_range=fail&max_records_per_second=50");
  ASSERT_OK(o);
  EXPECT_EQ(o->bootstrap_servers, "h1:9092,h2:9092");
  EXPECT_EQ(o->topics, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(o->group_id, "g");
  EXPECT_EQ(o->starting_offsets, KafkaStartingOffsets::kCommitted);
  EXPECT_EQ(o->reset, KafkaStartingOffsets::kLatest);
  EXPECT_TRUE(o->bounded);
  EXPECT_EQ(o->properties.at("fetch.max.bytes"), "1000");
  EXPECT_EQ(o->out_of_range, KafkaOffsetReset::kFail);
  EXPECT_EQ(o->max_records_per_second, 50);
  EXPECT_THAT(std::string(ParseKafkaUrl("kafka://h:1").status().message()),
              HasSubstr("expected kafka://HOST:PORT"));
  EXPECT_THAT(std::string(ParseKafkaUrl("kafka://h:1/t?starting_offsets=soon").status().message()),
              HasSubstr("starting_offsets: earliest, latest or committed"));
  auto d = ParseKafkaUrl("kafka://h:1/t?deserialization_errors=dead_letter&starting_timestamp=42");
  ASSERT_OK(d);
  EXPECT_EQ(d->deserialization_errors, KafkaDeserializationErrors::kDeadLetter);
  EXPECT_EQ(d->starting_offsets, KafkaStartingOffsets::kTimestamp);
  EXPECT_EQ(d->starting_timestamp_ms, 42);
  EXPECT_THAT(
      std::string(ParseKafkaUrl("kafka://h:1/t?deserialization_errors=ignore").status().message()),
      HasSubstr("deserialization_errors: fail, skip or dead_letter"));
}

TEST(KafkaUrlTest, ASinkUrlNamesOneTopicDeliveryAndPassThroughSettings) {
  auto o = ParseKafkaSinkUrl(
      "kafka://h1:9092,h2:9092/out?delivery=exactly_once&transactional_id_prefix=tx"
      "&commit_marker_topic=marks&compression.type=lz4");
  ASSERT_OK(o);
  EXPECT_EQ(o->bootstrap_servers, "h1:9092,h2:9092");
  EXPECT_EQ(o->topic, "out");
  EXPECT_EQ(o->delivery, KafkaDelivery::kExactlyOnce);
  EXPECT_EQ(o->transactional_id_prefix, "tx");
  EXPECT_EQ(o->commit_marker_topic, "marks");
  EXPECT_EQ(o->properties.at("compression.type"), "lz4");
  auto plain = ParseKafkaSinkUrl("kafka://h:1/out");
  ASSERT_OK(plain);
  EXPECT_EQ(plain->delivery, KafkaDelivery::kAtLeastOnce);
  EXPECT_THAT(std::string(ParseKafkaSinkUrl("kafka://h:1/a,b").status().message()),
              HasSubstr("expected one topic"));
  EXPECT_THAT(std::string(ParseKafkaSinkUrl("kafka://h:1/a?delivery=maybe").status().message()),
              HasSubstr("delivery: exactly_once or at_least_once"));
  EXPECT_THAT(std::string(ParseKafkaSinkUrl("http://h:1/a").status().message()),
              HasSubstr("expected kafka://BOOTSTRAP/TOPIC"));
}

}  // namespace
}  // namespace sluice
