#include "cli/commands.h"

#include <arpa/inet.h>

#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/remote_commands.h"
#include "dtab/explain.h"
#include "dtab/indexed_dtab.h"
#include "dtab/interpreter.h"
#include "dtab/parser.h"

namespace dtabd::cli {
namespace {

constexpr char kTopUsage[] = R"(usage: dtabctl COMMAND [ARGS]
       dtabctl [GLOBAL OPTIONS] REMOTE-COMMAND [ARGS]

Offline dtab tools (Finagle's dtab language):
  fmt path|prefix|tree|dtab TEXT    print the canonical form
  simplify TREE                     print the simplified tree
  lookup --dtab DTAB PATH           print the one-step lookup result
  delegate --dtab DTAB [--max-depth N] PATH
                                    bind PATH and print the bound tree
  explain --dtab DTAB [--max-depth N] PATH
                                    print the delegation tree as JSON

Any TEXT, TREE or DTAB given as '-' is read from standard input.

Remote commands (a dtabd server over gRPC):
  list                              list the namespaces
  get NS [--version V]              print a namespace's dtab
  create NS -f FILE [--comment TEXT]
                                    create a namespace
  apply NS -f FILE [--expect-version V] [--comment TEXT]
                                    write a new version (compare-and-set
                                    with --expect-version)
  delete NS [--expect-version V] [--comment TEXT]
                                    delete a namespace (history survives)
  history NS [--limit N] [--page-size N]
                                    list a namespace's versions
  diff NS V1 V2                     dentries removed (-) and added (+)
  rollback NS --to V [--expect-version V] [--comment TEXT]
                                    restore version V's dtab
  watch NS                          stream every change until interrupted
  explain NS PATH [--override DTAB] [--max-depth N]
                                    bind PATH through NS's dtab
  validate -f FILE                  check a dtab on the server
  rollout NS [--wait] [--version V] which connected proxies have ACKed NS's
                                    version (--wait: until all have)
  subscribers                       list the connected proxies (nodes)
'-f -' reads standard input.

Global options (remote commands; before or after the command):
  --server HOST:PORT  dtabd's gRPC address ($DTABD_ADDR, default 127.0.0.1:4321)
  --token TOKEN       bearer token ($DTABD_TOKEN)
  --timeout D         deadline, e.g. 500ms, 10s (default 10s; watch: none)
  --json              one JSON object per result on stdout

Exit status: 0 ok, 1 other error, 2 usage or parse error, 3 bind failure,
4 not found, 5 conflict (already exists, or stale --expect-version),
6 server unreachable or timed out, 7 authentication or permission denied,
8 rollout --wait timed out, 9 rollout --wait: a subscriber rejected (NACKed).
Run 'dtabctl help COMMAND' for a command's details.
)";

const std::map<std::string, std::string>& CommandHelp() {
  static const auto* help = new std::map<std::string, std::string>{
      {"fmt", R"(usage: dtabctl fmt path|prefix|tree|dtab TEXT

Parses TEXT as the given kind and prints its canonical form and a newline.
A parse error is printed on stderr with exit status 2.
)"},
      {"simplify", R"(usage: dtabctl simplify TREE

Prints the simplified (evaluation-equivalent) form of a name tree.
)"},
      {"lookup", R"(usage: dtabctl lookup --dtab DTAB PATH

Prints the one-step lookup of PATH in DTAB, not simplified: the matching
dentries' destinations (latest dentry first) with the residual appended,
'~' when nothing matches.
)"},
      {"delegate", R"(usage: dtabctl delegate --dtab DTAB [--max-depth N] PATH

Binds PATH through DTAB and the system namers (/$/inet, /$/fixedinet, /$/nil,
/$/fail) and prints the bound tree; each bound leaf is shown as its id
followed by its residual. Offline, any /#/... path binds to itself.
--max-depth N bounds the lookups (default 100). A failed bind prints the
error on stderr with exit status 3.
)"},
      {"explain", R"(usage: dtabctl explain --dtab DTAB [--max-depth N] PATH
       dtabctl explain NS PATH [--override DTAB] [--max-depth N]

Offline (with --dtab): prints the delegation tree of PATH as JSON, in the
shape of linkerd's /delegator.json: every step with the dentry that produced
it.

Remote (without --dtab): binds PATH through the latest dtab of namespace NS
on the server, with DTAB appended as a per-request override (as an l5d-dtab
header would be), and prints three lines:
  namespace=NS version=V path=PATH
  bound: TREE                  (or 'bound: (failed) ERROR', exit status 3)
  delegation: JSON             (linkerd's /delegator.json shape)
--json: the ExplainResponse as one JSON object. Global options as for the
other remote commands (see 'dtabctl help').
)"},
  };
  return *help;
}

// Parsed command line: options by name and positional arguments.
struct Args {
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;
  bool help = false;
};

std::optional<Args> ParseArgs(const std::vector<std::string>& in,
                              const std::vector<std::string>& allowed, std::ostream& err) {
  Args a;
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string& s = in[i];
    if (s == "-h" || s == "--help") {
      a.help = true;
      continue;
    }
    if (s == "--") {
      a.positional.insert(a.positional.end(), in.begin() + i + 1, in.end());
      break;
    }
    if (s.size() > 2 && s.rfind("--", 0) == 0) {
      std::string name = s.substr(2);
      std::optional<std::string> value;
      if (const size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        err << "dtabctl: unknown option '--" << name << "'\n";
        return std::nullopt;
      }
      if (!value) {
        if (i + 1 >= in.size()) {
          err << "dtabctl: option '--" << name << "' needs a value\n";
          return std::nullopt;
        }
        value = in[++i];
      }
      a.options[name] = *value;
      continue;
    }
    a.positional.push_back(s);
  }
  return a;
}

// TEXT, or all of stdin when TEXT is "-".
std::string ReadText(const std::string& text, std::istream& in) {
  if (text != "-") {
    return text;
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int Usage(const std::string& command, const std::string& problem, Io io) {
  io.err << "dtabctl " << command << ": " << problem << "\n" << CommandHelp().at(command);
  return kExitUsage;
}

int ParseError(absl::string_view what, const absl::Status& s, Io io) {
  io.err << "dtabctl: invalid " << what << ": " << s.message() << "\n";
  return kExitUsage;
}

int Fmt(const Args& a, Io io) {
  if (a.positional.size() != 2) {
    return Usage("fmt", "expected a kind and TEXT", io);
  }
  const std::string& kind = a.positional[0];
  const std::string text = ReadText(a.positional[1], io.in);
  if (kind == "path") {
    auto p = dtab::ParsePath(text);
    if (!p.ok()) {
      return ParseError(kind, p.status(), io);
    }
    io.out << p->Show() << "\n";
  } else if (kind == "prefix") {
    auto p = dtab::ParsePrefix(text);
    if (!p.ok()) {
      return ParseError(kind, p.status(), io);
    }
    io.out << p->Show() << "\n";
  } else if (kind == "tree") {
    auto t = dtab::ParseTree(text);
    if (!t.ok()) {
      return ParseError(kind, t.status(), io);
    }
    io.out << dtab::Show(*t) << "\n";
  } else if (kind == "dtab") {
    auto d = dtab::ParseDtab(text);
    if (!d.ok()) {
      return ParseError(kind, d.status(), io);
    }
    io.out << d->Show() << "\n";
  } else {
    return Usage("fmt", absl::StrCat("unknown kind '", kind, "' (path, prefix, tree, dtab)"), io);
  }
  return kExitOk;
}

int SimplifyCommand(const Args& a, Io io) {
  if (a.positional.size() != 1) {
    return Usage("simplify", "expected one TREE", io);
  }
  auto t = dtab::ParseTree(ReadText(a.positional[0], io.in));
  if (!t.ok()) {
    return ParseError("tree", t.status(), io);
  }
  io.out << dtab::Show(dtab::Simplify(*t)) << "\n";
  return kExitOk;
}

// The inputs shared by lookup, delegate and explain.
struct BindInputs {
  std::unique_ptr<dtab::IndexedDtab> dtab;
  dtab::Path path;
  int max_depth = dtab::kDefaultMaxDepth;
};

std::optional<BindInputs> ReadBindInputs(const std::string& command, const Args& a, Io io,
                                         int* exit_code) {
  *exit_code = kExitUsage;
  if (a.positional.size() != 1) {
    Usage(command, "expected one PATH", io);
    return std::nullopt;
  }
  auto it = a.options.find("dtab");
  if (it == a.options.end()) {
    Usage(command, "--dtab is required", io);
    return std::nullopt;
  }
  if (it->second == "-" && a.positional[0] == "-") {
    Usage(command, "only one of DTAB and PATH can be read from stdin", io);
    return std::nullopt;
  }
  BindInputs in;
  if (auto md = a.options.find("max-depth"); md != a.options.end()) {
    if (!absl::SimpleAtoi(md->second, &in.max_depth) || in.max_depth < 0) {
      Usage(command, absl::StrCat("--max-depth: '", md->second, "' is not a non-negative integer"),
            io);
      return std::nullopt;
    }
  }
  auto d = dtab::ParseDtab(ReadText(it->second, io.in));
  if (!d.ok()) {
    ParseError("dtab", d.status(), io);
    return std::nullopt;
  }
  auto p = dtab::ParsePath(ReadText(a.positional[0], io.in));
  if (!p.ok()) {
    ParseError("path", p.status(), io);
    return std::nullopt;
  }
  in.dtab = std::make_unique<dtab::IndexedDtab>(*std::move(d));
  in.path = *std::move(p);
  return in;
}

int Lookup(const Args& a, Io io) {
  int code = 0;
  std::optional<BindInputs> in = ReadBindInputs("lookup", a, io, &code);
  if (!in) {
    return code;
  }
  const dtab::DtabView view{in->dtab.get()};
  io.out << dtab::Show(view.Lookup(in->path)) << "\n";
  return kExitOk;
}

int Delegate(const Args& a, Io io) {
  int code = 0;
  std::optional<BindInputs> in = ReadBindInputs("delegate", a, io, &code);
  if (!in) {
    return code;
  }
  const dtab::DtabView view{in->dtab.get()};
  const dtab::Interpreter interpreter = dtab::Interpreter::Offline({in->max_depth});
  absl::StatusOr<dtab::BindResult> r = interpreter.Bind(view, in->path);
  if (!r.ok()) {
    io.err << "dtabctl: cannot bind " << in->path.Show() << ": " << r.status().message() << "\n";
    return kExitBindFailed;
  }
  io.out << dtab::Show(r->tree) << "\n";
  if (r->ignored_branch_errors > 0) {
    io.err << "dtabctl: warning: " << r->ignored_branch_errors
           << " union branch(es) failed to bind and were dropped (see 'dtabctl explain')\n";
  }
  return kExitOk;
}

// Offline address of an /$/inet or /$/fixedinet id with a numeric IPv4
// host (inet_aton forms such as 127.1 included); nullopt otherwise.
std::optional<std::string> InetAddr(const dtab::BoundName& b) {
  const dtab::Path& id = b.id;
  if (id.size() < 3 || id.label(0) != "$" ||
      (id.label(1) != "inet" && id.label(1) != "fixedinet")) {
    return std::nullopt;
  }
  std::string host = id.size() == 4 ? std::string(id.label(2)) : "127.0.0.1";
  const absl::string_view port = id.label(id.size() - 1);
  in_addr addr{};
  if (inet_aton(host.c_str(), &addr) == 0) {
    return std::nullopt;
  }
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr, ip, sizeof(ip));
  return absl::StrCat("{\"type\":\"bound\",\"addrs\":[{\"ip\":\"", ip, "\",\"port\":", port,
                      "}],\"meta\":{}}");
}

int ExplainCommand(const Args& a, Io io) {
  int code = 0;
  std::optional<BindInputs> in = ReadBindInputs("explain", a, io, &code);
  if (!in) {
    return code;
  }
  const dtab::DtabView view{in->dtab.get()};
  const dtab::Interpreter interpreter = dtab::Interpreter::Offline({in->max_depth});
  io.out << dtab::ToDelegatorJson(dtab::Explain(interpreter, view, in->path), InetAddr) << "\n";
  return kExitOk;
}

// The help text of any command, or nullptr.
const std::string* FindHelp(const std::string& command) {
  if (auto it = CommandHelp().find(command); it != CommandHelp().end()) {
    return &it->second;
  }
  if (auto it = RemoteCommandHelp().find(command); it != RemoteCommandHelp().end()) {
    return &it->second;
  }
  return nullptr;
}

// True if `args` (a command's arguments) ask for offline explain.
bool HasDtabOption(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--") {
      return false;
    }
    if (a == "--dtab" || absl::StartsWith(a, "--dtab=")) {
      return true;
    }
  }
  return false;
}

}  // namespace

int RunDtabctl(const std::vector<std::string>& all_args, Io io) {
  // Global options of the remote commands may come before the command.
  std::vector<std::string> globals;
  size_t first = 0;
  while (first < all_args.size() && IsGlobalOption(all_args[first])) {
    globals.push_back(all_args[first]);
    if (GlobalOptionTakesValue(all_args[first]) && first + 1 < all_args.size()) {
      globals.push_back(all_args[++first]);
    }
    ++first;
  }
  const std::vector<std::string> args(all_args.begin() + first, all_args.end());
  if (args.empty()) {
    io.err << kTopUsage;
    return kExitUsage;
  }
  const std::string& command = args[0];
  if (command == "-h" || command == "--help" || command == "help") {
    if (args.size() >= 2 && FindHelp(args[1]) != nullptr) {
      io.out << *FindHelp(args[1]);
      return kExitOk;
    }
    io.out << kTopUsage;
    return kExitOk;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (IsRemoteCommand(command) && (command != "explain" || !HasDtabOption(rest))) {
    std::vector<std::string> remote_args = globals;
    remote_args.insert(remote_args.end(), rest.begin(), rest.end());
    return RunRemoteCommand(command, *FindHelp(command), remote_args, io);
  }
  if (CommandHelp().count(command) == 0) {
    io.err << "dtabctl: unknown command '" << command << "'\n" << kTopUsage;
    return kExitUsage;
  }
  if (!globals.empty()) {
    io.err << "dtabctl " << command << ": option '" << globals[0]
           << "' applies only to remote commands\n"
           << CommandHelp().at(command);
    return kExitUsage;
  }
  std::vector<std::string> allowed;
  if (command == "lookup") {
    allowed = {"dtab"};
  } else if (command == "delegate" || command == "explain") {
    allowed = {"dtab", "max-depth"};
  }
  std::optional<Args> a = ParseArgs(rest, allowed, io.err);
  if (!a) {
    io.err << CommandHelp().at(command);
    return kExitUsage;
  }
  if (a->help) {
    io.out << CommandHelp().at(command);
    return kExitOk;
  }
  if (command == "fmt") {
    return Fmt(*a, io);
  }
  if (command == "simplify") {
    return SimplifyCommand(*a, io);
  }
  if (command == "lookup") {
    return Lookup(*a, io);
  }
  if (command == "delegate") {
    return Delegate(*a, io);
  }
  return ExplainCommand(*a, io);
}

}  // namespace dtabd::cli
