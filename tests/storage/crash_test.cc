// Crash safety: a child process (crash_writer) writes to a SqliteDtabStore
// with synchronous=FULL and is killed with SIGKILL after a seeded-random
// number of acknowledged writes, many times on the same file. After each
// kill every acknowledged write is present with its text and revision,
// versions are gapless, revisions strictly increase, and PRAGMA
// integrity_check is "ok".
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/sqlite_dtab_store.h"
#include "tests/storage/crash_payload.h"
#include "tests/storage/storage_test_util.h"

#ifndef CRASH_WRITER_PATH
#error "CRASH_WRITER_PATH must name the crash_writer executable"
#endif

namespace dtabd::storage {
namespace {

using ::dtabd::storage::testing::CrashPayload;
using ::dtabd::storage::testing::IsOkAndHolds;
using ::dtabd::storage::testing::kCrashNamespaces;
using ::dtabd::storage::testing::TempDir;

// One acknowledged write as printed by the child.
struct Ack {
  std::string ns;
  int64_t version = 0;
  int64_t revision = 0;
  std::string dtab;
};

// A running crash_writer with its stdout on a pipe. The destructor kills
// (SIGKILL) and reaps the child if the test has not, so a failing test
// leaves no process behind.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    Kill();
    (void)Wait();
    if (read_fd_ >= 0) {
      close(read_fd_);
    }
  }

  // Starts crash_writer on `db_path` with `seed`. Returns false (with a
  // test failure) if it could not.
  bool Start(const std::string& db_path, uint32_t seed) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << errno;
      return false;
    }
    // Everything the child needs is built before fork: after it, only
    // async-signal-safe calls.
    const std::string exe = CRASH_WRITER_PATH;
    const std::string seed_arg = std::to_string(seed);
    std::vector<char*> argv = {const_cast<char*>(exe.c_str()),
                               const_cast<char*>(db_path.c_str()),
                               const_cast<char*>(seed_arg.c_str()), nullptr};
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      ADD_FAILURE() << "fork: " << errno;
      close(fds[0]);
      close(fds[1]);
      return false;
    }
    if (pid == 0) {
      // Dies with the test process, whatever happens to it.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) {
        _exit(120);
      }
      if (dup2(fds[1], STDOUT_FILENO) < 0) {
        _exit(121);
      }
      execv(exe.c_str(), argv.data());
      _exit(122);
    }
    close(fds[1]);
    pid_ = pid;
    read_fd_ = fds[0];
    return true;
  }

  // Reads complete lines until `count` lines have been read in total or
  // the pipe reaches end of file (the child died). Appends them to `lines`.
  // A 60-second deadline guards against a hung child; it is never a
  // synchronisation point.
  void ReadLines(size_t count, std::vector<std::string>* lines) {
    while (lines->size() < count) {
      size_t nl;
      while ((nl = buffer_.find('\n')) != std::string::npos && lines->size() < count) {
        lines->push_back(buffer_.substr(0, nl));
        buffer_.erase(0, nl + 1);
      }
      if (lines->size() >= count || eof_) {
        return;
      }
      pollfd p = {read_fd_, POLLIN, 0};
      const int ready = poll(&p, 1, 60'000);
      if (ready == 0) {
        ADD_FAILURE() << "crash_writer produced no output for 60s";
        eof_ = true;
        return;
      }
      if (ready < 0) {
        if (errno == EINTR) {
          continue;
        }
        ADD_FAILURE() << "poll: " << errno;
        eof_ = true;
        return;
      }
      char buf[4096];
      const ssize_t n = read(read_fd_, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        eof_ = true;
        continue;
      }
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

  // Reads every remaining complete line up to end of file. Call after the
  // child is dead: lines it wrote before dying were acknowledged too.
  void Drain(std::vector<std::string>* lines) { ReadLines(SIZE_MAX, lines); }

  // Whatever follows the last complete line (must be empty: the child
  // writes each line with one write(2)).
  const std::string& partial() const { return buffer_; }

  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
    }
  }

  // Reaps the child; returns its wait status (-1 if none).
  int Wait() {
    if (pid_ <= 0) {
      return -1;
    }
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) {
        status = -1;
        break;
      }
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int read_fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

// Parses "<ns> <version> <revision> <dtab>"; false if malformed.
bool ParseAck(const std::string& line, Ack* ack) {
  std::vector<std::string> f = absl::StrSplit(line, ' ');
  if (f.size() != 4 || f[0].empty() || !absl::SimpleAtoi(f[1], &ack->version) ||
      !absl::SimpleAtoi(f[2], &ack->revision)) {
    return false;
  }
  ack->ns = f[0];
  ack->dtab = f[3];
  return true;
}

// Checks the store on `path` against every write acknowledged so far.
void VerifyStore(const std::string& path, const std::vector<Ack>& acked, int round) {
  SCOPED_TRACE(::testing::Message() << "after kill " << round);
  SqliteDtabStore::Options o;
  o.path = path;
  absl::StatusOr<std::unique_ptr<SqliteDtabStore>> opened = SqliteDtabStore::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status();
  SqliteDtabStore& store = **opened;

  EXPECT_THAT(store.IntegrityCheck(), IsOkAndHolds(std::string("ok")));

  // Every acknowledged write is there, exactly as acknowledged.
  std::map<std::string, int64_t> max_acked;
  for (const Ack& a : acked) {
    absl::StatusOr<VersionedDtab> v = store.Get(a.ns, a.version);
    ASSERT_TRUE(v.ok()) << "acknowledged " << a.ns << " v" << a.version << " lost: " << v.status();
    EXPECT_EQ(v->dtab, a.dtab) << a.ns << " v" << a.version;
    EXPECT_EQ(v->revision, a.revision) << a.ns << " v" << a.version;
    EXPECT_FALSE(v->deleted);
    int64_t& m = max_acked[a.ns];
    m = std::max(m, a.version);
  }

  // Per namespace: versions gapless from 1, each with its deterministic
  // text (also commits the child made but could not acknowledge), and
  // revisions increasing with the version.
  int64_t total_versions = 0;
  for (const char* ns : kCrashNamespaces) {
    absl::StatusOr<HistoryPage> page = store.History(ns, 10'000, 0);
    if (!page.ok()) {
      EXPECT_EQ(max_acked.count(ns), 0u) << ns << ": " << page.status();
      continue;
    }
    ASSERT_EQ(page->next_before_version, 0) << ns;
    const std::vector<VersionedDtab>& h = page->versions;
    ASSERT_FALSE(h.empty());
    EXPECT_GE(h.front().version, max_acked[ns]) << ns;
    for (size_t i = 0; i < h.size(); ++i) {
      ASSERT_EQ(h[i].version, static_cast<int64_t>(h.size() - i)) << ns << ": gap in versions";
      EXPECT_EQ(h[i].dtab, CrashPayload(ns, h[i].version)) << ns << " v" << h[i].version;
      if (i > 0) {
        EXPECT_LT(h[i].revision, h[i - 1].revision) << ns;
      }
    }
    total_versions += static_cast<int64_t>(h.size());
  }

  // Store-wide: revisions strictly increase and cover every version.
  absl::StatusOr<std::vector<VersionedDtab>> all = store.ChangesSince(0, 1'000'000);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(static_cast<int64_t>(all->size()), total_versions);
  for (size_t i = 1; i < all->size(); ++i) {
    ASSERT_LT((*all)[i - 1].revision, (*all)[i].revision) << "at change " << i;
  }
  if (!all->empty()) {
    EXPECT_THAT(store.CurrentRevision(), IsOkAndHolds(all->back().revision));
  }
}

TEST(CrashTest, AcknowledgedWritesSurviveRepeatedSigkill) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.File("crash.db");
  constexpr int kRounds = 25;
  std::mt19937 rng(0x5eed'd7ab);
  std::uniform_int_distribution<size_t> kill_after(1, 40);

  std::vector<Ack> acked;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    const size_t target = kill_after(rng);
    std::vector<std::string> lines;
    {
      Child child;
      ASSERT_TRUE(child.Start(path, static_cast<uint32_t>(rng())));
      child.ReadLines(target, &lines);
      child.Kill();
      const int status = child.Wait();
      // Lines already in the pipe were acknowledged before the kill.
      child.Drain(&lines);
      ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
          << "crash_writer ended on its own (wait status " << status
          << "); see its stderr above";
      ASSERT_GE(lines.size(), target);
      EXPECT_EQ(child.partial(), "");
    }
    for (const std::string& line : lines) {
      Ack a;
      ASSERT_TRUE(ParseAck(line, &a)) << "bad line: " << line;
      acked.push_back(std::move(a));
    }
    VerifyStore(path, acked, round);
    if (::testing::Test::HasFatalFailure()) {
      return;
    }
  }
  EXPECT_GE(acked.size(), static_cast<size_t>(kRounds));
}

}  // namespace
}  // namespace dtabd::storage
