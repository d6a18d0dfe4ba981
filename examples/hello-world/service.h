// What the hello-world example services (hello, world) share: flag parsing,
// the address they report in their answers, and waiting for SIGTERM or
// SIGINT.
//
// Thread-safety: ParseFlagsOrExit and BlockStopSignals belong at the top of
// main(), before any thread starts. SelfAddress is thread-safe.
#ifndef DTABD_EXAMPLES_HELLO_WORLD_SERVICE_H_
#define DTABD_EXAMPLES_HELLO_WORLD_SERVICE_H_

#include <signal.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace dtabd::examples {

// A flag given as `--name VALUE` or `--name=VALUE`. `value` holds the
// default on entry and the given value afterwards; it must outlive the
// ParseFlagsOrExit call.
struct Flag {
  const char* name;  // without the leading "--"
  std::string* value;
  const char* help;
};

// Parses argv[1..] against `flags`. Returns nullopt when main() should go
// on; otherwise main() should return the given exit status: 0 after
// printing the usage for --help or -h (to stdout), 2 after printing what is
// wrong and the usage (to stderr) for an unknown flag, a flag without a
// value or a positional argument. `summary` is the usage's first line.
std::optional<int> ParseFlagsOrExit(int argc, char** argv, absl::string_view summary,
                                    const std::vector<Flag>& flags);

// The address a service names in its answers ("127.0.0.1:7777"): the
// --listen text until Set() is given the bound address (the two differ
// only for port 0, whose bound port nobody can know, and so send requests
// to, before the service prints its serving line).
class SelfAddress {
 public:
  explicit SelfAddress(std::string listen) : address_(std::move(listen)) {}
  SelfAddress(const SelfAddress&) = delete;
  SelfAddress& operator=(const SelfAddress&) = delete;

  void Set(std::string address) ABSL_LOCKS_EXCLUDED(mu_);
  std::string Get() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::string address_ ABSL_GUARDED_BY(mu_);
};

// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread
// it starts afterwards, and returns that set for WaitForStopSignal. Also
// ignores SIGPIPE (a client that hangs up must not kill the service).
// REQUIRES: called before any other thread starts.
sigset_t BlockStopSignals();

// Waits until SIGTERM or SIGINT arrives and returns its number.
// REQUIRES: `signals` came from BlockStopSignals() in this process.
int WaitForStopSignal(const sigset_t& signals);

}  // namespace dtabd::examples

#endif  // DTABD_EXAMPLES_HELLO_WORLD_SERVICE_H_
