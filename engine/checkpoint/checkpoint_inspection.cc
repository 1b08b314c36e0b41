// What a checkpoint holds, read from its files alone: the key groups' portable state format
// (state name, type tag, entries) walked with the type tags' schemas.

#include "sluice/checkpoint/checkpoint_inspection.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <queue>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "sluice/checkpoint/checkpoint_loader.h"
#include "sluice/checkpoint/native_keyed_state.h"
#include "sluice/checkpoint/operator_snapshot.h"
#include "sluice/serialization/type_schema.h"
#include "sluice/state/state_migration.h"

namespace sluice {
namespace {

/// A keyed state's type tag ("key=K;namespace=N;value=V"): its names, and its schemas where
/// they parse (not 0.1.0's typeid tags).
struct StateTypes {
  std::string key, ns, value;
  std::optional<StateSchemas> schemas;
};

StateTypes ParseTag(const std::string& tag) {
  StateTypes t;
  auto names = ParseStateTypeTag(tag);
  if (!names.ok()) return t;  // types unknown
  t.key = names->key;
  t.ns = names->ns;
  t.value = names->value;
  if (auto s = ParseStateSchemas(tag); s.ok()) t.schemas = std::move(*s);
  return t;
}

/// A state's totals while the key groups are read, with its largest entries so far.
struct StateTally {
  StateInspection out;
  StateTypes types;
  bool walkable = false;
  // Smallest on top: the N largest stay.
  std::priority_queue<std::pair<int64_t, std::string>, std::vector<std::pair<int64_t, std::string>>,
                      std::greater<>>
      top;
};

/// Adds one key group's entries of a state (its body: varint count, then the entries).
absl::Status AddEntries(std::string_view body, int top, StateTally& tally, const std::string& where,
                        uint64_t* entries) {
  ByteReader in(body);
  uint64_t n = 0;
  if (!in.ReadVarint(&n)) return absl::DataLossError(where + ": the entry count is corrupt");
  *entries = n;
  tally.out.keys += static_cast<int64_t>(n);
  tally.out.bytes += static_cast<int64_t>(body.size());
  if (top <= 0 || !tally.walkable) return absl::OkStatus();
  const StateSchemas& schemas = *tally.types.schemas;
  const bool with_namespace = schemas.ns.kind() != TypeSchema::Kind::kVoid;
  for (uint64_t i = 0; i < n; ++i) {
    const size_t start = in.position();
    if (!schemas.key.Skip(in) || (with_namespace && !schemas.ns.Skip(in)) ||
        !schemas.value.Skip(in)) {
      return absl::DataLossError(absl::StrCat(where, ": entry ", i, " does not read as ",
                                              tally.types.key, ", ", tally.types.ns, ", ",
                                              tally.types.value));
    }
    const auto size = static_cast<int64_t>(in.position() - start);
    if (static_cast<int>(tally.top.size()) == top && size <= tally.top.top().first) continue;
    // Only entries that make the list are rendered.
    ByteReader entry(body.substr(start, static_cast<size_t>(size)));
    std::string key;
    schemas.key.Render(entry, &key);
    if (with_namespace) {
      key = "(" + key + ", ";
      schemas.ns.Render(entry, &key);
      key += ")";
    }
    tally.top.emplace(size, std::move(key));
    if (static_cast<int>(tally.top.size()) > top) tally.top.pop();
  }
  return absl::OkStatus();
}

std::string KindOf(const TypeSchema* v, bool* ttl) {
  if (v != nullptr && v->kind() == TypeSchema::Kind::kTtl) {
    *ttl = true;
    v = &v->children()[0];
  }
  if (v == nullptr) return "value";
  if (v->kind() == TypeSchema::Kind::kList) return "list";
  if (v->kind() == TypeSchema::Kind::kMap) return "map";
  return "value";
}

}  // namespace

absl::StatusOr<CheckpointInspection> InspectCheckpoint(const std::string& path, int top) {
  SLUICE_ASSIGN_OR_RETURN(LoadedCheckpoint loaded, LoadCheckpoint(path));
  CheckpointInspection result;
  result.dir = loaded.dir;
  result.checkpoint_id = loaded.metadata.checkpoint_id;
  result.job_name = loaded.metadata.job_name;
  result.savepoint = loaded.metadata.savepoint;
  for (const auto& [uid, snapshots] : loaded.operators) {
    OperatorInspection op;
    op.uid = uid;
    op.parallelism = static_cast<int>(snapshots.size());
    if (auto it = loaded.metadata.max_parallelism.find(uid);
        it != loaded.metadata.max_parallelism.end()) {
      op.max_parallelism = it->second;
    }
    std::map<std::string, StateTally> states;
    StateTally operator_state;
    operator_state.out.name = "operator state";
    operator_state.out.kind = "operator-list";
    for (const OperatorSnapshot& s : snapshots) {
      for (const std::string& item : s.operator_state) {
        ++operator_state.out.keys;
        operator_state.out.bytes += static_cast<int64_t>(item.size());
      }
      op.native_files += static_cast<int64_t>(s.native.files.size());
      for (const StoredFile& f : s.native.files) op.native_bytes += static_cast<int64_t>(f.size);
      std::map<int, std::string> key_groups = s.key_groups;
      if (!s.native.empty()) {
        // RocksDB's own files (an incremental checkpoint): read through a copy of the database.
        SLUICE_RETURN_IF_ERROR(
            MaterializeNativeState({s.native}, s.native.range(), "", &key_groups));
      }
      for (const auto& [kg, blob] : key_groups) {
        const std::string where =
            absl::StrCat(loaded.dir, ": operator '", uid, "', key group ", kg);
        SLUICE_ASSIGN_OR_RETURN(internal::KeyGroupParts parts,
                                internal::ParseKeyGroupBlob(blob, kg));
        ByteReader in(parts.state);
        uint64_t count = 0;
        if (!in.ReadVarint(&count)) return absl::DataLossError(where + ": corrupt");
        bool has_entries = false;
        for (uint64_t i = 0; i < count; ++i) {
          std::string_view name, tag, body;
          if (!in.ReadBytes(&name) || !in.ReadBytes(&tag) || !in.ReadBytes(&body)) {
            return absl::DataLossError(where + ": corrupt");
          }
          auto [it, added] = states.try_emplace(std::string(name));
          StateTally& tally = it->second;
          if (added) {
            tally.out.name = std::string(name);
            tally.types = ParseTag(std::string(tag));
            tally.out.key_type = tally.types.key;
            tally.out.namespace_type = tally.types.ns;
            tally.out.value_type = tally.types.value;
            tally.out.kind =
                KindOf(tally.types.schemas ? &tally.types.schemas->value : nullptr, &tally.out.ttl);
            tally.walkable = tally.types.schemas && tally.types.schemas->walkable();
          }
          uint64_t entries = 0;
          SLUICE_RETURN_IF_ERROR(
              AddEntries(body, top, tally, absl::StrCat(where, ", state '", std::string(name), "'"),
                         &entries));
          has_entries = has_entries || entries > 0;
        }
        op.key_groups += has_entries ? 1 : 0;
      }
    }
    for (auto& [name, tally] : states) {
      while (!tally.top.empty()) {
        tally.out.top.emplace_back(tally.top.top().second, tally.top.top().first);
        tally.top.pop();
      }
      std::reverse(tally.out.top.begin(), tally.out.top.end());  // largest first
      op.states.push_back(std::move(tally.out));
    }
    if (operator_state.out.keys > 0) op.states.push_back(std::move(operator_state.out));
    // Broadcast state: every subtask holds the same copy; the first one that has any tells.
    for (const OperatorSnapshot& s : snapshots) {
      if (s.broadcast_states.empty()) continue;
      for (const auto& [name, joined] : s.broadcast_states) {
        StateInspection state;
        state.name = name;
        state.kind = "broadcast-map";
        const size_t split = joined.find('\0');
        const std::string tag = joined.substr(0, split);
        const std::vector<std::string> types = absl::StrSplit(tag, ';');
        if (types.size() == 2 && absl::StartsWith(types[0], "key=") &&
            absl::StartsWith(types[1], "value=")) {
          state.key_type = types[0].substr(4);
          state.value_type = types[1].substr(6);
        }
        const std::string_view body = split == std::string::npos
                                          ? std::string_view()
                                          : std::string_view(joined).substr(split + 1);
        ByteReader in(body);
        uint64_t entries = 0;
        if (!in.ReadVarint(&entries)) {
          return absl::DataLossError(absl::StrCat(loaded.dir, ": operator '", uid,
                                                  "', broadcast state '", name, "': corrupt"));
        }
        state.keys = static_cast<int64_t>(entries);
        state.bytes = static_cast<int64_t>(body.size());
        op.states.push_back(std::move(state));
      }
      break;
    }
    result.operators.push_back(std::move(op));
  }
  return result;
}

std::string InspectionToJson(const CheckpointInspection& c) {
  nlohmann::json operators = nlohmann::json::array();
  for (const OperatorInspection& op : c.operators) {
    nlohmann::json states = nlohmann::json::array();
    for (const StateInspection& s : op.states) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [key, bytes] : s.top) top.push_back({{"key", key}, {"bytes", bytes}});
      nlohmann::json state = {
          {"name", s.name}, {"kind", s.kind}, {"ttl", s.ttl}, {"keys", s.keys}, {"bytes", s.bytes}};
      if (!s.key_type.empty()) {
        state["key_type"] = s.key_type;
        state["namespace_type"] = s.namespace_type;
        state["value_type"] = s.value_type;
      }
      if (!top.empty()) state["top"] = top;
      states.push_back(state);
    }
    operators.push_back({{"uid", op.uid},
                         {"parallelism", op.parallelism},
                         {"max_parallelism", op.max_parallelism},
                         {"key_groups", op.key_groups},
                         {"native_files", op.native_files},
                         {"native_bytes", op.native_bytes},
                         {"states", states}});
  }
  nlohmann::json out = {{"dir", c.dir},
                        {"checkpoint_id", c.checkpoint_id},
                        {"job", c.job_name},
                        {"savepoint", c.savepoint},
                        {"operators", operators}};
  // Keys and values may hold any bytes: invalid UTF-8 is replaced, never an exception.
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string InspectionToText(const CheckpointInspection& c) {
  std::string out = absl::StrCat(c.savepoint ? "savepoint" : "checkpoint", " ", c.checkpoint_id,
                                 " of job '", c.job_name, "' in ", c.dir, "\n");
  for (const OperatorInspection& op : c.operators) {
    absl::StrAppend(&out, "\noperator ", op.uid, ": parallelism ", op.parallelism,
                    ", max parallelism ", op.max_parallelism, ", ", op.key_groups,
                    " key groups with state");
    if (op.native_files > 0) {
      absl::StrAppend(&out, ", ", op.native_files, " RocksDB files (", op.native_bytes,
                      " bytes; their states are inside them)");
    }
    out += "\n";
    if (op.states.empty()) out += "  (no state)\n";
    for (const StateInspection& s : op.states) {
      char line[256];
      std::snprintf(line, sizeof(line), "  %-24s %-13s %12lld keys %14lld bytes%s", s.name.c_str(),
                    s.kind.c_str(), static_cast<long long>(s.keys), static_cast<long long>(s.bytes),
                    s.ttl ? "  ttl" : "");
      absl::StrAppend(&out, line, "\n");
      if (!s.key_type.empty()) {
        absl::StrAppend(&out, "    key ", s.key_type, ", namespace ", s.namespace_type, ", value ",
                        s.value_type, "\n");
      }
      for (const auto& [key, bytes] : s.top)
        absl::StrAppend(&out, "    ", bytes, " bytes  ", key, "\n");
    }
  }
  return out;
}

}  // namespace sluice
