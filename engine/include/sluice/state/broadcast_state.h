#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <typeindex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/descriptors.h"

namespace sluice {

/// Broadcast state as the data side of a broadcast process function sees it: every subtask
/// holds the same map (the broadcast side wrote it from the same records), which it may read
/// but not change, so the copies cannot drift apart.
template <typename K, typename V>
class ReadOnlyBroadcastState {
 public:
  virtual ~ReadOnlyBroadcastState() = default;
  /// The value under `key`, or null.
  const V* Get(const K& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second;
  }
  bool Contains(const K& key) const { return entries_.contains(key); }
  /// All entries, in key order.
  const std::map<K, V>& Entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

 protected:
  std::map<K, V> entries_;
};

/// Broadcast state as the broadcast side sees it: it may change it.
template <typename K, typename V>
class BroadcastState final : public ReadOnlyBroadcastState<K, V> {
 public:
  void Put(K key, V value) { this->entries_.insert_or_assign(std::move(key), std::move(value)); }
  void Remove(const K& key) { this->entries_.erase(key); }
  void Clear() { this->entries_.clear(); }

  // For snapshots (internal::BroadcastStateStore).
  std::string Serialize() const { return SerializeToString(this->entries_); }
  bool Restore(const std::string& bytes) {
    auto entries = DeserializeFromString<std::map<K, V>>(bytes, "broadcast state");
    if (!entries.ok()) return false;
    this->entries_ = std::move(*entries);
    return true;
  }
};

namespace internal {

/// The broadcast states of one operator instance by name: the ones declared with
/// DataStream::Broadcast(descriptors...), created typed on first access, snapshotted as
/// (type tag, serialized map) per name and restored from a snapshot of any old subtask.
class BroadcastStateStore {
 public:
  explicit BroadcastStateStore(std::set<std::string> declared = {})
      : declared_(std::move(declared)) {}

  template <typename K, typename V>
  BroadcastState<K, V>& Get(const MapStateDescriptor<K, V>& descriptor) {
    const std::string& name = descriptor.name();
    auto it = states_.find(name);
    if (it == states_.end()) {
      if (!declared_.contains(name)) {
        throw std::logic_error(absl::StrCat("broadcast state '", name,
                                            "' was not declared: pass its descriptor to "
                                            "Broadcast()"));
      }
      auto state = std::make_shared<BroadcastState<K, V>>();
      Entry entry{std::type_index(typeid(BroadcastState<K, V>)), TypeTag<K, V>(), state,
                  [state] { return state->Serialize(); }};
      if (auto pending = pending_.find(name); pending != pending_.end()) {
        if (pending->second.first != entry.tag) {
          throw std::runtime_error(absl::StrCat("broadcast state '", name, "' was stored as ",
                                                pending->second.first, " and is now read as ",
                                                entry.tag, ": its types cannot change"));
        }
        if (!state->Restore(pending->second.second)) {
          throw std::runtime_error(absl::StrCat("broadcast state '", name, "' is corrupt"));
        }
        pending_.erase(pending);
      }
      it = states_.emplace(name, std::move(entry)).first;
    }
    if (it->second.type != std::type_index(typeid(BroadcastState<K, V>))) {
      throw std::logic_error(
          absl::StrCat("broadcast state '", name, "' is used with two different types"));
    }
    return *static_cast<BroadcastState<K, V>*>(it->second.state.get());
  }

  /// Every state as `tag \0 bytes` by name, including restored ones not accessed yet.
  std::map<std::string, std::string> Snapshot() const {
    std::map<std::string, std::string> out;
    for (const auto& [name, pending] : pending_) out[name] = Join(pending.first, pending.second);
    for (const auto& [name, entry] : states_) out[name] = Join(entry.tag, entry.serialize());
    return out;
  }
  /// Takes the states of a snapshot (before any access).
  void Restore(const std::map<std::string, std::string>& snapshot) {
    for (const auto& [name, joined] : snapshot) {
      const size_t split = joined.find('\0');
      if (split == std::string::npos) {
        throw std::runtime_error(absl::StrCat("broadcast state '", name, "' is corrupt"));
      }
      pending_[name] = {joined.substr(0, split), joined.substr(split + 1)};
    }
  }

 private:
  template <typename K, typename V>
  static std::string TypeTag() {
    return absl::StrCat("key=", SerializedTypeName<K>(), ";value=", SerializedTypeName<V>());
  }
  static std::string Join(const std::string& tag, const std::string& bytes) {
    std::string out = tag;
    out.push_back('\0');
    out += bytes;
    return out;
  }
  struct Entry {
    std::type_index type;
    std::string tag;
    std::shared_ptr<void> state;
    std::function<std::string()> serialize;
  };
  std::set<std::string> declared_;
  std::map<std::string, Entry> states_;
  std::map<std::string, std::pair<std::string, std::string>> pending_;  // name -> tag, bytes
};

}  // namespace internal
}  // namespace sluice
