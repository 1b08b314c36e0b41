// A savepoint rewritten: states removed, old entries dropped, entries repaired by a user's
// function, over the key groups' portable format (state name, type tag, entries) walked
// with the type tags' schemas.

#include "sluice/checkpoint/savepoint_rewrite.h"

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/checkpoint/native_keyed_state.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/core/status_macros.h"
#include "sluice/serialization/type_schema.h"
#include "sluice/state/state_migration.h"

namespace sluice {
namespace {

using StateId = std::pair<std::string, std::string>;  // (operator uid, state name)

class Rewriter {
 public:
  Rewriter(const SavepointRewriteRules& rules, std::string where)
      : rules_(rules), where_(std::move(where)) {
    if (rules.drop_keys_older_than) {
      cutoff_ms_ = absl::ToUnixMillis(rules.now - *rules.drop_keys_older_than);
    }
  }

  /// Rewrites the state part of one key group of operator `uid`.
  absl::StatusOr<std::string> StatePart(const std::string& uid, std::string_view part, int kg) {
    if (part.empty()) return std::string();
    ByteReader in(part);
    uint64_t count = 0;
    if (!in.ReadVarint(&count)) return Corrupt(uid, kg);
    std::string states;
    ByteWriter w(&states);
    uint64_t kept = 0;
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view name, tag, body;
      if (!in.ReadBytes(&name) || !in.ReadBytes(&tag) || !in.ReadBytes(&body)) {
        return Corrupt(uid, kg);
      }
      const StateId id{uid, std::string(name)};
      StateRewriteCount& c = counts_[id];
      c.uid = id.first;
      c.state = id.second;
      if (rules_.drop_states.contains(id)) {
        c.removed = true;
        ByteReader entries(body);
        uint64_t n = 0;
        if (!entries.ReadVarint(&n)) return Corrupt(uid, kg);
        c.entries += static_cast<int64_t>(n);
        continue;
      }
      SLUICE_ASSIGN_OR_RETURN(std::string entries, Entries(id, std::string(tag), body, kg, c));
      w.WriteBytes(name);
      w.WriteBytes(tag);
      w.WriteBytes(entries);
      ++kept;
    }
    std::string out;
    ByteWriter ow(&out);
    ow.WriteVarint(kept);
    ow.Append(states);
    return out;
  }

  /// Each rule must have met what it names.
  absl::Status CheckRulesMatched() const {
    std::vector<std::string> known;
    for (const auto& [id, c] : counts_) known.push_back(absl::StrCat(id.first, "/", id.second));
    auto missing = [&](const StateId& id) {
      return absl::NotFoundError(absl::StrCat(
          where_, " has no keyed state '", id.second, "' of operator '", id.first,
          "' (its states: ", known.empty() ? "none" : absl::StrJoin(known, ", "), ")"));
    };
    for (const StateId& id : rules_.drop_states) {
      if (!counts_.contains(id)) return missing(id);
    }
    for (const StateRepairSpec& r : rules_.repairs) {
      if (!counts_.contains({r.uid, r.state})) return missing({r.uid, r.state});
    }
    return absl::OkStatus();
  }

  std::vector<StateRewriteCount> Counts() const {
    std::vector<StateRewriteCount> out;
    for (const auto& [id, c] : counts_) out.push_back(c);
    return out;
  }

 private:
  absl::Status Corrupt(const std::string& uid, int kg) const {
    return absl::DataLossError(
        absl::StrCat(where_, ": operator '", uid, "', key group ", kg, " is corrupt"));
  }

  const StateRepairSpec* RepairOf(const StateId& id) const {
    for (const StateRepairSpec& r : rules_.repairs) {
      if (r.uid == id.first && r.state == id.second) return &r;
    }
    return nullptr;
  }

  /// One state's entries of one key group (varint count, then key, namespace, value each).
  absl::StatusOr<std::string> Entries(const StateId& id, const std::string& tag,
                                      std::string_view body, int kg, StateRewriteCount& c) {
    ByteReader in(body);
    uint64_t n = 0;
    if (!in.ReadVarint(&n) || !in.CheckCount(n, 1)) return Corrupt(id.first, kg);
    c.entries += static_cast<int64_t>(n);
    const StateRepairSpec* repair = RepairOf(id);
    if (repair == nullptr && !rules_.drop_keys_older_than) return std::string(body);

    const std::string what = absl::StrCat("state '", id.second, "' of operator '", id.first, "'");
    auto schemas = ParseStateSchemas(tag);
    if (!schemas.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(what, " was written by Sluice 0.1.0, ",
                                                        "whose snapshots do not name its types"));
    }
    if (!schemas->walkable()) {
      if (repair == nullptr) return std::string(body);  // no timestamps to read
      return absl::FailedPreconditionError(absl::StrCat(
          what, " has a type with a custom serializer (", tag, "): its entries cannot be walked"));
    }
    const TypeSchema* key = &schemas->key;
    const TypeSchema* ns = &schemas->ns;
    const TypeSchema* value = &schemas->value;
    const bool ttl = value->kind() == TypeSchema::Kind::kTtl;
    c.timestamps = ttl;
    const bool by_age = rules_.drop_keys_older_than && ttl;
    if (repair == nullptr && !by_age) return std::string(body);
    const std::function<absl::StatusOr<EntryRepair>(std::string_view, std::string*)>* fn = nullptr;
    if (repair != nullptr) {
      if (tag == repair->type_tag) {
        fn = &repair->plain;
      } else if (tag == repair->ttl_type_tag) {
        fn = &repair->with_ttl;
      } else {
        return absl::FailedPreconditionError(absl::StrCat(
            "the repair of ", what, " reads ", repair->type_tag, ", but the state is ", tag));
      }
    }

    std::string entries;
    ByteWriter w(&entries);
    uint64_t kept = 0;
    std::string new_value;
    for (uint64_t i = 0; i < n; ++i) {
      const size_t key_start = in.position();
      if (!key->Skip(in) || !ns->Skip(in)) return Corrupt(id.first, kg);
      const size_t value_start = in.position();
      if (!value->Skip(in)) return Corrupt(id.first, kg);
      const std::string_view consumed = in.Consumed();
      const std::string_view key_bytes = consumed.substr(key_start, value_start - key_start);
      std::string_view value_bytes = consumed.substr(value_start);
      if (by_age) {
        // A TTL value ends with its last access (ms).
        int64_t last_access = 0;
        if (value_bytes.size() < sizeof(last_access)) return Corrupt(id.first, kg);
        ByteReader tail(value_bytes.substr(value_bytes.size() - sizeof(last_access)));
        if (!tail.ReadRaw(&last_access)) return Corrupt(id.first, kg);
        if (last_access < cutoff_ms_) {
          ++c.dropped;
          continue;
        }
      }
      if (fn != nullptr) {
        new_value.assign(value_bytes);
        auto action = (*fn)(key_bytes, &new_value);
        if (!action.ok()) {
          return absl::Status(action.status().code(),
                              absl::StrCat("repairing ", what, ": ", action.status().message()));
        }
        if (*action == EntryRepair::kDrop) {
          ++c.dropped;
          continue;
        }
        if (*action == EntryRepair::kChange) {
          ++c.changed;
          value_bytes = new_value;
        }
      }
      w.Append(key_bytes);
      w.Append(value_bytes);
      ++kept;
    }
    if (!in.AtEnd()) return Corrupt(id.first, kg);
    std::string out;
    ByteWriter ow(&out);
    ow.WriteVarint(kept);
    ow.Append(entries);
    return out;
  }

  const SavepointRewriteRules& rules_;
  const std::string where_;
  int64_t cutoff_ms_ = 0;
  std::map<StateId, StateRewriteCount> counts_;
};

}  // namespace

absl::StatusOr<SavepointRewriteResult> RewriteSavepoint(const std::string& path,
                                                        const std::string& out,
                                                        const SavepointRewriteRules& rules) {
  std::error_code ec;
  if (std::filesystem::exists(out, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat("'", out, "' exists: a rewrite writes a new savepoint, give a new path"));
  }
  SLUICE_ASSIGN_OR_RETURN(LoadedCheckpoint loaded, LoadCheckpoint(path));
  Rewriter rewriter(rules, loaded.dir);
  for (auto& [uid, snapshots] : loaded.operators) {
    for (OperatorSnapshot& s : snapshots) {
      if (!s.native.empty()) {
        // RocksDB's own files become key groups: a savepoint is portable.
        SLUICE_RETURN_IF_ERROR(
            MaterializeNativeState({s.native}, s.native.range(), "", &s.key_groups));
        s.native = {};
      }
      for (auto& [kg, blob] : s.key_groups) {
        SLUICE_ASSIGN_OR_RETURN(internal::KeyGroupParts parts,
                                internal::ParseKeyGroupBlob(blob, kg));
        SLUICE_ASSIGN_OR_RETURN(std::string state, rewriter.StatePart(uid, parts.state, kg));
        blob = internal::KeyGroupBlob(state, parts.timers, parts.watermark.value_or(kMinWatermark));
      }
    }
  }
  SLUICE_RETURN_IF_ERROR(rewriter.CheckRulesMatched());
  SavepointRewriteResult result;
  SLUICE_ASSIGN_OR_RETURN(result.dir, WriteSavepointInto(out, loaded.metadata, loaded.operators));
  result.states = rewriter.Counts();
  return result;
}

}  // namespace sluice
