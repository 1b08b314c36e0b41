#pragma once

#include <concepts>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

// SLUICE_SERIALIZABLE(Type, field1, field2, ...) declares the fields of a plain struct, in
// order, so that Sluice can serialize, print and compare it. Use it at namespace scope in the
// struct's own namespace (it is found by argument-dependent lookup). Up to 16 fields.

#define SLUICE_PP_NARG_(...) \
  SLUICE_PP_ARG_N_(__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define SLUICE_PP_ARG_N_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, N, \
                         ...)                                                                      \
  N
#define SLUICE_PP_CAT_(a, b) SLUICE_PP_CAT_I_(a, b)
#define SLUICE_PP_CAT_I_(a, b) a##b

#define SLUICE_PP_FIELDS_1_(v, f) v.f
#define SLUICE_PP_FIELDS_2_(v, f, ...) v.f, SLUICE_PP_FIELDS_1_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_3_(v, f, ...) v.f, SLUICE_PP_FIELDS_2_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_4_(v, f, ...) v.f, SLUICE_PP_FIELDS_3_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_5_(v, f, ...) v.f, SLUICE_PP_FIELDS_4_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_6_(v, f, ...) v.f, SLUICE_PP_FIELDS_5_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_7_(v, f, ...) v.f, SLUICE_PP_FIELDS_6_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_8_(v, f, ...) v.f, SLUICE_PP_FIELDS_7_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_9_(v, f, ...) v.f, SLUICE_PP_FIELDS_8_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_10_(v, f, ...) v.f, SLUICE_PP_FIELDS_9_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_11_(v, f, ...) v.f, SLUICE_PP_FIELDS_10_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_12_(v, f, ...) v.f, SLUICE_PP_FIELDS_11_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_13_(v, f, ...) v.f, SLUICE_PP_FIELDS_12_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_14_(v, f, ...) v.f, SLUICE_PP_FIELDS_13_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_15_(v, f, ...) v.f, SLUICE_PP_FIELDS_14_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_16_(v, f, ...) v.f, SLUICE_PP_FIELDS_15_(v, __VA_ARGS__)
#define SLUICE_PP_FIELDS_(v, ...) \
  SLUICE_PP_CAT_(SLUICE_PP_FIELDS_, SLUICE_PP_CAT_(SLUICE_PP_NARG_(__VA_ARGS__), _))(v, __VA_ARGS__)

#define SLUICE_SERIALIZABLE(Type, ...)                                                       \
  [[maybe_unused]] inline auto SluiceFields(Type& sluice_v) {                                \
    return std::tie(SLUICE_PP_FIELDS_(sluice_v, __VA_ARGS__));                               \
  }                                                                                          \
  [[maybe_unused]] inline auto SluiceFields(const Type& sluice_v) {                          \
    return std::tie(SLUICE_PP_FIELDS_(sluice_v, __VA_ARGS__));                               \
  }                                                                                          \
  [[maybe_unused]] inline const char* SluiceFieldNames(const Type*) { return #__VA_ARGS__; } \
  [[maybe_unused]] inline const char* SluiceTypeName(const Type*) { return #Type; }          \
  [[maybe_unused]] inline bool operator==(const Type& a, const Type& b) {                    \
    return SluiceFields(a) == SluiceFields(b);                                               \
  }                                                                                          \
  template <typename H>                                                                      \
  [[maybe_unused]] H AbslHashValue(H h, const Type& v) {                                     \
    return H::combine(std::move(h), SluiceFields(v));                                        \
  }

namespace sluice::internal {

/// The names in SluiceFieldNames' "a, b, c".
inline std::vector<std::string> SplitFieldNames(std::string_view names) {
  std::vector<std::string> out;
  while (!names.empty()) {
    const size_t comma = names.find(',');
    std::string_view name = names.substr(0, comma);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    out.emplace_back(name);
    if (comma == std::string_view::npos) break;
    names.remove_prefix(comma + 1);
  }
  return out;
}

template <typename T>
concept HasSluiceFields = requires(const T& t, T& m) {
  SluiceFields(t);
  SluiceFields(m);
};

}  // namespace sluice::internal
