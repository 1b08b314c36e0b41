#include "sluice/metrics/state_growth_watch.h"

#include "glog/logging.h"

namespace sluice {

void StateGrowthWatch::Observe(const std::string& owner, const std::vector<KeyedStateSize>& sizes) {
  MutexLock lock(&mu_);
  for (const KeyedStateSize& size : sizes) {
    auto [it, added] = tracks_.try_emplace(owner + "\n" + size.name);
    Track& t = it->second;
    if (!added && size.entries > t.entries) {
      ++t.grew;
    } else if (!added) {
      t.grew = 0;
      t.warned = false;
    }
    t.entries = size.entries;
    if (size.ttl || t.warned || t.grew < checkpoints_) continue;
    t.warned = true;
    LOG(WARNING) << "keyed state '" << size.name << "' of " << owner << " grew at each of the last "
                 << checkpoints_ << " checkpoints (now " << size.entries << " entries, "
                 << size.bytes
                 << " bytes) and has no TTL: if its keys are never cleared it grows without "
                    "bound. Clear them (state.Clear(), a timer) or give the state a TTL "
                    "(EnableTimeToLive).";
  }
}

}  // namespace sluice
