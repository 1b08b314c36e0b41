#include "sluice/state/state_migration.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sluice/core/status_macros.h"

namespace sluice {

absl::StatusOr<StateTypeNames> ParseStateTypeTag(std::string_view tag_view) {
  const std::string tag(tag_view);
  const std::vector<std::string> parts = absl::StrSplit(tag, absl::MaxSplits(';', 2));
  const std::string kPrefixes[] = {"key=", "namespace=", "value="};
  if (parts.size() != 3) {
    return absl::InvalidArgumentError(absl::StrCat("'", tag, "' is not a state type tag"));
  }
  std::string out[3];
  for (int i = 0; i < 3; ++i) {
    if (!absl::StartsWith(parts[i], kPrefixes[i])) {
      return absl::InvalidArgumentError(absl::StrCat("'", tag, "' is not a state type tag"));
    }
    out[i] = parts[i].substr(kPrefixes[i].size());
  }
  return StateTypeNames{out[0], out[1], out[2]};
}

absl::StatusOr<StateSchemas> ParseStateSchemas(std::string_view tag) {
  StateSchemas s;
  SLUICE_ASSIGN_OR_RETURN(s.names, ParseStateTypeTag(tag));
  SLUICE_ASSIGN_OR_RETURN(s.key, TypeSchema::Parse(s.names.key));
  SLUICE_ASSIGN_OR_RETURN(s.ns, TypeSchema::Parse(s.names.ns));
  SLUICE_ASSIGN_OR_RETURN(s.value, TypeSchema::Parse(s.names.value));
  return s;
}

absl::StatusOr<StateMigration> StateMigration::Plan(std::string_view from_tag,
                                                    std::string_view to_tag) {
  auto from = ParseStateSchemas(from_tag);
  if (!from.ok()) {
    return absl::FailedPreconditionError(
        "it was saved by Sluice 0.1.0 with other types (its snapshots name types in a way that "
        "does not tell their fields)");
  }
  SLUICE_ASSIGN_OR_RETURN(StateSchemas to, ParseStateSchemas(to_tag));
  if (from->names.key != to.names.key) {
    return absl::FailedPreconditionError(absl::StrCat("its key type was ", from->names.key,
                                                      " and is now ", to.names.key,
                                                      ": a key type cannot change"));
  }
  if (from->names.ns != to.names.ns) {
    return absl::FailedPreconditionError(absl::StrCat("its namespace (window) type was ",
                                                      from->names.ns, " and is now ", to.names.ns,
                                                      ": it cannot change"));
  }
  StateMigration m;
  SLUICE_ASSIGN_OR_RETURN(m.value_, SchemaMigration::Plan(from->value, to.value));
  if (!to.key.walkable() || !to.ns.walkable()) {
    return absl::FailedPreconditionError(
        absl::StrCat("its value type changed, but its key (", to.names.key, ") or namespace (",
                     to.names.ns, ") has a custom serializer, so its entries cannot be walked"));
  }
  m.key_ = std::move(to.key);
  m.namespace_ = std::move(to.ns);
  return m;
}

absl::StatusOr<std::string> StateMigration::Entries(std::string_view body, int64_t now) const {
  ByteReader in(body);
  std::string out;
  ByteWriter w(&out);
  uint64_t n = 0;
  if (!in.ReadVarint(&n) || !in.CheckCount(n, 1)) {
    return absl::DataLossError("the entry count is corrupt");
  }
  w.WriteVarint(n);
  for (uint64_t i = 0; i < n; ++i) {
    const size_t start = in.position();
    if (!key_.Skip(in) || !namespace_.Skip(in)) {
      return absl::DataLossError(absl::StrCat("entry ", i, "'s key is corrupt"));
    }
    w.Append(in.Consumed().substr(start));
    if (!value_.Transcode(in, w, now)) {
      return absl::DataLossError(absl::StrCat("entry ", i, "'s value is corrupt"));
    }
  }
  if (!in.AtEnd()) return absl::DataLossError("bytes after the last entry");
  return out;
}

bool StateMigration::Value(std::string_view in, std::string* out, int64_t now) const {
  ByteReader r(in);
  out->clear();
  ByteWriter w(out);
  return value_.Transcode(r, w, now) && r.AtEnd();
}

}  // namespace sluice
