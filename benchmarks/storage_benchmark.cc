// Commit and read throughput of SqliteDtabStore, measured against the
// physical limit of the disk in the same run:
//   BM_BareSqliteCommit   a bare SQLite loop of exactly the statements one
//                         SqliteDtabStore::Update executes (BEGIN IMMEDIATE;
//                         read the namespace; next revision; insert the
//                         version; upsert the namespace; COMMIT), prepared
//                         once, on a WAL database with the store's schema;
//   BM_StoreUpdate        SqliteDtabStore::Update, compare-and-set with the
//                         expected version tracked, of a 10-dentry dtab;
// each with synchronous=FULL (arg 1) and NORMAL (arg 0), reporting the
// counter commits_per_s; and
//   BM_StoreGetLatest     SqliteDtabStore::Get(ns) of the latest version, from
//                         one thread and (for information) two;
//   BM_ParseTypicalDtab   (information) the validation parse of the dtab that
//                         a store write does and the bare loop does not.
//
// The databases live in a fresh directory under $DTABD_BENCH_DIR, else
// /var/tmp (on disk; tmpfs would hide the fsync cost), removed at exit. Each
// write benchmark run starts from an empty database of its own.
//
// Goals (issue 3): store updates >= 0.8x the bare loop's commits/s for FULL
// and for NORMAL; gets >= 200k/s from one thread. benchmarks/run.sh checks
// them.
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/vfs.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "dtab/parser.h"
#include "storage/dtab_store.h"
#include "storage/migrations.h"
#include "storage/sqlite_dtab_store.h"

namespace dtabd::bench {
namespace {

using storage::SqliteDtabStore;

// The namespace written by the commit benchmarks and the audit fields of
// every write.
constexpr char kNamespace[] = "hello-world";
constexpr char kAuthor[] = "bench@example.com";
constexpr char kComment[] = "benchmark update";
// Namespaces in the read benchmarks' store, and versions written to each.
constexpr int kReadNamespaces = 100;
constexpr int kReadVersions = 5;

// A typical dtab: the hello-world dentries and 7 others (10 dentries, 2 of
// them weighted canary splits). Successive writes cycle through variants
// that shift the canary weights (0.9/0.1, 0.8/0.2, ... 0.2/0.8), as a
// rollout would, so that no layer can gain from identical text.
constexpr int kDtabVariants = 8;

const std::string& TypicalDtab(int64_t write) {
  static const std::vector<std::string>* const texts = [] {
    auto* v = new std::vector<std::string>;
    const std::string base = BaseDtabText(7);
    for (int i = 0; i < kDtabVariants; ++i) {
      v->push_back(absl::StrReplaceAll(base, {{"0.9 * ", absl::StrCat("0.", 9 - i, " * ")},
                                              {"0.1 * ", absl::StrCat("0.", 1 + i, " * ")}}));
    }
    return v;
  }();
  return (*texts)[static_cast<size_t>(write % kDtabVariants)];
}

// The directory holding the databases (set by main).
std::string* g_dir = nullptr;
std::atomic<int> g_next_db{0};

// A fresh database path; RemoveDatabase deletes the file and its WAL.
std::string NewDatabasePath(absl::string_view name) {
  return absl::StrCat(*g_dir, "/", name, "-", g_next_db.fetch_add(1), ".db");
}

void RemoveDatabase(const std::string& path) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(path + suffix, ignored);
  }
}

// The bare loop: one connection, the store's pragmas and schema, and the
// statements of one update prepared once.
class BareDatabase {
 public:
  ~BareDatabase() {
    for (sqlite3_stmt* s : {begin_, select_namespace_, next_revision_, insert_version_,
                            upsert_namespace_, commit_, rollback_}) {
      sqlite3_finalize(s);
    }
    sqlite3_close_v2(db_);
  }

  absl::Status Open(const std::string& path, bool synchronous_full) {
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      return Error("open");
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
    const std::string pragmas = absl::StrCat(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=", synchronous_full ? "FULL" : "NORMAL",
        "; PRAGMA foreign_keys=ON;");
    if (sqlite3_exec(db_, pragmas.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      return Error("pragmas");
    }
    if (absl::StatusOr<int> v = storage::Migrate(db_, storage::EmbeddedMigrations()); !v.ok()) {
      return v.status();
    }
    // The same SQL text as SqliteDtabStore.
    const struct {
      sqlite3_stmt** stmt;
      const char* sql;
    } statements[] = {
        {&begin_, "BEGIN IMMEDIATE"},
        {&select_namespace_, "SELECT latest_version, deleted FROM namespaces WHERE name = ?"},
        {&next_revision_, "SELECT COALESCE(MAX(revision), 0) + 1 FROM versions"},
        {&insert_version_,
         "INSERT INTO versions (namespace, version, revision, dtab, author, comment, "
         "created_at_us, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"},
        {&upsert_namespace_,
         "INSERT INTO namespaces (name, latest_version, deleted) VALUES (?, ?, ?)"
         " ON CONFLICT (name) DO UPDATE SET latest_version = excluded.latest_version,"
         " deleted = excluded.deleted"},
        {&commit_, "COMMIT"},
        {&rollback_, "ROLLBACK"},
    };
    for (const auto& s : statements) {
      if (sqlite3_prepare_v3(db_, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.stmt, nullptr) !=
          SQLITE_OK) {
        return Error(s.sql);
      }
    }
    return absl::OkStatus();
  }

  // One compare-and-set write of `dtab` to `ns` expecting `*version` (0: the
  // namespace does not exist yet); advances `*version` on success.
  absl::Status Write(absl::string_view ns, absl::string_view dtab, int64_t* version) {
    if (!Step(begin_, SQLITE_DONE)) {
      return Error("begin");
    }
    absl::Status s = WriteInTransaction(ns, dtab, version);
    if (s.ok() && !Step(commit_, SQLITE_DONE)) {
      s = Error("commit");
    }
    if (!s.ok()) {
      Step(rollback_, SQLITE_DONE);
    }
    return s;
  }

 private:
  absl::Status WriteInTransaction(absl::string_view ns, absl::string_view dtab, int64_t* version) {
    BindText(select_namespace_, 1, ns);
    int64_t latest = 0;
    const int rc = sqlite3_step(select_namespace_);
    if (rc == SQLITE_ROW) {
      latest = sqlite3_column_int64(select_namespace_, 0);
      if (sqlite3_column_int64(select_namespace_, 1) != 0) {
        latest = 0;
      }
    }
    sqlite3_reset(select_namespace_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      return Error("select namespace");
    }
    if (latest != *version) {
      return absl::AbortedError("stale version");
    }
    if (!Step(next_revision_, SQLITE_ROW)) {
      return Error("next revision");
    }
    const int64_t revision = sqlite3_column_int64(next_revision_, 0);
    sqlite3_reset(next_revision_);

    BindText(insert_version_, 1, ns);
    sqlite3_bind_int64(insert_version_, 2, latest + 1);
    sqlite3_bind_int64(insert_version_, 3, revision);
    BindText(insert_version_, 4, dtab);
    BindText(insert_version_, 5, kAuthor);
    BindText(insert_version_, 6, kComment);
    sqlite3_bind_int64(insert_version_, 7, absl::ToUnixMicros(absl::Now()));
    sqlite3_bind_int64(insert_version_, 8, 0);
    if (!Step(insert_version_, SQLITE_DONE)) {
      return Error("insert version");
    }
    BindText(upsert_namespace_, 1, ns);
    sqlite3_bind_int64(upsert_namespace_, 2, latest + 1);
    sqlite3_bind_int64(upsert_namespace_, 3, 0);
    if (!Step(upsert_namespace_, SQLITE_DONE)) {
      return Error("upsert namespace");
    }
    *version = latest + 1;
    return absl::OkStatus();
  }

  // The caller's text outlives the statement's use of it (SQLITE_STATIC).
  static void BindText(sqlite3_stmt* s, int i, absl::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }

  // Steps `s` once, resets it, and says whether the step returned `want`.
  static bool Step(sqlite3_stmt* s, int want) {
    const int rc = sqlite3_step(s);
    if (want == SQLITE_ROW) {
      return rc == want;  // the caller reads the row, then resets
    }
    sqlite3_reset(s);
    return rc == want;
  }

  absl::Status Error(absl::string_view what) {
    return absl::InternalError(absl::StrCat(what, ": ", sqlite3_errmsg(db_)));
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* select_namespace_ = nullptr;
  sqlite3_stmt* next_revision_ = nullptr;
  sqlite3_stmt* insert_version_ = nullptr;
  sqlite3_stmt* upsert_namespace_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* rollback_ = nullptr;
};

void ReportCommits(benchmark::State& state) {
  state.counters["commits_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// Arg: 1 for synchronous=FULL, 0 for NORMAL.
void BM_BareSqliteCommit(benchmark::State& state) {
  const bool full = state.range(0) != 0;
  const std::string path = NewDatabasePath("bare");
  {
    BareDatabase db;
    int64_t version = 0;
    absl::Status s = db.Open(path, full);
    if (s.ok()) {
      s = db.Write(kNamespace, TypicalDtab(version), &version);  // create, untimed
    }
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
    } else {
      for (auto _ : state) {
        if (s = db.Write(kNamespace, TypicalDtab(version), &version); !s.ok()) {
          state.SkipWithError(s.ToString().c_str());
          break;
        }
      }
      ReportCommits(state);
    }
  }
  RemoveDatabase(path);
}
BENCHMARK(BM_BareSqliteCommit)
    ->ArgName("full")
    ->Arg(1)
    ->Arg(0)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_StoreUpdate(benchmark::State& state) {
  SqliteDtabStore::Options options;
  options.path = NewDatabasePath("store");
  options.synchronous_full = state.range(0) != 0;
  {
    absl::StatusOr<std::unique_ptr<SqliteDtabStore>> store = SqliteDtabStore::Open(options);
    const storage::WriteMeta meta{kAuthor, kComment};
    absl::StatusOr<storage::VersionedDtab> v =
        store.ok() ? (*store)->Create(kNamespace, TypicalDtab(0), meta)  // untimed
                   : absl::StatusOr<storage::VersionedDtab>(store.status());
    if (!v.ok()) {
      state.SkipWithError(v.status().ToString().c_str());
    } else {
      int64_t version = v->version;
      const uint64_t allocations = AllocationCount();
      for (auto _ : state) {
        v = (*store)->Update(kNamespace, TypicalDtab(version), version, meta);
        if (!v.ok()) {
          state.SkipWithError(v.status().ToString().c_str());
          break;
        }
        version = v->version;
      }
      ReportAllocations(state, allocations);
      ReportCommits(state);
    }
  }
  RemoveDatabase(options.path);
}
BENCHMARK(BM_StoreUpdate)
    ->ArgName("full")
    ->Arg(1)
    ->Arg(0)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The read benchmarks' store: kReadNamespaces namespaces "app0".. with
// kReadVersions versions each, reopened with the default options (FULL, 4
// readers). Shared by all read runs and threads; closed by main.
std::unique_ptr<SqliteDtabStore>* g_read_store = nullptr;

absl::StatusOr<SqliteDtabStore*> OpenReadStore() {
  SqliteDtabStore::Options options;
  options.path = NewDatabasePath("read");
  {
    // Populated with NORMAL only to set up quickly.
    SqliteDtabStore::Options fill = options;
    fill.synchronous_full = false;
    absl::StatusOr<std::unique_ptr<SqliteDtabStore>> store = SqliteDtabStore::Open(fill);
    if (!store.ok()) {
      return store.status();
    }
    const storage::WriteMeta meta{kAuthor, kComment};
    for (int v = 0; v < kReadVersions; ++v) {
      for (int n = 0; n < kReadNamespaces; ++n) {
        absl::StatusOr<storage::VersionedDtab> w =
            (*store)->Put(absl::StrCat("app", n), TypicalDtab(v), meta);
        if (!w.ok()) {
          return w.status();
        }
      }
    }
  }
  absl::StatusOr<std::unique_ptr<SqliteDtabStore>> store = SqliteDtabStore::Open(options);
  if (!store.ok()) {
    return store.status();
  }
  g_read_store = new std::unique_ptr<SqliteDtabStore>(*std::move(store));
  return g_read_store->get();
}

// Get(ns) of the latest version, cycling over the namespaces.
void BM_StoreGetLatest(benchmark::State& state) {
  // Thread-safe one-time set-up, shared by the threads of a run.
  static const absl::StatusOr<SqliteDtabStore*>* const store =
      new absl::StatusOr<SqliteDtabStore*>(OpenReadStore());
  if (!store->ok()) {
    state.SkipWithError(store->status().ToString().c_str());
    return;
  }
  std::vector<std::string> names;
  for (int n = 0; n < kReadNamespaces; ++n) {
    names.push_back(absl::StrCat("app", n));
  }
  size_t next = static_cast<size_t>(state.thread_index()) * 37;
  const uint64_t allocations = AllocationCount();
  for (auto _ : state) {
    absl::StatusOr<storage::VersionedDtab> v =
        (**store)->Get(names[next % names.size()], std::nullopt);
    if (!v.ok() || v->version != kReadVersions) {
      state.SkipWithError(v.ok() ? "unexpected version" : v.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(v);
    ++next;
  }
  if (state.threads() == 1) {
    // With more threads the process-wide count would mix their allocations.
    ReportAllocations(state, allocations);
  }
  state.counters["gets_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_StoreGetLatest)->Threads(1)->Threads(2)->UseRealTime();

// For information: the validation parse that every store write does before
// its transaction (SqliteDtabStore::ValidateWrite) and the bare loop does
// not; it accounts for most of the difference between the two.
void BM_ParseTypicalDtab(benchmark::State& state) {
  int64_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(TypicalDtab(i++));
    if (!d.ok() || d->size() != 10) {
      state.SkipWithError("the typical dtab does not parse to 10 dentries");
      break;
    }
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_ParseTypicalDtab)->UseRealTime();

// The filesystem type of `dir` for the report's context.
std::string FilesystemType(const std::string& dir) {
  struct statfs fs;
  if (statfs(dir.c_str(), &fs) != 0) {
    return "unknown";
  }
  switch (fs.f_type) {
    case 0x01021994:
      return "tmpfs (no fsync cost: FULL figures are not the disk's)";
    case 0xEF53:
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794C7630:
      return "overlayfs";
    default:
      return absl::StrCat("0x", absl::Hex(fs.f_type));
  }
}

}  // namespace
}  // namespace dtabd::bench

int main(int argc, char** argv) {
  using dtabd::bench::g_dir;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  const char* base = getenv("DTABD_BENCH_DIR");
  std::string tmpl = absl::StrCat(base != nullptr && *base != '\0' ? base : "/var/tmp",
                                  "/dtabd-storage-bench-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    fprintf(stderr, "storage_benchmark: cannot create a directory like %s\n", tmpl.c_str());
    return 1;
  }
  g_dir = new std::string(tmpl);
  benchmark::AddCustomContext("db_dir", *g_dir);
  benchmark::AddCustomContext("db_filesystem", dtabd::bench::FilesystemType(*g_dir));
  benchmark::AddCustomContext("sqlite_version", sqlite3_libversion());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  delete dtabd::bench::g_read_store;  // closes the read store before its file goes
  std::error_code ignored;
  std::filesystem::remove_all(*g_dir, ignored);
  return 0;
}
