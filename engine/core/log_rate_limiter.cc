#include "sluice/core/log_rate_limiter.h"

#include "absl/strings/str_cat.h"

namespace sluice {

bool LogRateLimiter::Allow(const std::string& key, absl::Time now, int64_t* suppressed) {
  MutexLock lock(&mu_);
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    if (keys_.size() >= kMaxKeys) keys_.clear();  // bounded: forget, at worst log again
    it = keys_.emplace(key, Key{}).first;
  }
  Key& k = it->second;
  if (now - k.last_logged < interval_) {
    ++k.suppressed;
    return false;
  }
  *suppressed = k.suppressed;
  k.suppressed = 0;
  k.last_logged = now;
  return true;
}

std::string SuppressedNote(int64_t suppressed) {
  if (suppressed == 0) return "";
  return absl::StrCat(" (", suppressed, " similar line", suppressed == 1 ? "" : "s", " held back)");
}

}  // namespace sluice
