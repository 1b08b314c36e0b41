// A state repair library for savepoint_test (`sluice savepoint rewrite --with=`): of the
// "profile" states of operator "profiles", those with a tag shorter than 1,000 bytes are
// dropped, the other tags cleared, profiles without tags kept. Built a second time with
// PROFILE_REPAIR_WRONG_KEY, it declares the state with an integer key (which the rewrite refuses).
#include <string>
#include <vector>

#include "sluice/api/state_repair.h"

namespace profile_repair {

struct Profile {  // as the job declares it
  std::string name;
  int64_t visits = 0;
  std::vector<std::string> tags;
};
SLUICE_SERIALIZABLE(Profile, name, visits, tags)

#ifdef PROFILE_REPAIR_WRONG_KEY
using Key = int64_t;
#else
using Key = std::string;
#endif

void Repair(sluice::StateRepairs& r) {
  r.ForEachEntry<Key, Profile>("profiles", "profile", [](const Key&, Profile& p) {
    if (p.tags.empty()) return sluice::EntryRepair::kKeep;
    if (p.tags[0].size() < 1000) return sluice::EntryRepair::kDrop;
    p.tags.clear();
    return sluice::EntryRepair::kChange;
  });
}

}  // namespace profile_repair

SLUICE_STATE_REPAIR(profile_repair::Repair)
