#pragma once

// The baselines' Kafka consumer (kafka_bench, aggregator_bench): plain librdkafka, configured
// as the job's Kafka source configures it, so that the comparison is of the work per message
// and not of librdkafka's settings.

#include <librdkafka/rdkafka.h>

#include <string>
#include <utility>
#include <vector>

namespace sluice::bench {

/// A consumer assigned `partitions` of `topic` from offset 0 (the benchmarks check their topics
/// still start there); read it with rd_kafka_consumer_poll, then rd_kafka_consumer_close and
/// rd_kafka_destroy it.
inline rd_kafka_t* NewRawConsumer(const std::string& bootstrap, const std::string& topic,
                                  const std::vector<int>& partitions) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof(err));
  rd_kafka_conf_set(conf, "group.id", "raw-bench", err, sizeof(err));
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
  // librdkafka 2.0 otherwise stops fetching for a second whenever 100,000 messages wait in
  // the queue (see connectors/kafka/kafka_source.cc).
  rd_kafka_conf_set(conf, "queued.min.messages", "10000000", err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
  // A concrete offset, as the source resolves its own: librdkafka looks a logical one
  // (BEGINNING) up only after half a second.
  for (int p : partitions) rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = 0;
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  return rk;
}

/// Each partition's oldest and next offsets (the benchmarks' raw consumers start at 0, so they
/// check the mock cluster kept every message: its oldest offset is still 0).
inline std::vector<std::pair<int64_t, int64_t>> PartitionOffsets(const std::string& bootstrap,
                                                                 const std::string& topic,
                                                                 int partitions) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  std::vector<std::pair<int64_t, int64_t>> offsets;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = -1, high = -1;
    rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, 10000);
    offsets.emplace_back(low, high);
  }
  rd_kafka_destroy(rk);
  return offsets;
}

}  // namespace sluice::bench
