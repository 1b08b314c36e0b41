#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/serialization/bytes.h"
#include "sluice/serialization/type_schema.h"

namespace sluice {

/// How a value serialized in one format (TypeSchema) is rewritten in another: what lets a
/// job restore state its previous version wrote. The rules (Flink's POJO rules):
/// - the same format: copied;
/// - structs: fields matched by name, whatever the order; a field the new struct added gets
///   its type's default (0, "", empty, absent), a field it removed is dropped; the struct may
///   be renamed;
/// - lists and sets, maps (same key type), optionals, tuples (same arity): element by element;
/// - a TTL added to a state (`V` -> `ttl<V>`): the entries' last access is the restore time;
///   a TTL removed: the access time is dropped;
/// - protobuf messages: the same message type, whose bytes protobuf's own rules evolve;
/// - anything else (a field's type changed, a key type changed) is incompatible.
class SchemaMigration {
 public:
  /// FAILED_PRECONDITION naming the part that changed ("field 'visits'", "field
  /// 'address.city'", "the list's elements") and both its types.
  static absl::StatusOr<SchemaMigration> Plan(const TypeSchema& from, const TypeSchema& to);

  /// True when the bytes stay as they are.
  bool copies() const { return step_ == Step::kCopy; }
  /// Reads one value in the old format and appends it in the new one; `now` (ms) is the
  /// access time of entries that gain a TTL. False if the bytes do not hold a value.
  bool Transcode(ByteReader& in, ByteWriter& out, int64_t now) const;

 private:
  enum class Step {
    kCopy,  // the same format
    kSkip,  // a dropped struct field
    kList,
    kMap,
    kOptional,
    kTuple,
    kStruct,
    kTtl,
    kAddTtl,
    kDropTtl,
  };
  static absl::Status Build(const TypeSchema& from, const TypeSchema& to, const std::string& path,
                            SchemaMigration* out);

  Step step_ = Step::kCopy;
  TypeSchema from_;  // kCopy, kSkip: how to walk the old bytes
  // Per element (kList: one; kMap: the value's; kStruct: one per old field, in old order).
  std::vector<SchemaMigration> children_;
  // kStruct: the new field each old field becomes (-1: dropped), and per new field its
  // serialized default, used when no old field feeds it.
  std::vector<int> old_to_new_;
  std::vector<std::string> defaults_;
  std::vector<bool> fed_;
};

/// The bytes of a default-constructed value of `schema` (what Serializer<T>::Write writes for
/// T{}); an error for a custom serializer, whose format is unknown.
absl::StatusOr<std::string> DefaultValueBytes(const TypeSchema& schema);

}  // namespace sluice
