#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sluice {

/// What a repair does with one entry of a keyed state.
enum class EntryRepair { kKeep, kChange, kDrop };

/// A repair of one keyed state's entries, type-erased (StateRepairs builds them from typed
/// functions): given an entry's serialized key (with its namespace) and value, it decides,
/// and for kChange rewrites `*value`.
struct StateRepairSpec {
  std::string uid;    // the operator's uid
  std::string state;  // the state's name
  /// The state type tags (StateTypeTag) the function reads: the state as declared, and the
  /// same with a TTL (whose entries carry their last access after the value).
  std::string type_tag, ttl_type_tag;
  std::function<absl::StatusOr<EntryRepair>(std::string_view key, std::string* value)> plain;
  std::function<absl::StatusOr<EntryRepair>(std::string_view key, std::string* value)> with_ttl;
};

struct SavepointRewriteRules {
  /// States removed whole: (operator uid, state name).
  std::set<std::pair<std::string, std::string>> drop_states;
  /// Entries whose last access (TTL states keep it) is older than this before `now` are
  /// removed; states without TTL keep theirs (they have no timestamps).
  std::optional<absl::Duration> drop_keys_older_than;
  absl::Time now = absl::Now();
  std::vector<StateRepairSpec> repairs;
};

/// What a rewrite did to one state.
struct StateRewriteCount {
  std::string uid, state;
  bool removed = false;     // --drop-state
  bool timestamps = false;  // its entries have a last access (TTL)
  int64_t entries = 0;      // read
  int64_t dropped = 0;
  int64_t changed = 0;
};

struct SavepointRewriteResult {
  std::string dir;
  std::vector<StateRewriteCount> states;
};

/// Reads the savepoint or checkpoint at `path` (as LoadCheckpoint: every file verified),
/// applies `rules` to its keyed state and writes the result as a new savepoint into `out`,
/// which must not exist yet; `path` is only read. A rule naming an operator or state the
/// savepoint lacks, or a repair whose types are not the state's, is an error naming both
/// and writes nothing. Timers of removed entries stay (they find no state when they fire).
absl::StatusOr<SavepointRewriteResult> RewriteSavepoint(const std::string& path,
                                                        const std::string& out,
                                                        const SavepointRewriteRules& rules);

}  // namespace sluice
