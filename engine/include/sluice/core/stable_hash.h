#pragma once

#include <concepts>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/serialization/struct_macro.h"

namespace sluice {

// Key groups must be the same in every process and across restarts (a savepoint maps key
// groups to state), so keys are hashed with this stable function, never with absl::Hash or
// std::hash (which may be seeded per process or differ between builds).

namespace internal {

/// The splitmix64 finalizer: a bijective 64-bit mix.
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

inline uint64_t HashCombine(uint64_t seed, uint64_t h) {
  return Mix64(seed ^ (h + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2)));
}

/// MurmurHash64A over bytes.
inline uint64_t HashBytes(const void* data, size_t len, uint64_t seed = 0x5bd1e9955bd1e995ULL) {
  const uint64_t m = 0xc6a4a7935bd1e995ULL;
  const int r = 47;
  uint64_t h = seed ^ (len * m);
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* end = p + (len / 8) * 8;
  for (; p != end; p += 8) {
    uint64_t k;
    std::memcpy(&k, p, 8);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  switch (len & 7) {
    case 7:
      h ^= uint64_t(p[6]) << 48;
      [[fallthrough]];
    case 6:
      h ^= uint64_t(p[5]) << 40;
      [[fallthrough]];
    case 5:
      h ^= uint64_t(p[4]) << 32;
      [[fallthrough]];
    case 4:
      h ^= uint64_t(p[3]) << 24;
      [[fallthrough]];
    case 3:
      h ^= uint64_t(p[2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= uint64_t(p[1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= uint64_t(p[0]);
      h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

}  // namespace internal

/// Stable hash of a key. Specialize `StableHasher<T>` (or give the type a member
/// `uint64_t StableHash() const`) for key types other than the built-in ones.
template <typename T, typename Enable = void>
struct StableHasher;

template <typename T>
concept StablyHashable = requires(const T& t) {
  { StableHasher<T>{}(t) } -> std::convertible_to<uint64_t>;
};

template <typename T>
uint64_t StableHash(const T& value) {
  static_assert(StablyHashable<T>,
                "sluice: this key type has no stable hash. Use an arithmetic type, std::string, "
                "a pair/tuple/vector of those, or give the type `uint64_t StableHash() const`.");
  return StableHasher<T>{}(value);
}

template <typename T>
struct StableHasher<T, std::enable_if_t<std::is_integral_v<T> || std::is_enum_v<T>>> {
  uint64_t operator()(T v) const { return internal::Mix64(static_cast<uint64_t>(v)); }
};

template <typename T>
struct StableHasher<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  uint64_t operator()(T v) const {
    if (v == 0) v = 0;  // +0.0 and -0.0 are the same key
    double d = static_cast<double>(v);
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof(bits));
    return internal::Mix64(bits);
  }
};

template <>
struct StableHasher<std::string> {
  uint64_t operator()(const std::string& s) const {
    return internal::HashBytes(s.data(), s.size());
  }
};

template <>
struct StableHasher<std::string_view> {
  uint64_t operator()(std::string_view s) const { return internal::HashBytes(s.data(), s.size()); }
};

template <typename A, typename B>
struct StableHasher<std::pair<A, B>> {
  uint64_t operator()(const std::pair<A, B>& p) const {
    return internal::HashCombine(StableHash(p.first), StableHash(p.second));
  }
};

template <typename... Ts>
struct StableHasher<std::tuple<Ts...>> {
  uint64_t operator()(const std::tuple<Ts...>& t) const {
    uint64_t h = 0x2545f4914f6cdd1dULL;
    std::apply([&h](const auto&... e) { ((h = internal::HashCombine(h, StableHash(e))), ...); }, t);
    return h;
  }
};

template <typename T>
struct StableHasher<std::vector<T>> {
  uint64_t operator()(const std::vector<T>& v) const {
    uint64_t h = internal::Mix64(v.size());
    for (const auto& e : v) h = internal::HashCombine(h, StableHash(e));
    return h;
  }
};

template <typename T>
struct StableHasher<std::optional<T>> {
  uint64_t operator()(const std::optional<T>& v) const {
    return v ? internal::HashCombine(1, StableHash(*v)) : 0;
  }
};

template <typename T>
requires requires(const T& t) {
  { t.StableHash() } -> std::convertible_to<uint64_t>;
}
struct StableHasher<T, void> {
  uint64_t operator()(const T& t) const { return t.StableHash(); }
};

template <typename T>
requires internal::HasSluiceFields<T>
struct StableHasher<T, void> {
  uint64_t operator()(const T& t) const {
    uint64_t h = 0x2545f4914f6cdd1dULL;
    std::apply([&h](const auto&... f) { ((h = internal::HashCombine(h, StableHash(f))), ...); },
               SluiceFields(t));
    return h;
  }
};

}  // namespace sluice
