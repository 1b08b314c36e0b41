#pragma once

#include <concepts>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "sluice/serialization/bytes.h"
#include "sluice/serialization/struct_macro.h"

namespace sluice {

/// How a type crosses a process boundary or goes into a snapshot. Specialize
/// `Serializer<T>` with
///   static void Write(const T&, ByteWriter&);
///   static bool Read(ByteReader&, T*);
/// or use SLUICE_SERIALIZABLE(Type, field...) for a plain struct. Built in: arithmetic types
/// and enums, std::string, pairs, tuples, vectors, optionals, and protobuf messages.
/// A specialization may also name its format with `static std::string TypeName()` (see
/// SerializedTypeName).
template <typename T, typename Enable = void>
struct Serializer;

/// The name of T's serialized format, the same with every compiler: "i64", "string",
/// "list<string>", "pair<string,i32>", "Point{x:f64,y:f64}", "proto:pkg.Message". Snapshots
/// record it with each state, so that a restore refuses state written with other types.
/// Serializers without a TypeName() are named "custom".
template <typename T>
std::string SerializedTypeName();

template <typename T>
concept Serializable = requires(const T& value, T* out, ByteWriter& w, ByteReader& r) {
  Serializer<T>::Write(value, w);
  { Serializer<T>::Read(r, out) } -> std::same_as<bool>;
};

/// Fails compilation with a message that says what to do, for a record or state type that
/// has no serializer.
template <typename T>
constexpr void RequireSerializable() {
  static_assert(Serializable<T>,
                "sluice: no serializer for this type. Records and state must be serializable: "
                "use arithmetic types, std::string, pairs/tuples/vectors/optionals of them, a "
                "protobuf message, a struct declared with SLUICE_SERIALIZABLE(Type, fields...), "
                "or specialize sluice::Serializer<T>.");
}

namespace internal {
/// "bool", "char", "i8".."i64", "u8".."u64", "f32", "f64"; an enum by its underlying type.
template <typename T>
std::string ArithmeticTypeName() {
  if constexpr (std::is_enum_v<T>) {
    return "enum:" + ArithmeticTypeName<std::underlying_type_t<T>>();
  } else if constexpr (std::is_same_v<T, bool>) {
    return "bool";
  } else if constexpr (std::is_same_v<T, char>) {
    return "char";
  } else if constexpr (std::is_floating_point_v<T>) {
    return absl::StrCat("f", sizeof(T) * 8);
  } else {
    return absl::StrCat(std::is_signed_v<T> ? "i" : "u", sizeof(T) * 8);
  }
}
}  // namespace internal

template <typename T>
requires(std::is_arithmetic_v<T> || std::is_enum_v<T>) struct Serializer<T, void> {
  static void Write(const T& v, ByteWriter& w) { w.WriteRaw(v); }
  static bool Read(ByteReader& r, T* out) { return r.ReadRaw(out); }
  static std::string TypeName() { return internal::ArithmeticTypeName<T>(); }
};

template <>
struct Serializer<std::string> {
  static void Write(const std::string& v, ByteWriter& w) { w.WriteBytes(v); }
  static bool Read(ByteReader& r, std::string* out) {
    std::string_view bytes;
    if (!r.ReadBytes(&bytes)) return false;
    out->assign(bytes.data(), bytes.size());
    return true;
  }
  static std::string TypeName() { return "string"; }
};

template <typename A, typename B>
requires(Serializable<A>&& Serializable<B>) struct Serializer<std::pair<A, B>> {
  static void Write(const std::pair<A, B>& v, ByteWriter& w) {
    Serializer<A>::Write(v.first, w);
    Serializer<B>::Write(v.second, w);
  }
  static bool Read(ByteReader& r, std::pair<A, B>* out) {
    return Serializer<A>::Read(r, &out->first) && Serializer<B>::Read(r, &out->second);
  }
  static std::string TypeName() {
    return absl::StrCat("pair<", SerializedTypeName<A>(), ",", SerializedTypeName<B>(), ">");
  }
};

template <typename... Ts>
requires(Serializable<Ts>&&...) struct Serializer<std::tuple<Ts...>> {
  static void Write(const std::tuple<Ts...>& v, ByteWriter& w) {
    std::apply(
        [&w](const auto&... e) { (Serializer<std::decay_t<decltype(e)>>::Write(e, w), ...); }, v);
  }
  static bool Read(ByteReader& r, std::tuple<Ts...>* out) {
    return std::apply(
        [&r](auto&... e) { return (Serializer<std::decay_t<decltype(e)>>::Read(r, &e) && ...); },
        *out);
  }
  static std::string TypeName() {
    std::string name = "tuple<";
    ((name += SerializedTypeName<Ts>() + ","), ...);
    if (name.back() == ',') name.pop_back();
    return name + ">";
  }
};

template <typename T>
requires Serializable<T>
struct Serializer<std::vector<T>> {
  static void Write(const std::vector<T>& v, ByteWriter& w) {
    w.WriteVarint(v.size());
    for (const auto& e : v) Serializer<T>::Write(e, w);
  }
  static bool Read(ByteReader& r, std::vector<T>* out) {
    uint64_t n;
    if (!r.ReadVarint(&n) || !r.CheckCount(n, 1)) return false;
    out->clear();
    out->reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      T e{};
      if (!Serializer<T>::Read(r, &e)) return false;
      out->push_back(std::move(e));
    }
    return true;
  }
  static std::string TypeName() { return "list<" + SerializedTypeName<T>() + ">"; }
};

template <typename T>
requires Serializable<T>
struct Serializer<std::optional<T>> {
  static void Write(const std::optional<T>& v, ByteWriter& w) {
    w.WriteRaw<uint8_t>(v.has_value() ? 1 : 0);
    if (v) Serializer<T>::Write(*v, w);
  }
  static bool Read(ByteReader& r, std::optional<T>* out) {
    uint8_t present;
    if (!r.ReadRaw(&present) || present > 1) return false;
    if (!present) {
      out->reset();
      return true;
    }
    T value{};
    if (!Serializer<T>::Read(r, &value)) return false;
    *out = std::move(value);
    return true;
  }
  static std::string TypeName() { return "optional<" + SerializedTypeName<T>() + ">"; }
};

namespace internal {
/// Maps: the entry count, then key and value of each entry (in the map's order).
template <typename Map, typename MK, typename MV>
struct MapSerializer {
  static void Write(const Map& m, ByteWriter& w) {
    w.WriteVarint(m.size());
    for (const auto& [k, v] : m) {
      Serializer<MK>::Write(k, w);
      Serializer<MV>::Write(v, w);
    }
  }
  static bool Read(ByteReader& r, Map* out) {
    uint64_t n;
    if (!r.ReadVarint(&n) || !r.CheckCount(n, 1)) return false;
    out->clear();
    for (uint64_t i = 0; i < n; ++i) {
      MK k{};
      MV v{};
      if (!Serializer<MK>::Read(r, &k) || !Serializer<MV>::Read(r, &v)) return false;
      out->insert_or_assign(std::move(k), std::move(v));
    }
    return true;
  }
  static std::string TypeName() {
    return absl::StrCat("map<", SerializedTypeName<MK>(), ",", SerializedTypeName<MV>(), ">");
  }
};

/// Sets: the element count, then each element (in the set's order).
template <typename Set, typename T>
struct SetSerializer {
  static void Write(const Set& s, ByteWriter& w) {
    w.WriteVarint(s.size());
    for (const T& v : s) Serializer<T>::Write(v, w);
  }
  static bool Read(ByteReader& r, Set* out) {
    uint64_t n;
    if (!r.ReadVarint(&n) || !r.CheckCount(n, 1)) return false;
    out->clear();
    for (uint64_t i = 0; i < n; ++i) {
      T v{};
      if (!Serializer<T>::Read(r, &v)) return false;
      out->insert(std::move(v));
    }
    return true;
  }
  static std::string TypeName() { return absl::StrCat("set<", SerializedTypeName<T>(), ">"); }
};
}  // namespace internal

// clang-format off
template <typename T, typename H, typename E, typename A>
  requires(Serializable<T>)
struct Serializer<absl::flat_hash_set<T, H, E, A>>
    : internal::SetSerializer<absl::flat_hash_set<T, H, E, A>, T> {};

template <typename T, typename C, typename A>
  requires(Serializable<T>)
struct Serializer<std::set<T, C, A>> : internal::SetSerializer<std::set<T, C, A>, T> {};

template <typename UK, typename UV, typename H, typename E, typename A>
  requires(Serializable<UK> && Serializable<UV>)
struct Serializer<absl::flat_hash_map<UK, UV, H, E, A>>
    : internal::MapSerializer<absl::flat_hash_map<UK, UV, H, E, A>, UK, UV> {};

template <typename MK, typename MV, typename C, typename A>
  requires(Serializable<MK> && Serializable<MV>)
struct Serializer<std::map<MK, MV, C, A>>
    : internal::MapSerializer<std::map<MK, MV, C, A>, MK, MV> {};
// clang-format on

/// Structs declared with SLUICE_SERIALIZABLE: fields in declaration order.
template <typename T>
requires internal::HasSluiceFields<T>
struct Serializer<T, void> {
  static void Write(const T& v, ByteWriter& w) {
    std::apply(
        [&w](const auto&... f) { (Serializer<std::decay_t<decltype(f)>>::Write(f, w), ...); },
        SluiceFields(v));
  }
  static bool Read(ByteReader& r, T* out) {
    return std::apply(
        [&r](auto&... f) { return (Serializer<std::decay_t<decltype(f)>>::Read(r, &f) && ...); },
        SluiceFields(*out));
  }
  /// The struct's name and its fields' names and formats: "Point{x:f64,y:f64}".
  static std::string TypeName() {
    using Fields = decltype(SluiceFields(std::declval<const T&>()));
    const std::vector<std::string> names =
        internal::SplitFieldNames(SluiceFieldNames(static_cast<const T*>(nullptr)));
    std::string out = std::string(SluiceTypeName(static_cast<const T*>(nullptr))) + "{";
    [&]<size_t... I>(std::index_sequence<I...>) {
      ((out += absl::StrCat(I == 0 ? "" : ",", names[I], ":",
                            SerializedTypeName<std::decay_t<std::tuple_element_t<I, Fields>>>())),
       ...);
    }
    (std::make_index_sequence<std::tuple_size_v<Fields>>());
    return out + "}";
  }
};

/// Protobuf messages, recognized by their API so that this header needs no protobuf include.
template <typename T>
concept ProtobufMessage = requires(const T& m, T* out, std::string* s, const void* data, int n) {
  { m.SerializeToString(s) } -> std::same_as<bool>;
  { out->ParseFromArray(data, n) } -> std::same_as<bool>;
  {m.GetTypeName()};
};

template <typename T>
requires(ProtobufMessage<T> && !internal::HasSluiceFields<T>) struct Serializer<T, void> {
  static void Write(const T& v, ByteWriter& w) {
    std::string bytes;
    v.SerializeToString(&bytes);
    w.WriteBytes(bytes);
  }
  static bool Read(ByteReader& r, T* out) {
    std::string_view bytes;
    if (!r.ReadBytes(&bytes)) return false;
    return out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  }
  static std::string TypeName() { return absl::StrCat("proto:", std::string(T().GetTypeName())); }
};

/// A serializer whose format changes from one version of a job to the next: derive
/// `Serializer<T>` from it. Each value is written with the current version and its bytes'
/// length first, and read by the version it was written with, so state an older build wrote
/// restores on either backend, and tools walk it without knowing T:
///
///   template <> struct sluice::Serializer<Geo> : sluice::VersionedSerializer<Geo> {
///     static constexpr int kVersion = 2;           // bump when WriteCurrent changes
///     static constexpr const char* kName = "Geo";  // names the type in snapshots
///     static void WriteCurrent(const Geo& g, ByteWriter& w);
///     static bool ReadVersion(int version, ByteReader& r, Geo* out);  // 1..kVersion
///   };
template <typename T, typename Impl = Serializer<T>>
struct VersionedSerializer {
  static void Write(const T& v, ByteWriter& w) {
    std::string payload;
    ByteWriter pw(&payload);
    Impl::WriteCurrent(v, pw);
    w.WriteVarint(Impl::kVersion);
    w.WriteBytes(payload);
  }
  static bool Read(ByteReader& r, T* out) {
    uint64_t version = 0;
    std::string_view payload;
    if (!r.ReadVarint(&version) || version < 1 || version > static_cast<uint64_t>(Impl::kVersion) ||
        !r.ReadBytes(&payload)) {
      return false;
    }
    ByteReader pr(payload);
    return Impl::ReadVersion(static_cast<int>(version), pr, out) && pr.AtEnd();
  }
  /// "versioned:Geo": the version is in each value.
  static std::string TypeName() { return absl::StrCat("versioned:", Impl::kName); }
};

namespace internal {
template <typename T>
concept NamesItsType = requires {
  { Serializer<T>::TypeName() } -> std::convertible_to<std::string>;
};
}  // namespace internal

template <typename T>
std::string SerializedTypeName() {
  if constexpr (internal::NamesItsType<T>) {
    return Serializer<T>::TypeName();
  } else {
    return "custom";
  }
}

/// Serializes one value into a fresh string.
template <typename T>
std::string SerializeToString(const T& value) {
  RequireSerializable<T>();
  std::string out;
  ByteWriter w(&out);
  Serializer<T>::Write(value, w);
  return out;
}

/// Parses one value that fills `bytes` exactly; names the type in the error.
template <typename T>
absl::StatusOr<T> DeserializeFromString(std::string_view bytes,
                                        std::string_view type_name = "value") {
  RequireSerializable<T>();
  ByteReader r(bytes);
  T value{};
  if (!Serializer<T>::Read(r, &value)) {
    return absl::DataLossError(absl::StrCat("cannot deserialize ", std::string(type_name),
                                            ": corrupt or truncated at byte ", r.position(), " of ",
                                            bytes.size()));
  }
  if (!r.AtEnd()) {
    return absl::DataLossError(absl::StrCat("cannot deserialize ", std::string(type_name), ": ",
                                            bytes.size() - r.position(), " trailing bytes"));
  }
  return value;
}

}  // namespace sluice
