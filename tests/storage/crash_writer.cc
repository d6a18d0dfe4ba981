// crash_writer: the child process of crash_test.cc. Opens a SqliteDtabStore
// (synchronous=FULL) on argv[1] and writes to a few namespaces in a loop,
// choosing namespace and operation (Put or compare-and-set Update) with a
// std::mt19937 seeded by argv[2]. After each acknowledged write it prints
//
//   <namespace> <version> <revision> <dtab text>\n
//
// to stdout with one write(2) (shorter than PIPE_BUF, so atomic on a pipe),
// and only then starts the next write. The text is CrashPayload(ns, version).
// It stops after argv[3] writes (default 1,000,000); the test kills it with
// SIGKILL long before. Any failed write exits with status 2 and a message on
// stderr.
#include <errno.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "storage/sqlite_dtab_store.h"
#include "tests/storage/crash_payload.h"

namespace {

using dtabd::storage::SqliteDtabStore;
using dtabd::storage::VersionedDtab;
using dtabd::storage::WriteMeta;
using dtabd::storage::testing::CrashPayload;
using dtabd::storage::testing::kCrashNamespaces;

int Fail(const absl::Status& s, absl::string_view what) {
  std::fprintf(stderr, "crash_writer: %s: %s\n", std::string(what).c_str(), s.ToString().c_str());
  return 2;
}

// Writes all of `line` to stdout, retrying on EINTR and short writes.
bool WriteLine(const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = write(STDOUT_FILENO, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: crash_writer DB_PATH SEED [MAX_WRITES]\n");
    return 2;
  }
  uint32_t seed = 0;
  int64_t max_writes = 1'000'000;
  if (!absl::SimpleAtoi(argv[2], &seed) || (argc > 3 && !absl::SimpleAtoi(argv[3], &max_writes))) {
    std::fprintf(stderr, "crash_writer: bad SEED or MAX_WRITES\n");
    return 2;
  }

  SqliteDtabStore::Options options;
  options.path = argv[1];
  options.synchronous_full = true;
  options.reader_connections = 1;
  absl::StatusOr<std::unique_ptr<SqliteDtabStore>> opened = SqliteDtabStore::Open(options);
  if (!opened.ok()) {
    return Fail(opened.status(), "open");
  }
  SqliteDtabStore& store = **opened;

  constexpr size_t kNamespaces = std::size(kCrashNamespaces);
  // The latest version of each namespace (0: none yet).
  int64_t latest[kNamespaces] = {};
  for (size_t i = 0; i < kNamespaces; ++i) {
    absl::StatusOr<VersionedDtab> v = store.Get(kCrashNamespaces[i], std::nullopt);
    if (v.ok()) {
      latest[i] = v->version;
    } else if (v.status().code() != absl::StatusCode::kNotFound) {
      return Fail(v.status(), "get");
    }
  }

  std::mt19937 rng(seed);
  const WriteMeta meta{"crash_writer", absl::StrCat("seed ", seed)};
  for (int64_t n = 0; n < max_writes; ++n) {
    const size_t i = rng() % kNamespaces;
    const char* ns = kCrashNamespaces[i];
    const std::string text = CrashPayload(ns, latest[i] + 1);
    const bool cas = latest[i] > 0 && rng() % 2 == 0;
    absl::StatusOr<VersionedDtab> w =
        cas ? store.Update(ns, text, latest[i], meta) : store.Put(ns, text, meta);
    if (!w.ok()) {
      return Fail(w.status(), cas ? "update" : "put");
    }
    if (w->version != latest[i] + 1 || w->dtab != text) {
      std::fprintf(stderr, "crash_writer: %s: wrote version %lld, expected %lld\n", ns,
                   static_cast<long long>(w->version), static_cast<long long>(latest[i] + 1));
      return 2;
    }
    latest[i] = w->version;
    if (!WriteLine(absl::StrCat(ns, " ", w->version, " ", w->revision, " ", w->dtab, "\n"))) {
      return 3;
    }
  }
  return 0;
}
