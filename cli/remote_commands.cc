#include "cli/remote_commands.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dtab/parser.h"
#include "dtabd/v1/discovery.grpc.pb.h"
#include "dtabd/v1/dtab.grpc.pb.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace dtabd::cli {
namespace {

constexpr char kDefaultServer[] = "127.0.0.1:4321";
constexpr char kDefaultTimeout[] = "10s";
constexpr int kMaxPageSize = 1000;  // the server's limit on ListVersions pages

// How often rollout --wait asks for the rollout status.
constexpr absl::Duration kRolloutPollInterval = absl::Milliseconds(100);
// How many node ids a rollout progress or error line names.
constexpr size_t kMaxNamedNodes = 10;

// Above this many cells (after trimming the common head and tail), diff
// falls back from LCS to an order-insensitive comparison.
constexpr size_t kMaxDiffCells = size_t{1} << 22;

// ---------------------------------------------------------------------------
// Command specifications and help

// What a remote command accepts besides the global options.
struct CommandSpec {
  std::vector<std::string> options;  // long names of options taking a value
  size_t operands = 0;               // exact number of positional arguments
  const char* operand_names = "";    // for "expected ..." messages
  std::vector<std::string> flags = {};  // long names of options taking no value
};

const std::map<std::string, CommandSpec>& Specs() {
  static const auto* specs = new std::map<std::string, CommandSpec>{
      {"list", {{}, 0, "no operands"}},
      {"get", {{"version"}, 1, "NS"}},
      {"create", {{"file", "comment"}, 1, "NS"}},
      {"apply", {{"file", "expect-version", "comment"}, 1, "NS"}},
      {"delete", {{"expect-version", "comment"}, 1, "NS"}},
      {"history", {{"limit", "page-size"}, 1, "NS"}},
      {"diff", {{}, 3, "NS V1 V2"}},
      {"rollback", {{"to", "expect-version", "comment"}, 1, "NS"}},
      {"watch", {{}, 1, "NS"}},
      {"explain", {{"override", "max-depth"}, 2, "NS and PATH (or --dtab DTAB PATH offline)"}},
      {"validate", {{"file"}, 0, "no operands"}},
      {"rollout", {{"version"}, 1, "NS", {"wait"}}},
      {"subscribers", {{}, 0, "no operands"}},
  };
  return *specs;
}

constexpr char kGlobalHelp[] = R"(
Global options (before or after the command):
  --server HOST:PORT  dtabd's gRPC address ($DTABD_ADDR, default 127.0.0.1:4321)
  --token TOKEN       bearer token ($DTABD_TOKEN), sent as 'authorization: Bearer TOKEN'
  --tls-ca FILE       connect with TLS, trusting the PEM root certificate(s) in FILE
                      ($DTABD_TLS_CA; default: plaintext)
  --tls-server-name NAME
                      with --tls-ca: expect NAME in the server's certificate instead
                      of the host of --server
  --timeout D         deadline of the whole command, e.g. 500ms, 10s, 1m (default
                      10s; 'inf' for none)
  --json              one JSON object per result on stdout (proto field names)
Exit status: 0 ok, 1 other error, 2 usage error or invalid dtab, 4 not found,
5 conflict (exists, or stale --expect-version), 6 server unreachable or timed
out, 7 authentication or permission denied, 8 rollout --wait timed out,
9 rollout --wait: a subscriber rejected (NACKed) the version.
)";

}  // namespace

const std::map<std::string, std::string>& RemoteCommandHelp() {
  static const auto* help = new std::map<std::string, std::string>{
      {"list", absl::StrCat(R"(usage: dtabctl list

Lists the live namespaces, sorted by name, as a table NAMESPACE VERSION
REVISION (--json: one {"namespace","version","revision"} object per line).
)",
                            kGlobalHelp)},
      {"get", absl::StrCat(R"(usage: dtabctl get NS [--version V]

Prints the latest version of namespace NS (or version V, which may be a
deletion): a header line
  # namespace=NS version=V revision=R author=A created_at=T [deleted] comment="..."
then the dtab text as written. The output is itself a valid dtab ('#' starts
a comment), so 'dtabctl get NS | dtabctl apply NS -f -' round-trips.
--json: the VersionedDtab as one JSON object.
)",
                           kGlobalHelp)},
      {"create", absl::StrCat(R"(usage: dtabctl create NS -f FILE [--comment TEXT]

Creates namespace NS with the dtab in FILE ('-': standard input) and prints
'NS: created version V (revision R)'. Exit 5 if NS already exists, 2 if the
dtab does not parse (the parser's message, position marked).
)",
                              kGlobalHelp)},
      {"apply",
       absl::StrCat(R"(usage: dtabctl apply NS -f FILE [--expect-version V] [--comment TEXT]

Writes the dtab in FILE ('-': standard input) as the next version of NS and
prints 'NS: applied as version V (revision R)'. With --expect-version V, a
compare-and-set (UpdateDtab): it applies only if V is still the latest
version, else exits 5 with the server's message naming the current version
(re-read and retry). Without it, an unconditional upsert (PutDtab) that also
creates NS.
)",
                    kGlobalHelp)},
      {"delete", absl::StrCat(R"(usage: dtabctl delete NS [--expect-version V] [--comment TEXT]

Deletes NS (writes a tombstone version; history survives and 'rollback'
restores it) and prints 'NS: deleted at version V (revision R)'. With
--expect-version, only if V is still the latest version (else exit 5).
)",
                              kGlobalHelp)},
      {"history", absl::StrCat(R"(usage: dtabctl history NS [--limit N] [--page-size N]

Prints NS's versions, newest first, deletions included, as a table VERSION
REVISION CREATED_AT AUTHOR COMMENT (a deletion's comment starts with
'(deleted)'). --limit N: only the newest N (default: all). Versions are
fetched in pages of --page-size (default and at most 1000) under one
--timeout. --json: one VersionedDtab object per line.
)",
                               kGlobalHelp)},
      {"diff", absl::StrCat(R"(usage: dtabctl diff NS V1 V2

Compares versions V1 and V2 of NS dentry by dentry (canonical forms) and
prints what turns V1 into V2: '- DENTRY' for each dentry removed and
'+ DENTRY' for each added, unchanged ones omitted, in dtab order (a longest
common subsequence diff, so a moved dentry shows as removed and re-added;
within a change, removals come first). A version is a number or 'latest'; a
deletion counts as the empty dtab. Prints nothing when they are equal.
--json: {"namespace","from","to","changes":[{"op":"-"|"+","dentry"}]}.
)",
                            kGlobalHelp)},
      {"rollback",
       absl::StrCat(R"(usage: dtabctl rollback NS --to V [--expect-version V] [--comment TEXT]

Writes version V's dtab as the new latest version of NS (also restoring a
deleted namespace) and prints 'NS: rolled back to version V as version W
(revision R)'. --expect-version: compare-and-set on the latest version.
)",
                    kGlobalHelp)},
      {"watch", absl::StrCat(R"(usage: dtabctl watch NS

Streams NS: the current state, then every change, one line each, until
interrupted or the server ends the stream:
  dtab namespace=NS version=V revision=R author=A created_at=T comment="..." dtab=CANONICAL
  deleted namespace=NS version=V revision=R author=A created_at=T comment="..."
  absent namespace=NS      (first line only: NS does not exist yet)
A slow reader may skip versions but always sees the newest. --timeout is not
applied unless given; when given, the watch ends after D with exit 0.
--json: one WatchDtabResponse object per line.
)",
                             kGlobalHelp)},
      {"validate", absl::StrCat(R"(usage: dtabctl validate -f FILE

Asks the server to parse the dtab in FILE ('-': standard input) and prints its
canonical form; exit 2 with the parser's message if it does not parse.
--json: {"canonical","dentries"}.
)",
                                kGlobalHelp)},
      {"rollout", absl::StrCat(R"(usage: dtabctl rollout NS [--wait] [--version V] [--timeout D]

Shows how far version V of namespace NS (default: its current version) has
reached the connected subscribers (proxies on DeltaDtabs or StreamDtabs
streams), from what each last ACKed or NACKed. A summary line
  rollout namespace=NS current_version=C version=V nodes=N by_version=7:2,6:1 behind=B rejecting=R
('none' for nothing yet; by_version counts nodes by the version they last
ACKed; behind counts nodes not yet on V or newer, rejecting ones included;
rejecting, those that NACKed V or newer and ACKed nothing as new) then a
table, one line per node:
  NODE CLUSTER STATE ACKED SENT NACKED PEER ERROR
with STATE ok (ACKed V or newer), behind or rejecting. Exits 0.

--wait: asks again every 100ms until every connected subscriber of NS has
ACKed V or a newer version, then prints the status and exits 0 (at once if
no node subscribes to NS). While waiting, stderr says which nodes are
behind whenever that changes ('dtabctl: waiting for NS version V: ...').
Exit 9, with the status and the rejecting nodes and their errors on stderr,
as soon as a node NACKs V or newer (dtabd never re-sends a NACKed version,
so only a newer one can fix it). Exit 8, with the last status and the nodes
still behind, when --timeout (default 10s; 'inf' for none) runs out first.
Exit 4 if NS has no current version (absent or deleted) and no --version.
--json: the final RolloutStatusResponse as one JSON object.
)",
                               kGlobalHelp)},
      {"subscribers", absl::StrCat(R"(usage: dtabctl subscribers

Lists the streams connected to dtabd's DiscoveryService, sorted by node id,
as a table NODE CLUSTER STREAM PEER CONNECTED_AT USER_AGENT NAMESPACES
(STREAM: delta or sotw; NAMESPACES: the subscribed names, comma-separated,
'*' for every namespace; '-' for an empty field, e.g. a stream that has not
sent its first request). --json: one Subscriber object per line.
)",
                                   kGlobalHelp)},
  };
  return *help;
}

namespace {

// Parsed remote command line.
struct RemoteArgs {
  std::map<std::string, std::string> options;  // long name -> value
  std::set<std::string> flags;                 // value-less options given
  std::vector<std::string> positional;
  bool json = false;
  bool help = false;
};

const std::vector<std::string>& GlobalValueOptions() {
  static const auto* names = new std::vector<std::string>{"server", "token", "timeout", "tls-ca",
                                                          "tls-server-name"};
  return *names;
}

// Splits "--name=value" / "--name" into name and optional value.
std::pair<std::string, std::optional<std::string>> SplitLongOption(absl::string_view arg) {
  std::string name(arg.substr(2));
  std::optional<std::string> value;
  if (const size_t eq = name.find('='); eq != std::string::npos) {
    value = name.substr(eq + 1);
    name = name.substr(0, eq);
  }
  return {name, value};
}

bool Contains(const std::vector<std::string>& v, absl::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Parses `in` for a command accepting `spec.options`. Returns nullopt and
// sets `problem` on a usage error.
std::optional<RemoteArgs> ParseRemoteArgs(const std::vector<std::string>& in,
                                          const CommandSpec& spec, std::string* problem) {
  RemoteArgs a;
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
    std::string name;
    std::optional<std::string> value;
    if (s == "-f") {
      name = "file";
    } else if (s.size() > 2 && absl::StartsWith(s, "--")) {
      std::tie(name, value) = SplitLongOption(s);
    } else if (s.size() > 1 && s[0] == '-') {
      *problem = absl::StrCat("unknown option '", s, "'");
      return std::nullopt;
    } else {
      a.positional.push_back(s);
      continue;
    }
    if (name == "json") {
      if (value) {
        *problem = "option '--json' takes no value";
        return std::nullopt;
      }
      a.json = true;
      continue;
    }
    if (Contains(spec.flags, name)) {
      if (value) {
        *problem = absl::StrCat("option '--", name, "' takes no value");
        return std::nullopt;
      }
      a.flags.insert(name);
      continue;
    }
    if (!Contains(spec.options, name) && !Contains(GlobalValueOptions(), name)) {
      *problem = absl::StrCat("unknown option '", name == "file" ? "-f" : "--" + name, "'");
      return std::nullopt;
    }
    if (!value) {
      if (i + 1 >= in.size()) {
        *problem = absl::StrCat("option '", name == "file" ? "-f" : "--" + name, "' needs a value");
        return std::nullopt;
      }
      value = in[++i];
    }
    a.options[name] = *value;
  }
  return a;
}

// ---------------------------------------------------------------------------
// Connection

// How a command reaches the server; immutable after construction.
class Remote {
 public:
  // `creds` and `channel_args` set up the channel (TLS or plaintext).
  Remote(std::string server, std::string token, std::optional<absl::Duration> timeout,
         std::string timeout_text, const std::shared_ptr<grpc::ChannelCredentials>& creds,
         const grpc::ChannelArguments& channel_args)
      : server_(std::move(server)),
        token_(std::move(token)),
        timeout_text_(std::move(timeout_text)),
        channel_(grpc::CreateCustomChannel(server_, creds, channel_args)),
        stub_(v1::DtabService::NewStub(channel_)),
        discovery_stub_(v1::DiscoveryService::NewStub(channel_)) {
    if (timeout) {
      deadline_ = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(*timeout);
    }
  }

  v1::DtabService::Stub* stub() const { return stub_.get(); }
  v1::DiscoveryService::Stub* discovery_stub() const { return discovery_stub_.get(); }
  bool has_deadline() const { return deadline_.has_value(); }
  // The command's deadline (--timeout after the start), if any.
  const std::optional<std::chrono::system_clock::time_point>& deadline() const {
    return deadline_;
  }
  // --timeout as given (for messages).
  const std::string& timeout_text() const { return timeout_text_; }

  // A context with the command's deadline and credentials; set up one per
  // call (a ClientContext must not be reused).
  void Prepare(grpc::ClientContext* ctx) const {
    if (deadline_) {
      ctx->set_deadline(*deadline_);
    }
    if (!token_.empty()) {
      ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
    }
  }

  // Runs one unary call, `call(ctx)`, with a prepared context.
  grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& call) const {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    return call(&ctx);
  }

  // Reports a failed call on stderr and returns its exit status.
  int Fail(const grpc::Status& s, Io io) const;

 private:
  const std::string server_;
  const std::string token_;
  const std::string timeout_text_;
  std::optional<std::chrono::system_clock::time_point> deadline_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<v1::DtabService::Stub> stub_;
  const std::unique_ptr<v1::DiscoveryService::Stub> discovery_stub_;
};

int ExitCodeFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return kExitUsage;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return kExitConflict;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kExitAuth;
    default:
      return kExitOther;
  }
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

int Remote::Fail(const grpc::Status& s, Io io) const {
  const std::string& message = s.error_message();
  io.err << "dtabctl: ";
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      io.err << "dtabd at " << server_ << " is unavailable: " << message;
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      io.err << "no answer from dtabd at " << server_ << " within --timeout " << timeout_text_
             << ": " << message;
      break;
    default:
      io.err << (message.empty() ? CodeName(s.error_code()) : message);
      if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        io.err << " (is " << server_ << " a dtabd?)";
      }
      break;
  }
  io.err << "\n";
  return ExitCodeFor(s.error_code());
}

// ---------------------------------------------------------------------------
// Output

void PrintJson(const google::protobuf::Message& m, Io io) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (auto s = google::protobuf::util::MessageToJsonString(m, &json, options); !s.ok()) {
    // Only malformed messages (invalid UTF-8) fail; say so instead of
    // printing half an object.
    io.err << "dtabctl: cannot print " << m.GetTypeName() << " as JSON: " << s.ToString() << "\n";
    return;
  }
  io.out << json << "\n";
}

// `s` as a JSON string literal.
std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20) {
          absl::StrAppend(&out, "\\u00", absl::Hex(u, absl::kZeroPad2));
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

// `s` for a terminal: control bytes and backslashes escaped (\n, \t, \xNN,
// \\), with `quote` escaped too when given; everything else, including
// apostrophes and UTF-8 text, as written.
std::string Printable(absl::string_view s, char quote = 0) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '\\' || (quote != 0 && c == static_cast<unsigned char>(quote))) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string Quote(absl::string_view s) { return absl::StrCat("\"", Printable(s, '"'), "\""); }

std::string Time(const google::protobuf::Timestamp& t) {
  return google::protobuf::util::TimeUtil::ToString(t);
}

// "namespace=NS version=V revision=R author=A created_at=T [deleted] comment=..."
std::string Fields(const v1::VersionedDtab& v) {
  return absl::StrCat("namespace=", v.namespace_(), " version=", v.version(),
                      " revision=", v.revision(), " author=", v.author(),
                      " created_at=", Time(v.created_at()), v.deleted() ? " deleted" : "",
                      " comment=", Quote(v.comment()));
}

// The dtab's canonical one-line form (its text, escaped, if it does not
// parse; stored dtabs always do).
std::string Canonical(absl::string_view text) {
  absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(text);
  return d.ok() ? d->Show() : absl::CHexEscape(text);
}

// Columns padded to their widest cell, two spaces apart (no trailing
// spaces).
void PrintTable(const std::vector<std::vector<std::string>>& rows, Io io) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) {
        line.append(widths[i] - row[i].size() + 2, ' ');
      }
    }
    line.erase(line.find_last_not_of(' ') + 1);
    io.out << line << "\n";
  }
}

// ---------------------------------------------------------------------------
// Arguments

int Usage(const std::string& command, absl::string_view help, absl::string_view problem, Io io) {
  io.err << "dtabctl " << command << ": " << problem << "\n" << help;
  return kExitUsage;
}

// A positive integer option value, or nullopt.
std::optional<int64_t> PositiveInt(absl::string_view text) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v <= 0) {
    return std::nullopt;
  }
  return v;
}

// The contents of FILE, or of stdin for "-". Sets `error` on failure.
std::optional<std::string> ReadFile(const std::string& path, Io io, std::string* error) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(io.in), std::istreambuf_iterator<char>());
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *error = absl::StrCat("cannot read '", path, "': ", std::strerror(errno));
    return std::nullopt;
  }
  std::ostringstream s;
  s << f.rdbuf();
  if (f.bad()) {
    *error = absl::StrCat("cannot read '", path, "': ", std::strerror(errno));
    return std::nullopt;
  }
  return s.str();
}

// Everything a command handler needs.
struct Invocation {
  const std::string& command;
  absl::string_view help;
  const RemoteArgs& args;
  const Remote& remote;
  Io io;

  int Usage(absl::string_view problem) const { return cli::Usage(command, help, problem, io); }
  const std::string& operand(size_t i) const { return args.positional[i]; }
  bool flag(const std::string& name) const { return args.flags.count(name) > 0; }
  std::optional<std::string> option(const std::string& name) const {
    auto it = args.options.find(name);
    return it == args.options.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  // A positive integer option (0 when absent). Returns false, after a
  // usage message, when malformed.
  bool IntOption(const std::string& name, int64_t* out) const {
    *out = 0;
    std::optional<std::string> text = option(name);
    if (!text) {
      return true;
    }
    std::optional<int64_t> v = PositiveInt(*text);
    if (!v) {
      Usage(absl::StrCat("--", name, ": '", *text, "' is not a positive integer"));
      return false;
    }
    *out = *v;
    return true;
  }
  // The text of -f FILE; nullopt after reporting an error (`*code` set).
  std::optional<std::string> FileText(int* code) const {
    std::optional<std::string> path = option("file");
    if (!path) {
      *code = Usage("-f FILE is required ('-f -' reads standard input)");
      return std::nullopt;
    }
    std::string error;
    std::optional<std::string> text = ReadFile(*path, io, &error);
    if (!text) {
      io.err << "dtabctl: " << error << "\n";
      *code = kExitOther;
      return std::nullopt;
    }
    // Protobuf strings must be UTF-8: the server would drop the request as
    // undecodable, with a misleading status.
    if (!google::protobuf::internal::IsStructurallyValidUTF8(*text)) {
      io.err << "dtabctl: invalid dtab: " << (*path == "-" ? "standard input" : *path)
             << " is not valid UTF-8\n";
      *code = kExitUsage;
      return std::nullopt;
    }
    return text;
  }
};

// ---------------------------------------------------------------------------
// Commands

int List(const Invocation& c) {
  v1::ListDtabsResponse resp;
  grpc::Status s = c.remote.Call([&](grpc::ClientContext* ctx) {
    return c.remote.stub()->ListDtabs(ctx, v1::ListDtabsRequest(), &resp);
  });
  if (!s.ok()) {
    return c.remote.Fail(s, c.io);
  }
  if (c.args.json) {
    for (const v1::NamespaceSummary& n : resp.namespaces()) {
      PrintJson(n, c.io);
    }
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"NAMESPACE", "VERSION", "REVISION"}};
  for (const v1::NamespaceSummary& n : resp.namespaces()) {
    rows.push_back({n.namespace_(), absl::StrCat(n.version()), absl::StrCat(n.revision())});
  }
  PrintTable(rows, c.io);
  return kExitOk;
}

// Fetches version `version` (0: latest) of `ns`.
grpc::Status FetchVersion(const Remote& remote, const std::string& ns, int64_t version,
                          v1::VersionedDtab* out) {
  v1::GetDtabRequest req;
  req.set_namespace_(ns);
  req.set_version(version);
  return remote.Call(
      [&](grpc::ClientContext* ctx) { return remote.stub()->GetDtab(ctx, req, out); });
}

int Get(const Invocation& c) {
  int64_t version = 0;
  if (!c.IntOption("version", &version)) {
    return kExitUsage;
  }
  v1::VersionedDtab v;
  if (grpc::Status s = FetchVersion(c.remote, c.operand(0), version, &v); !s.ok()) {
    return c.remote.Fail(s, c.io);
  }
  if (c.args.json) {
    PrintJson(v, c.io);
    return kExitOk;
  }
  c.io.out << "# " << Fields(v) << "\n" << v.dtab();
  if (!v.dtab().empty() && v.dtab().back() != '\n') {
    c.io.out << "\n";
  }
  return kExitOk;
}

// Prints the result of a write: JSON, or "NS: <what happened>".
int PrintWrite(const Invocation& c, const v1::VersionedDtab& v, absl::string_view what) {
  if (c.args.json) {
    PrintJson(v, c.io);
  } else {
    c.io.out << v.namespace_() << ": " << what << " (revision " << v.revision() << ")\n";
  }
  return kExitOk;
}

int Create(const Invocation& c) {
  int code = 0;
  std::optional<std::string> text = c.FileText(&code);
  if (!text) {
    return code;
  }
  v1::CreateDtabRequest req;
  req.set_namespace_(c.operand(0));
  req.set_dtab(*text);
  req.set_comment(c.option("comment").value_or(""));
  v1::VersionedDtab v;
  grpc::Status s = c.remote.Call(
      [&](grpc::ClientContext* ctx) { return c.remote.stub()->CreateDtab(ctx, req, &v); });
  if (!s.ok()) {
    return c.remote.Fail(s, c.io);
  }
  return PrintWrite(c, v, absl::StrCat("created version ", v.version()));
}

int Apply(const Invocation& c) {
  int64_t expected = 0;
  if (!c.IntOption("expect-version", &expected)) {
    return kExitUsage;
  }
  int code = 0;
  std::optional<std::string> text = c.FileText(&code);
  if (!text) {
    return code;
  }
  const std::string comment = c.option("comment").value_or("");
  v1::VersionedDtab v;
  grpc::Status s;
  if (expected > 0) {
    v1::UpdateDtabRequest req;
    req.set_namespace_(c.operand(0));
    req.set_dtab(*text);
    req.set_expected_version(expected);
    req.set_comment(comment);
    s = c.remote.Call(
        [&](grpc::ClientContext* ctx) { return c.remote.stub()->UpdateDtab(ctx, req, &v); });
  } else {
    v1::PutDtabRequest req;
    req.set_namespace_(c.operand(0));
    req.set_dtab(*text);
    req.set_comment(comment);
    s = c.remote.Call(
        [&](grpc::ClientContext* ctx) { return c.remote.stub()->PutDtab(ctx, req, &v); });
  }
  if (!s.ok()) {
    return c.remote.Fail(s, c.io);
  }
  return PrintWrite(c, v, absl::StrCat("applied as version ", v.version()));
}

int Delete(const Invocation& c) {
  int64_t expected = 0;
  if (!c.IntOption("expect-version", &expected)) {
    return kExitUsage;
  }
  v1::DeleteDtabRequest req;
  req.set_namespace_(c.operand(0));
  req.set_expected_version(expected);
  req.set_comment(c.option("comment").value_or(""));
  v1::VersionedDtab v;
  grpc::Status s = c.remote.Call(
      [&](grpc::ClientContext* ctx) { return c.remote.stub()->DeleteDtab(ctx, req, &v); });
  if (!s.ok()) {
    return c.remote.Fail(s, c.io);
  }
  return PrintWrite(c, v, absl::StrCat("deleted at version ", v.version()));
}

int Rollback(const Invocation& c) {
  int64_t to = 0;
  int64_t expected = 0;
  if (!c.IntOption("to", &to) || !c.IntOption("expect-version", &expected)) {
    return kExitUsage;
  }
  if (to == 0) {
    return c.Usage("--to V is required");
  }
  v1::RollbackDtabRequest req;
  req.set_namespace_(c.operand(0));
  req.set_to_version(to);
  req.set_expected_version(expected);
  req.set_comment(c.option("comment").value_or(""));
  v1::VersionedDtab v;
  grpc::Status s = c.remote.Call(
      [&](grpc::ClientContext* ctx) { return c.remote.stub()->RollbackDtab(ctx, req, &v); });
  if (!s.ok()) {
    return c.remote.Fail(s, c.io);
  }
  return PrintWrite(c, v, absl::StrCat("rolled back to version ", to, " as version ", v.version()));
}

int History(const Invocation& c) {
  int64_t limit = 0;
  int64_t page_size = 0;
  if (!c.IntOption("limit", &limit) || !c.IntOption("page-size", &page_size)) {
    return kExitUsage;
  }
  if (page_size == 0) {
    page_size = kMaxPageSize;
  } else if (page_size > kMaxPageSize) {
    return c.Usage(
        absl::StrCat("--page-size ", page_size, " is above the server's limit of ", kMaxPageSize));
  }
  std::vector<v1::VersionedDtab> versions;
  int64_t before = 0;
  do {
    v1::ListVersionsRequest req;
    req.set_namespace_(c.operand(0));
    int64_t page = page_size;
    if (limit > 0) {
      page = std::min<int64_t>(page, limit - static_cast<int64_t>(versions.size()));
    }
    req.set_page_size(static_cast<int32_t>(page));
    req.set_before_version(before);
    v1::ListVersionsResponse resp;
    grpc::Status s = c.remote.Call(
        [&](grpc::ClientContext* ctx) { return c.remote.stub()->ListVersions(ctx, req, &resp); });
    if (!s.ok()) {
      return c.remote.Fail(s, c.io);
    }
    for (v1::VersionedDtab& v : *resp.mutable_versions()) {
      versions.push_back(std::move(v));
    }
    before = resp.next_before_version();
  } while (before > 0 && (limit == 0 || static_cast<int64_t>(versions.size()) < limit));

  if (c.args.json) {
    for (const v1::VersionedDtab& v : versions) {
      PrintJson(v, c.io);
    }
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"VERSION", "REVISION", "CREATED_AT", "AUTHOR", "COMMENT"}};
  for (const v1::VersionedDtab& v : versions) {
    std::string comment = Printable(v.comment());
    if (v.deleted()) {
      comment = comment.empty() ? "(deleted)" : absl::StrCat("(deleted) ", comment);
    }
    rows.push_back({absl::StrCat(v.version()), absl::StrCat(v.revision()), Time(v.created_at()),
                    v.author(), std::move(comment)});
  }
  PrintTable(rows, c.io);
  return kExitOk;
}

// One line of a dentry diff.
struct DiffLine {
  char op;  // '-' removed from the old dtab, '+' added by the new one
  std::string dentry;
};

// The edit script turning dentry list `a` into `b`: an LCS diff in dtab
// order, removals before additions where both are possible. Above
// kMaxDiffCells (after trimming the common head and tail), an
// order-insensitive multiset difference: removals in `a`'s order, then
// additions in `b`'s.
std::vector<DiffLine> DiffDentries(const std::vector<std::string>& a,
                                   const std::vector<std::string>& b) {
  size_t head = 0;
  while (head < a.size() && head < b.size() && a[head] == b[head]) {
    ++head;
  }
  size_t tail = 0;
  while (tail < a.size() - head && tail < b.size() - head &&
         a[a.size() - 1 - tail] == b[b.size() - 1 - tail]) {
    ++tail;
  }
  const size_t n = a.size() - head - tail;
  const size_t m = b.size() - head - tail;
  std::vector<DiffLine> out;
  if ((n + 1) * (m + 1) > kMaxDiffCells) {
    std::unordered_map<std::string, int> in_b;
    for (size_t j = 0; j < m; ++j) {
      ++in_b[b[head + j]];
    }
    std::unordered_map<std::string, int> kept;  // matched dentries, by count
    for (size_t i = 0; i < n; ++i) {
      const std::string& d = a[head + i];
      if (auto it = in_b.find(d); it != in_b.end() && it->second > 0) {
        --it->second;
        ++kept[d];
      } else {
        out.push_back({'-', d});
      }
    }
    for (size_t j = 0; j < m; ++j) {
      const std::string& d = b[head + j];
      if (auto it = kept.find(d); it != kept.end() && it->second > 0) {
        --it->second;
      } else {
        out.push_back({'+', d});
      }
    }
    return out;
  }
  // lcs[i][j]: LCS length of a[head+i..] and b[head+j..].
  std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> uint32_t& { return lcs[i * (m + 1) + j]; };
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      at(i, j) =
          a[head + i] == b[head + j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
    }
  }
  size_t i = 0;
  size_t j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[head + i] == b[head + j]) {
      ++i;
      ++j;
    } else if (j == m || (i < n && at(i + 1, j) >= at(i, j + 1))) {
      out.push_back({'-', a[head + i++]});
    } else {
      out.push_back({'+', b[head + j++]});
    }
  }
  return out;
}

// A diff operand: a positive version or "latest" (0).
std::optional<int64_t> DiffVersion(absl::string_view text) {
  if (text == "latest") {
    return 0;
  }
  return PositiveInt(text);
}

int Diff(const Invocation& c) {
  const std::string& ns = c.operand(0);
  std::vector<std::string> dentries[2];
  int64_t versions[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    std::optional<int64_t> version = DiffVersion(c.operand(1 + k));
    if (!version) {
      return c.Usage(
          absl::StrCat("version '", c.operand(1 + k), "' is not a positive integer or 'latest'"));
    }
    v1::VersionedDtab v;
    if (grpc::Status s = FetchVersion(c.remote, ns, *version, &v); !s.ok()) {
      return c.remote.Fail(s, c.io);
    }
    versions[k] = v.version();
    absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(v.dtab());
    if (!d.ok()) {  // the server validates every write; this is a broken server
      c.io.err << "dtabctl: dtab '" << ns << "' version " << v.version()
               << " does not parse: " << d.status().message() << "\n";
      return kExitOther;
    }
    for (const dtab::Dentry& e : d->dentries()) {
      dentries[k].push_back(e.Show());
    }
  }
  const std::vector<DiffLine> lines = DiffDentries(dentries[0], dentries[1]);
  if (c.args.json) {
    std::vector<std::string> changes;
    for (const DiffLine& l : lines) {
      changes.push_back(absl::StrCat("{\"op\":\"", std::string(1, l.op),
                                     "\",\"dentry\":", JsonQuote(l.dentry), "}"));
    }
    c.io.out << "{\"namespace\":" << JsonQuote(ns) << ",\"from\":" << versions[0]
             << ",\"to\":" << versions[1] << ",\"changes\":[" << absl::StrJoin(changes, ",")
             << "]}\n";
    return kExitOk;
  }
  for (const DiffLine& l : lines) {
    c.io.out << l.op << " " << l.dentry << "\n";
  }
  return kExitOk;
}

int Watch(const Invocation& c) {
  v1::WatchDtabRequest req;
  req.set_namespace_(c.operand(0));
  grpc::ClientContext ctx;
  c.remote.Prepare(&ctx);
  std::unique_ptr<grpc::ClientReader<v1::WatchDtabResponse>> reader =
      c.remote.stub()->WatchDtab(&ctx, req);
  v1::WatchDtabResponse r;
  bool received = false;
  while (reader->Read(&r)) {
    received = true;
    if (c.args.json) {
      PrintJson(r, c.io);
    } else if (r.absent()) {
      c.io.out << "absent namespace=" << c.operand(0) << "\n";
    } else if (r.dtab().deleted()) {
      c.io.out << "deleted " << Fields(r.dtab()) << "\n";
    } else {
      c.io.out << "dtab " << Fields(r.dtab()) << " dtab=" << Canonical(r.dtab().dtab()) << "\n";
    }
    c.io.out.flush();
  }
  grpc::Status s = reader->Finish();
  if (s.ok() || (received && s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)) {
    return kExitOk;  // the server ended the stream, or --timeout ran out
  }
  return c.remote.Fail(s, c.io);
}

int Explain(const Invocation& c) {
  int64_t max_depth = 0;
  if (!c.IntOption("max-depth", &max_depth)) {
    return kExitUsage;
  }
  if (max_depth > INT32_MAX) {
    return c.Usage(absl::StrCat("--max-depth ", max_depth, " is too large"));
  }
  v1::ExplainRequest req;
  req.set_namespace_(c.operand(0));
  req.set_path(c.operand(1));
  req.set_override(c.option("override").value_or(""));
  req.set_max_depth(static_cast<int32_t>(max_depth));
  v1::ExplainResponse resp;
  grpc::Status s = c.remote.Call(
      [&](grpc::ClientContext* ctx) { return c.remote.stub()->Explain(ctx, req, &resp); });
  if (!s.ok()) {
    return c.remote.Fail(s, c.io);
  }
  if (c.args.json) {
    PrintJson(resp, c.io);
  } else {
    c.io.out << "namespace=" << c.operand(0) << " version=" << resp.version()
             << " path=" << c.operand(1) << "\n";
    if (resp.bind_error().empty()) {
      c.io.out << "bound: " << resp.bound() << "\n";
    } else {
      c.io.out << "bound: (failed) " << resp.bind_error() << "\n";
    }
    c.io.out << "delegation: " << resp.delegation_json() << "\n";
  }
  if (!resp.bind_error().empty()) {
    c.io.err << "dtabctl: cannot bind " << c.operand(1) << ": " << resp.bind_error() << "\n";
    return kExitBindFailed;
  }
  if (resp.ignored_branch_errors() > 0) {
    c.io.err << "dtabctl: warning: " << resp.ignored_branch_errors()
             << " union branch(es) failed to bind and were dropped (see the delegation)\n";
  }
  return kExitOk;
}

int Validate(const Invocation& c) {
  int code = 0;
  std::optional<std::string> text = c.FileText(&code);
  if (!text) {
    return code;
  }
  v1::ValidateDtabRequest req;
  req.set_dtab(*text);
  v1::ValidateDtabResponse resp;
  grpc::Status s = c.remote.Call(
      [&](grpc::ClientContext* ctx) { return c.remote.stub()->ValidateDtab(ctx, req, &resp); });
  if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    c.io.err << "dtabctl: invalid dtab: " << s.error_message() << "\n";
    return kExitUsage;
  }
  if (!s.ok()) {
    return c.remote.Fail(s, c.io);
  }
  if (c.args.json) {
    PrintJson(resp, c.io);
  } else {
    c.io.out << resp.canonical() << "\n";
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// Rollout status and subscribers (DiscoveryService)

// A version string as a number: 0 for "" (none) or anything malformed.
int64_t VersionNumber(absl::string_view text) {
  int64_t v = 0;
  return absl::SimpleAtoi(text, &v) && v > 0 ? v : 0;
}

std::string OrDash(absl::string_view s) { return s.empty() ? "-" : std::string(s); }

enum class NodeState { kOk, kBehind, kRejecting };

const char* NodeStateName(NodeState s) {
  switch (s) {
    case NodeState::kOk:
      return "ok";
    case NodeState::kBehind:
      return "behind";
    case NodeState::kRejecting:
      return "rejecting";
  }
  return "?";
}

// Where `n` stands against version `target`: ok once it ACKed `target` or
// a newer version (versions only grow, so newer includes it); rejecting if
// it NACKed `target` or newer since (dtabd never re-sends a NACKed version).
// `target` 0 means "the namespace is absent": ok once the node holds
// nothing (it ACKed the removal, or never had a version).
NodeState StateOf(const v1::NodeRolloutStatus& n, int64_t target) {
  const int64_t acked = VersionNumber(n.acked_version());
  if (target == 0) {
    return acked == 0 ? NodeState::kOk : NodeState::kBehind;
  }
  if (acked >= target) {
    return NodeState::kOk;
  }
  return VersionNumber(n.nacked_version()) >= target ? NodeState::kRejecting : NodeState::kBehind;
}

// A rollout status judged against one target version.
struct RolloutView {
  int64_t target = 0;
  std::vector<const v1::NodeRolloutStatus*> nodes;  // sorted by node id, then peer
  std::vector<NodeState> states;                    // parallel to `nodes`
  std::vector<const v1::NodeRolloutStatus*> behind;     // not ok (rejecting included)
  std::vector<const v1::NodeRolloutStatus*> rejecting;  // subset of `behind`
};

// `status` must outlive the view (it points into its nodes).
RolloutView ViewOf(const v1::RolloutStatusResponse& status, int64_t target) {
  RolloutView v;
  v.target = target;
  for (const v1::NodeRolloutStatus& n : status.nodes()) {
    v.nodes.push_back(&n);
  }
  std::sort(v.nodes.begin(), v.nodes.end(), [](const auto* a, const auto* b) {
    return std::tie(a->node_id(), a->peer()) < std::tie(b->node_id(), b->peer());
  });
  for (const v1::NodeRolloutStatus* n : v.nodes) {
    const NodeState s = StateOf(*n, target);
    v.states.push_back(s);
    if (s != NodeState::kOk) {
      v.behind.push_back(n);
    }
    if (s == NodeState::kRejecting) {
      v.rejecting.push_back(n);
    }
  }
  return v;
}

// "node-a, node-b and 3 more"; with `errors`, each followed by its NACK
// error ("node-a (rule 3: missing '=>')").
std::string NodeList(const std::vector<const v1::NodeRolloutStatus*>& nodes, bool errors) {
  std::vector<std::string> names;
  for (size_t i = 0; i < nodes.size() && i < kMaxNamedNodes; ++i) {
    std::string name = nodes[i]->node_id().empty() ? absl::StrCat("(no id) ", nodes[i]->peer())
                                                   : nodes[i]->node_id();
    if (errors) {
      absl::StrAppend(&name, " (", Printable(nodes[i]->nack_error()), ")");
    }
    names.push_back(std::move(name));
  }
  std::string out = absl::StrJoin(names, ", ");
  if (nodes.size() > kMaxNamedNodes) {
    absl::StrAppend(&out, " and ", nodes.size() - kMaxNamedNodes, " more");
  }
  return out;
}

void PrintRollout(const Invocation& c, const v1::RolloutStatusResponse& status,
                  const RolloutView& v) {
  if (c.args.json) {
    PrintJson(status, c.io);
    return;
  }
  // Nodes per acked version, newest first, "none" last.
  std::vector<std::pair<std::string, int32_t>> counts(status.nodes_by_version().begin(),
                                                      status.nodes_by_version().end());
  std::sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
    return VersionNumber(a.first) > VersionNumber(b.first);
  });
  std::vector<std::string> by_version;
  for (const auto& [version, n] : counts) {
    by_version.push_back(absl::StrCat(version.empty() ? "none" : version, ":", n));
  }
  c.io.out << "rollout namespace=" << status.namespace_()
           << " current_version=" << (status.current_version().empty() ? "none"
                                                                        : status.current_version())
           << " version=" << (v.target == 0 ? "none" : absl::StrCat(v.target))
           << " nodes=" << v.nodes.size() << " by_version="
           << (by_version.empty() ? "-" : absl::StrJoin(by_version, ","))
           << " behind=" << v.behind.size() << " rejecting=" << v.rejecting.size() << "\n";
  std::vector<std::vector<std::string>> rows = {
      {"NODE", "CLUSTER", "STATE", "ACKED", "SENT", "NACKED", "PEER", "ERROR"}};
  for (size_t i = 0; i < v.nodes.size(); ++i) {
    const v1::NodeRolloutStatus& n = *v.nodes[i];
    rows.push_back({OrDash(n.node_id()), OrDash(n.cluster()), NodeStateName(v.states[i]),
                    OrDash(n.acked_version()), OrDash(n.sent_version()),
                    OrDash(n.nacked_version()), OrDash(n.peer()),
                    n.nack_error().empty() ? "" : Quote(n.nack_error())});
  }
  PrintTable(rows, c.io);
}

int Rollout(const Invocation& c) {
  int64_t version = 0;
  if (!c.IntOption("version", &version)) {
    return kExitUsage;
  }
  const bool wait = c.flag("wait");
  const std::string& ns = c.operand(0);
  v1::RolloutStatusRequest req;
  req.set_namespace_(ns);
  auto fetch = [&](v1::RolloutStatusResponse* out) {
    return c.remote.Call([&](grpc::ClientContext* ctx) {
      return c.remote.discovery_stub()->GetRolloutStatus(ctx, req, out);
    });
  };

  v1::RolloutStatusResponse status;
  if (grpc::Status s = fetch(&status); !s.ok()) {
    return c.remote.Fail(s, c.io);
  }
  // The target is fixed by the first answer; a version committed while
  // waiting is newer, so a node that ACKs it counts as done.
  const int64_t target = version > 0 ? version : VersionNumber(status.current_version());
  if (!wait) {
    PrintRollout(c, status, ViewOf(status, target));
    return kExitOk;
  }
  if (target == 0) {
    c.io.err << "dtabctl: namespace '" << ns
             << "' has no current version (absent or deleted); nothing to wait for (give "
                "--version V)\n";
    return kExitNotFound;
  }

  std::string last_progress;
  while (true) {
    const RolloutView v = ViewOf(status, target);
    if (!v.rejecting.empty()) {
      PrintRollout(c, status, v);
      c.io.err << "dtabctl: " << ns << " version " << target << " rejected by "
               << v.rejecting.size() << " of " << v.nodes.size()
               << " node(s): " << NodeList(v.rejecting, /*errors=*/true) << "\n";
      return kExitRolloutRejected;
    }
    if (v.behind.empty()) {
      PrintRollout(c, status, v);
      if (v.nodes.empty()) {
        c.io.err << "dtabctl: note: no connected node subscribes to " << ns << "\n";
      }
      return kExitOk;
    }
    const std::string progress =
        absl::StrCat("dtabctl: waiting for ", ns, " version ", target, ": ", v.behind.size(),
                     " of ", v.nodes.size(), " node(s) behind: ", NodeList(v.behind, false));
    if (progress != last_progress) {
      c.io.err << progress << "\n";
      c.io.err.flush();
      last_progress = progress;
    }
    absl::Duration pause = kRolloutPollInterval;
    if (c.remote.deadline()) {
      pause = std::min(pause, absl::FromChrono(*c.remote.deadline() -
                                               std::chrono::system_clock::now()));
    }
    if (pause > absl::ZeroDuration()) {
      absl::SleepFor(pause);
    }
    v1::RolloutStatusResponse next;
    grpc::Status s = fetch(&next);
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      PrintRollout(c, status, v);
      c.io.err << "dtabctl: timed out after --timeout " << c.remote.timeout_text()
               << " waiting for " << ns << " version " << target << ": " << v.behind.size()
               << " of " << v.nodes.size() << " node(s) behind: " << NodeList(v.behind, false)
               << "\n";
      return kExitRolloutTimeout;
    }
    if (!s.ok()) {
      return c.remote.Fail(s, c.io);
    }
    status = std::move(next);
  }
}

int Subscribers(const Invocation& c) {
  v1::ListSubscribersResponse resp;
  grpc::Status s = c.remote.Call([&](grpc::ClientContext* ctx) {
    return c.remote.discovery_stub()->ListSubscribers(ctx, v1::ListSubscribersRequest(), &resp);
  });
  if (!s.ok()) {
    return c.remote.Fail(s, c.io);
  }
  std::vector<const v1::Subscriber*> subs;
  for (const v1::Subscriber& sub : resp.subscribers()) {
    subs.push_back(&sub);
  }
  std::sort(subs.begin(), subs.end(), [](const auto* a, const auto* b) {
    return std::tie(a->node_id(), a->peer()) < std::tie(b->node_id(), b->peer());
  });
  if (c.args.json) {
    for (const v1::Subscriber* sub : subs) {
      PrintJson(*sub, c.io);
    }
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NODE", "CLUSTER", "STREAM", "PEER", "CONNECTED_AT", "USER_AGENT", "NAMESPACES"}};
  for (const v1::Subscriber* sub : subs) {
    rows.push_back({OrDash(sub->node_id()), OrDash(sub->cluster()), OrDash(sub->stream()),
                    OrDash(sub->peer()), Time(sub->connected_at()),
                    OrDash(Printable(sub->user_agent())),
                    OrDash(absl::StrJoin(sub->resource_names(), ","))});
  }
  PrintTable(rows, c.io);
  return kExitOk;
}

using Handler = int (*)(const Invocation&);

Handler FindHandler(const std::string& command) {
  static const auto* handlers = new std::map<std::string, Handler>{
      {"list", List},     {"get", Get},         {"create", Create},     {"apply", Apply},
      {"delete", Delete}, {"history", History}, {"diff", Diff},         {"rollback", Rollback},
      {"watch", Watch},   {"explain", Explain}, {"validate", Validate},
      {"rollout", Rollout}, {"subscribers", Subscribers},
  };
  return handlers->at(command);
}

// An environment variable, or "" when unset.
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

bool IsRemoteCommand(absl::string_view command) { return Specs().count(std::string(command)) > 0; }

bool IsGlobalOption(absl::string_view arg) {
  if (arg == "--json") {
    return true;
  }
  if (!absl::StartsWith(arg, "--")) {
    return false;
  }
  return Contains(GlobalValueOptions(), SplitLongOption(arg).first);
}

bool GlobalOptionTakesValue(absl::string_view arg) {
  return IsGlobalOption(arg) && arg != "--json" && !absl::StrContains(arg, '=');
}

int RunRemoteCommand(const std::string& command, absl::string_view help,
                     const std::vector<std::string>& args, Io io) {
  const CommandSpec& spec = Specs().at(command);
  std::string problem;
  std::optional<RemoteArgs> a = ParseRemoteArgs(args, spec, &problem);
  if (!a) {
    return Usage(command, help, problem, io);
  }
  if (a->help) {
    io.out << help;
    return kExitOk;
  }
  if (a->positional.size() != spec.operands) {
    return Usage(command, help, absl::StrCat("expected ", spec.operand_names), io);
  }

  std::string server = Env("DTABD_ADDR");
  if (auto it = a->options.find("server"); it != a->options.end()) {
    server = it->second;
  }
  if (server.empty()) {
    server = kDefaultServer;
  }
  std::string token = Env("DTABD_TOKEN");
  if (auto it = a->options.find("token"); it != a->options.end()) {
    token = it->second;
  }
  // watch runs until interrupted unless --timeout is given.
  std::string timeout_text = command == "watch" ? "inf" : kDefaultTimeout;
  if (auto it = a->options.find("timeout"); it != a->options.end()) {
    timeout_text = it->second;
  }
  std::optional<absl::Duration> timeout;
  {
    absl::Duration d;
    double seconds = 0;
    if (absl::SimpleAtod(timeout_text, &seconds) && seconds > 0 && seconds < 1e9) {
      d = absl::Seconds(seconds);  // a bare number counts seconds
    } else if (!absl::ParseDuration(timeout_text, &d) || d <= absl::ZeroDuration()) {
      return Usage(command, help,
                   absl::StrCat("--timeout: '", timeout_text,
                                "' is not a positive duration such as 500ms, 10s or 1m"),
                   io);
    }
    if (d != absl::InfiniteDuration()) {
      timeout = d;
    }
  }

  std::string tls_ca = Env("DTABD_TLS_CA");
  if (auto it = a->options.find("tls-ca"); it != a->options.end()) {
    tls_ca = it->second;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments channel_args;
  if (auto it = a->options.find("tls-server-name"); it != a->options.end()) {
    if (tls_ca.empty()) {
      return Usage(command, help, "--tls-server-name needs --tls-ca (or $DTABD_TLS_CA)", io);
    }
    channel_args.SetString(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, it->second);
  }
  if (!tls_ca.empty()) {
    std::string error;
    std::optional<std::string> roots = ReadFile(tls_ca, io, &error);
    if (!roots) {
      io.err << "dtabctl " << command << ": --tls-ca: " << error << "\n";
      return kExitOther;
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *std::move(roots);
    creds = grpc::SslCredentials(ssl);
  }

  const Remote remote(std::move(server), std::move(token), timeout, timeout_text, creds,
                      channel_args);
  const Invocation invocation{command, help, *a, remote, io};
  return FindHandler(command)(invocation);
}

}  // namespace dtabd::cli
