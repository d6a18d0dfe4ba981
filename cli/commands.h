// dtabctl's commands. Each command takes its arguments (after the command
// name) and streams, and returns the process exit status, one of the
// kExit* codes below (distinct, and documented in `dtabctl help`).
//
// Offline commands (fmt, simplify, lookup, delegate, explain --dtab) work on
// their arguments alone; remote commands (list, get, create, apply, ...)
// talk to a dtabd server over gRPC (cli/remote_commands.h).
//
// Thread-safety: none needed; one command runs per process.
#ifndef DTABD_CLI_COMMANDS_H_
#define DTABD_CLI_COMMANDS_H_

#include <iosfwd>
#include <string>
#include <vector>

namespace dtabd::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitOther = 1;        // any error not listed below
inline constexpr int kExitUsage = 2;        // also parse errors (INVALID_ARGUMENT)
inline constexpr int kExitBindFailed = 3;   // delegate, explain: the path did not bind
inline constexpr int kExitNotFound = 4;     // NOT_FOUND: no such namespace or version
inline constexpr int kExitConflict = 5;     // ALREADY_EXISTS, or ABORTED (stale version)
inline constexpr int kExitUnavailable = 6;  // UNAVAILABLE, DEADLINE_EXCEEDED: server unreachable
inline constexpr int kExitAuth = 7;         // UNAUTHENTICATED, PERMISSION_DENIED
inline constexpr int kExitRolloutTimeout = 8;   // rollout --wait: --timeout ran out first
inline constexpr int kExitRolloutRejected = 9;  // rollout --wait: a subscriber NACKed

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// Runs `dtabctl ARGS...` (args excludes the program name). Remote commands
// also read the environment (DTABD_ADDR, DTABD_TOKEN).
int RunDtabctl(const std::vector<std::string>& args, Io io);

}  // namespace dtabd::cli

#endif  // DTABD_CLI_COMMANDS_H_
