// DtabdProcess: the real dtabd binary as a child process, for integration
// tests. Start() makes a fresh temporary directory, fork/execs dtabd on
// 127.0.0.1:0 with its database there, and reads the bound gRPC address
// from dtabd's first stdout line ("dtabd: serving grpc=HOST:PORT ...").
// The destructor stops dtabd (SIGTERM, then SIGKILL after the timeout),
// reaps it and removes the directory. Restart() stops it and starts it
// again on the same database.
//
// Waiting never sleeps: startup polls the stdout pipe, exit polls a pidfd,
// each with a deadline (tests/testing/child_process.h does the process
// handling).
//
// Thread-safety: not thread-safe; use from one thread (the test's). The
// child is started with PR_SET_PDEATHSIG, so it dies with the thread that
// started it: start it from the test's main thread.
#ifndef DTABD_TESTS_INTEGRATION_DTABD_PROCESS_H_
#define DTABD_TESTS_INTEGRATION_DTABD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/testing/child_process.h"

namespace dtabd::integration {

class DtabdProcess {
 public:
  struct Options {
    // The dtabd binary (default: the one CMake built, DTABD_PATH).
    std::string binary;
    // When non-empty, written to DIR/tokens and passed as --tokens.
    std::string tokens;
    // More flags, after --db, --grpc-addr, --http-addr, --admin-addr and
    // --tokens.
    std::vector<std::string> extra_args;
    // How long startup may take, and how long a SIGTERM'd dtabd may take to
    // exit before it is SIGKILLed.
    std::chrono::milliseconds timeout{10'000};
  };

  // Starts dtabd on a fresh database. Internal: a system call failed;
  // Unavailable: dtabd exited or did not print its serving line in time
  // (the message says which, with its exit status and its stderr).
  static absl::StatusOr<std::unique_ptr<DtabdProcess>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<DtabdProcess>> Start() { return Start(Options()); }

  DtabdProcess(const DtabdProcess&) = delete;
  DtabdProcess& operator=(const DtabdProcess&) = delete;
  // Stops dtabd if it runs, reaps it and removes dir().
  ~DtabdProcess();

  // The bound addresses, "127.0.0.1:PORT", from the serving line (they
  // change on Restart). Every listener is started on port 0.
  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& http_address() const { return http_address_; }
  const std::string& admin_address() const { return admin_address_; }
  // The temporary directory holding the database (and tokens file).
  const std::string& dir() const { return dir_; }
  std::string db_path() const { return dir_ + "/dtabd.db"; }
  // dtabd's standard error goes to this file (appended across restarts).
  std::string stderr_path() const { return dir_ + "/dtabd.stderr"; }
  // The contents of stderr_path() so far.
  std::string stderr_output() const;
  // The child's pid, or -1 when it is not running.
  pid_t pid() const { return child_ == nullptr ? -1 : child_->pid(); }

  // Sends `sig` to dtabd. FailedPrecondition: not running.
  absl::Status Signal(int sig);

  // Waits up to `timeout` for dtabd to exit and reaps it. Returns its exit
  // code, or 128 + the signal number that killed it. DeadlineExceeded:
  // still running. FailedPrecondition: not running.
  absl::StatusOr<int> Wait(std::chrono::milliseconds timeout);

  // SIGTERM, then SIGKILL if dtabd has not exited within the timeout;
  // returns the exit status as Wait does.
  absl::StatusOr<int> Stop();

  // Stop(), then start again on the same database (with a new port).
  // Fails as Start does, or with Internal when the stop did not exit 0.
  absl::Status Restart();

 private:
  explicit DtabdProcess(Options options) : options_(std::move(options)) {}

  // Starts dtabd (child_) and reads the addresses from its serving line.
  absl::Status Spawn();

  const Options options_;
  std::string dir_;
  std::string grpc_address_;
  std::string http_address_;
  std::string admin_address_;
  // The process; created by Start (after dir_), reused by Restart.
  std::unique_ptr<testing::ChildProcess> child_;
};

}  // namespace dtabd::integration

#endif  // DTABD_TESTS_INTEGRATION_DTABD_PROCESS_H_
