#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/serialization/schema_migration.h"
#include "sluice/serialization/type_schema.h"

namespace sluice {

/// The types a state's type tag (StateTypeTag: "key=K;namespace=N;value=V") names.
struct StateTypeNames {
  std::string key, ns, value;
};
/// INVALID_ARGUMENT for what is not such a tag (Sluice 0.1.0's typeid names).
absl::StatusOr<StateTypeNames> ParseStateTypeTag(std::string_view tag);

/// The same types parsed, to walk a state's entries (key, namespace, value each) without them.
struct StateSchemas {
  StateTypeNames names;
  TypeSchema key, ns, value;
  /// False if a custom serializer's bytes hide where an entry ends.
  bool walkable() const { return key.walkable() && ns.walkable() && value.walkable(); }
};
absl::StatusOr<StateSchemas> ParseStateSchemas(std::string_view tag);

/// How the entries of a state written with one type tag are read by a table with another:
/// its key and namespace types must be the same; its values migrate (SchemaMigration).
class StateMigration {
 public:
  /// FAILED_PRECONDITION saying what changed and how (both types).
  static absl::StatusOr<StateMigration> Plan(std::string_view from_tag, std::string_view to_tag);

  /// A key group's entries as a state table writes them (varint count, then each entry's
  /// key, namespace and value) in the new value format; `now` (ms): see SchemaMigration.
  absl::StatusOr<std::string> Entries(std::string_view body, int64_t now) const;
  /// One value alone (as RocksDB stores it).
  bool Value(std::string_view in, std::string* out, int64_t now) const;

 private:
  TypeSchema key_, namespace_;
  SchemaMigration value_;
};

}  // namespace sluice
