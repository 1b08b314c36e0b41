#include "sluice/connectors/internal/connector_url.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/testing/test_util.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

const internal::ConnectorUrlForm kTestForm{"Test URL", {"a", "b"}, "expected a://H/P", "no H/P"};

TEST(ConnectorUrlTest, SplitsAuthorityPathAndDecodedParameters) {
  auto u =
      internal::SplitConnectorUrl("b://h1:1,h2:2/my%20db?k=v%26w&flag&x=1+2&k=again", kTestForm);
  ASSERT_OK(u);
  EXPECT_EQ(u->scheme, "b");
  EXPECT_EQ(u->authority, "h1:1,h2:2");
  EXPECT_EQ(u->path, "my db");
  EXPECT_EQ(u->parameters, (std::vector<std::pair<std::string, std::string>>{
                               {"k", "v&w"}, {"flag", ""}, {"x", "1 2"}, {"k", "again"}}));
  EXPECT_EQ(internal::PercentDecoded("100%"), "100%") << "a % without two hex digits stays";
}

TEST(ConnectorUrlTest, ErrorsSayWhatIsExpected) {
  EXPECT_EQ(internal::SplitConnectorUrl("c://h/p", kTestForm).status().message(),
            "Test URL 'c://h/p': expected a://H/P");
  EXPECT_EQ(internal::SplitConnectorUrl("no scheme", kTestForm).status().message(),
            "Test URL 'no scheme': expected a://H/P");
  EXPECT_EQ(internal::SplitConnectorUrl("a://hostonly?x=1", kTestForm).status().message(),
            "Test URL 'a://hostonly?x=1': no H/P");
  EXPECT_EQ(internal::SplitConnectorUrl("a:///path", kTestForm).status().message(),
            "Test URL 'a:///path': no H/P");
}

}  // namespace
}  // namespace sluice
