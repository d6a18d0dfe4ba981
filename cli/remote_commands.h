// dtabctl's remote commands: list, get, create, apply, delete, history,
// diff, rollback, watch, explain (without --dtab) and validate, each a client
// of a dtabd server's dtabd.v1.DtabService over gRPC; and rollout and
// subscribers, clients of its dtabd.v1.DiscoveryService (GetRolloutStatus,
// ListSubscribers).
//
// Connection settings are the global options --server HOST:PORT (or
// $DTABD_ADDR, default 127.0.0.1:4321), --token TOKEN (or $DTABD_TOKEN; sent
// as `authorization: Bearer TOKEN`), --timeout D (the deadline of the whole
// command, default 10s) and --json (one JSON object per result on stdout).
// They may come before the command name or among its arguments.
//
// Exit status (commands.h): 0 ok; 2 usage error or INVALID_ARGUMENT (a dtab
// that does not parse); 3 explain's path did not bind; 4 NOT_FOUND;
// 5 ALREADY_EXISTS or ABORTED (stale --expect-version; the message names the
// current version); 6 UNAVAILABLE or DEADLINE_EXCEEDED (server unreachable);
// 7 UNAUTHENTICATED or PERMISSION_DENIED; 8 rollout --wait: --timeout ran
// out before every subscriber ACKed; 9 rollout --wait: a subscriber NACKed
// the version; 1 anything else. Errors go to stderr prefixed "dtabctl: ".
//
// This header includes no gRPC headers; the client lives in the .cc.
//
// Thread-safety: none needed; one command runs per process.
#ifndef DTABD_CLI_REMOTE_COMMANDS_H_
#define DTABD_CLI_REMOTE_COMMANDS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "cli/commands.h"

namespace dtabd::cli {

// True if `command` names a remote command. "explain" is both: remote
// without --dtab, offline with it (the caller decides).
bool IsRemoteCommand(absl::string_view command);

// True if `arg` is a global connection option (--server, --token,
// --timeout, with or without "=VALUE", or --json). Options that take a value
// and have no "=" consume the next argument.
bool IsGlobalOption(absl::string_view arg);
bool GlobalOptionTakesValue(absl::string_view arg);

// Help text of each remote command except explain (which commands.cc
// documents with its offline form), keyed by command name.
const std::map<std::string, std::string>& RemoteCommandHelp();

// Runs remote `command` with `args` (everything after the program name
// except the command name itself: global options and the command's own
// options and operands, in any order). `help` is the command's help text,
// printed for --help and after usage errors. Reads DTABD_ADDR and
// DTABD_TOKEN from the environment. Returns the exit status.
// REQUIRES: IsRemoteCommand(command).
int RunRemoteCommand(const std::string& command, absl::string_view help,
                     const std::vector<std::string>& args, Io io);

}  // namespace dtabd::cli

#endif  // DTABD_CLI_REMOTE_COMMANDS_H_
