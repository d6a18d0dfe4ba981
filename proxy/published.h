// Published<T>: an immutable snapshot that one thread replaces and many
// threads read on the hot path (the routing table of a router, the address
// sets of the fs namer). DESIGN.md "The proxy's hot path": a new version is
// visible to the next request, and reading takes no lock.
//
// Publish() swaps the snapshot under a mutex and bumps a generation counter.
// Get() keeps, per reading thread, the snapshot it last saw and its
// generation; it takes the mutex only when the generation moved (once per
// thread per publish). Steady state: one thread-local hash lookup and one
// atomic load.
//
// Thread-safety: all methods are thread-safe. The reference Get() returns
// stays valid until the same thread calls Get() on the same object again
// (older snapshots stay alive while any thread still caches them).
#ifndef DTABD_PROXY_PUBLISHED_H_
#define DTABD_PROXY_PUBLISHED_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace dtabd::proxy {

template <typename T>
class Published {
 public:
  // REQUIRES: initial != nullptr.
  explicit Published(std::shared_ptr<const T> initial)
      : id_(NextId()), value_(std::move(initial)) {}
  Published(const Published&) = delete;
  Published& operator=(const Published&) = delete;

  // Makes `value` (non-null) the snapshot every later Get() sees.
  void Publish(std::shared_ptr<const T> value) ABSL_LOCKS_EXCLUDED(mu_) {
    std::shared_ptr<const T> old;
    {
      absl::MutexLock lock(&mu_);
      old = std::exchange(value_, std::move(value));
      generation_.fetch_add(1, std::memory_order_release);
    }
  }

  // The current snapshot, shared (for control paths and long holds).
  std::shared_ptr<const T> Load() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return value_;
  }

  // The current snapshot, without taking a lock in the steady state. See
  // the file comment for the reference's lifetime.
  const T& Get() const ABSL_LOCKS_EXCLUDED(mu_) {
    thread_local absl::flat_hash_map<uint64_t, Slot> slots;
    Slot& slot = slots[id_];
    const uint64_t generation = generation_.load(std::memory_order_acquire);
    if (slot.value == nullptr || slot.generation != generation) {
      absl::MutexLock lock(&mu_);
      slot.value = value_;
      slot.generation = generation_.load(std::memory_order_relaxed);
    }
    return *slot.value;
  }

  // Bumped by every Publish().
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  struct Slot {
    uint64_t generation = 0;
    std::shared_ptr<const T> value;
  };
  // Ids are never reused, so a slot can never be taken for another object.
  static uint64_t NextId() {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
  }

  const uint64_t id_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const T> value_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{0};
};

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_PUBLISHED_H_
