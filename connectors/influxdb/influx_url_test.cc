#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/connectors/influxdb.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

TEST(InfluxUrlTest, ParsesEveryOption) {
  std::string measurement;
  auto o = ParseInfluxUrl(
      "influx://localhost:8086/my%20db?measurement=stats&batch_points=500&flush_interval=250ms"
      "&gzip=true&url=http://other:8086&max_retry_time=1m&precision=s&retention_policy=rp",
      &measurement);
  ASSERT_OK(o);
  EXPECT_EQ(measurement, "stats");
  EXPECT_EQ(o->urls, (std::vector<std::string>{"http://localhost:8086", "http://other:8086"}));
  EXPECT_EQ(o->database, "my db");
  EXPECT_EQ(o->batch_points, 500u);
  EXPECT_EQ(o->flush_interval, absl::Milliseconds(250));
  EXPECT_TRUE(o->gzip);
  EXPECT_EQ(o->max_retry_time, absl::Minutes(1));
  EXPECT_EQ(o->precision, InfluxPrecision::kSeconds);
  EXPECT_EQ(o->retention_policy, "rp");
  EXPECT_EQ(ParseInfluxUrl("influxs://h:1/d")->urls[0], "https://h:1");
  EXPECT_THAT(std::string(ParseInfluxUrl("influx://h:1/d?bogus=1").status().message()),
              HasSubstr("unknown parameter 'bogus'"));
  EXPECT_THAT(std::string(ParseInfluxUrl("influx://h:1/d?batch_points=x").status().message()),
              HasSubstr("bad value 'x' for batch_points"));
  EXPECT_THAT(std::string(ParseInfluxUrl("http://h:1/d").status().message()),
              HasSubstr("expected influx://"));
}

TEST(InfluxUrlTest, TheBuilderRefusesIncompleteOptions) {
  EXPECT_THROW(InfluxSink::Builder().Database("d").Build(), std::invalid_argument);
  EXPECT_THROW(InfluxSink::Builder().Url("localhost:8086").Database("d").Build(),
               std::invalid_argument);
  EXPECT_THROW(InfluxSink::Builder().Url("http://localhost:8086").Build(), std::invalid_argument);
  EXPECT_NO_THROW(InfluxSink::Builder().Url("http://localhost:8086").Database("d").Build());
}

}  // namespace
}  // namespace sluice
