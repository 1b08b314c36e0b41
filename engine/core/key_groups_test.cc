#include "sluice/core/key_groups.h"

#include <set>
#include <string>
#include <tuple>

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(StableHashTest, IsAFixedFunctionOfTheKey) {
  // These values are the contract: key groups (and so savepoints) depend on them. A change
  // here breaks restoring state written by earlier versions.
  EXPECT_EQ(StableHash<int64_t>(0), 0u);
  EXPECT_EQ(StableHash<int64_t>(1), 0x5692161d100b05e5ULL);
  EXPECT_EQ(StableHash(std::string("sluice")), StableHash(std::string_view("sluice")));
  EXPECT_EQ(StableHash(std::string("")), internal::HashBytes("", 0));
}

TEST(StableHashTest, DistinguishesCompositeKeys) {
  EXPECT_NE(StableHash(std::make_pair(1, 2)), StableHash(std::make_pair(2, 1)));
  EXPECT_NE(StableHash(std::make_tuple(std::string("a"), 1)),
            StableHash(std::make_tuple(std::string("a"), 2)));
  EXPECT_EQ(StableHash(0.0), StableHash(-0.0));
}

TEST(KeyGroupsTest, RangesPartitionAllKeyGroupsAndInvertOperatorIndex) {
  for (int max_p : {1, 7, 128, 1000}) {
    for (int p = 1; p <= std::min(max_p, 13); ++p) {
      int next = 0;
      for (int i = 0; i < p; ++i) {
        KeyGroupRange r = KeyGroupRangeForOperator(i, p, max_p);
        ASSERT_EQ(r.start, next) << "max_p=" << max_p << " p=" << p << " i=" << i;
        for (int kg = r.start; kg <= r.end; ++kg) {
          ASSERT_EQ(OperatorIndexForKeyGroup(kg, p, max_p), i);
        }
        next = r.end + 1;
      }
      ASSERT_EQ(next, max_p);
    }
  }
}

TEST(KeyGroupsTest, SpreadsKeysOverAllKeyGroups) {
  std::set<int> seen;
  std::vector<int> counts(128, 0);
  for (int64_t k = 0; k < 128000; ++k) {
    int kg = KeyGroupFor(k, 128);
    ASSERT_GE(kg, 0);
    ASSERT_LT(kg, 128);
    counts[kg]++;
  }
  for (int c : counts) {
    EXPECT_GT(c, 800);  // 1000 expected per group
    EXPECT_LT(c, 1200);
  }
}

}  // namespace
}  // namespace sluice
