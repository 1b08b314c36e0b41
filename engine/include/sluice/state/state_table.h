#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/void_namespace.h"

namespace sluice {

namespace internal {

/// The key of a state entry: just K for plain keyed state, (K, N) when namespaced.
template <typename K, typename N>
using StateKey = std::conditional_t<std::is_same_v<N, VoidNamespace>, K, std::pair<K, N>>;

template <typename K, typename N>
StateKey<K, N> MakeStateKey(const K& key, const N& ns) {
  if constexpr (std::is_same_v<N, VoidNamespace>) {
    return key;
  } else {
    return {key, ns};
  }
}

/// Adds what one entry takes serialized to `*total` (`scratch` is reused between calls).
template <typename Key, typename V>
void AddSerializedSize(const Key& key, const V& value, std::string& scratch, size_t* total) {
  scratch.clear();
  ByteWriter w(&scratch);
  Serializer<Key>::Write(key, w);
  Serializer<V>::Write(value, w);
  *total += scratch.size();
}

}  // namespace internal

/// A frozen view of one state table, taken on the task thread and serialized on another.
class StateTableSnapshot {
 public:
  virtual ~StateTableSnapshot() = default;
  /// Appends the entries of one key group as they were when the snapshot was taken.
  virtual void WriteKeyGroup(int key_group, ByteWriter& out) const = 0;
  /// What the state holds in its store once the snapshot's entries reached it, cheaply
  /// (RocksDB's estimates); none where the live table knows its entries and only
  /// serializing them tells their bytes (the heap).
  struct Size {
    size_t entries = 0;
    size_t bytes = 0;
  };
  virtual std::optional<Size> StoredSize() const { return std::nullopt; }
};

/// Untyped view of a state table, for size accounting and snapshots.
class StateTableBase {
 public:
  explicit StateTableBase(std::string name) : name_(std::move(name)) {}
  virtual ~StateTableBase() = default;
  const std::string& name() const { return name_; }
  virtual size_t EntryCount() const = 0;
  /// The entries, cheaply (for metrics at every checkpoint): exact on the heap, RocksDB's
  /// estimate of the keys it holds (what the write-back cache holds unflushed not counted).
  virtual size_t ApproximateEntryCount() const { return EntryCount(); }
  /// What the entries take serialized (keys, namespaces and values): the size a snapshot of
  /// this state would have. Walks every entry.
  virtual size_t SerializedBytes() const = 0;
  /// Names the stored types (StateTypeTag), so a restore can refuse state written with
  /// other types.
  virtual std::string TypeTag() const = 0;
  /// The tag Sluice 0.1.0 wrote for these types (a typeid name, compiler-specific):
  /// snapshots taken by it are still restored.
  virtual std::string LegacyTypeTag() const = 0;
  /// Whether `tag`, read from a snapshot, names the types this table stores.
  bool StoresTypesTagged(std::string_view tag) const {
    return tag == TypeTag() || tag == LegacyTypeTag();
  }
  /// Freezes the current entries (cheap: see CopyOnWriteStateMap).
  virtual std::unique_ptr<StateTableSnapshot> TakeSnapshot() = 0;
  /// Adds the entries of one key group written by WriteKeyGroup; false if corrupt.
  virtual bool ReadKeyGroup(int key_group, ByteReader& in) = 0;

 private:
  std::string name_;
};

/// Names the stored types of a state from their serializers (SerializedTypeName), the same
/// for every backend and compiler, so a restore can refuse state written with other types
/// (and either backend restores the other's snapshots).
template <typename K, typename N, typename V>
const std::string& StateTypeTag() {
  static const std::string tag =
      absl::StrCat("key=", SerializedTypeName<K>(), ";namespace=", SerializedTypeName<N>(),
                   ";value=", SerializedTypeName<V>());
  return tag;
}

}  // namespace sluice
