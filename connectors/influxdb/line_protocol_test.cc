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

TEST(InfluxPointTest, EncodesWithExactEscaping) {
  // The hostile line of CONNECTORS.md, built with the point builder.
  const auto line = InfluxPoint("my meas,x")
                        .Tag("tag key=1", "tag,val ue")
                        .Field("field k=y", "str \"quoted\" \\ back")
                        .Field("b", true)
                        .Field("i", int64_t{-3})
                        .Field("f", 1e3)
                        .Time(400, InfluxPrecision::kNanoseconds)
                        .ToLineProtocol(InfluxPrecision::kNanoseconds);
  ASSERT_OK(line);
  EXPECT_EQ(*line,
            "my\\ meas\\,x,tag\\ key\\=1=tag\\,val\\ ue "
            "field\\ k\\=y=\"str \\\"quoted\\\" \\\\ back\",b=true,i=-3i,f=1000 400");
}

TEST(InfluxPointTest, SortsTagsOmitsEmptyOnesAndConvertsTime) {
  const auto line = InfluxPoint("m")
                        .Tag("z", "1")
                        .Tag("a", "2")
                        .Tag("empty", "")
                        .Field("v", 0.5)
                        .Time(1500, InfluxPrecision::kMilliseconds)
                        .ToLineProtocol(InfluxPrecision::kNanoseconds);
  ASSERT_OK(line);
  EXPECT_EQ(*line, "m,a=2,z=1 v=0.5 1500000000");
  EXPECT_EQ(*InfluxPoint("m").Field("v", 1).Time(1999).ToLineProtocol(InfluxPrecision::kSeconds),
            "m v=1i 1");
}

TEST(InfluxPointTest, InvalidPointsAreRejectedWhereTheyAreBuilt) {
  auto message = [](auto&& build) {
    try {
      build();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(message([] { InfluxPoint("m").Field("v", std::nan("")); }),
              HasSubstr("field 'v' is nan"));
  EXPECT_THAT(message([] { InfluxPoint("m").Field("v", 1.0 / 0.0); }), HasSubstr("is inf"));
  EXPECT_THAT(message([] { InfluxPoint("m").Field("time", 1); }),
              HasSubstr("may not be called 'time'"));
  EXPECT_THAT(message([] { InfluxPoint("m").Tag("time", "x"); }),
              HasSubstr("may not be called 'time'"));
  EXPECT_THAT(message([] { InfluxPoint("m").Tag("k", "a\nb"); }), HasSubstr("contains a newline"));
  EXPECT_THAT(message([] { InfluxPoint("m\n"); }), HasSubstr("contains a newline"));
  EXPECT_THAT(message([] { InfluxPoint(""); }), HasSubstr("empty measurement"));
  EXPECT_THAT(
      std::string(
          InfluxPoint("m").Time(1).ToLineProtocol(InfluxPrecision::kSeconds).status().message()),
      HasSubstr("has no field"));
  EXPECT_THAT(std::string(InfluxPoint("m")
                              .Field("v", 1)
                              .ToLineProtocol(InfluxPrecision::kSeconds)
                              .status()
                              .message()),
              HasSubstr("has no timestamp"));
}

}  // namespace
}  // namespace sluice
