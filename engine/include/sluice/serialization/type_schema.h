#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/serialization/bytes.h"

namespace sluice {

/// The shape of serialized data as SerializedTypeName names it ("i64", "string",
/// "list<f64>", "pair<string,void>", "Point{x:f64,y:f64}", "ttl<list<i32>>",
/// "proto:pkg.Msg", ...), parsed, so that bytes a Serializer<T> wrote can be walked and
/// shown without T: what reads the state in a savepoint outside the job that wrote it.
class TypeSchema {
 public:
  enum class Kind {
    kFixed,      // arithmetic and enums: `size` bytes, little-endian
    kString,     // varint length, bytes
    kProto,      // a protobuf message: varint length, its bytes
    kVersioned,  // a VersionedSerializer's: varint version, varint length, bytes
    kList,       // varint count, elements (list<>, set<>)
    kMap,        // varint count, key and value of each entry
    kOptional,   // one byte 0/1, then the value if 1
    kTuple,      // elements one after another (pair<>, tuple<>)
    kStruct,     // fields one after another, in declaration order
    kTtl,        // the value, then its last access time (i64)
    kVoid,       // nothing (a state without namespace)
    kCustom,     // a serializer that names no format: cannot be walked
  };

  /// INVALID_ARGUMENT naming the part of `name` that is not a type name.
  static absl::StatusOr<TypeSchema> Parse(std::string_view name);

  Kind kind() const { return kind_; }
  /// kFixed: its bytes.
  size_t fixed_size() const { return size_; }
  /// The name it was parsed from (of this part).
  const std::string& name() const { return name_; }
  /// Elements: a list's, a map's key and value, a tuple's, a struct's fields, an optional's
  /// or a TTL's value.
  const std::vector<TypeSchema>& children() const { return children_; }
  /// A struct's field names, in order.
  const std::vector<std::string>& field_names() const { return field_names_; }
  /// False if some part is kCustom (then its bytes cannot be walked).
  bool walkable() const;

  /// Reads past one value; false if the bytes do not hold one.
  bool Skip(ByteReader& in) const;
  /// Reads one value and appends it in a readable, JSON-like form: numbers, "strings",
  /// [lists], {maps and structs}, null for an empty optional, "<proto N bytes>".
  bool Render(ByteReader& in, std::string* out) const;

 private:
  class Parser;
  Kind kind_ = Kind::kCustom;
  std::string name_;
  size_t size_ = 0;     // kFixed
  char numeric_ = 'i';  // kFixed: 'i', 'u', 'f', 'b' (bool), 'c' (char)
  std::vector<TypeSchema> children_;
  std::vector<std::string> field_names_;
};

}  // namespace sluice
