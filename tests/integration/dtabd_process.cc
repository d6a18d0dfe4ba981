#include "tests/integration/dtabd_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

#ifndef DTABD_PATH
#error "DTABD_PATH must name the dtabd binary"
#endif

namespace dtabd::integration {
namespace {

using Clock = std::chrono::steady_clock;

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Milliseconds left until `deadline`, for poll (0 when past).
int MillisUntil(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// A wait status as Wait reports it.
int ExitCode(int wstatus) {
  if (WIFEXITED(wstatus)) {
    return WEXITSTATUS(wstatus);
  }
  if (WIFSIGNALED(wstatus)) {
    return 128 + WTERMSIG(wstatus);
  }
  return -1;
}

absl::StatusOr<std::string> MakeTempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::error_code ec;
  std::string pattern =
      (base != nullptr && *base != '\0' ? std::filesystem::path(base)
                                        : std::filesystem::temp_directory_path(ec)) /
      "dtabd-it-XXXXXX";
  if (ec) {
    return absl::InternalError(absl::StrCat("temp_directory_path: ", ec.message()));
  }
  if (mkdtemp(pattern.data()) == nullptr) {
    return Errno(absl::StrCat("mkdtemp ", pattern));
  }
  return pattern;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DtabdProcess>> DtabdProcess::Start(Options options) {
  if (options.binary.empty()) {
    options.binary = DTABD_PATH;
  }
  std::unique_ptr<DtabdProcess> p(new DtabdProcess(std::move(options)));
  absl::StatusOr<std::string> dir = MakeTempDir();
  if (!dir.ok()) {
    return dir.status();
  }
  p->dir_ = *std::move(dir);
  if (!p->options_.tokens.empty()) {
    std::ofstream out(p->dir_ + "/tokens");
    out << p->options_.tokens;
    if (!out.flush()) {
      return absl::InternalError(absl::StrCat("cannot write ", p->dir_, "/tokens"));
    }
  }
  if (absl::Status s = p->Spawn(); !s.ok()) {
    return s;  // the destructor kills and reaps a half-started child
  }
  return p;
}

DtabdProcess::~DtabdProcess() {
  if (pid_ > 0) {
    (void)Stop();
  }
  CloseFds();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

absl::Status DtabdProcess::Spawn() {
  std::vector<std::string> args = {options_.binary, "--db",          db_path(),
                                   "--grpc-addr",   "127.0.0.1:0",   "--http-addr",
                                   "127.0.0.1:0",   "--admin-addr",  "127.0.0.1:0"};
  if (!options_.tokens.empty()) {
    args.push_back("--tokens");
    args.push_back(dir_ + "/tokens");
  }
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  // argv is built before fork: the child calls only async-signal-safe
  // functions.
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);

  const int err = open(stderr_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (err < 0) {
    return Errno(absl::StrCat("open ", stderr_path()));
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(err);
    return Errno("pipe2");
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(out[0]);
    close(out[1]);
    close(err);
    return Errno("fork");
  }
  if (pid == 0) {
    // Die with the test, even if it is killed before its destructors run.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(125);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(out[1], STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0) {  // clears O_CLOEXEC
      _exit(126);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err);
  pid_ = pid;
  stdout_fd_ = out[0];
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd_ < 0) {
    const absl::Status s = Errno("pidfd_open");
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    CloseFds();
    return s;
  }

  // Read the serving line; EOF means dtabd exited.
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  std::string line;
  while (line.find('\n') == std::string::npos) {
    pollfd pfd{stdout_fd_, POLLIN, 0};
    const int n = poll(&pfd, 1, MillisUntil(deadline));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return Errno("poll");
    }
    if (n == 0) {
      return absl::UnavailableError(absl::StrCat(
          "dtabd did not print its serving line within ", options_.timeout.count(),
          " ms; stdout: '", line, "'; stderr: '", stderr_output(), "'"));
    }
    char buf[512];
    const ssize_t r = read(stdout_fd_, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0) {
      return Errno("read");
    }
    if (r == 0) {
      absl::StatusOr<int> code = Wait(options_.timeout);
      return absl::UnavailableError(absl::StrCat(
          "dtabd exited before serving (", code.ok() ? absl::StrCat("status ", *code)
                                                     : code.status().ToString(),
          "); stdout: '", line, "'; stderr: '", stderr_output(), "'"));
    }
    line.append(buf, static_cast<size_t>(r));
  }
  line.resize(line.find('\n'));
  if (line.rfind("dtabd: serving ", 0) != 0) {
    return absl::UnavailableError(absl::StrCat("unexpected serving line '", line, "'"));
  }
  // "dtabd: serving grpc=H:P http=H:P admin=H:P"
  for (absl::string_view field : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&field, "grpc=")) {
      grpc_address_ = std::string(field);
    } else if (absl::ConsumePrefix(&field, "http=")) {
      http_address_ = std::string(field);
    } else if (absl::ConsumePrefix(&field, "admin=")) {
      admin_address_ = std::string(field);
    }
  }
  if (grpc_address_.empty()) {
    return absl::UnavailableError(absl::StrCat("no grpc= in serving line '", line, "'"));
  }
  return absl::OkStatus();
}

std::string DtabdProcess::stderr_output() const {
  std::ifstream in(stderr_path());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

absl::Status DtabdProcess::Signal(int sig) {
  if (pid_ <= 0) {
    return absl::FailedPreconditionError("dtabd is not running");
  }
  if (kill(pid_, sig) != 0) {
    return Errno("kill");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> DtabdProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) {
    return absl::FailedPreconditionError("dtabd is not running");
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    pollfd pfd{pidfd_, POLLIN, 0};
    const int n = poll(&pfd, 1, MillisUntil(deadline));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return Errno("poll pidfd");
    }
    if (n == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("dtabd (pid ", pid_, ") still running after ", timeout.count(), " ms"));
    }
    break;
  }
  int wstatus = 0;
  while (waitpid(pid_, &wstatus, 0) < 0) {
    if (errno != EINTR) {
      return Errno("waitpid");
    }
  }
  pid_ = -1;
  CloseFds();
  return ExitCode(wstatus);
}

absl::StatusOr<int> DtabdProcess::Stop() {
  if (absl::Status s = Signal(SIGTERM); !s.ok()) {
    return s;
  }
  absl::StatusOr<int> code = Wait(options_.timeout);
  if (code.status().code() != absl::StatusCode::kDeadlineExceeded) {
    return code;
  }
  (void)Signal(SIGKILL);
  absl::StatusOr<int> killed = Wait(options_.timeout);
  if (!killed.ok()) {
    return killed.status();
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "dtabd ignored SIGTERM for ", options_.timeout.count(), " ms and was killed"));
}

absl::Status DtabdProcess::Restart() {
  absl::StatusOr<int> code = Stop();
  if (!code.ok()) {
    return code.status();
  }
  if (*code != 0) {
    return absl::InternalError(absl::StrCat("dtabd exited with status ", *code, " on SIGTERM"));
  }
  grpc_address_.clear();
  http_address_.clear();
  admin_address_.clear();
  return Spawn();
}

void DtabdProcess::CloseFds() {
  if (pidfd_ >= 0) {
    close(pidfd_);
    pidfd_ = -1;
  }
  if (stdout_fd_ >= 0) {
    close(stdout_fd_);
    stdout_fd_ = -1;
  }
}

}  // namespace dtabd::integration
