// Thin RAII helpers over the SQLite C API, private to storage/.
//
// Thread-safety: a Connection and its Statements must be used by one thread
// at a time (callers hold a mutex).
#ifndef DTABD_STORAGE_INTERNAL_SQLITE_H_
#define DTABD_STORAGE_INTERNAL_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dtabd::storage::internal {

// Maps a SQLite result code to a Status: BUSY/LOCKED -> Unavailable,
// FULL -> ResourceExhausted, CORRUPT/NOTADB -> DataLoss, CANTOPEN and
// PERM/READONLY -> FailedPrecondition, others -> Internal. The message names
// `what` and SQLite's own message.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what);

// Runs one or more statements that return no rows.
absl::Status Exec(sqlite3* db, absl::string_view sql);

// A prepared statement. Bind indexes start at 1; Column indexes at 0.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  static absl::StatusOr<std::unique_ptr<Statement>> Prepare(sqlite3* db, absl::string_view sql);

  void BindInt64(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  // The bytes are copied (SQLITE_TRANSIENT).
  void BindText(int i, absl::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }

  // Returns true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion, expecting no row.
  absl::Status Run();
  // Resets for re-use and clears bindings.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  int64_t ColumnInt64(int i) const { return sqlite3_column_int64(stmt_, i); }
  std::string ColumnText(int i) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p == nullptr ? std::string() : std::string(p, sqlite3_column_bytes(stmt_, i));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// An open database connection with a cache of prepared statements.
class Connection {
 public:
  struct Options {
    bool read_only = false;
    bool create = true;
    bool synchronous_full = true;
    int busy_timeout_ms = 5000;
  };

  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& path,
                                                          const Options& options);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  sqlite3* db() const { return db_; }

  // The cached statement for `sql`, reset and ready to bind. The pointer is
  // owned by the connection and valid until it closes.
  absl::StatusOr<Statement*> Cached(absl::string_view sql);

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  absl::flat_hash_map<std::string, std::unique_ptr<Statement>> statements_;
};

// Resets a cached statement when the scope ends.
class ScopedReset {
 public:
  explicit ScopedReset(Statement* s) : s_(s) {}
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;
  ~ScopedReset() { s_->Reset(); }

 private:
  Statement* s_;
};

}  // namespace dtabd::storage::internal

#endif  // DTABD_STORAGE_INTERNAL_SQLITE_H_
