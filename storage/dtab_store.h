// DtabStore: versioned storage of named dtabs ("namespaces") with full
// history, compare-and-set updates, tombstoned deletes, rollback, audit
// fields and a change feed ordered by a store-wide revision
// (DESIGN.md "Versioning model").
//
// Versioning: every write to a namespace creates a new immutable version
// row. Versions count 1, 2, 3... per namespace and are never reused, also
// across delete + re-create and restarts. `revision` is a store-wide counter
// that orders all commits (like etcd's); streams report it.
//
// Calls are blocking (SQLite I/O): callers on gRPC reactions or Asio
// handlers must hop to a storage thread first.
//
// Thread-safety: implementations are thread-safe.
#ifndef DTABD_STORAGE_DTAB_STORE_H_
#define DTABD_STORAGE_DTAB_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace dtabd::storage {

// One stored version of a namespace.
struct VersionedDtab {
  std::string ns;          // namespace name
  int64_t version = 0;     // per-namespace, from 1
  int64_t revision = 0;    // store-wide commit order, from 1
  std::string dtab;        // the dtab text as written (validated); "" for a tombstone
  std::string author;      // who wrote it (token identity)
  std::string comment;     // why
  absl::Time created_at;   // commit time
  bool deleted = false;    // a tombstone written by Delete

  friend bool operator==(const VersionedDtab&, const VersionedDtab&) = default;
};

// A namespace and its current (non-deleted) version.
struct NamespaceSummary {
  std::string ns;
  int64_t version = 0;
  int64_t revision = 0;
};

// Audit fields of a write.
struct WriteMeta {
  std::string author;
  std::string comment;
};

// One page of a namespace's history, newest first.
struct HistoryPage {
  std::vector<VersionedDtab> versions;
  // Pass as `before_version` to get the next (older) page; 0 when done.
  int64_t next_before_version = 0;
};

// Limits checked before commit (InvalidArgument when exceeded).
struct StoreLimits {
  size_t max_dtab_bytes = 1 << 20;     // dtab text size
  size_t max_dentries = 100'000;       // dentries per dtab
  size_t max_comment_bytes = 4096;     // comment size
  size_t max_author_bytes = 256;       // author size
};

// Returns OK if `ns` matches [A-Za-z0-9_-]{1,128}, else InvalidArgument
// naming it.
absl::Status ValidateNamespace(absl::string_view ns);

// Aborted errors from a stale compare-and-set carry the namespace's current
// version in this payload (decimal text) as well as in their message.
inline constexpr char kCurrentVersionPayload[] = "dtabd.v1/current_version";

// The current version carried by an Aborted status, if any.
std::optional<int64_t> CurrentVersionFromStatus(const absl::Status& status);

class DtabStore {
 public:
  virtual ~DtabStore() = default;

  // Live namespaces (tombstoned ones excluded), sorted by name.
  // Unavailable: database busy or broken.
  virtual absl::StatusOr<std::vector<NamespaceSummary>> List() = 0;

  // The latest version of `ns`, or the given `version` (which may be a
  // tombstone, with deleted set). NotFound: no such namespace, the latest
  // version is a tombstone, or no such version. InvalidArgument: bad name.
  virtual absl::StatusOr<VersionedDtab> Get(absl::string_view ns,
                                            std::optional<int64_t> version = std::nullopt) = 0;

  // Creates `ns` with `dtab` and returns the new version (1, or the next
  // version after a tombstone). AlreadyExists: `ns` is live.
  // InvalidArgument: bad name, dtab that does not parse (the parser's
  // message), over a limit. ResourceExhausted: disk or database full.
  virtual absl::StatusOr<VersionedDtab> Create(absl::string_view ns, absl::string_view dtab,
                                               const WriteMeta& meta) = 0;

  // Compare-and-set: replaces `ns` if its latest version is
  // `expected_version`. NotFound: no live namespace. Aborted: another writer
  // won; the message says the current version (re-read and retry).
  // Other errors as Create.
  virtual absl::StatusOr<VersionedDtab> Update(absl::string_view ns, absl::string_view dtab,
                                               int64_t expected_version,
                                               const WriteMeta& meta) = 0;

  // Unconditional upsert (namerd's put): creates or replaces.
  virtual absl::StatusOr<VersionedDtab> Put(absl::string_view ns, absl::string_view dtab,
                                            const WriteMeta& meta) = 0;

  // Writes a tombstone version and returns it. With `expected_version`, a
  // compare-and-set delete (Aborted when stale). NotFound: no live
  // namespace.
  virtual absl::StatusOr<VersionedDtab> Delete(absl::string_view ns, const WriteMeta& meta,
                                               std::optional<int64_t> expected_version) = 0;

  // Writes a new version whose text is version `to_version`'s and returns
  // it; also restores a deleted namespace. With `expected_version`, a
  // compare-and-set on the latest version. NotFound: no such version.
  // FailedPrecondition: `to_version` is a tombstone.
  virtual absl::StatusOr<VersionedDtab> Rollback(absl::string_view ns, int64_t to_version,
                                                 const WriteMeta& meta,
                                                 std::optional<int64_t> expected_version) = 0;

  // Versions of `ns` (tombstones included), newest first, at most
  // `page_size` of them older than `before_version` (0: from the newest).
  // NotFound: the namespace never existed.
  virtual absl::StatusOr<HistoryPage> History(absl::string_view ns, int page_size,
                                              int64_t before_version) = 0;

  // Every version committed after `after_revision`, in revision order, at
  // most `limit`. The streaming hub's change feed.
  virtual absl::StatusOr<std::vector<VersionedDtab>> ChangesSince(int64_t after_revision,
                                                                  int limit) = 0;

  // The latest version of every namespace that ever existed, tombstones
  // included, sorted by name (what a server loads at startup).
  virtual absl::StatusOr<std::vector<VersionedDtab>> LatestOfAll() = 0;

  // The revision of the latest commit (0 for an empty store).
  virtual absl::StatusOr<int64_t> CurrentRevision() = 0;
};

}  // namespace dtabd::storage

#endif  // DTABD_STORAGE_DTAB_STORE_H_
