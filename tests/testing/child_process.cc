#include "tests/testing/child_process.h"

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

namespace dtabd::testing {
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

}  // namespace

absl::StatusOr<std::string> MakeTempDir(absl::string_view prefix) {
  const char* base = getenv("TEST_TMPDIR");
  std::error_code ec;
  std::string pattern =
      (base != nullptr && *base != '\0' ? std::filesystem::path(base)
                                        : std::filesystem::temp_directory_path(ec)) /
      absl::StrCat(prefix, "XXXXXX");
  if (ec) {
    return absl::InternalError(absl::StrCat("temp_directory_path: ", ec.message()));
  }
  if (mkdtemp(pattern.data()) == nullptr) {
    return Errno(absl::StrCat("mkdtemp ", pattern));
  }
  return pattern;
}

absl::StatusOr<TempDir> TempDir::Create(absl::string_view prefix) {
  absl::StatusOr<std::string> dir = MakeTempDir(prefix);
  if (!dir.ok()) {
    return dir.status();
  }
  return TempDir(*std::move(dir));
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  if (!path_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
}

std::string TempDir::Join(absl::string_view relative) const {
  return absl::StrCat(path_, "/", relative);
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  const std::filesystem::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) {
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create ", target.parent_path().string(), ": ", ec.message()));
    }
  }
  const std::filesystem::path tmp =
      target.parent_path() / absl::StrCat(".", target.filename().string(), ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    if (!out.flush()) {
      return absl::InternalError(absl::StrCat("cannot write ", tmp.string()));
    }
  }
  std::filesystem::rename(tmp, target, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot rename ", tmp.string(), " to ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    (void)Stop();
  }
  CloseFds();
}

absl::StatusOr<std::string> ChildProcess::Spawn() {
  if (pid_ > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.name, " is already running (pid ", pid_, ")"));
  }
  if (options_.argv.empty() || options_.stderr_path.empty()) {
    return absl::InvalidArgumentError("ChildProcess needs argv and stderr_path");
  }
  serving_line_.clear();
  // argv is built before fork: the child calls only async-signal-safe
  // functions.
  std::vector<std::string> args = options_.argv;
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);

  const int err =
      open(options_.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (err < 0) {
    return Errno(absl::StrCat("open ", options_.stderr_path));
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
    Abandon();
    return s;
  }
  if (absl::Status s = ReadServingLine(); !s.ok()) {
    Abandon();
    return s;
  }
  return serving_line_;
}

absl::Status ChildProcess::ReadServingLine() {
  // Read the serving line; EOF means the child exited.
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
          options_.name, " did not print its serving line within ", options_.timeout.count(),
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
          options_.name, " exited before serving (",
          code.ok() ? absl::StrCat("status ", *code) : code.status().ToString(), "); stdout: '",
          line, "'; stderr: '", stderr_output(), "'"));
    }
    line.append(buf, static_cast<size_t>(r));
  }
  line.resize(line.find('\n'));
  if (line.rfind(options_.serving_prefix, 0) != 0) {
    return absl::UnavailableError(absl::StrCat("unexpected serving line '", line, "' from ",
                                               options_.name, "; stderr: '", stderr_output(),
                                               "'"));
  }
  serving_line_ = std::move(line);
  return absl::OkStatus();
}

void ChildProcess::Abandon() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  CloseFds();
}

absl::Status ChildProcess::Signal(int sig) {
  if (pid_ <= 0) {
    return absl::FailedPreconditionError(absl::StrCat(options_.name, " is not running"));
  }
  if (kill(pid_, sig) != 0) {
    return Errno("kill");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) {
    return absl::FailedPreconditionError(absl::StrCat(options_.name, " is not running"));
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
      return absl::DeadlineExceededError(absl::StrCat(
          options_.name, " (pid ", pid_, ") still running after ", timeout.count(), " ms"));
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

absl::StatusOr<int> ChildProcess::Stop() {
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
  return absl::DeadlineExceededError(absl::StrCat(options_.name, " ignored SIGTERM for ",
                                                  options_.timeout.count(),
                                                  " ms and was killed"));
}

absl::StatusOr<int> ChildProcess::Kill() {
  if (absl::Status s = Signal(SIGKILL); !s.ok()) {
    return s;
  }
  return Wait(options_.timeout);
}

void ChildProcess::CloseFds() {
  if (pidfd_ >= 0) {
    close(pidfd_);
    pidfd_ = -1;
  }
  if (stdout_fd_ >= 0) {
    close(stdout_fd_);
    stdout_fd_ = -1;
  }
}

}  // namespace dtabd::testing
