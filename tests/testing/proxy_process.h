// ProxyProcess: the real dtab-proxy binary as a child process, for
// integration tests. Start() makes a fresh temporary directory, writes the
// given files and the YAML configuration there (placeholders substituted),
// runs `dtab-proxy --config DIR/proxy.yaml` and parses its serving line
// ("dtab-proxy: serving admin=HOST:PORT LABEL=HOST:PORT ...") into the
// admin address and each router's listener addresses. Stop() sends SIGTERM
// and waits; Kill() sends SIGKILL. The destructor stops a running proxy and
// removes the directory.
//
// Relative paths in the configuration (root_dir, cache_dir, token_file)
// are relative to the config file, i.e. to dir().
//
// Thread-safety: not thread-safe; start it from the test's main thread
// (see ChildProcess).
#ifndef DTABD_TESTS_TESTING_PROXY_PROCESS_H_
#define DTABD_TESTS_TESTING_PROXY_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/testing/child_process.h"

namespace dtabd::testing {

class ProxyProcess {
 public:
  struct Options {
    // The configuration's YAML text. Every "{{DIR}}" becomes dir(), then
    // each `substitutions` key becomes its value. When the text has no
    // top-level `admin:` key, "admin: {ip: 127.0.0.1, port: 0}" is added
    // (the default, 9990, would clash between tests).
    std::string yaml;
    std::vector<std::pair<std::string, std::string>> substitutions;
    // Files to write below dir() before starting (relative path,
    // contents), e.g. {"disco/world", "127.0.0.1 8080\n"} for an io.l5d.fs
    // namer with `root_dir: disco`. Parent directories are created.
    std::vector<std::pair<std::string, std::string>> files;
    // Directories to create below dir() (e.g. an empty namer root).
    std::vector<std::string> dirs;
    // The dtab-proxy binary (default: the one CMake built, DTAB_PROXY_PATH).
    std::string binary;
    // More flags after --config FILE.
    std::vector<std::string> extra_args;
    // How long startup may take, and how long a SIGTERM'd proxy may take to
    // exit before it is SIGKILLed.
    std::chrono::milliseconds timeout{10'000};
  };

  // A router listener from the serving line.
  struct Listener {
    std::string label;
    std::string address;  // "127.0.0.1:PORT"
  };

  // Starts dtab-proxy. Internal: a file or directory cannot be written, or
  // a system call failed; Unavailable: dtab-proxy exited (e.g. exit status
  // 2 for a bad configuration, with its stderr in the message) or did not
  // print its serving line in time.
  static absl::StatusOr<std::unique_ptr<ProxyProcess>> Start(Options options);

  ProxyProcess(const ProxyProcess&) = delete;
  ProxyProcess& operator=(const ProxyProcess&) = delete;
  // Stops the proxy if it runs, reaps it and removes dir().
  ~ProxyProcess();

  // The admin listener, "127.0.0.1:PORT".
  const std::string& admin_address() const { return admin_address_; }
  // Every router listener in serving-line order (a router with two servers
  // appears twice, in configuration order).
  const std::vector<Listener>& listeners() const { return listeners_; }
  // The `index`th listener of router `label`, or "" when there is none.
  std::string address(absl::string_view label, size_t index = 0) const;

  // The temporary directory holding the configuration and `files`.
  const std::string& dir() const { return dir_.path(); }
  std::string config_path() const { return dir_.Join("proxy.yaml"); }
  // The configuration as written (placeholders substituted).
  const std::string& config_text() const { return config_text_; }
  // dtab-proxy's standard error goes to this file.
  std::string stderr_path() const { return dir_.Join("dtab-proxy.stderr"); }
  std::string stderr_output() const { return child_->stderr_output(); }
  // The child's pid, or -1 when it is not running.
  pid_t pid() const { return child_->pid(); }

  // SIGTERM, then wait for the exit (SIGKILL after the timeout); returns
  // the exit status (0 after a clean drain) as ChildProcess::Stop does.
  absl::StatusOr<int> Stop();
  // SIGKILL and reap; returns 128 + SIGKILL normally.
  absl::StatusOr<int> Kill();

 private:
  explicit ProxyProcess(TempDir dir) : dir_(std::move(dir)) {}

  TempDir dir_;
  std::string config_text_;
  std::string admin_address_;
  std::vector<Listener> listeners_;
  // Declared after dir_: destroyed (the proxy stopped) before the
  // directory is removed.
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace dtabd::testing

#endif  // DTABD_TESTS_TESTING_PROXY_PROCESS_H_
