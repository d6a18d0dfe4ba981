// dtabctl's commands. Each command takes its arguments (after the command
// name) and streams, and returns the process exit status:
//   0 success; 2 usage or parse error; 3 bind failure.
//
// Thread-safety: none needed; one command runs per process.
#ifndef DTABD_CLI_COMMANDS_H_
#define DTABD_CLI_COMMANDS_H_

#include <iosfwd>
#include <string>
#include <vector>

namespace dtabd::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;  // also parse errors
inline constexpr int kExitBindFailed = 3;

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// Runs `dtabctl ARGS...` (args excludes the program name).
int RunDtabctl(const std::vector<std::string>& args, Io io);

}  // namespace dtabd::cli

#endif  // DTABD_CLI_COMMANDS_H_
