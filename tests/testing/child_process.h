// ChildProcess: a server binary run as a child process by an integration
// test. Spawn() fork/execs it with stdout on a pipe and stderr appended to
// a file, and reads its first stdout line (the "serving" line naming the
// bound addresses, e.g. "dtabd: serving grpc=127.0.0.1:41234 ..."). Stop()
// sends SIGTERM and, if the child has not exited within the timeout,
// SIGKILL; Kill() sends SIGKILL at once; both reap it. The destructor stops
// a running child. A stopped ChildProcess can be spawned again (same
// arguments, same stderr file).
//
// Waiting never sleeps: startup polls the stdout pipe, exit polls a pidfd,
// each with a deadline.
//
// Also: MakeTempDir and TempDir, unique temporary directories for tests.
//
// Thread-safety: not thread-safe; use from one thread (the test's). The
// child is started with PR_SET_PDEATHSIG, so it dies with the thread that
// started it: start it from the test's main thread.
#ifndef DTABD_TESTS_TESTING_CHILD_PROCESS_H_
#define DTABD_TESTS_TESTING_CHILD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dtabd::testing {

// Creates a fresh directory "<base>/<prefix>XXXXXX", where base is
// $TEST_TMPDIR if set, else the system's temporary directory, and returns
// its path. Internal: the directory cannot be made.
absl::StatusOr<std::string> MakeTempDir(absl::string_view prefix);

// A temporary directory removed (recursively) by the destructor.
class TempDir {
 public:
  // Internal: as MakeTempDir.
  static absl::StatusOr<TempDir> Create(absl::string_view prefix = "dtabd-test-");

  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // path() + "/" + relative.
  std::string Join(absl::string_view relative) const;

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;  // empty once moved from
};

// Writes `contents` to `path`, atomically: into a hidden temporary file in
// the same directory, then renamed over `path` (creating parent
// directories). Internal naming the file on failure.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// The contents of `path`, or "" when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

class ChildProcess {
 public:
  struct Options {
    // Names the program in messages, e.g. "dtabd".
    std::string name;
    // argv[0] is the binary's path.
    std::vector<std::string> argv;
    // The child's stderr is appended to this file (REQUIRED).
    std::string stderr_path;
    // The first stdout line must start with this, e.g. "dtabd: serving ".
    std::string serving_prefix;
    // How long startup may take, and how long a SIGTERM'd child may take
    // to exit before it is SIGKILLed.
    std::chrono::milliseconds timeout{10'000};
  };

  explicit ChildProcess(Options options) : options_(std::move(options)) {}
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Stops the child if it runs (as Stop) and reaps it.
  ~ChildProcess();

  // Starts the child and returns its serving line (without the newline;
  // also kept in serving_line()). FailedPrecondition: already running.
  // Internal: a system call failed. Unavailable: the child exited, or did
  // not print its serving line in time, or printed another line (the
  // message says which, with its exit status and its stderr); the child is
  // then killed and reaped.
  absl::StatusOr<std::string> Spawn();

  const Options& options() const { return options_; }
  const std::string& serving_line() const { return serving_line_; }
  // The child's pid, or -1 when it is not running.
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // The contents of the stderr file so far.
  std::string stderr_output() const { return ReadFileOrEmpty(options_.stderr_path); }

  // Sends `sig`. FailedPrecondition: not running.
  absl::Status Signal(int sig);

  // Waits up to `timeout` for the child to exit and reaps it. Returns its
  // exit code, or 128 + the signal number that killed it. DeadlineExceeded:
  // still running. FailedPrecondition: not running.
  absl::StatusOr<int> Wait(std::chrono::milliseconds timeout);

  // SIGTERM, then SIGKILL if the child has not exited within the timeout;
  // returns the exit status as Wait does (DeadlineExceeded, after reaping,
  // when it had to be killed).
  absl::StatusOr<int> Stop();

  // SIGKILL, then reap; returns the exit status as Wait does (normally
  // 128 + SIGKILL).
  absl::StatusOr<int> Kill();

 private:
  absl::Status ReadServingLine();
  // Kills and reaps a child that failed to start.
  void Abandon();
  // Closes the descriptors of a reaped child.
  void CloseFds();

  const Options options_;
  std::string serving_line_;
  pid_t pid_ = -1;
  int pidfd_ = -1;      // readable when the child exits
  int stdout_fd_ = -1;  // read end of the child's stdout
};

}  // namespace dtabd::testing

#endif  // DTABD_TESTS_TESTING_CHILD_PROCESS_H_
