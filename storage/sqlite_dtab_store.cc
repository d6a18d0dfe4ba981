#include "storage/sqlite_dtab_store.h"

#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "dtab/parser.h"
#include "storage/internal/sqlite.h"
#include "storage/migrations.h"

namespace dtabd::storage {

using internal::Connection;
using internal::Exec;
using internal::ScopedReset;
using internal::Statement;

namespace {

constexpr char kColumns[] =
    "namespace, version, revision, dtab, author, comment, created_at_us, deleted";

// Statement texts that include kColumns, built once rather than on every
// call (Connection::Cached looks statements up by their text).
struct ColumnsSql {
  std::string get_version =
      absl::StrCat("SELECT ", kColumns, " FROM versions WHERE namespace = ? AND version = ?");
  std::string get_latest = absl::StrCat("SELECT ", kColumns,
                                        " FROM versions WHERE namespace = ?1 AND version ="
                                        " (SELECT latest_version FROM namespaces WHERE name = ?1)");
  std::string insert_version =
      absl::StrCat("INSERT INTO versions (", kColumns, ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  std::string history = absl::StrCat("SELECT ", kColumns,
                                     " FROM versions WHERE namespace = ? AND version < ?"
                                     " ORDER BY version DESC LIMIT ?");
  std::string changes_since = absl::StrCat(
      "SELECT ", kColumns, " FROM versions WHERE revision > ? ORDER BY revision LIMIT ?");
  std::string latest_of_all = absl::StrCat(
      "SELECT ", kColumns, " FROM versions WHERE (namespace, version) IN"
      " (SELECT name, latest_version FROM namespaces) ORDER BY namespace");
};

const ColumnsSql& Sql() {
  static const ColumnsSql* const sql = new ColumnsSql;
  return *sql;
}

// Runs a statement that returns no rows (BEGIN IMMEDIATE, COMMIT, ROLLBACK)
// as Exec does, but from the connection's statement cache, so that a write
// does not parse them again. Errors read as Exec's.
absl::Status ExecCached(Connection& c, absl::string_view sql) {
  DTABD_ASSIGN_OR_RETURN(Statement * s, c.Cached(sql));
  ScopedReset reset(s);
  if (!s->Run().ok()) {
    // Built before `reset` runs, while the connection still holds the error.
    return internal::SqliteError(c.db(), sqlite3_extended_errcode(c.db()), "exec");
  }
  return absl::OkStatus();
}

VersionedDtab ReadRow(const Statement& s) {
  VersionedDtab v;
  v.ns = s.ColumnText(0);
  v.version = s.ColumnInt64(1);
  v.revision = s.ColumnInt64(2);
  v.dtab = s.ColumnText(3);
  v.author = s.ColumnText(4);
  v.comment = s.ColumnText(5);
  v.created_at = absl::FromUnixMicros(s.ColumnInt64(6));
  v.deleted = s.ColumnInt64(7) != 0;
  return v;
}

// Every remaining row of `q`.
absl::StatusOr<std::vector<VersionedDtab>> ReadAll(Statement* q) {
  std::vector<VersionedDtab> out;
  while (true) {
    DTABD_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) {
      return out;
    }
    out.push_back(ReadRow(*q));
  }
}

absl::Status StaleVersion(absl::string_view ns, int64_t expected, int64_t current) {
  absl::Status s = absl::AbortedError(absl::StrCat(
      "dtab '", ns, "': expected version ", expected, " but the current version is ", current,
      "; re-read and retry"));
  s.SetPayload(kCurrentVersionPayload, absl::Cord(absl::StrCat(current)));
  return s;
}

absl::Status NoSuchNamespace(absl::string_view ns) {
  return absl::NotFoundError(absl::StrCat("dtab '", ns, "' does not exist"));
}

}  // namespace

struct SqliteDtabStore::Reader {
  absl::Mutex mu;
  std::unique_ptr<Connection> conn ABSL_GUARDED_BY(mu);
};

struct SqliteDtabStore::WriteRequest {
  WriteKind kind;
  absl::string_view ns;
  absl::string_view dtab;  // the new text (unused for delete and rollback)
  const WriteMeta& meta;
  std::optional<int64_t> expected_version;
  int64_t to_version = 0;  // rollback only
};

SqliteDtabStore::SqliteDtabStore(Options options) : options_(std::move(options)) {}

SqliteDtabStore::~SqliteDtabStore() {
  absl::MutexLock lock(&write_mu_);
  if (writer_ != nullptr) {
    // Fold the WAL back into the database so a clean shutdown leaves one file.
    (void)Exec(writer_->db(), "PRAGMA wal_checkpoint(TRUNCATE)");
  }
}

absl::StatusOr<std::unique_ptr<SqliteDtabStore>> SqliteDtabStore::Open(const Options& options) {
  std::unique_ptr<SqliteDtabStore> store(new SqliteDtabStore(options));
  Connection::Options copts;
  copts.synchronous_full = options.synchronous_full;
  copts.busy_timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout));
  DTABD_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer, Connection::Open(options.path, copts));
  sqlite3* db = writer->db();
  const bool memory = options.path == ":memory:";
  DTABD_RETURN_IF_ERROR(Exec(db, memory ? "PRAGMA journal_mode=MEMORY" : "PRAGMA journal_mode=WAL"));
  DTABD_RETURN_IF_ERROR(
      Exec(db, options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  DTABD_RETURN_IF_ERROR(Exec(db, "PRAGMA foreign_keys=ON"));
  if (options.max_page_count) {
    DTABD_RETURN_IF_ERROR(Exec(db, absl::StrCat("PRAGMA max_page_count=", *options.max_page_count)));
  }
  DTABD_ASSIGN_OR_RETURN(int schema, Migrate(db, EmbeddedMigrations()));
  (void)schema;
  {
    absl::MutexLock lock(&store->write_mu_);
    store->writer_ = std::move(writer);
  }
  if (!memory) {
    Connection::Options ropts = copts;
    ropts.read_only = true;
    for (int i = 0; i < options.reader_connections; ++i) {
      DTABD_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, Connection::Open(options.path, ropts));
      auto reader = std::make_unique<Reader>();
      absl::MutexLock lock(&reader->mu);
      reader->conn = std::move(c);
      store->readers_.push_back(std::move(reader));
    }
  }
  return store;
}

template <typename T>
absl::StatusOr<T> SqliteDtabStore::WithReader(
    const std::function<absl::StatusOr<T>(Connection&)>& fn) {
  if (readers_.empty()) {
    absl::MutexLock lock(&write_mu_);
    return fn(*writer_);
  }
  // Take the first idle reader; if all are busy, wait for one chosen by
  // thread identity so waiters spread over the pool.
  for (auto& r : readers_) {
    if (r->mu.TryLock()) {
      absl::StatusOr<T> out = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return fn(*r->conn); }();
      r->mu.Unlock();
      return out;
    }
  }
  Reader& r = *readers_[std::hash<std::thread::id>()(std::this_thread::get_id()) % readers_.size()];
  absl::MutexLock lock(&r.mu);
  return fn(*r.conn);
}

absl::StatusOr<std::vector<NamespaceSummary>> SqliteDtabStore::List() {
  return WithReader<std::vector<NamespaceSummary>>(
      [](Connection& c) -> absl::StatusOr<std::vector<NamespaceSummary>> {
        DTABD_ASSIGN_OR_RETURN(
            Statement * q,
            c.Cached("SELECT n.name, n.latest_version, v.revision FROM namespaces n JOIN versions v"
                     " ON v.namespace = n.name AND v.version = n.latest_version"
                     " WHERE n.deleted = 0 ORDER BY n.name"));
        ScopedReset reset(q);
        std::vector<NamespaceSummary> out;
        while (true) {
          DTABD_ASSIGN_OR_RETURN(bool row, q->Step());
          if (!row) {
            break;
          }
          out.push_back({q->ColumnText(0), q->ColumnInt64(1), q->ColumnInt64(2)});
        }
        return out;
      });
}

absl::StatusOr<VersionedDtab> SqliteDtabStore::Get(absl::string_view ns,
                                                   std::optional<int64_t> version) {
  DTABD_RETURN_IF_ERROR(ValidateNamespace(ns));
  return WithReader<VersionedDtab>([&](Connection& c) -> absl::StatusOr<VersionedDtab> {
    Statement* q = nullptr;
    if (version) {
      DTABD_ASSIGN_OR_RETURN(q, c.Cached(Sql().get_version));
      q->BindText(1, ns);
      q->BindInt64(2, *version);
    } else {
      DTABD_ASSIGN_OR_RETURN(q, c.Cached(Sql().get_latest));
      q->BindText(1, ns);
    }
    ScopedReset reset(q);
    DTABD_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) {
      if (version) {
        return absl::NotFoundError(
            absl::StrCat("dtab '", ns, "' has no version ", *version));
      }
      return NoSuchNamespace(ns);
    }
    VersionedDtab v = ReadRow(*q);
    if (!version && v.deleted) {
      return absl::NotFoundError(absl::StrCat("dtab '", ns, "' was deleted at version ",
                                              v.version));
    }
    return v;
  });
}

absl::Status SqliteDtabStore::ValidateWrite(absl::string_view ns, absl::string_view dtab,
                                            const WriteMeta& meta) const {
  DTABD_RETURN_IF_ERROR(ValidateNamespace(ns));
  const StoreLimits& l = options_.limits;
  if (dtab.size() > l.max_dtab_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("dtab '", ns, "' is ", dtab.size(),
                                                   " bytes; the limit is ", l.max_dtab_bytes));
  }
  if (meta.comment.size() > l.max_comment_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("comment is ", meta.comment.size(),
                                                   " bytes; the limit is ", l.max_comment_bytes));
  }
  if (meta.author.size() > l.max_author_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("author is ", meta.author.size(),
                                                   " bytes; the limit is ", l.max_author_bytes));
  }
  absl::StatusOr<dtab::Dtab> parsed = dtab::ParseDtab(dtab);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dtab '", ns, "': ", parsed.status().message()));
  }
  if (parsed->size() > l.max_dentries) {
    return absl::InvalidArgumentError(absl::StrCat("dtab '", ns, "' has ", parsed->size(),
                                                   " dentries; the limit is ", l.max_dentries));
  }
  return absl::OkStatus();
}

absl::StatusOr<VersionedDtab> SqliteDtabStore::Create(absl::string_view ns, absl::string_view dtab,
                                                      const WriteMeta& meta) {
  DTABD_RETURN_IF_ERROR(ValidateWrite(ns, dtab, meta));
  return Write({WriteKind::kCreate, ns, dtab, meta, std::nullopt});
}

absl::StatusOr<VersionedDtab> SqliteDtabStore::Update(absl::string_view ns, absl::string_view dtab,
                                                      int64_t expected_version,
                                                      const WriteMeta& meta) {
  DTABD_RETURN_IF_ERROR(ValidateWrite(ns, dtab, meta));
  return Write({WriteKind::kUpdate, ns, dtab, meta, expected_version});
}

absl::StatusOr<VersionedDtab> SqliteDtabStore::Put(absl::string_view ns, absl::string_view dtab,
                                                   const WriteMeta& meta) {
  DTABD_RETURN_IF_ERROR(ValidateWrite(ns, dtab, meta));
  return Write({WriteKind::kPut, ns, dtab, meta, std::nullopt});
}

absl::StatusOr<VersionedDtab> SqliteDtabStore::Delete(absl::string_view ns, const WriteMeta& meta,
                                                      std::optional<int64_t> expected_version) {
  DTABD_RETURN_IF_ERROR(ValidateWrite(ns, "", meta));
  return Write({WriteKind::kDelete, ns, "", meta, expected_version});
}

absl::StatusOr<VersionedDtab> SqliteDtabStore::Rollback(absl::string_view ns, int64_t to_version,
                                                        const WriteMeta& meta,
                                                        std::optional<int64_t> expected_version) {
  DTABD_RETURN_IF_ERROR(ValidateWrite(ns, "", meta));
  return Write({WriteKind::kRollback, ns, "", meta, expected_version, to_version});
}

absl::StatusOr<VersionedDtab> SqliteDtabStore::Write(const WriteRequest& request) {
  // A full database surfaces from SQLite as "step: database or disk is
  // full"; say which write failed and what to do.
  auto annotate = [&request](absl::Status s) {
    if (s.code() != absl::StatusCode::kResourceExhausted) {
      return s;
    }
    return absl::ResourceExhaustedError(
        absl::StrCat("dtab '", request.ns, "' not written: the database or disk is full (",
                     s.message(), "); free space or raise max_page_count"));
  };
  absl::MutexLock lock(&write_mu_);
  Connection& c = *writer_;
  if (absl::Status s = ExecCached(c, "BEGIN IMMEDIATE"); !s.ok()) {
    return annotate(s);
  }
  absl::StatusOr<VersionedDtab> result = WriteLocked(request);
  if (!result.ok()) {
    (void)ExecCached(c, "ROLLBACK");
    return annotate(result.status());
  }
  if (absl::Status s = ExecCached(c, "COMMIT"); !s.ok()) {
    (void)ExecCached(c, "ROLLBACK");
    return annotate(s);
  }
  return result;
}

absl::StatusOr<VersionedDtab> SqliteDtabStore::WriteLocked(const WriteRequest& r) {
  Connection& c = *writer_;
  // The namespace's current state.
  int64_t latest = 0;
  bool exists = false;
  bool live = false;
  {
    DTABD_ASSIGN_OR_RETURN(
        Statement * q, c.Cached("SELECT latest_version, deleted FROM namespaces WHERE name = ?"));
    ScopedReset reset(q);
    q->BindText(1, r.ns);
    DTABD_ASSIGN_OR_RETURN(bool row, q->Step());
    if (row) {
      exists = true;
      latest = q->ColumnInt64(0);
      live = q->ColumnInt64(1) == 0;
    }
  }

  VersionedDtab v;
  v.ns = std::string(r.ns);
  v.version = latest + 1;
  v.dtab = std::string(r.dtab);
  v.author = r.meta.author;
  v.comment = r.meta.comment;
  v.created_at = options_.clock ? options_.clock() : absl::Now();
  v.created_at = absl::FromUnixMicros(absl::ToUnixMicros(v.created_at));  // stored precision

  switch (r.kind) {
    case WriteKind::kCreate:
      if (live) {
        return absl::AlreadyExistsError(absl::StrCat("dtab '", r.ns,
                                                     "' already exists (version ", latest, ")"));
      }
      break;
    case WriteKind::kUpdate:
    case WriteKind::kDelete:
      if (!live) {
        return NoSuchNamespace(r.ns);
      }
      v.deleted = r.kind == WriteKind::kDelete;
      break;
    case WriteKind::kPut:
      break;
    case WriteKind::kRollback: {
      if (!exists) {
        return NoSuchNamespace(r.ns);
      }
      DTABD_ASSIGN_OR_RETURN(
          Statement * q,
          c.Cached("SELECT dtab, deleted FROM versions WHERE namespace = ? AND version = ?"));
      ScopedReset reset(q);
      q->BindText(1, r.ns);
      q->BindInt64(2, r.to_version);
      DTABD_ASSIGN_OR_RETURN(bool row, q->Step());
      if (!row) {
        return absl::NotFoundError(
            absl::StrCat("dtab '", r.ns, "' has no version ", r.to_version, " to roll back to"));
      }
      if (q->ColumnInt64(1) != 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "dtab '", r.ns, "': version ", r.to_version, " is a deletion; roll back to a version "
            "that has a dtab"));
      }
      v.dtab = q->ColumnText(0);
      if (v.comment.empty()) {
        v.comment = absl::StrCat("rollback to version ", r.to_version);
      }
      break;
    }
  }
  if (r.expected_version && *r.expected_version != latest) {
    return StaleVersion(r.ns, *r.expected_version, latest);
  }

  {
    DTABD_ASSIGN_OR_RETURN(Statement * q,
                           c.Cached("SELECT COALESCE(MAX(revision), 0) + 1 FROM versions"));
    ScopedReset reset(q);
    DTABD_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) {
      return absl::InternalError("no revision row");
    }
    v.revision = q->ColumnInt64(0);
  }
  {
    DTABD_ASSIGN_OR_RETURN(Statement * q, c.Cached(Sql().insert_version));
    ScopedReset reset(q);
    q->BindText(1, v.ns);
    q->BindInt64(2, v.version);
    q->BindInt64(3, v.revision);
    q->BindText(4, v.dtab);
    q->BindText(5, v.author);
    q->BindText(6, v.comment);
    q->BindInt64(7, absl::ToUnixMicros(v.created_at));
    q->BindInt64(8, v.deleted ? 1 : 0);
    DTABD_RETURN_IF_ERROR(q->Run());
  }
  {
    DTABD_ASSIGN_OR_RETURN(
        Statement * q,
        c.Cached("INSERT INTO namespaces (name, latest_version, deleted) VALUES (?, ?, ?)"
                 " ON CONFLICT (name) DO UPDATE SET latest_version = excluded.latest_version,"
                 " deleted = excluded.deleted"));
    ScopedReset reset(q);
    q->BindText(1, v.ns);
    q->BindInt64(2, v.version);
    q->BindInt64(3, v.deleted ? 1 : 0);
    DTABD_RETURN_IF_ERROR(q->Run());
  }
  return v;
}

absl::StatusOr<HistoryPage> SqliteDtabStore::History(absl::string_view ns, int page_size,
                                                     int64_t before_version) {
  DTABD_RETURN_IF_ERROR(ValidateNamespace(ns));
  if (page_size <= 0 || page_size > 10'000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page size ", page_size, " must be between 1 and 10000"));
  }
  return WithReader<HistoryPage>([&](Connection& c) -> absl::StatusOr<HistoryPage> {
    DTABD_ASSIGN_OR_RETURN(Statement * q, c.Cached(Sql().history));
    ScopedReset reset(q);
    q->BindText(1, ns);
    q->BindInt64(2, before_version > 0 ? before_version : std::numeric_limits<int64_t>::max());
    q->BindInt64(3, page_size + 1);  // one more tells whether a next page exists
    HistoryPage page;
    while (true) {
      DTABD_ASSIGN_OR_RETURN(bool row, q->Step());
      if (!row) {
        break;
      }
      if (static_cast<int>(page.versions.size()) == page_size) {
        page.next_before_version = page.versions.back().version;
        break;
      }
      page.versions.push_back(ReadRow(*q));
    }
    if (page.versions.empty()) {
      // An empty page is NotFound only if the namespace never existed (an
      // existing one may simply have nothing older than before_version).
      DTABD_ASSIGN_OR_RETURN(Statement * e,
                             c.Cached("SELECT 1 FROM namespaces WHERE name = ?"));
      ScopedReset reset_exists(e);
      e->BindText(1, ns);
      DTABD_ASSIGN_OR_RETURN(bool exists, e->Step());
      if (!exists) {
        return NoSuchNamespace(ns);
      }
    }
    return page;
  });
}

absl::StatusOr<std::vector<VersionedDtab>> SqliteDtabStore::ChangesSince(int64_t after_revision,
                                                                         int limit) {
  if (limit <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("limit ", limit, " must be positive"));
  }
  return WithReader<std::vector<VersionedDtab>>(
      [&](Connection& c) -> absl::StatusOr<std::vector<VersionedDtab>> {
        DTABD_ASSIGN_OR_RETURN(Statement * q, c.Cached(Sql().changes_since));
        ScopedReset reset(q);
        q->BindInt64(1, after_revision);
        q->BindInt64(2, limit);
        return ReadAll(q);
      });
}

absl::StatusOr<std::vector<VersionedDtab>> SqliteDtabStore::LatestOfAll() {
  return WithReader<std::vector<VersionedDtab>>(
      [&](Connection& c) -> absl::StatusOr<std::vector<VersionedDtab>> {
        DTABD_ASSIGN_OR_RETURN(Statement * q, c.Cached(Sql().latest_of_all));
        ScopedReset reset(q);
        return ReadAll(q);
      });
}

absl::StatusOr<int64_t> SqliteDtabStore::CurrentRevision() {
  return WithReader<int64_t>([](Connection& c) -> absl::StatusOr<int64_t> {
    DTABD_ASSIGN_OR_RETURN(Statement * q, c.Cached("SELECT COALESCE(MAX(revision), 0) FROM versions"));
    ScopedReset reset(q);
    DTABD_ASSIGN_OR_RETURN(bool row, q->Step());
    return row ? q->ColumnInt64(0) : 0;
  });
}

absl::StatusOr<std::string> SqliteDtabStore::IntegrityCheck() {
  absl::MutexLock lock(&write_mu_);
  DTABD_ASSIGN_OR_RETURN(std::unique_ptr<Statement> q,
                         Statement::Prepare(writer_->db(), "PRAGMA integrity_check"));
  DTABD_ASSIGN_OR_RETURN(bool row, q->Step());
  return row ? q->ColumnText(0) : std::string("no result");
}

}  // namespace dtabd::storage
