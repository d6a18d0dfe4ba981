// Schema migrations: numbered SQL files from migrations/ embedded into the
// binary, applied in order, each in one transaction, and recorded in the
// database's schema_migrations table.
//
// Thread-safety: Migrate needs exclusive use of the connection.
#ifndef DTABD_STORAGE_MIGRATIONS_H_
#define DTABD_STORAGE_MIGRATIONS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;

namespace dtabd::storage {

struct Migration {
  int version;       // the file's number: 1 for 0001_initial.sql
  const char* name;  // the file name
  const char* sql;   // its statements
};

// The migrations compiled into this binary, ascending by version.
const std::vector<Migration>& EmbeddedMigrations();

// Applies, in order, every migration in `migrations` with a version above
// the database's and at most `target_version` (all of them when
// target_version < 0). Each runs in its own transaction with its record in
// schema_migrations. Returns the resulting schema version.
// FailedPrecondition: the database records a migration this binary does not
// know (written by a newer dtabd). Unavailable: database busy.
// Internal: a migration failed (nothing of it is applied).
absl::StatusOr<int> Migrate(sqlite3* db, const std::vector<Migration>& migrations,
                            int target_version = -1);

// The highest migration version recorded in the database (0 if none).
absl::StatusOr<int> SchemaVersion(sqlite3* db);

}  // namespace dtabd::storage

#endif  // DTABD_STORAGE_MIGRATIONS_H_
