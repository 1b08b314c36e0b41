#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "sluice/core/mutex.h"

namespace sluice::internal {

/// A chained hash map whose snapshots are cheap, after Flink's CopyOnWriteStateMap.
///
/// Snapshot() (task thread) copies only the bucket array and bumps a version; the returned
/// view can then be read on another thread while the task keeps modifying the map. An entry
/// that existed when a still-running snapshot was taken is never modified in place: a write
/// to it copies it (and the chain entries before it, which point to it) and the old entry
/// stays, unchanged, for the snapshot. Copies are made only of entries actually written
/// during a snapshot; replaced entries are freed, a few per write, once no running snapshot
/// can read them.
///
/// All methods except those of Snapshot are for the owning (task) thread only.
template <typename Key, typename V>
class CopyOnWriteStateMap {
  struct Node {
    Key key;
    V value;
    size_t hash;
    Node* next;
    uint32_t version;  // the map's version when this node was made
  };

 public:
  /// A frozen view of the map at the time it was taken; readable from any one thread while
  /// the owner goes on. Releases its version when destroyed (it must not outlive the map).
  class Snapshot {
   public:
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;
    ~Snapshot() { owner_->Release(version_); }
    size_t size() const { return size_; }
    template <typename F>
    void ForEach(F&& f) const {
      for (const Node* head : buckets_) {
        for (const Node* n = head; n != nullptr; n = n->next) f(n->key, n->value);
      }
    }

   private:
    friend class CopyOnWriteStateMap;
    Snapshot(CopyOnWriteStateMap* owner, std::vector<Node*> buckets, size_t size, uint32_t version)
        : owner_(owner), buckets_(std::move(buckets)), size_(size), version_(version) {}
    CopyOnWriteStateMap* owner_;
    std::vector<Node*> buckets_;
    size_t size_;
    uint32_t version_;
  };

  CopyOnWriteStateMap() = default;
  CopyOnWriteStateMap(const CopyOnWriteStateMap&) = delete;
  CopyOnWriteStateMap& operator=(const CopyOnWriteStateMap&) = delete;
  ~CopyOnWriteStateMap() {
    for (Node* head : buckets_) FreeChain(head);
    for (const Retired& r : retired_) delete r.node;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  /// The value for reading only (null if absent).
  const V* Find(const Key& key) const {
    if (buckets_.empty()) return nullptr;
    const size_t h = Hash(key);
    for (Node* n = buckets_[h & mask_]; n != nullptr; n = n->next) {
      if (n->hash == h && n->key == key) return &n->value;
    }
    return nullptr;
  }
  /// The value for modifying in place (null if absent).
  V* FindForWrite(const Key& key) {
    if (buckets_.empty()) return nullptr;
    if (!retired_.empty()) [[unlikely]] {
      Reclaim();
    }
    const size_t h = Hash(key);
    const size_t b = h & mask_;
    for (Node* n = buckets_[b]; n != nullptr; n = n->next) {
      if (n->hash == h && n->key == key) return &Writable(b, n)->value;
    }
    return nullptr;
  }
  /// The value for modifying, default-constructed if absent.
  V& GetOrCreate(const Key& key) {
    if (V* v = FindForWrite(key)) return *v;
    return Insert(key, V{})->value;
  }
  void Put(const Key& key, V value) {
    if (V* v = FindForWrite(key)) {
      *v = std::move(value);
    } else {
      Insert(key, std::move(value));
    }
  }
  bool Remove(const Key& key) {
    if (buckets_.empty()) return false;
    const size_t h = Hash(key);
    const size_t b = h & mask_;
    Node* prev = nullptr;
    for (Node* n = buckets_[b]; n != nullptr; prev = n, n = n->next) {
      if (n->hash != h || !(n->key == key)) continue;
      if (prev == nullptr) {
        buckets_[b] = n->next;
      } else {
        Writable(b, prev)->next = n->next;
      }
      Retire(n, RequiredVersion());
      --size_;
      return true;
    }
    return false;
  }
  /// Removes the entries for which `pred(key, value)` holds; returns how many.
  template <typename Pred>
  size_t EraseIf(Pred&& pred) {
    std::vector<Key> doomed;
    ForEach([&](const Key& k, const V& v) {
      if (pred(k, v)) doomed.push_back(k);
    });
    for (const Key& k : doomed) Remove(k);
    return doomed.size();
  }
  /// The live entries.
  template <typename F>
  void ForEach(F&& f) const {
    for (const Node* head : buckets_) {
      for (const Node* n = head; n != nullptr; n = n->next) f(n->key, n->value);
    }
  }

  /// Freezes the current entries (see the class comment). Cost: one copy of the bucket
  /// array.
  std::unique_ptr<Snapshot> TakeSnapshot() {
    const uint32_t version = ++version_;
    {
      MutexLock lock(&snapshots_mu_);
      active_.insert(version);
      oldest_active_.store(*active_.begin(), std::memory_order_release);
    }
    required_version_.store(version, std::memory_order_release);
    return std::unique_ptr<Snapshot>(new Snapshot(this, buckets_, size_, version));
  }

 private:
  static size_t Hash(const Key& key) { return absl::Hash<Key>{}(key); }

  /// The snapshot versions older entries must be kept for: entries made before it are
  /// shared with a running snapshot.
  uint32_t RequiredVersion() const { return required_version_.load(std::memory_order_acquire); }

  /// Returns a node that may be modified in place: `n` itself, or, if a running snapshot
  /// shares it, a copy put in its place (with copies of the shared chain nodes before it,
  /// whose `next` must change).
  Node* Writable(size_t bucket, Node* n) {
    const uint32_t required = RequiredVersion();
    if (n->version >= required) return n;
    // Copy the chain from its head up to n: the snapshot keeps the originals.
    for (Node** link = &buckets_[bucket];; link = &(*link)->next) {
      Node* cur = *link;
      const bool target = cur == n;
      if (cur->version < required) {
        Node* copy = new Node{cur->key, cur->value, cur->hash, cur->next, version_};
        *link = copy;
        Retire(cur, required);
      }
      if (target) return *link;
    }
  }

  Node* Insert(const Key& key, V value) {
    Reclaim();
    if (buckets_.empty()) Resize(16);
    if (size_ + 1 > buckets_.size() - buckets_.size() / 4) MaybeGrow();
    const size_t h = Hash(key);
    Node*& head = buckets_[h & mask_];
    head = new Node{key, std::move(value), h, head, version_};
    ++size_;
    return head;
  }

  /// Doubles the bucket array. While a snapshot shares nodes, their `next` cannot be
  /// relinked, so growth waits (chains get longer meanwhile) unless the map got much fuller.
  void MaybeGrow() {
    const bool shared = RequiredVersion() > 0;
    if (shared && size_ < buckets_.size() * 4) return;
    Resize(buckets_.size() * 2);
  }

  void Resize(size_t n) {
    std::vector<Node*> old = std::move(buckets_);
    buckets_.assign(n, nullptr);
    mask_ = n - 1;
    const uint32_t required = RequiredVersion();
    for (Node* head : old) {
      for (Node* cur = head; cur != nullptr;) {
        Node* next = cur->next;
        Node* moved = cur;
        if (cur->version < required) {  // shared: leave it to the snapshot, move a copy
          moved = new Node{cur->key, cur->value, cur->hash, nullptr, version_};
          Retire(cur, required);
        }
        Node*& dst = buckets_[moved->hash & mask_];
        moved->next = dst;
        dst = moved;
        cur = next;
      }
    }
  }

  /// Frees a node taken out of the map, or keeps it for the snapshots that may still read
  /// it: those running now, all of version <= `required` (which may be stale, too high: then
  /// the node is kept a little longer).
  void Retire(Node* n, uint32_t required) {
    if (n->version < required) {
      retired_.push_back({required, n});
    } else {
      delete n;
    }
  }

  /// Frees a few replaced nodes that no running snapshot can read any more (task thread; a
  /// few per write, so no single call pays for a whole snapshot's worth).
  void Reclaim() {
    if (retired_.empty()) return;
    const uint32_t oldest = oldest_active_.load(std::memory_order_acquire);
    for (int i = 0; i < 16 && !retired_.empty(); ++i) {
      const Retired& r = retired_.front();
      if (oldest != 0 && oldest <= r.required) return;
      delete r.node;
      retired_.pop_front();
    }
  }

  void Release(uint32_t version) {
    MutexLock lock(&snapshots_mu_);
    active_.erase(version);
    oldest_active_.store(active_.empty() ? 0 : *active_.begin(), std::memory_order_release);
    required_version_.store(active_.empty() ? 0 : *active_.rbegin(), std::memory_order_release);
  }

  static void FreeChain(Node* n) {
    while (n != nullptr) {
      Node* next = n->next;
      delete n;
      n = next;
    }
  }

  std::vector<Node*> buckets_;
  size_t mask_ = 0;
  size_t size_ = 0;
  uint32_t version_ = 0;
  struct Retired {
    uint32_t required;  // the newest snapshot running when it was replaced
    Node* node;
  };
  std::deque<Retired> retired_;                // replaced while shared, oldest first
  std::atomic<uint32_t> required_version_{0};  // newest running snapshot, 0 if none
  std::atomic<uint32_t> oldest_active_{0};     // oldest running snapshot, 0 if none
  Mutex snapshots_mu_;
  std::set<uint32_t> active_ SLUICE_GUARDED_BY(snapshots_mu_);
};

}  // namespace sluice::internal
