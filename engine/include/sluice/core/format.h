#pragma once

#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/serialization/struct_macro.h"

namespace sluice {

/// Text form of a record, used by the print and text-file sinks: strings as they are,
/// numbers in decimal, (a,b) for pairs and tuples, [a,b] for vectors, {f=v,...} for
/// SLUICE_SERIALIZABLE structs, `operator<<` for anything else that has one.
template <typename T>
std::string ToString(const T& value);

namespace internal {

template <typename T>
concept Streamable = requires(std::ostream& os, const T& v) {
  os << v;
};

template <typename T>
void AppendText(std::string& out, const T& v);

template <typename Tuple>
void AppendTupleText(std::string& out, const Tuple& t) {
  out.push_back('(');
  bool first = true;
  std::apply(
      [&](const auto&... e) {
        ((out.append(first ? "" : ","), first = false, AppendText(out, e)), ...);
      },
      t);
  out.push_back(')');
}

template <typename T>
void AppendText(std::string& out, const T& v) {
  if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
    out.append(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    out.append(v ? "true" : "false");
  } else if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, char>) {
    out.append(std::to_string(v));
  } else if constexpr (requires { std::tuple_size<T>::value; } && !HasSluiceFields<T>) {
    AppendTupleText(out, v);
  } else if constexpr (requires {
                         typename T::value_type;
                         v.begin();
                         v.end();
                       }) {
    out.push_back('[');
    bool first = true;
    for (const auto& e : v) {
      if (!first) out.push_back(',');
      first = false;
      AppendText(out, e);
    }
    out.push_back(']');
  } else if constexpr (requires {
                         v.has_value();
                         *v;
                       }) {
    if (v.has_value()) {
      AppendText(out, *v);
    } else {
      out.append("null");
    }
  } else if constexpr (HasSluiceFields<T>) {
    static const std::vector<std::string> names =
        SplitFieldNames(SluiceFieldNames(static_cast<const T*>(nullptr)));
    out.push_back('{');
    size_t i = 0;
    std::apply(
        [&](const auto&... f) {
          (([&] {
             if (i > 0) out.push_back(',');
             out.append(names[i++]).push_back('=');
             AppendText(out, f);
           }()),
           ...);
        },
        SluiceFields(v));
    out.push_back('}');
  } else if constexpr (Streamable<T>) {
    std::ostringstream os;
    os << v;
    out.append(os.str());
  } else {
    static_assert(Streamable<T>,
                  "sluice: cannot print this type: give it operator<< or declare it with "
                  "SLUICE_SERIALIZABLE");
  }
}

}  // namespace internal

template <typename T>
std::string ToString(const T& value) {
  std::string out;
  internal::AppendText(out, value);
  return out;
}

}  // namespace sluice
