// End-to-end tests of dtabctl's remote commands: each test starts the real
// dtabd (DTABD_PATH) on 127.0.0.1:0 with a temporary database, reads the
// bound port from its "dtabd: serving grpc=..." line, and runs the real
// dtabctl binary (DTABCTL_PATH) as a child process, checking its stdout,
// stderr and exit status (0 ok, 1 other, 2 usage or invalid dtab, 3 bind
// failure, 4 not found, 5 conflict, 6 unreachable, 7 auth).
//
// Synchronisation is by blocking reads of the children's pipes (poll with a
// generous timeout), never by sleeping. Every child is killed and reaped.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "dtabd/v1/dtab.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

#ifndef DTABCTL_PATH
#error "DTABCTL_PATH must name the dtabctl binary"
#endif
#ifndef DTABD_PATH
#error "DTABD_PATH must name the dtabd binary"
#endif

extern char** environ;

namespace dtabd::cli {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

// How long any single wait on a child may take before the test fails.
constexpr auto kTimeout = std::chrono::seconds(30);

// Environment variables that would change what dtabctl or gRPC does.
constexpr const char* kScrubbedEnv[] = {"DTABD_ADDR", "DTABD_TOKEN", "http_proxy", "https_proxy",
                                        "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy", "no_grpc_proxy",
                                        "all_proxy",  "ALL_PROXY"};

// A running child process with pipes to its stdin, stdout and stderr.
// Destruction kills (SIGKILL) and reaps it if it is still running.
class Child {
 public:
  // Starts `argv` with the test's environment minus kScrubbedEnv plus `env`.
  // `keep_stderr`: the child's stderr goes to ours (for dtabd's logs).
  static std::unique_ptr<Child> Start(const std::vector<std::string>& argv,
                                      const std::map<std::string, std::string>& env = {},
                                      bool keep_stderr = false) {
    // A child that exits without reading stdin must not kill us with SIGPIPE.
    signal(SIGPIPE, SIG_IGN);
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
        pipe2(err_pipe, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << std::strerror(errno);
      return nullptr;
    }
    // Build argv and envp before fork: the child only calls
    // async-signal-safe functions.
    std::vector<std::string> args = argv;
    std::vector<char*> cargv;
    for (std::string& s : args) {
      cargv.push_back(s.data());
    }
    cargv.push_back(nullptr);
    std::vector<std::string> vars;
    for (char** e = environ; *e != nullptr; ++e) {
      const absl::string_view var(*e);
      const absl::string_view name = var.substr(0, var.find('='));
      bool scrub = env.count(std::string(name)) > 0;
      for (const char* s : kScrubbedEnv) {
        scrub = scrub || name == s;
      }
      if (!scrub) {
        vars.emplace_back(var);
      }
    }
    for (const auto& [name, value] : env) {
      vars.push_back(absl::StrCat(name, "=", value));
    }
    std::vector<char*> cenv;
    for (std::string& s : vars) {
      cenv.push_back(s.data());
    }
    cenv.push_back(nullptr);

    const pid_t pid = fork();
    if (pid < 0) {
      ADD_FAILURE() << "fork: " << std::strerror(errno);
      return nullptr;
    }
    if (pid == 0) {
      if (dup2(in_pipe[0], STDIN_FILENO) < 0 || dup2(out_pipe[1], STDOUT_FILENO) < 0 ||
          (!keep_stderr && dup2(err_pipe[1], STDERR_FILENO) < 0)) {
        _exit(126);
      }
      execve(cargv[0], cargv.data(), cenv.data());
      _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    auto child = std::unique_ptr<Child>(new Child(pid, in_pipe[1], out_pipe[0], err_pipe[0]));
    if (keep_stderr) {
      child->CloseFd(&child->err_fd_);
    }
    return child;
  }

  ~Child() {
    CloseFd(&in_fd_);
    CloseFd(&out_fd_);
    CloseFd(&err_fd_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  // Closes the child's stdin (it reads end of file).
  void CloseStdin() { CloseFd(&in_fd_); }

  // The next line of stdout (without "\n"), or nullopt at end of file or
  // after kTimeout (a test failure).
  std::optional<std::string> ReadLine() {
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (true) {
      if (const size_t nl = out_.find('\n'); nl != std::string::npos) {
        std::string line = out_.substr(0, nl);
        out_.erase(0, nl + 1);
        return line;
      }
      if (out_fd_ < 0) {
        return std::nullopt;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ADD_FAILURE() << "no line from child " << pid_ << " within the timeout; have '" << out_
                      << "'";
        return std::nullopt;
      }
      pollfd p = {out_fd_, POLLIN, 0};
      const int n = poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno != EINTR) {
        ADD_FAILURE() << "poll: " << std::strerror(errno);
        return std::nullopt;
      }
      if (n > 0) {
        ReadSome(&out_fd_, &out_);
      }
    }
  }

  // Feeds `input` to stdin (then closes it), collects stdout and stderr to
  // end of file and reaps the child. Returns its exit status, -1 if it did
  // not exit normally or took longer than kTimeout (then it is killed).
  int Communicate(absl::string_view input, std::string* out, std::string* err) {
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    size_t written = 0;
    if (input.empty()) {
      CloseFd(&in_fd_);
    }
    while (in_fd_ >= 0 || out_fd_ >= 0 || err_fd_ >= 0) {
      pollfd fds[3];
      int* owners[3];
      nfds_t n = 0;
      if (in_fd_ >= 0) {
        fds[n] = {in_fd_, POLLOUT, 0};
        owners[n++] = &in_fd_;
      }
      if (out_fd_ >= 0) {
        fds[n] = {out_fd_, POLLIN, 0};
        owners[n++] = &out_fd_;
      }
      if (err_fd_ >= 0) {
        fds[n] = {err_fd_, POLLIN, 0};
        owners[n++] = &err_fd_;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      const int ready = left.count() > 0 ? poll(fds, n, static_cast<int>(left.count())) : 0;
      if (ready < 0 && errno == EINTR) {
        continue;
      }
      if (ready <= 0) {
        ADD_FAILURE() << (ready == 0 ? "child timed out" : std::strerror(errno));
        kill(pid_, SIGKILL);
        break;
      }
      for (nfds_t i = 0; i < n; ++i) {
        if (fds[i].revents == 0) {
          continue;
        }
        int* fd = owners[i];
        if (fd == &in_fd_) {
          const ssize_t w = write(*fd, input.data() + written, input.size() - written);
          if (w > 0) {
            written += static_cast<size_t>(w);
          }
          if (w < 0 || written == input.size()) {
            CloseFd(fd);
          }
          continue;
        }
        ReadSome(fd, fd == &out_fd_ ? &out_ : &err_);
      }
    }
    *out = std::move(out_);
    *err = std::move(err_);
    return Wait();
  }

  // Sends `sig` and reaps the child, escalating to SIGKILL if it has not
  // exited within kTimeout. Returns the wait status.
  int Terminate(int sig) {
    if (pid_ <= 0) {
      return exit_status_;
    }
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    kill(pid_, sig);
    if (pidfd >= 0) {
      pollfd p = {pidfd, POLLIN, 0};
      int n;
      do {
        n = poll(&p, 1, static_cast<int>(kTimeout / std::chrono::milliseconds(1)));
      } while (n < 0 && errno == EINTR);
      if (n == 0) {
        ADD_FAILURE() << "child " << pid_ << " ignored signal " << sig;
        kill(pid_, SIGKILL);
      }
      close(pidfd);
    }
    Wait();
    return raw_status_;
  }

 private:
  Child(pid_t pid, int in_fd, int out_fd, int err_fd)
      : pid_(pid), in_fd_(in_fd), out_fd_(out_fd), err_fd_(err_fd) {}

  static void CloseFd(int* fd) {
    if (*fd >= 0) {
      close(*fd);
      *fd = -1;
    }
  }

  // One read from `*fd` into `buf`; closes it at end of file or error.
  static void ReadSome(int* fd, std::string* buf) {
    char chunk[4096];
    const ssize_t r = read(*fd, chunk, sizeof(chunk));
    if (r > 0) {
      buf->append(chunk, static_cast<size_t>(r));
    } else if (r == 0 || errno != EINTR) {
      CloseFd(fd);
    }
  }

  // Reaps the child; returns its exit code or -1.
  int Wait() {
    if (pid_ <= 0) {
      return exit_status_;
    }
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) {
        ADD_FAILURE() << "waitpid: " << std::strerror(errno);
        break;
      }
    }
    pid_ = -1;
    raw_status_ = status;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return exit_status_;
  }

  pid_t pid_;
  int in_fd_;
  int out_fd_;
  int err_fd_;
  std::string out_;  // stdout read but not yet returned
  std::string err_;
  int raw_status_ = 0;
  int exit_status_ = -1;
};

// A dtabd process on 127.0.0.1:0 (every listener) with a database in `dir`.
class Dtabd {
 public:
  static std::unique_ptr<Dtabd> Start(const std::string& dir,
                                      const std::vector<std::string>& extra_flags = {}) {
    std::vector<std::string> argv = {DTABD_PATH,    "--db",         dir + "/dtabd.db",
                                     "--grpc-addr", "127.0.0.1:0",  "--http-addr",
                                     "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"};
    argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
    auto d = std::unique_ptr<Dtabd>(new Dtabd());
    d->child_ = Child::Start(argv, {}, /*keep_stderr=*/true);
    if (d->child_ == nullptr) {
      return nullptr;
    }
    d->child_->CloseStdin();
    std::optional<std::string> line = d->child_->ReadLine();
    constexpr absl::string_view kPrefix = "dtabd: serving grpc=";
    if (!line || !absl::StartsWith(*line, kPrefix)) {
      ADD_FAILURE() << "dtabd did not start: '" << line.value_or("<eof>") << "'";
      return nullptr;
    }
    std::vector<std::string> fields = absl::StrSplit(line->substr(kPrefix.size()), ' ');
    d->grpc_addr_ = fields[0];
    return d;
  }

  const std::string& grpc_addr() const { return grpc_addr_; }

  // SIGTERM (graceful shutdown) and reap. Returns the wait status.
  int Stop() { return child_->Terminate(SIGTERM); }

 private:
  Dtabd() = default;
  std::unique_ptr<Child> child_;
  std::string grpc_addr_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs dtabctl with `args`, `input` on stdin and `env` added.
RunResult Dtabctl(const std::vector<std::string>& args, absl::string_view input = "",
                  const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv = {DTABCTL_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r;
  std::unique_ptr<Child> child = Child::Start(argv, env);
  if (child != nullptr) {
    r.exit_code = child->Communicate(input, &r.out, &r.err);
  }
  return r;
}

// A fresh temporary directory, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dtabctl_remote_XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

  // Writes `contents` to file `name` and returns its path.
  std::string Write(const std::string& name, absl::string_view contents) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << contents;
    return p;
  }

 private:
  std::string path_;
};

class DtabctlRemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dtabd_ = Dtabd::Start(dir_.path());
    ASSERT_NE(dtabd_, nullptr);
  }

  void TearDown() override {
    if (dtabd_ != nullptr) {
      dtabd_->Stop();
    }
  }

  // dtabctl with --server pointing at the test's dtabd.
  RunResult Run(std::vector<std::string> args, absl::string_view input = "") {
    args.insert(args.begin(), {"--server", dtabd_->grpc_addr()});
    return Dtabctl(args, input);
  }

  // Creates `ns` with `dtab` (through stdin); expects success.
  void Create(const std::string& ns, absl::string_view dtab) {
    const RunResult r = Run({"create", ns, "-f", "-"}, dtab);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  void Apply(const std::string& ns, absl::string_view dtab) {
    const RunResult r = Run({"apply", ns, "-f", "-"}, dtab);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  TempDir dir_;
  std::unique_ptr<Dtabd> dtabd_;
};

// The timestamp format dtabctl prints (RFC 3339, UTC).
constexpr char kTime[] = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z";

// ---------------------------------------------------------------------------
// create, get

TEST_F(DtabctlRemoteTest, CreateThenGetPrintsHeaderAndDtabText) {
  const std::string file = dir_.Write("web.dtab", "/svc => /#/io.l5d.fs;\n/svc/b => /svc/a;\n");
  RunResult r = Run({"create", "web", "-f", file, "--comment", "first \"cut\""});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("web: created version 1 \\(revision [0-9]+\\)\n"));
  EXPECT_THAT(r.err, IsEmpty());

  r = Run({"get", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_THAT(lines[0], MatchesRegex(absl::StrCat(
                            "# namespace=web version=1 revision=[0-9]+ author=anonymous "
                            "created_at=",
                            kTime, " comment=\"first \\\\\"cut\\\\\"\"")));
  EXPECT_EQ(lines[1], "/svc => /#/io.l5d.fs;");
  EXPECT_EQ(lines[2], "/svc/b => /svc/a;");
  EXPECT_EQ(lines[3], "");
}

TEST_F(DtabctlRemoteTest, GetOutputIsAValidDtabThatRoundTrips) {
  Create("web", "/a => /b;");
  const RunResult got = Run({"get", "web"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  const RunResult applied = Run({"apply", "web", "-f", "-", "--expect-version", "1"}, got.out);
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  const RunResult diff = Run({"diff", "web", "1", "2"});
  EXPECT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_THAT(diff.out, IsEmpty());
}

TEST_F(DtabctlRemoteTest, CreateExistingNamespaceExitsFive) {
  Create("web", "/a=>/b");
  const RunResult r = Run({"create", "web", "-f", "-"}, "/a=>/c");
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(r.err, "dtabctl: dtab 'web' already exists (version 1)\n");
}

TEST_F(DtabctlRemoteTest, CreateWithInvalidDtabExitsTwoWithParserMessage) {
  const RunResult r = Run({"create", "web", "-f", "-"}, "/a => ;");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, StartsWith("dtabctl: dtab 'web': "));
  EXPECT_THAT(r.err, HasSubstr("[;]"));  // the position is marked
}

TEST_F(DtabctlRemoteTest, GetMissingNamespaceOrVersionExitsFour) {
  RunResult r = Run({"get", "nope"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(r.err, "dtabctl: dtab 'nope' does not exist\n");

  Create("web", "/a=>/b");
  r = Run({"get", "web", "--version", "7"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err, "dtabctl: dtab 'web' has no version 7\n");
}

TEST_F(DtabctlRemoteTest, GetInvalidNamespaceExitsTwo) {
  const RunResult r = Run({"get", "no/such"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("dtabctl: "));
}

// ---------------------------------------------------------------------------
// apply

TEST_F(DtabctlRemoteTest, ApplyWithStaleExpectVersionExitsFiveNamingCurrentVersion) {
  Create("web", "/a=>/b");
  Apply("web", "/a=>/c");  // version 2

  RunResult r = Run({"apply", "web", "-f", "-", "--expect-version", "1"}, "/a=>/d");
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(r.err,
            "dtabctl: dtab 'web': expected version 1 but the current version is 2; re-read and "
            "retry\n");

  r = Run({"apply", "web", "-f", "-", "--expect-version=2", "--comment", "fix"}, "/a=>/d");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("web: applied as version 3 \\(revision [0-9]+\\)\n"));
  r = Run({"get", "web"});
  EXPECT_THAT(r.out, HasSubstr("version=3 "));
  EXPECT_THAT(r.out, HasSubstr("comment=\"fix\"\n/a=>/d\n"));
}

TEST_F(DtabctlRemoteTest, ApplyWithoutExpectVersionCreatesAndReplaces) {
  RunResult r = Run({"apply", "web", "-f", "-"}, "/a=>/b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("web: applied as version 1 "));
  r = Run({"apply", "web", "-f", "-"}, "/a=>/c");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("web: applied as version 2 "));
}

TEST_F(DtabctlRemoteTest, ApplyWithExpectVersionOnMissingNamespaceExitsFour) {
  const RunResult r = Run({"apply", "nope", "-f", "-", "--expect-version", "1"}, "/a=>/b");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err, "dtabctl: dtab 'nope' does not exist\n");
}

TEST_F(DtabctlRemoteTest, ApplyUnreadableFileExitsOne) {
  const RunResult r = Run({"apply", "web", "-f", dir_.path() + "/missing.dtab"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("dtabctl: cannot read '"));
  EXPECT_THAT(r.err, HasSubstr("No such file or directory"));
}

// ---------------------------------------------------------------------------
// list, history, diff, rollback, delete

TEST_F(DtabctlRemoteTest, ListPrintsTableSortedByName) {
  RunResult r = Run({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "NAMESPACE  VERSION  REVISION\n");

  Create("web", "/a=>/b");
  Create("api", "/a=>/b");
  Apply("api", "/a=>/c");
  r = Run({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAMESPACE  VERSION  REVISION\n"
            "api        2        3\n"
            "web        1        1\n");
}

TEST_F(DtabctlRemoteTest, HistoryListsVersionsNewestFirst) {
  Create("web", "/a=>/b");
  Apply("web", "/a=>/c");
  ASSERT_EQ(Run({"delete", "web", "--comment", "gone"}).exit_code, 0);

  RunResult r = Run({"history", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_THAT(lines[0], MatchesRegex("VERSION +REVISION +CREATED_AT +AUTHOR +COMMENT"));
  EXPECT_THAT(lines[1],
              MatchesRegex(absl::StrCat("3 +3 +", kTime, " +anonymous +\\(deleted\\) gone")));
  EXPECT_THAT(lines[2], MatchesRegex(absl::StrCat("2 +2 +", kTime, " +anonymous")));
  EXPECT_THAT(lines[3], MatchesRegex(absl::StrCat("1 +1 +", kTime, " +anonymous")));

  r = Run({"history", "web", "--limit", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  lines = absl::StrSplit(r.out, '\n');
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_THAT(lines[2], StartsWith("2 "));

  r = Run({"history", "nope"});
  EXPECT_EQ(r.exit_code, 4);
}

TEST_F(DtabctlRemoteTest, HistoryPagesThroughEveryVersion) {
  Create("web", "/a=>/b");
  for (int i = 0; i < 4; ++i) {
    Apply("web", absl::StrCat("/a=>/v", i));
  }
  RunResult r = Run({"--json", "history", "web", "--page-size", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << r.out;
  for (int i = 0; i < 5; ++i) {
    v1::VersionedDtab v;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[i], &v).ok()) << lines[i];
    EXPECT_EQ(v.version(), 5 - i);
    EXPECT_EQ(v.dtab(), i == 0 ? "/a=>/v3" : i == 4 ? "/a=>/b" : v.dtab());
  }

  r = Run({"history", "web", "--page-size", "2", "--limit", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << r.out;  // the header and 3 versions
  EXPECT_THAT(lines[3], StartsWith("3 "));

  r = Run({"history", "web", "--page-size", "1001"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--page-size 1001 is above the server's limit of 1000"));
}

TEST_F(DtabctlRemoteTest, DiffPrintsRemovedAndAddedDentriesInOrder) {
  Create("web", "/a=>/1;/b=>/2;/c=>/3;/d=>/4");
  Apply("web", "/b => /2;\n/c => /30;\n/d => /4;\n/a => /1;\n");
  RunResult r = Run({"diff", "web", "1", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "- /a=>/1\n"
            "- /c=>/3\n"
            "+ /c=>/30\n"
            "+ /a=>/1\n");
  EXPECT_THAT(r.err, IsEmpty());

  r = Run({"diff", "web", "2", "latest"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, IsEmpty());

  r = Run({"--json", "diff", "web", "1", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, R"({"namespace":"web","from":1,"to":2,"changes":[)"
                   R"({"op":"-","dentry":"/a=>/1"},{"op":"-","dentry":"/c=>/3"},)"
                   R"({"op":"+","dentry":"/c=>/30"},{"op":"+","dentry":"/a=>/1"}]})"
                   "\n");
}

TEST_F(DtabctlRemoteTest, DiffAgainstDeletionRemovesEverything) {
  Create("web", "/a=>/1;/b=>/2");
  ASSERT_EQ(Run({"delete", "web"}).exit_code, 0);
  const RunResult r = Run({"diff", "web", "1", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "- /a=>/1\n- /b=>/2\n");
}

TEST_F(DtabctlRemoteTest, DiffOfMissingVersionExitsFour) {
  Create("web", "/a=>/1");
  RunResult r = Run({"diff", "web", "1", "9"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err, "dtabctl: dtab 'web' has no version 9\n");
  r = Run({"diff", "web", "1", "two"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("version 'two' is not a positive integer or 'latest'"));
}

TEST_F(DtabctlRemoteTest, RollbackWritesOlderDtabAsNewVersion) {
  Create("web", "/a=>/1");
  Apply("web", "/a=>/2");
  RunResult r = Run({"rollback", "web", "--to", "1", "--expect-version", "1"});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_THAT(r.err, HasSubstr("the current version is 2"));

  r = Run({"rollback", "web", "--to", "1", "--expect-version", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              MatchesRegex("web: rolled back to version 1 as version 3 \\(revision [0-9]+\\)\n"));
  r = Run({"get", "web"});
  EXPECT_THAT(r.out, HasSubstr("version=3 "));
  EXPECT_THAT(r.out, HasSubstr("comment=\"rollback to version 1\"\n/a=>/1\n"));

  r = Run({"rollback", "web", "--to", "8"});
  EXPECT_EQ(r.exit_code, 4);
  r = Run({"rollback", "web"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--to V is required"));
}

TEST_F(DtabctlRemoteTest, DeleteThenGetExitsFourAndRollbackRestores) {
  Create("web", "/a=>/1");
  RunResult r = Run({"delete", "web", "--expect-version", "3"});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_THAT(r.err, HasSubstr("the current version is 1"));

  r = Run({"delete", "web", "--expect-version", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("web: deleted at version 2 \\(revision [0-9]+\\)\n"));

  r = Run({"get", "web"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err, "dtabctl: dtab 'web' was deleted at version 2\n");
  r = Run({"get", "web", "--version", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("^# namespace=web version=2 .* deleted comment=\"\"\n$"));
  r = Run({"delete", "web"});
  EXPECT_EQ(r.exit_code, 4);

  r = Run({"rollback", "web", "--to", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Run({"get", "web"}).exit_code, 0);
}

// ---------------------------------------------------------------------------
// explain, validate

TEST_F(DtabctlRemoteTest, ExplainPrintsBoundTreeAndDelegation) {
  Create("web", "/svc=>/#/io.l5d.fs");
  RunResult r = Run({"explain", "web", "/svc/users"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "namespace=web version=1 path=/svc/users\n"
            "bound: /#/io.l5d.fs/users\n"
            R"(delegation: {"type":"delegate","path":"/svc/users","dentry":null,"delegate":)"
            R"({"type":"leaf","path":"/#/io.l5d.fs/users",)"
            R"("dentry":{"prefix":"/svc","dst":"/#/io.l5d.fs"},)"
            R"("bound":{"id":"/#/io.l5d.fs/users","path":"/"}}})"
            "\n");
  EXPECT_THAT(r.err, IsEmpty());

  r = Run({"explain", "web", "/svc/users", "--override", "/svc/users=>/#/staging"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("bound: /#/staging\n"));
}

TEST_F(DtabctlRemoteTest, ExplainBindFailureExitsThree) {
  Create("web", "/a=>/a");
  RunResult r = Run({"explain", "web", "/a", "--max-depth", "5"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.out, HasSubstr("bound: (failed) Max recursion level: 5 reached"));
  EXPECT_THAT(r.out, HasSubstr("delegation: {\"type\":\"exception\""));
  EXPECT_EQ(r.err, "dtabctl: cannot bind /a: Max recursion level: 5 reached in Namer lookup\n");

  r = Run({"explain", "web", "/a", "--override", "/a=>"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("dtabctl: override: "));
  r = Run({"explain", "nope", "/a"});
  EXPECT_EQ(r.exit_code, 4);
}

TEST_F(DtabctlRemoteTest, ValidatePrintsCanonicalForm) {
  RunResult r = Run({"validate", "-f", "-"}, "# comment\n/svc => /#/a | /#/b;\n/x=>/y;\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/svc=>/#/a | /#/b;/x=>/y\n");

  r = Run({"validate", "--json", "-f", "-"}, "/a=>/b;/c=>/d");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::ValidateDtabResponse resp;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &resp).ok()) << r.out;
  EXPECT_EQ(resp.dentries(), 2);
}

TEST_F(DtabctlRemoteTest, ValidateInvalidDtabExitsTwoWithParserMessage) {
  const std::string file = dir_.Write("bad.dtab", "/foo/");
  const RunResult r = Run({"validate", "-f", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  // The same message as the offline parser's (dtabctl fmt dtab).
  EXPECT_EQ(r.err,
            "dtabctl: invalid dtab: label char expected but end of input found at '/foo/[]'\n");
}

// ---------------------------------------------------------------------------
// --json

TEST_F(DtabctlRemoteTest, JsonOutputIsOneParsableObjectPerResult) {
  RunResult r = Run({"create", "web", "-f", "-", "--json", "--comment", "c"}, "/a=>/b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::VersionedDtab created;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &created).ok()) << r.out;
  EXPECT_EQ(created.namespace_(), "web");
  EXPECT_EQ(created.version(), 1);
  EXPECT_EQ(created.comment(), "c");
  EXPECT_THAT(r.out, HasSubstr("\"created_at\":"));    // proto field names
  EXPECT_THAT(r.out, HasSubstr("\"deleted\":false"));  // defaults printed

  r = Run({"--json", "get", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::VersionedDtab got;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &got).ok()) << r.out;
  EXPECT_EQ(got.dtab(), "/a=>/b");
  EXPECT_EQ(got.author(), "anonymous");
  EXPECT_EQ(got.created_at().seconds(), created.created_at().seconds());

  Create("api", "/x=>/#/y");
  r = Run({"list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  v1::NamespaceSummary first;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[0], &first).ok()) << lines[0];
  EXPECT_EQ(first.namespace_(), "api");

  r = Run({"explain", "--json", "api", "/x/z"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::ExplainResponse explained;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &explained).ok()) << r.out;
  EXPECT_EQ(explained.bound(), "/#/y/z");
  EXPECT_THAT(explained.delegation_json(), StartsWith("{\"type\":\"delegate\""));
}

// ---------------------------------------------------------------------------
// watch

TEST_F(DtabctlRemoteTest, WatchPrintsEachVersionAsItArrives) {
  Create("web", "/a=>/1");
  std::unique_ptr<Child> watch =
      Child::Start({DTABCTL_PATH, "--server", dtabd_->grpc_addr(), "watch", "web"});
  ASSERT_NE(watch, nullptr);
  watch->CloseStdin();

  std::optional<std::string> line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_THAT(*line, MatchesRegex(absl::StrCat(
                         "dtab namespace=web version=1 revision=1 author=anonymous created_at=",
                         kTime, " comment=\"\" dtab=/a=>/1")));

  Apply("web", "/a => /2;\n/b => /3;\n");
  line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_THAT(*line, StartsWith("dtab namespace=web version=2 revision=2 "));
  EXPECT_THAT(*line, HasSubstr(" dtab=/a=>/2;/b=>/3"));

  ASSERT_EQ(Run({"delete", "web", "--comment", "bye"}).exit_code, 0);
  line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_THAT(*line, MatchesRegex(absl::StrCat("deleted namespace=web version=3 revision=3 "
                                               "author=anonymous created_at=",
                                               kTime, " deleted comment=\"bye\"")));

  const int status = watch->Terminate(SIGTERM);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
}

TEST_F(DtabctlRemoteTest, WatchOfAbsentNamespaceSaysSoThenSeesCreation) {
  std::unique_ptr<Child> watch =
      Child::Start({DTABCTL_PATH, "--json", "--server", dtabd_->grpc_addr(), "watch", "web"});
  ASSERT_NE(watch, nullptr);
  watch->CloseStdin();
  std::optional<std::string> line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  v1::WatchDtabResponse first;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*line, &first).ok()) << *line;
  EXPECT_TRUE(first.absent());

  Create("web", "/a=>/1");
  line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  v1::WatchDtabResponse next;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*line, &next).ok()) << *line;
  EXPECT_FALSE(next.absent());
  EXPECT_EQ(next.dtab().version(), 1);
  EXPECT_EQ(next.dtab().dtab(), "/a=>/1");
  watch->Terminate(SIGTERM);
}

TEST_F(DtabctlRemoteTest, WatchEndsWithExitSixWhenServerShutsDown) {
  std::unique_ptr<Child> watch =
      Child::Start({DTABCTL_PATH, "--server", dtabd_->grpc_addr(), "watch", "web"});
  ASSERT_NE(watch, nullptr);
  std::optional<std::string> line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(*line, "absent namespace=web");

  dtabd_->Stop();
  std::string out;
  std::string err;
  EXPECT_EQ(watch->Communicate("", &out, &err), 6) << err;
  EXPECT_THAT(err, StartsWith(absl::StrCat("dtabctl: dtabd at ", dtabd_->grpc_addr(),
                                           " is unavailable: ")));
  EXPECT_THAT(err, HasSubstr("shutting down"));
}

// ---------------------------------------------------------------------------
// connection settings and usage

TEST_F(DtabctlRemoteTest, ServerAndTokenComeFromTheEnvironment) {
  Create("web", "/a=>/1");
  const RunResult r = Dtabctl({"get", "web"}, "", {{"DTABD_ADDR", dtabd_->grpc_addr()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("# namespace=web version=1 "));
}

TEST(DtabctlRemoteUnreachableTest, ClosedPortExitsSix) {
  // A bound but not listening socket: connections are refused, and no other
  // process can take the port meanwhile.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string server = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));

  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"list"}, {"get", "web"}, {"watch", "web"}}) {
    std::vector<std::string> full = {"--server", server};
    full.insert(full.end(), args.begin(), args.end());
    const RunResult r = Dtabctl(full);
    EXPECT_EQ(r.exit_code, 6) << args[0] << ": " << r.err;
    EXPECT_THAT(r.out, IsEmpty()) << args[0];
    EXPECT_THAT(r.err, StartsWith(absl::StrCat("dtabctl: dtabd at ", server, " is unavailable: ")))
        << args[0];
  }
  // The same through $DTABD_ADDR.
  const RunResult r = Dtabctl({"list"}, "", {{"DTABD_ADDR", server}});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  close(fd);
}

TEST(DtabctlRemoteUsageTest, UsageErrorsExitTwoWithoutContactingTheServer) {
  // No server anywhere: every case must fail before connecting.
  const std::map<std::string, std::string> env = {{"DTABD_ADDR", "127.0.0.1:1"}};
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{"get"}, "dtabctl get: expected NS\n"},
      {{"get", "a", "b"}, "dtabctl get: expected NS\n"},
      {{"create", "web"}, "dtabctl create: -f FILE is required"},
      {{"apply", "web", "-f"}, "dtabctl apply: option '-f' needs a value"},
      {{"apply", "web", "-f", "-", "--expect-version", "x"},
       "dtabctl apply: --expect-version: 'x' is not a positive integer"},
      {{"get", "web", "--version", "0"}, "dtabctl get: --version: '0' is not a positive integer"},
      {{"history", "web", "--bogus", "1"}, "dtabctl history: unknown option '--bogus'"},
      {{"list", "-x"}, "dtabctl list: unknown option '-x'"},
      {{"list", "--json=yes"}, "dtabctl list: option '--json' takes no value"},
      {{"list", "--timeout", "soon"}, "dtabctl list: --timeout: 'soon' is not a positive duration"},
      {{"list", "--timeout", "-1s"}, "dtabctl list: --timeout: '-1s'"},
      {{"diff", "web", "1"}, "dtabctl diff: expected NS V1 V2"},
      {{"explain", "web"}, "dtabctl explain: expected NS and PATH"},
      {{"validate"}, "dtabctl validate: -f FILE is required"},
      {{"--json", "fmt", "path", "/a"}, "dtabctl fmt: option '--json' applies only to remote"},
  };
  for (const Case& c : cases) {
    const RunResult r = Dtabctl(c.args, "", env);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << ": " << r.err;
    EXPECT_THAT(r.out, IsEmpty()) << c.args[0];
    EXPECT_THAT(r.err, StartsWith(c.message)) << c.args[0];
    EXPECT_THAT(r.err, HasSubstr("usage: dtabctl ")) << c.args[0];
  }
}

TEST(DtabctlRemoteUsageTest, HelpDocumentsRemoteCommandsAndExitCodes) {
  RunResult r = Dtabctl({"--help"});
  ASSERT_EQ(r.exit_code, 0);
  for (const char* text :
       {"list", "get NS [--version V]", "apply NS -f FILE", "watch NS", "--server HOST:PORT",
        "DTABD_TOKEN", "4 not found", "5 conflict", "6 server unreachable", "7 authentication"}) {
    EXPECT_THAT(r.out, HasSubstr(text));
  }
  for (const char* command : {"list", "get", "create", "apply", "delete", "history", "diff",
                              "rollback", "watch", "explain", "validate"}) {
    r = Dtabctl({"help", command});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_THAT(r.out, StartsWith(absl::StrCat("usage: dtabctl ", command))) << command;
    r = Dtabctl({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_THAT(r.out, StartsWith(absl::StrCat("usage: dtabctl ", command))) << command;
  }
  r = Dtabctl({"help", "explain"});
  EXPECT_THAT(r.out, HasSubstr("dtabctl explain NS PATH [--override DTAB]"));
}

TEST(DtabctlRemoteUsageTest, TimeoutBoundsACallToAServerThatNeverAnswers) {
  // A listening socket that never accepts: the TCP handshake completes (the
  // kernel's backlog) but no HTTP/2 settings ever come back.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string server = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));

  const RunResult r = Dtabctl({"--server", server, "--timeout", "200ms", "list"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("dtabctl: no answer from dtabd at ", server,
                                             " within --timeout 200ms: ")));
  close(fd);
}

// ---------------------------------------------------------------------------
// authentication

class DtabctlRemoteAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string tokens =
        dir_.Write("tokens", "# test tokens\nrtok reader read\nwtok writer write\n");
    dtabd_ = Dtabd::Start(dir_.path(), {"--tokens", tokens});
    ASSERT_NE(dtabd_, nullptr);
  }
  void TearDown() override {
    if (dtabd_ != nullptr) {
      dtabd_->Stop();
    }
  }

  RunResult Run(std::vector<std::string> args, absl::string_view input = "",
                const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), {"--server", dtabd_->grpc_addr()});
    return Dtabctl(args, input, env);
  }

  TempDir dir_;
  std::unique_ptr<Dtabd> dtabd_;
};

TEST_F(DtabctlRemoteAuthTest, NoTokenExitsSeven) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"list"}, {"get", "web"}, {"create", "web", "-f", "-"}, {"watch", "web"}}) {
    const RunResult r = Run(args, "/a=>/b");
    EXPECT_EQ(r.exit_code, 7) << args[0] << ": " << r.err;
    EXPECT_EQ(r.err,
              "dtabctl: missing credentials: send 'authorization: Bearer TOKEN' (dtabctl "
              "--token)\n")
        << args[0];
  }
}

TEST_F(DtabctlRemoteAuthTest, UnknownTokenExitsSeven) {
  const RunResult r = Run({"--token", "nope", "list"});
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.err, "dtabctl: unknown token\n");
}

TEST_F(DtabctlRemoteAuthTest, ReadTokenCanReadButNotWrite) {
  RunResult r = Run({"create", "web", "-f", "-", "--token", "rtok"}, "/a=>/b");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.err, "dtabctl: token of 'reader' is read-only; writing needs a write token\n");
  r = Run({"list"}, "", {{"DTABD_TOKEN", "rtok"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(DtabctlRemoteAuthTest, WriteTokenWritesAndItsIdentityIsTheAuthor) {
  RunResult r = Run({"create", "web", "-f", "-", "--token", "wtok"}, "/a=>/b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // --token overrides $DTABD_TOKEN.
  r = Run({"--token=wtok", "apply", "web", "-f", "-"}, "/a=>/c", {{"DTABD_TOKEN", "rtok"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Run({"get", "web", "--version", "1"}, "", {{"DTABD_TOKEN", "rtok"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("# namespace=web version=1 "));
  EXPECT_THAT(r.out, HasSubstr(" author=writer "));
  r = Run({"history", "web", "--token", "rtok"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("\n2 +[0-9]+ +[^ ]+ +writer"));
}

}  // namespace
}  // namespace dtabd::cli
