#include "sluice/serialization/serializer.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "serialization/test_record.pb.h"
#include "sluice/core/format.h"

namespace sluice_test {

struct Reading {
  std::string sensor;
  int64_t timestamp_ms = 0;
  double value = 0;
  std::vector<std::string> tags;
  std::optional<int32_t> quality;
};
SLUICE_SERIALIZABLE(Reading, sensor, timestamp_ms, value, tags, quality)

struct Envelope {
  Reading reading;
  std::pair<int, std::string> route;
};
SLUICE_SERIALIZABLE(Envelope, reading, route)

}  // namespace sluice_test

namespace sluice {
namespace {

template <typename T>
T RoundTrip(const T& value) {
  std::string bytes = SerializeToString(value);
  auto back = DeserializeFromString<T>(bytes);
  EXPECT_TRUE(back.ok()) << back.status();
  return back.ok() ? *back : T{};
}

TEST(SerializerTest, ArithmeticTypesRoundTrip) {
  EXPECT_EQ(RoundTrip<int64_t>(std::numeric_limits<int64_t>::min()),
            std::numeric_limits<int64_t>::min());
  EXPECT_EQ(RoundTrip<uint8_t>(255), 255);
  EXPECT_EQ(RoundTrip<double>(-1.5e300), -1.5e300);
  EXPECT_EQ(RoundTrip<float>(3.25f), 3.25f);
  EXPECT_EQ(RoundTrip<bool>(true), true);
  EXPECT_EQ(RoundTrip<char>('x'), 'x');
}

TEST(SerializerTest, StringsIncludingBinaryRoundTrip) {
  EXPECT_EQ(RoundTrip<std::string>(""), "");
  std::string binary("a\0b\xff", 4);
  EXPECT_EQ(RoundTrip(binary), binary);
  std::string big(100000, 'z');
  EXPECT_EQ(RoundTrip(big), big);
}

TEST(SerializerTest, ContainersRoundTrip) {
  std::pair<std::string, int> p{"k", 7};
  EXPECT_EQ(RoundTrip(p), p);
  std::tuple<int, std::string, double> t{1, "two", 3.0};
  EXPECT_EQ(RoundTrip(t), t);
  std::vector<std::vector<int>> v{{1, 2}, {}, {3}};
  EXPECT_EQ(RoundTrip(v), v);
  std::optional<std::string> some = "x", none;
  EXPECT_EQ(RoundTrip(some), some);
  EXPECT_EQ(RoundTrip(none), none);
  std::set<std::string> ordered{"b", "a", ""};
  EXPECT_EQ(RoundTrip(ordered), ordered);
  absl::flat_hash_set<int64_t> hashed{3, -1, 1'000'000'000'000};
  EXPECT_EQ(RoundTrip(hashed), hashed);
  EXPECT_EQ(SerializedTypeName<std::set<std::string>>(), "set<string>");
  EXPECT_EQ(SerializedTypeName<absl::flat_hash_set<int64_t>>(),
            SerializedTypeName<std::set<int64_t>>());
}

TEST(SerializerTest, StructsDeclaredWithMacroRoundTrip) {
  sluice_test::Envelope e{{"s-1", 1234, 0.5, {"a", "b"}, 3}, {9, "r"}};
  EXPECT_TRUE(RoundTrip(e) == e);
  sluice_test::Reading no_quality{"s-2", 1, 2, {}, std::nullopt};
  EXPECT_TRUE(RoundTrip(no_quality) == no_quality);
}

TEST(SerializerTest, ProtobufMessagesRoundTrip) {
  sluice_test::TestEvent ev;
  ev.set_user("u");
  ev.set_amount(42);
  ev.add_labels("l1");
  sluice_test::TestEvent back = RoundTrip(ev);
  EXPECT_EQ(back.user(), "u");
  EXPECT_EQ(back.amount(), 42);
  ASSERT_EQ(back.labels_size(), 1);
  EXPECT_EQ(back.labels(0), "l1");
}

TEST(SerializerTest, TruncatedInputIsAnErrorNotACrash) {
  std::string bytes = SerializeToString(std::vector<std::string>{"hello", "world"});
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    auto r = DeserializeFromString<std::vector<std::string>>(bytes.substr(0, cut), "word list");
    ASSERT_FALSE(r.ok()) << "cut at " << cut;
    EXPECT_NE(r.status().message().find("word list"), std::string::npos);
  }
}

TEST(SerializerTest, HugeDeclaredLengthIsRejectedWithoutAllocating) {
  std::string bytes;
  ByteWriter w(&bytes);
  w.WriteVarint(uint64_t{1} << 60);  // a corrupt element count
  auto r = DeserializeFromString<std::vector<int64_t>>(bytes);
  EXPECT_FALSE(r.ok());
}

TEST(SerializerTest, TrailingBytesAreReported) {
  std::string bytes = SerializeToString<int32_t>(5) + "x";
  auto r = DeserializeFromString<int32_t>(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("trailing"), std::string::npos);
}

TEST(FormatTest, PrintsRecordsReadably) {
  EXPECT_EQ(ToString(std::pair<std::string, int64_t>{"a", 3}), "(a,3)");
  EXPECT_EQ(ToString(std::vector<int>{1, 2}), "[1,2]");
  EXPECT_EQ(ToString(std::optional<int>()), "null");
  sluice_test::Reading r{"s", 1, 2.5, {"t"}, 7};
  EXPECT_EQ(ToString(r), "{sensor=s,timestamp_ms=1,value=2.500000,tags=[t],quality=7}");
}

}  // namespace
}  // namespace sluice
