#include "sluice/state/internal/copy_on_write_state_map.h"

#include <map>
#include <random>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace sluice::internal {
namespace {

using Map = CopyOnWriteStateMap<int, std::string>;

std::map<int, std::string> Contents(const Map::Snapshot& s) {
  std::map<int, std::string> out;
  s.ForEach([&](int k, const std::string& v) { out[k] = v; });
  return out;
}

std::map<int, std::string> Contents(const Map& m) {
  std::map<int, std::string> out;
  m.ForEach([&](int k, const std::string& v) { out[k] = v; });
  return out;
}

TEST(CopyOnWriteStateMapTest, SnapshotKeepsTheStateWhileTheMapChanges) {
  Map m;
  for (int i = 0; i < 100; ++i) m.Put(i, "v" + std::to_string(i));
  const auto before = Contents(m);
  auto snapshot = m.TakeSnapshot();
  // Every kind of write: in place, replace, insert (enough to want a resize), remove.
  *m.FindForWrite(1) += "-changed";
  m.Put(2, "replaced");
  m.GetOrCreate(3) = "via GetOrCreate";
  for (int i = 100; i < 1000; ++i) m.Put(i, "new");
  for (int i = 50; i < 60; ++i) m.Remove(i);
  m.EraseIf([](int k, const std::string&) { return k % 7 == 0; });

  EXPECT_EQ(snapshot->size(), 100u);
  EXPECT_EQ(Contents(*snapshot), before);
  EXPECT_EQ(*m.Find(1), "v1-changed");
  EXPECT_EQ(*m.Find(2), "replaced");
  EXPECT_EQ(m.Find(55), nullptr);
  EXPECT_EQ(m.Find(14), nullptr);
  EXPECT_EQ(*m.Find(999), "new");
  snapshot.reset();
  // After the release the map works in place again and stays consistent.
  *m.FindForWrite(1) = "again";
  EXPECT_EQ(*m.Find(1), "again");
}

TEST(CopyOnWriteStateMapTest, SeveralSnapshotsEachSeeTheirOwnVersion) {
  Map m;
  m.Put(1, "a");
  auto s1 = m.TakeSnapshot();
  *m.FindForWrite(1) = "b";
  auto s2 = m.TakeSnapshot();
  *m.FindForWrite(1) = "c";
  EXPECT_EQ(Contents(*s1), (std::map<int, std::string>{{1, "a"}}));
  EXPECT_EQ(Contents(*s2), (std::map<int, std::string>{{1, "b"}}));
  s2.reset();
  *m.FindForWrite(1) = "d";
  EXPECT_EQ(Contents(*s1), (std::map<int, std::string>{{1, "a"}}));
  EXPECT_EQ(*m.Find(1), "d");
}

// The snapshot is read on another thread while the owner keeps writing, as the
// asynchronous checkpoint phase does; run under ThreadSanitizer too.
TEST(CopyOnWriteStateMapTest, ConcurrentReadOfASnapshotSeesExactlyTheFrozenState) {
  Map m;
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 2000; ++i) m.Put(static_cast<int>(rng() % 5000), std::to_string(rng()));
    const auto expected = Contents(m);
    auto snapshot = m.TakeSnapshot();
    std::map<int, std::string> seen;
    std::thread reader([&] { seen = Contents(*snapshot); });
    for (int i = 0; i < 5000; ++i) {
      const int k = static_cast<int>(rng() % 6000);
      switch (rng() % 3) {
        case 0:
          m.Put(k, "w" + std::to_string(i));
          break;
        case 1:
          if (auto* v = m.FindForWrite(k)) v->append("+");
          break;
        case 2:
          m.Remove(k);
          break;
      }
    }
    reader.join();
    snapshot.reset();
    ASSERT_EQ(seen, expected) << "round " << round;
  }
}

}  // namespace
}  // namespace sluice::internal
