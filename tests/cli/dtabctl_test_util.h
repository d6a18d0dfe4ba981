// Test helpers for dtabctl's end-to-end tests: a child process with pipes
// (Child), the real dtabd on 127.0.0.1:0 (Dtabd), one dtabctl run
// (Dtabctl) and a temporary directory (TempDir).
//
// Synchronisation is by blocking reads of the children's pipes (poll with a
// generous timeout), never by sleeping. Every child is killed and reaped.
//
// The including test defines DTABCTL_PATH and DTABD_PATH (the binaries).
// Thread-safety: none; use from the test's thread.
#ifndef DTABD_TESTS_CLI_DTABCTL_TEST_UTIL_H_
#define DTABD_TESTS_CLI_DTABCTL_TEST_UTIL_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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
#include "gtest/gtest.h"

#ifndef DTABCTL_PATH
#error "DTABCTL_PATH must name the dtabctl binary"
#endif
#ifndef DTABD_PATH
#error "DTABD_PATH must name the dtabd binary"
#endif

extern char** environ;

namespace dtabd::cli::testutil {

// How long any single wait on a child may take before the test fails.
inline constexpr auto kTimeout = std::chrono::seconds(30);

// Environment variables that would change what dtabctl or gRPC does.
inline constexpr const char* kScrubbedEnv[] = {"DTABD_ADDR", "DTABD_TOKEN", "http_proxy", "https_proxy",
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
  std::optional<std::string> ReadLine() { return ReadLineFrom(&out_fd_, &out_); }
  // The same for stderr (not with keep_stderr).
  std::optional<std::string> ReadErrLine() { return ReadLineFrom(&err_fd_, &err_); }

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

  // The next line from `*fd`, buffered in `*buf`.
  std::optional<std::string> ReadLineFrom(int* fd, std::string* buf) {
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (true) {
      if (const size_t nl = buf->find('\n'); nl != std::string::npos) {
        std::string line = buf->substr(0, nl);
        buf->erase(0, nl + 1);
        return line;
      }
      if (*fd < 0) {
        return std::nullopt;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ADD_FAILURE() << "no line from child " << pid_ << " within the timeout; have '" << *buf
                      << "'";
        return std::nullopt;
      }
      pollfd p = {*fd, POLLIN, 0};
      const int n = poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno != EINTR) {
        ADD_FAILURE() << "poll: " << std::strerror(errno);
        return std::nullopt;
      }
      if (n > 0) {
        ReadSome(fd, buf);
      }
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
  std::string err_;  // stderr read but not yet returned
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
inline RunResult Dtabctl(const std::vector<std::string>& args, absl::string_view input = "",
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


}  // namespace dtabd::cli::testutil

#endif  // DTABD_TESTS_CLI_DTABCTL_TEST_UTIL_H_
