#include "storage/internal/sqlite.h"

#include "absl/strings/str_cat.h"

namespace dtabd::storage::internal {

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  const std::string msg = absl::StrCat(what, ": ", db != nullptr ? sqlite3_errmsg(db) : "",
                                       " (sqlite code ", rc, ")");
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::FailedPreconditionError(msg);
    case SQLITE_IOERR:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status Exec(sqlite3* db, absl::string_view sql) {
  const std::string s(sql);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, s.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) {
    return SqliteError(db, rc, "exec");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Statement>> Statement::Prepare(sqlite3* db, absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteError(db, rc, "prepare");
  }
  return std::make_unique<Statement>(db, stmt);
}

absl::StatusOr<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  return SqliteError(db_, rc, "step");
}

absl::Status Statement::Run() {
  absl::StatusOr<bool> r = Step();
  if (!r.ok()) {
    return r.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& path,
                                                             const Options& options) {
  sqlite3* db = nullptr;
  int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) {
    flags |= SQLITE_OPEN_CREATE;
  }
  flags |= SQLITE_OPEN_NOMUTEX;  // callers serialise use of a connection
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = SqliteError(db, rc, absl::StrCat("open '", path, "'"));
    sqlite3_close_v2(db);
    return s;
  }
  std::unique_ptr<Connection> c(new Connection(db));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  return c;
}

Connection::~Connection() {
  statements_.clear();
  sqlite3_close_v2(db_);
}

absl::StatusOr<Statement*> Connection::Cached(absl::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    absl::StatusOr<std::unique_ptr<Statement>> s = Statement::Prepare(db_, sql);
    if (!s.ok()) {
      return s.status();
    }
    it = statements_.emplace(std::string(sql), *std::move(s)).first;
  }
  return it->second.get();
}

}  // namespace dtabd::storage::internal
