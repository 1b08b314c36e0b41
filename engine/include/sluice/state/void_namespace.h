#pragma once

#include "sluice/serialization/serializer.h"

namespace sluice {

/// The namespace of plain keyed state. Windows (and other scoped state) use their own
/// namespace type, so one key can hold state per window.
struct VoidNamespace {
  bool operator==(const VoidNamespace&) const { return true; }
  template <typename H>
  friend H AbslHashValue(H h, const VoidNamespace&) {
    return h;
  }
};

template <>
struct Serializer<VoidNamespace> {
  static void Write(const VoidNamespace&, ByteWriter&) {}
  static bool Read(ByteReader&, VoidNamespace*) { return true; }
  static std::string TypeName() { return "void"; }
};

}  // namespace sluice
