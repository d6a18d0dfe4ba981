// Schema migrations (storage/migrations.h): the embedded list, applying and
// recording migrations, upgrading a database created at an older schema,
// refusing a database from a newer binary, and rolling back a failing
// migration.
#include "storage/migrations.h"

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/sqlite_dtab_store.h"
#include "tests/storage/storage_test_util.h"

namespace dtabd::storage {
namespace {

using ::dtabd::storage::testing::IsOkAndHolds;
using ::dtabd::storage::testing::StatusIs;
using ::dtabd::storage::testing::TempDir;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// A raw SQLite connection, closed on destruction.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << "open " << path << ": " << sqlite3_errstr(rc);
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  ~RawDb() { sqlite3_close_v2(db_); }

  sqlite3* get() const { return db_; }

  // Runs `sql`; returns SQLite's error message, or "" on success.
  std::string Exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    std::string out = rc == SQLITE_OK ? "" : (err != nullptr ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    return out;
  }

  // The first column of the first row of `sql` as an integer (-1 on error
  // or no row).
  int64_t QueryInt(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "prepare " << sql << ": " << sqlite3_errmsg(db_);
      return -1;
    }
    int64_t v = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      v = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    return v;
  }

  // (version, name) rows of schema_migrations, ascending.
  std::vector<std::pair<int, std::string>> Recorded() {
    std::vector<std::pair<int, std::string>> out;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT version, name FROM schema_migrations ORDER BY version",
                           -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sqlite3_errmsg(db_);
      return out;
    }
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      out.emplace_back(sqlite3_column_int(stmt, 0),
                       reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)));
    }
    sqlite3_finalize(stmt);
    return out;
  }

  bool HasObject(const std::string& name) {
    return QueryInt(absl::StrCat("SELECT COUNT(*) FROM sqlite_master WHERE name = '", name,
                                 "'")) == 1;
  }

 private:
  sqlite3* db_ = nullptr;
};

int LatestVersion() { return EmbeddedMigrations().back().version; }

TEST(EmbeddedMigrationsTest, AreNumberedFromOneWithoutGapsAndNamedByNumber) {
  const std::vector<Migration>& m = EmbeddedMigrations();
  ASSERT_GE(m.size(), 2u);
  for (size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ(m[i].version, static_cast<int>(i) + 1);
    EXPECT_TRUE(absl::StartsWith(m[i].name, absl::StrFormat("%04d_", m[i].version))) << m[i].name;
    EXPECT_TRUE(absl::EndsWith(m[i].name, ".sql")) << m[i].name;
    EXPECT_NE(std::string(m[i].sql).find("CREATE"), std::string::npos) << m[i].name;
  }
  EXPECT_STREQ(m[0].name, "0001_initial.sql");
}

TEST(MigrateTest, AppliesAndRecordsEveryMigrationOnFreshDatabase) {
  RawDb db(":memory:");
  EXPECT_THAT(SchemaVersion(db.get()), IsOkAndHolds(0));
  EXPECT_THAT(Migrate(db.get(), EmbeddedMigrations()), IsOkAndHolds(LatestVersion()));
  EXPECT_THAT(SchemaVersion(db.get()), IsOkAndHolds(LatestVersion()));

  std::vector<std::pair<int, std::string>> expected;
  for (const Migration& m : EmbeddedMigrations()) {
    expected.emplace_back(m.version, m.name);
  }
  EXPECT_EQ(db.Recorded(), expected);
  EXPECT_TRUE(db.HasObject("namespaces"));
  EXPECT_TRUE(db.HasObject("versions"));
  EXPECT_TRUE(db.HasObject("versions_by_created_at"));
}

TEST(MigrateTest, SecondRunIsANoOp) {
  RawDb db(":memory:");
  ASSERT_THAT(Migrate(db.get(), EmbeddedMigrations()), IsOkAndHolds(LatestVersion()));
  const auto recorded = db.Recorded();
  EXPECT_THAT(Migrate(db.get(), EmbeddedMigrations()), IsOkAndHolds(LatestVersion()));
  EXPECT_EQ(db.Recorded(), recorded);
}

TEST(MigrateTest, TargetVersionStopsAtThatMigration) {
  RawDb db(":memory:");
  EXPECT_THAT(Migrate(db.get(), EmbeddedMigrations(), 1), IsOkAndHolds(1));
  EXPECT_THAT(db.Recorded(), ElementsAre(Pair(1, "0001_initial.sql")));
  EXPECT_TRUE(db.HasObject("versions"));
  EXPECT_FALSE(db.HasObject("versions_by_created_at"));
  EXPECT_THAT(Migrate(db.get(), EmbeddedMigrations()), IsOkAndHolds(LatestVersion()));
  EXPECT_TRUE(db.HasObject("versions_by_created_at"));
}

TEST(MigrateTest, FailingMigrationIsRolledBackAndNotRecorded) {
  RawDb db(":memory:");
  const std::vector<Migration> bad = {
      {1, "0001_ok.sql", "CREATE TABLE a (x INTEGER);"},
      {2, "0002_bad.sql",
       "CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (1); SELEKT broken;"},
      {3, "0003_after.sql", "CREATE TABLE c (x INTEGER);"},
  };
  EXPECT_THAT(Migrate(db.get(), bad),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("0002_bad.sql")));
  // 0001 stands; nothing of 0002 (its table, its insert, its record) does,
  // and 0003 never ran.
  EXPECT_THAT(SchemaVersion(db.get()), IsOkAndHolds(1));
  EXPECT_THAT(db.Recorded(), ElementsAre(Pair(1, "0001_ok.sql")));
  EXPECT_TRUE(db.HasObject("a"));
  EXPECT_EQ(db.QueryInt("SELECT COUNT(*) FROM a"), 0);
  EXPECT_FALSE(db.HasObject("b"));
  EXPECT_FALSE(db.HasObject("c"));
  // The connection is usable and not left inside a transaction.
  EXPECT_NE(sqlite3_get_autocommit(db.get()), 0);

  // A fixed 0002 applies on the next run.
  const std::vector<Migration> fixed = {
      bad[0],
      {2, "0002_fixed.sql", "CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (1);"},
      bad[2],
  };
  EXPECT_THAT(Migrate(db.get(), fixed), IsOkAndHolds(3));
  EXPECT_EQ(db.QueryInt("SELECT COUNT(*) FROM a"), 1);
  EXPECT_TRUE(db.HasObject("b"));
  EXPECT_TRUE(db.HasObject("c"));
}

TEST(MigrateTest, FailingFirstMigrationLeavesSchemaVersionZero) {
  RawDb db(":memory:");
  const std::vector<Migration> bad = {{1, "0001_bad.sql", "CREATE TABLE t (x); NOT SQL;"}};
  EXPECT_THAT(Migrate(db.get(), bad), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(SchemaVersion(db.get()), IsOkAndHolds(0));
  EXPECT_FALSE(db.HasObject("t"));
}

TEST(MigrateTest, DatabaseFromNewerBinaryReturnsFailedPrecondition) {
  RawDb db(":memory:");
  ASSERT_THAT(Migrate(db.get(), EmbeddedMigrations()), IsOkAndHolds(LatestVersion()));
  const int future = LatestVersion() + 1;
  ASSERT_EQ(db.Exec(absl::StrCat("INSERT INTO schema_migrations VALUES (", future,
                                 ", 'future.sql', 0)")),
            "");
  EXPECT_THAT(Migrate(db.get(), EmbeddedMigrations()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(absl::StrCat(future)), HasSubstr("newer"))));
}

// Creates `path` at schema version 1 (0001_initial.sql only) holding, in
// 0001's schema: "legacy" with versions 1 and 2 (revisions 1 and 3) and
// "gone" created then deleted (revisions 2 and 4).
void CreateVersionOneDatabase(const std::string& path) {
  RawDb db(path);
  ASSERT_THAT(Migrate(db.get(), EmbeddedMigrations(), 1), IsOkAndHolds(1));
  ASSERT_EQ(db.Exec(R"sql(
      BEGIN;
      INSERT INTO namespaces (name, latest_version, deleted)
        VALUES ('legacy', 2, 0), ('gone', 2, 1);
      INSERT INTO versions (namespace, version, revision, dtab, deleted, author, comment,
                            created_at_us) VALUES
        ('legacy', 1, 1, '/svc=>/srv/old', 0, 'alice', 'first', 1600000000000000),
        ('gone',   1, 2, '/a=>/b',         0, 'bob',   '',      1600000001000000),
        ('legacy', 2, 3, '/svc=>/srv/new', 0, 'carol', 'second', 1600000002000000),
        ('gone',   2, 4, '',               1, 'bob',   'bye',   1600000003000000);
      COMMIT;)sql"),
            "");
}

TEST(MigrateTest, OpenUpgradesDatabaseCreatedAtOlderSchema) {
  TempDir dir;
  const std::string path = dir.File("old.db");
  CreateVersionOneDatabase(path);
  if (::testing::Test::HasFatalFailure()) {
    return;
  }
  {
    RawDb db(path);
    ASSERT_THAT(SchemaVersion(db.get()), IsOkAndHolds(1));
    ASSERT_FALSE(db.HasObject("versions_by_created_at"));
  }

  SqliteDtabStore::Options o;
  o.path = path;
  {
    absl::StatusOr<std::unique_ptr<SqliteDtabStore>> opened = SqliteDtabStore::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status();
    SqliteDtabStore& store = **opened;

    ASSERT_OK_AND_ASSIGN(VersionedDtab legacy, store.Get("legacy", std::nullopt));
    EXPECT_EQ(legacy.version, 2);
    EXPECT_EQ(legacy.revision, 3);
    EXPECT_EQ(legacy.dtab, "/svc=>/srv/new");
    EXPECT_EQ(legacy.author, "carol");
    EXPECT_EQ(legacy.comment, "second");
    EXPECT_EQ(legacy.created_at, absl::FromUnixMicros(1600000002000000));
    EXPECT_THAT(store.Get("legacy", 1),
                IsOkAndHolds(::testing::Field(&VersionedDtab::dtab, "/svc=>/srv/old")));
    EXPECT_THAT(store.Get("gone", std::nullopt), StatusIs(absl::StatusCode::kNotFound));
    EXPECT_THAT(store.Get("gone", 2),
                IsOkAndHolds(::testing::Field(&VersionedDtab::deleted, true)));
    ASSERT_OK_AND_ASSIGN(std::vector<NamespaceSummary> list, store.List());
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].ns, "legacy");
    EXPECT_EQ(list[0].version, 2);
    ASSERT_OK_AND_ASSIGN(HistoryPage history, store.History("legacy", 10, 0));
    ASSERT_EQ(history.versions.size(), 2u);
    EXPECT_EQ(history.versions[1].author, "alice");
    EXPECT_THAT(store.CurrentRevision(), IsOkAndHolds(int64_t{4}));
    ASSERT_OK_AND_ASSIGN(std::vector<VersionedDtab> changes, store.ChangesSince(0, 10));
    ASSERT_EQ(changes.size(), 4u);
    EXPECT_EQ(changes[1].ns, "gone");

    // Writes continue the old counters.
    EXPECT_THAT(store.Update("legacy", "/svc=>/srv/x", 1, {}),
                StatusIs(absl::StatusCode::kAborted));
    ASSERT_OK_AND_ASSIGN(VersionedDtab v3, store.Update("legacy", "/svc=>/srv/v3", 2, {}));
    EXPECT_EQ(v3.version, 3);
    EXPECT_EQ(v3.revision, 5);
    ASSERT_OK_AND_ASSIGN(VersionedDtab gone3, store.Create("gone", "/a=>/c", {}));
    EXPECT_EQ(gone3.version, 3);
    EXPECT_EQ(gone3.revision, 6);
    EXPECT_THAT(store.IntegrityCheck(), IsOkAndHolds(std::string("ok")));
  }

  RawDb db(path);
  EXPECT_THAT(SchemaVersion(db.get()), IsOkAndHolds(LatestVersion()));
  EXPECT_EQ(db.Recorded().size(), EmbeddedMigrations().size());
  EXPECT_TRUE(db.HasObject("versions_by_created_at"));
  EXPECT_TRUE(db.HasObject("versions_by_author"));
}

TEST(MigrateTest, OpenOfDatabaseFromNewerBinaryReturnsFailedPrecondition) {
  TempDir dir;
  const std::string path = dir.File("future.db");
  SqliteDtabStore::Options o;
  o.path = path;
  {
    absl::StatusOr<std::unique_ptr<SqliteDtabStore>> store = SqliteDtabStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Create("ns", "/a=>/b", {}).ok());
  }
  const int future = LatestVersion() + 1;
  {
    RawDb db(path);
    ASSERT_EQ(db.Exec(absl::StrCat("INSERT INTO schema_migrations VALUES (", future,
                                   ", '", future, "_from_the_future.sql', 0)")),
              "");
  }

  absl::StatusOr<std::unique_ptr<SqliteDtabStore>> refused = SqliteDtabStore::Open(o);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition,
                                AllOf(HasSubstr(absl::StrCat("schema version ", future)),
                                      HasSubstr("newer"))));

  // The refusal changed nothing: the data and the record are still there.
  RawDb db(path);
  EXPECT_THAT(SchemaVersion(db.get()), IsOkAndHolds(future));
  EXPECT_EQ(db.QueryInt("SELECT COUNT(*) FROM versions"), 1);
}

}  // namespace
}  // namespace dtabd::storage
