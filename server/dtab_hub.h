// DtabHub: the latest version of every namespace, in memory, and the
// subscribers that watch them. Writes publish here after they commit; reads
// of the latest version and watch streams are served from here without
// touching SQLite.
//
// Thread-safety: thread-safe. Subscriber callbacks run under the hub's lock,
// in revision order per namespace; they must not block or call the hub.
#ifndef DTABD_SERVER_DTAB_HUB_H_
#define DTABD_SERVER_DTAB_HUB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "storage/dtab_store.h"

namespace dtabd::server {

class DtabHub {
 public:
  // An immutable snapshot of one version, shared by every reader.
  using Snapshot = std::shared_ptr<const storage::VersionedDtab>;

  class Subscriber {
   public:
    virtual ~Subscriber() = default;
    // A newer version of the watched namespace (deleted set for a delete).
    virtual void OnDtab(Snapshot dtab) = 0;
    // The hub is shutting down: finish the stream.
    virtual void OnShutdown() = 0;
  };

  DtabHub() = default;
  DtabHub(const DtabHub&) = delete;
  DtabHub& operator=(const DtabHub&) = delete;

  // Records `v` as the latest of its namespace and tells its subscribers,
  // unless a version with a higher revision is already known (concurrent
  // writers may publish out of order).
  void Publish(storage::VersionedDtab v) ABSL_LOCKS_EXCLUDED(mu_);

  // The latest known version (possibly a tombstone), or null.
  Snapshot Latest(const std::string& ns) const ABSL_LOCKS_EXCLUDED(mu_);

  // Subscribes `s` to `ns` and returns the latest version at that instant
  // (null if none), so that no change is missed between the two. Returns
  // null and does not subscribe after Shutdown (check `shut_down`).
  // REQUIRES: `s` stays valid until Unsubscribe returns.
  Snapshot Subscribe(const std::string& ns, Subscriber* s, bool* shut_down)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Unsubscribe(const std::string& ns, Subscriber* s) ABSL_LOCKS_EXCLUDED(mu_);

  // Subscribes `s` to every namespace and returns the latest version of
  // each (tombstones included), atomically with the subscription. Same
  // contract as Subscribe otherwise.
  std::vector<Snapshot> SubscribeAll(Subscriber* s, bool* shut_down) ABSL_LOCKS_EXCLUDED(mu_);
  void UnsubscribeAll(Subscriber* s) ABSL_LOCKS_EXCLUDED(mu_);

  // The highest revision published so far.
  int64_t revision() const ABSL_LOCKS_EXCLUDED(mu_);

  // Calls OnShutdown on every subscriber and refuses new ones.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Subscribers of single namespaces (watch streams); SubscribeAll ones
  // are not counted.
  size_t subscriber_count() const ABSL_LOCKS_EXCLUDED(mu_);

  // Names of the namespaces whose latest version is not a deletion, sorted.
  std::vector<std::string> LiveNamespaces() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    Snapshot latest;
    std::vector<Subscriber*> subscribers;
  };

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::vector<Subscriber*> all_subscribers_ ABSL_GUARDED_BY(mu_);  // every namespace
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace dtabd::server

#endif  // DTABD_SERVER_DTAB_HUB_H_
