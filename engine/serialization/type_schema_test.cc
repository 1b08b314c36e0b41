#include "sluice/serialization/type_schema.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "serialization/test_record.pb.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/state_ttl.h"

namespace schema_test {

struct Point {
  double x = 0;
  double y = 0;
};
SLUICE_SERIALIZABLE(Point, x, y)

struct Session {
  std::string user;
  std::vector<Point> path;
  std::optional<int32_t> score;
  std::map<std::string, int64_t> counts;
  bool open = false;
};
SLUICE_SERIALIZABLE(Session, user, path, score, counts, open)

}  // namespace schema_test

namespace sluice {
namespace {

/// `value` written by its serializer, read back through the schema of its type's name.
template <typename T>
std::string Rendered(const T& value) {
  const std::string bytes = SerializeToString(value);
  auto schema = TypeSchema::Parse(SerializedTypeName<T>());
  EXPECT_TRUE(schema.ok()) << schema.status();
  if (!schema.ok()) return "";
  ByteReader in(bytes);
  std::string out;
  EXPECT_TRUE(schema->Render(in, &out)) << SerializedTypeName<T>();
  EXPECT_TRUE(in.AtEnd()) << "every byte belongs to the value";
  ByteReader again(bytes);
  EXPECT_TRUE(schema->Skip(again) && again.AtEnd());
  return out;
}

TEST(TypeSchemaTest, WalksWhatEachSerializerWrote) {
  EXPECT_EQ(Rendered<int64_t>(-42), "-42");
  EXPECT_EQ(Rendered<uint8_t>(200), "200");
  EXPECT_EQ(Rendered<int16_t>(-7), "-7");
  EXPECT_EQ(Rendered<double>(0.5), "0.5");
  EXPECT_EQ(Rendered<float>(2.25f), "2.25");
  EXPECT_EQ(Rendered<bool>(true), "true");
  EXPECT_EQ(Rendered<char>('q'), "\"q\"");
  EXPECT_EQ(Rendered<std::string>("say \"hi\"\n\x01"), R"("say \"hi\"\n\u0001")");
  EXPECT_EQ(Rendered(std::vector<int32_t>{1, 2, 3}), "[1,2,3]");
  EXPECT_EQ(Rendered(std::set<std::string>{"b", "a"}), R"(["a","b"])");
  EXPECT_EQ(Rendered(std::map<std::string, double>{{"k", 1.5}}), R"({"k":1.5})");
  EXPECT_EQ(Rendered(std::optional<int64_t>()), "null");
  EXPECT_EQ(Rendered(std::optional<int64_t>(9)), "9");
  EXPECT_EQ(Rendered(std::make_pair(std::string("a"), int64_t{1})), R"(["a",1])");
  EXPECT_EQ(Rendered(std::make_tuple(int8_t{1}, std::string("x"), false)), R"([1,"x",false])");
  EXPECT_EQ(Rendered(TtlValue<std::vector<int64_t>>{{4, 5}, 1234}), "[4,5]");
  schema_test::Session s;
  s.user = "ann";
  s.path = {{1, 2}, {3.5, -4}};
  s.score = 17;
  s.counts = {{"clicks", 3}};
  s.open = true;
  EXPECT_EQ(Rendered(s), R"({"user":"ann","path":[{"x":1,"y":2},{"x":3.5,"y":-4}],"score":17,)"
                         R"("counts":{"clicks":3},"open":true})");
  sluice_test::TestEvent proto;
  proto.set_user("k");
  EXPECT_EQ(Rendered(proto), absl::StrCat("\"<proto:sluice_test.TestEvent, ",
                                          proto.SerializeAsString().size(), " bytes>\""));
}

TEST(TypeSchemaTest, StructNamesAndFieldsAreKept) {
  auto schema = TypeSchema::Parse(SerializedTypeName<schema_test::Session>());
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ(schema->kind(), TypeSchema::Kind::kStruct);
  EXPECT_EQ(schema->field_names(),
            (std::vector<std::string>{"user", "path", "score", "counts", "open"}));
  EXPECT_EQ(schema->children()[1].name(), "list<Point{x:f64,y:f64}>");
  EXPECT_TRUE(schema->walkable());
}

TEST(TypeSchemaTest, BadNamesAndBadBytesAreRefused) {
  for (const char* bad : {"", "i7", "f16", "list<i64", "map<i64>", "Point{x}", "list<i64>x",
                          "tuple<i64,>", "nothing"}) {
    EXPECT_FALSE(TypeSchema::Parse(bad).ok()) << bad;
  }
  EXPECT_EQ(TypeSchema::Parse("i7").status().message(),
            "'i7' is not a serialized type name (at 2: '')");
  auto custom = TypeSchema::Parse("pair<i64,custom>");
  ASSERT_TRUE(custom.ok());
  EXPECT_FALSE(custom->walkable());
  auto list = TypeSchema::Parse("list<i64>");
  ASSERT_TRUE(list.ok());
  const std::string truncated = SerializeToString(std::vector<int64_t>{1, 2}).substr(0, 9);
  ByteReader in(truncated);
  EXPECT_FALSE(list->Skip(in));
}

}  // namespace
}  // namespace sluice
