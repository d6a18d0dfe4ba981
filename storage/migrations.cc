#include "storage/migrations.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "storage/internal/sqlite.h"

namespace dtabd::storage {
namespace {

using internal::Exec;
using internal::SqliteError;
using internal::Statement;

constexpr char kCreateTable[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_us INTEGER NOT NULL)";

absl::Status ApplyOne(sqlite3* db, const Migration& m) {
  DTABD_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  absl::Status s = Exec(db, m.sql);
  if (s.ok()) {
    absl::StatusOr<std::unique_ptr<Statement>> insert = Statement::Prepare(
        db,
        "INSERT INTO schema_migrations (version, name, applied_at_us) VALUES (?, ?, "
        "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))");
    if (insert.ok()) {
      (*insert)->BindInt64(1, m.version);
      (*insert)->BindText(2, m.name);
      s = (*insert)->Run();
    } else {
      s = insert.status();
    }
  }
  if (!s.ok()) {
    (void)Exec(db, "ROLLBACK");
    if (s.code() == absl::StatusCode::kUnavailable ||
        s.code() == absl::StatusCode::kResourceExhausted) {
      return s;
    }
    return absl::InternalError(absl::StrCat("migration ", m.name, " failed: ", s.message()));
  }
  return Exec(db, "COMMIT");
}

}  // namespace

absl::StatusOr<int> SchemaVersion(sqlite3* db) {
  DTABD_RETURN_IF_ERROR(Exec(db, kCreateTable));
  DTABD_ASSIGN_OR_RETURN(std::unique_ptr<Statement> q,
                         Statement::Prepare(db, "SELECT COALESCE(MAX(version), 0) FROM "
                                                "schema_migrations"));
  DTABD_ASSIGN_OR_RETURN(bool row, q->Step());
  return row ? static_cast<int>(q->ColumnInt64(0)) : 0;
}

absl::StatusOr<int> Migrate(sqlite3* db, const std::vector<Migration>& migrations,
                            int target_version) {
  DTABD_ASSIGN_OR_RETURN(int current, SchemaVersion(db));
  const int known = migrations.empty() ? 0 : migrations.back().version;
  if (current > known) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema version ", current, " is newer than this binary's (", known,
        "): it was written by a newer dtabd; upgrade dtabd or restore a backup"));
  }
  for (const Migration& m : migrations) {
    if (m.version <= current) {
      continue;
    }
    if (target_version >= 0 && m.version > target_version) {
      break;
    }
    DTABD_RETURN_IF_ERROR(ApplyOne(db, m));
    current = m.version;
  }
  return current;
}

}  // namespace dtabd::storage
