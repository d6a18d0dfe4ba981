// SqliteDtabStore: the DtabStore on one SQLite file (WAL, synchronous=FULL
// by default), with one writer connection and a pool of reader connections.
//
// Durability: with synchronous=FULL an acknowledged write survives kill -9
// and power loss; NORMAL (opt-in) may lose the last commits on power loss
// but never corrupts the database.
//
// Thread-safety: thread-safe. Writes are serialised on the writer
// connection; reads run concurrently on the reader pool. Every call blocks
// on SQLite I/O.
#ifndef DTABD_STORAGE_SQLITE_DTAB_STORE_H_
#define DTABD_STORAGE_SQLITE_DTAB_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/dtab_store.h"

namespace dtabd::storage {

namespace internal {
class Connection;
}  // namespace internal

class SqliteDtabStore final : public DtabStore {
 public:
  struct Options {
    // A file path (created if missing, with its WAL beside it) or ":memory:".
    std::string path;
    // synchronous=FULL (true, default) or NORMAL.
    bool synchronous_full = true;
    // How long a call waits for another process's lock before Unavailable.
    absl::Duration busy_timeout = absl::Seconds(5);
    // Reader connections (ignored for ":memory:", which reads on the writer).
    int reader_connections = 4;
    // Caps the database size in pages (PRAGMA max_page_count); writes past it
    // fail with ResourceExhausted. Unset: SQLite's default.
    std::optional<int64_t> max_page_count;
    StoreLimits limits;
    // The time written as created_at. Default: absl::Now.
    std::function<absl::Time()> clock;
  };

  // Opens (creating if needed) and migrates the database.
  // FailedPrecondition: the schema is newer than this binary, or the file
  // cannot be opened. DataLoss: not a database or corrupt. Unavailable: busy.
  static absl::StatusOr<std::unique_ptr<SqliteDtabStore>> Open(const Options& options);

  SqliteDtabStore(const SqliteDtabStore&) = delete;
  SqliteDtabStore& operator=(const SqliteDtabStore&) = delete;
  ~SqliteDtabStore() override;

  absl::StatusOr<std::vector<NamespaceSummary>> List() override;
  absl::StatusOr<VersionedDtab> Get(absl::string_view ns,
                                    std::optional<int64_t> version) override;
  absl::StatusOr<VersionedDtab> Create(absl::string_view ns, absl::string_view dtab,
                                       const WriteMeta& meta) override;
  absl::StatusOr<VersionedDtab> Update(absl::string_view ns, absl::string_view dtab,
                                       int64_t expected_version, const WriteMeta& meta) override;
  absl::StatusOr<VersionedDtab> Put(absl::string_view ns, absl::string_view dtab,
                                    const WriteMeta& meta) override;
  absl::StatusOr<VersionedDtab> Delete(absl::string_view ns, const WriteMeta& meta,
                                       std::optional<int64_t> expected_version) override;
  absl::StatusOr<VersionedDtab> Rollback(absl::string_view ns, int64_t to_version,
                                         const WriteMeta& meta,
                                         std::optional<int64_t> expected_version) override;
  absl::StatusOr<HistoryPage> History(absl::string_view ns, int page_size,
                                      int64_t before_version) override;
  absl::StatusOr<std::vector<VersionedDtab>> ChangesSince(int64_t after_revision,
                                                          int limit) override;
  absl::StatusOr<std::vector<VersionedDtab>> LatestOfAll() override;
  absl::StatusOr<int64_t> CurrentRevision() override;

  // Runs PRAGMA integrity_check on the writer and returns its first line
  // ("ok" for a healthy database).
  absl::StatusOr<std::string> IntegrityCheck();

 private:
  // What a write does once the namespace's current state is known.
  enum class WriteKind { kCreate, kUpdate, kPut, kDelete, kRollback };
  struct WriteRequest;
  struct Reader;

  explicit SqliteDtabStore(Options options);

  absl::Status ValidateWrite(absl::string_view ns, absl::string_view dtab,
                             const WriteMeta& meta) const;
  absl::StatusOr<VersionedDtab> Write(const WriteRequest& request) ABSL_LOCKS_EXCLUDED(write_mu_);
  absl::StatusOr<VersionedDtab> WriteLocked(const WriteRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  // Runs `fn` with a reader connection (the writer for ":memory:").
  template <typename T>
  absl::StatusOr<T> WithReader(const std::function<absl::StatusOr<T>(internal::Connection&)>& fn);

  // Immutable after construction.
  const Options options_;

  absl::Mutex write_mu_;
  std::unique_ptr<internal::Connection> writer_ ABSL_GUARDED_BY(write_mu_);

  // Reader pool: each reader has its own mutex; the vector is immutable
  // after Open.
  std::vector<std::unique_ptr<Reader>> readers_;
};

}  // namespace dtabd::storage

#endif  // DTABD_STORAGE_SQLITE_DTAB_STORE_H_
