// Parsing, validation and rendering of dtab-proxy's YAML configuration.
//
// yaml-cpp reports errors by throwing. Every call into it happens below
// ParseConfig()/RenderConfig(), which catch everything it throws; nothing
// else in this file throws.
#include "proxy/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "dtab/parser.h"
#include "yaml-cpp/yaml.h"

namespace dtabd::proxy {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();
// Larger files are refused: a config or token this big is a mistake (or
// /dev/zero), not something to read into memory.
constexpr size_t kMaxConfigBytes = 16 << 20;
constexpr size_t kMaxTokenFileBytes = 64 << 10;

constexpr absl::string_view kFsNamer = "io.l5d.fs";
constexpr absl::string_view kHeaderTokenIdentifier = "io.l5d.header.token";
constexpr absl::string_view kMethodAndHostIdentifier = "io.l5d.methodAndHost";
constexpr absl::string_view kPathIdentifier = "io.l5d.path";
constexpr absl::string_view kHeaderIdentifier = "io.l5d.header";
constexpr absl::string_view kRedacted = "<redacted>";

// Reads the whole file `path`, refusing files longer than `max_bytes`.
// Errors carry the errno-derived code and the message
// "cannot read '<path>': <strerror>" (`what` replaces "cannot read").
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes,
                                     absl::string_view what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::ErrnoToStatus(err, absl::StrCat(what, " '", path, "'"));
  }
  std::string contents;
  char buf[8192];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int err = errno;
      ::close(fd);
      return absl::ErrnoToStatus(err, absl::StrCat(what, " '", path, "'"));
    }
    if (n == 0) {
      break;
    }
    contents.append(buf, static_cast<size_t>(n));
    if (contents.size() > max_bytes) {
      ::close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", path, "': larger than ", max_bytes, " bytes"));
    }
  }
  ::close(fd);
  return contents;
}

// Key paths: "routers[0].servers[1].port". The top level is "".
std::string ChildPath(absl::string_view parent, absl::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", key);
}
std::string IndexPath(absl::string_view parent, size_t i) {
  return absl::StrCat(parent, "[", i, "]");
}

// What a node is, for "expected X, got Y" messages.
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return absl::StrCat("'", node.Scalar(), "'");
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// True for RFC 9110 token characters (header field names).
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

// An IP literal's family and address bytes, which identify it however it
// is spelled ("::1" and "0::1" are one address).
struct IpBytes {
  int family = 0;
  std::string bytes;
};

// Parses an IPv4 or IPv6 literal; nullopt when `ip` is neither.
std::optional<IpBytes> ParseIp(const std::string& ip) {
  in_addr v4;
  if (::inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
    return IpBytes{AF_INET, std::string(reinterpret_cast<const char*>(&v4), sizeof v4)};
  }
  in6_addr v6;
  if (::inet_pton(AF_INET6, ip.c_str(), &v6) == 1) {
    return IpBytes{AF_INET6, std::string(reinterpret_cast<const char*>(&v6), sizeof v6)};
  }
  return std::nullopt;
}

std::string HostPort(const ListenAddress& a) {
  return a.ip.find(':') != std::string::npos ? absl::StrCat("[", a.ip, "]:", a.port)
                                             : absl::StrCat(a.ip, ":", a.port);
}

// The entries of one YAML map whose keys have been checked against the keys
// its section allows. Holds yaml-cpp node handles, which share the parsed
// document.
class MapReader {
 public:
  MapReader(std::string path, std::vector<std::pair<std::string, YAML::Node>> entries)
      : path_(std::move(path)), entries_(std::move(entries)) {}

  // The value of `key`, or nullptr when the key is absent. The pointer is
  // valid while this reader lives.
  const YAML::Node* Get(absl::string_view key) const {
    for (const auto& [k, v] : entries_) {
      if (k == key) {
        return &v;
      }
    }
    return nullptr;
  }
  bool Has(absl::string_view key) const { return Get(key) != nullptr; }

  // The map's key path and the key path of its `key`.
  const std::string& path() const { return path_; }
  std::string Child(absl::string_view key) const { return ChildPath(path_, key); }

 private:
  std::string path_;
  std::vector<std::pair<std::string, YAML::Node>> entries_;
};

// One ParseConfig() call: the walk over the document, which builds the
// ProxyConfig and returns the first error. May throw YAML::Exception (from
// yaml-cpp accessors); ParseConfig() catches it.
class ConfigParser {
 public:
  ConfigParser(absl::string_view file, std::filesystem::path base_dir)
      : file_(file), base_dir_(std::move(base_dir)) {}

  absl::StatusOr<ProxyConfig> Parse(const YAML::Node& root);

 private:
  // InvalidArgument "FILE: KEY.PATH: reason" ("FILE: reason" at the top).
  absl::Status Error(absl::string_view key_path, absl::string_view reason) const {
    if (key_path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(file_, ": ", reason));
    }
    return absl::InvalidArgumentError(absl::StrCat(file_, ": ", key_path, ": ", reason));
  }

  // A map whose keys are all in `allowed` (null reads as an empty map).
  absl::StatusOr<MapReader> Map(const YAML::Node& node, const std::string& path,
                                std::initializer_list<absl::string_view> allowed) const;
  // The items of a list (null reads as an empty list).
  absl::StatusOr<std::vector<YAML::Node>> List(const YAML::Node& node,
                                               absl::string_view path) const;
  // A scalar's text; `what` ("a string", "an integer") names what was
  // expected in messages.
  absl::StatusOr<std::string> Scalar(const YAML::Node& node, absl::string_view path,
                                     absl::string_view what) const;
  absl::StatusOr<std::string> String(const YAML::Node& node, absl::string_view path) const {
    return Scalar(node, path, "a string");
  }
  // A string that must not be empty.
  absl::StatusOr<std::string> NonEmptyString(const YAML::Node& node, absl::string_view path) const;
  // An integer in [min, max].
  absl::StatusOr<int64_t> Int(const YAML::Node& node, absl::string_view path, int64_t min,
                              int64_t max = kMaxInt) const;
  absl::StatusOr<bool> Bool(const YAML::Node& node, absl::string_view path) const;
  absl::StatusOr<uint16_t> Port(const YAML::Node& node, absl::string_view path) const;
  // A positive number of milliseconds.
  absl::StatusOr<absl::Duration> Millis(const YAML::Node& node, absl::string_view path) const {
    DTABD_ASSIGN_OR_RETURN(int64_t ms, Int(node, path, 1));
    return absl::Milliseconds(ms);
  }
  // A dtab path, returned in canonical form.
  absl::StatusOr<std::string> DtabPath(const YAML::Node& node, absl::string_view path) const;
  // An IPv4 or IPv6 literal, returned as written.
  absl::StatusOr<std::string> Ip(const YAML::Node& node, absl::string_view path) const;
  // A file system path, made absolute against the config file's directory.
  absl::StatusOr<std::string> FilePath(const YAML::Node& node, absl::string_view path) const;
  // An HTTP header field name.
  absl::StatusOr<std::string> HeaderName(const YAML::Node& node, absl::string_view path) const;

  // The value of required key `key` of `m`.
  absl::StatusOr<const YAML::Node*> Required(const MapReader& m, absl::string_view key) const {
    const YAML::Node* node = m.Get(key);
    if (node == nullptr) {
      return Error(m.path(), absl::StrCat("missing required key '", key, "'"));
    }
    return node;
  }

  absl::StatusOr<ListenAddress> ParseAdmin(const YAML::Node& node, const std::string& path) const;
  absl::StatusOr<ControlPlaneConfig> ParseControlPlane(const YAML::Node& node,
                                                       const std::string& path) const;
  absl::StatusOr<NamerConfig> ParseNamer(const YAML::Node& node, const std::string& path) const;
  absl::StatusOr<RouterConfig> ParseRouter(const YAML::Node& node, const std::string& path,
                                           bool have_control_plane) const;
  absl::StatusOr<std::vector<IdentifierConfig>> ParseIdentifiers(const YAML::Node& node,
                                                                 const std::string& path) const;
  absl::StatusOr<IdentifierConfig> ParseIdentifier(const YAML::Node& node,
                                                   const std::string& path) const;
  absl::StatusOr<ServerConfig> ParseServer(const YAML::Node& node, const std::string& path) const;
  absl::StatusOr<OverridePolicy> ParseOverridePolicy(const YAML::Node& node,
                                                     const std::string& path) const;
  absl::StatusOr<ClientConfig> ParseClient(const YAML::Node& node, const std::string& path) const;
  // No two listeners on one ip and non-zero port.
  absl::Status CheckListeners(const ProxyConfig& config) const;

  const absl::string_view file_;          // the caller's `path`; outlives this parser
  const std::filesystem::path base_dir_;  // absolute; anchors relative file paths
};

absl::StatusOr<MapReader> ConfigParser::Map(
    const YAML::Node& node, const std::string& path,
    std::initializer_list<absl::string_view> allowed) const {
  std::vector<std::pair<std::string, YAML::Node>> entries;
  if (node.IsNull()) {
    return MapReader(path, std::move(entries));
  }
  if (!node.IsMap()) {
    return Error(path, absl::StrCat("expected a map, got ", Describe(node)));
  }
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      return Error(path, absl::StrCat("expected a string key, got ", Describe(kv.first)));
    }
    std::string key = kv.first.Scalar();
    bool known = false;
    for (absl::string_view a : allowed) {
      known = known || a == key;
    }
    if (!known) {
      return Error(path, absl::StrCat("unknown key '", key,
                                      "' (allowed: ", absl::StrJoin(allowed, ", "), ")"));
    }
    for (const auto& entry : entries) {
      if (entry.first == key) {
        return Error(path, absl::StrCat("duplicate key '", key, "'"));
      }
    }
    entries.emplace_back(std::move(key), kv.second);
  }
  return MapReader(path, std::move(entries));
}

absl::StatusOr<std::vector<YAML::Node>> ConfigParser::List(const YAML::Node& node,
                                                           absl::string_view path) const {
  std::vector<YAML::Node> items;
  if (node.IsNull()) {
    return items;
  }
  if (!node.IsSequence()) {
    return Error(path, absl::StrCat("expected a list, got ", Describe(node)));
  }
  for (const auto& item : node) {
    items.push_back(item);
  }
  return items;
}

absl::StatusOr<std::string> ConfigParser::Scalar(const YAML::Node& node, absl::string_view path,
                                                 absl::string_view what) const {
  if (node.IsScalar()) {
    return node.Scalar();
  }
  if (node.IsNull() || !node.IsDefined()) {
    return Error(path, absl::StrCat("missing value (expected ", what, ")"));
  }
  return Error(path, absl::StrCat("expected ", what, ", got ", Describe(node)));
}

absl::StatusOr<std::string> ConfigParser::NonEmptyString(const YAML::Node& node,
                                                         absl::string_view path) const {
  DTABD_ASSIGN_OR_RETURN(std::string s, String(node, path));
  if (s.empty()) {
    return Error(path, "must not be empty");
  }
  return s;
}

absl::StatusOr<int64_t> ConfigParser::Int(const YAML::Node& node, absl::string_view path,
                                          int64_t min, int64_t max) const {
  DTABD_ASSIGN_OR_RETURN(std::string text, Scalar(node, path, "an integer"));
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v)) {
    return Error(path, absl::StrCat("'", text, "' is not an integer"));
  }
  if (v >= min && v <= max) {
    return v;
  }
  if (max != kMaxInt) {
    return Error(path, absl::StrCat(v, " is not in ", min, "-", max));
  }
  if (v > max) {
    return Error(path, absl::StrCat(v, " is too large (at most ", max, ")"));
  }
  if (min == 0) {
    return Error(path, absl::StrCat(v, " is negative"));
  }
  if (min == 1) {
    return Error(path, absl::StrCat(v, " is not positive"));
  }
  return Error(path, absl::StrCat(v, " is less than ", min));
}

absl::StatusOr<bool> ConfigParser::Bool(const YAML::Node& node, absl::string_view path) const {
  DTABD_ASSIGN_OR_RETURN(std::string text, Scalar(node, path, "a boolean"));
  if (text == "true" || text == "True" || text == "TRUE") {
    return true;
  }
  if (text == "false" || text == "False" || text == "FALSE") {
    return false;
  }
  return Error(path, absl::StrCat("'", text, "' is not a boolean (true or false)"));
}

absl::StatusOr<uint16_t> ConfigParser::Port(const YAML::Node& node, absl::string_view path) const {
  DTABD_ASSIGN_OR_RETURN(std::string text, Scalar(node, path, "a port"));
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v)) {
    return Error(path, absl::StrCat("'", text, "' is not a port (0-65535)"));
  }
  if (v < 0 || v > 65535) {
    return Error(path, absl::StrCat(v, " is not a port (0-65535)"));
  }
  return static_cast<uint16_t>(v);
}

absl::StatusOr<std::string> ConfigParser::DtabPath(const YAML::Node& node,
                                                   absl::string_view path) const {
  DTABD_ASSIGN_OR_RETURN(std::string text, Scalar(node, path, "a path"));
  absl::StatusOr<dtab::Path> parsed = dtab::ParsePath(text);
  if (!parsed.ok()) {
    return Error(path, absl::StrCat("'", text, "' is not a path: ", parsed.status().message()));
  }
  return parsed->Show();
}

absl::StatusOr<std::string> ConfigParser::Ip(const YAML::Node& node, absl::string_view path) const {
  DTABD_ASSIGN_OR_RETURN(std::string ip, Scalar(node, path, "an IP address"));
  if (!ParseIp(ip).has_value()) {
    return Error(path, absl::StrCat("'", ip, "' is not an IPv4 or IPv6 address literal"));
  }
  return ip;
}

absl::StatusOr<std::string> ConfigParser::FilePath(const YAML::Node& node,
                                                   absl::string_view path) const {
  DTABD_ASSIGN_OR_RETURN(std::string text, NonEmptyString(node, path));
  std::filesystem::path p(text);
  if (p.is_relative()) {
    p = base_dir_ / p;
  }
  std::string s = p.lexically_normal().string();
  if (s.size() > 1 && s.back() == '/') {
    s.pop_back();  // "dir/" normalizes to "dir/"; keep "/dir" form
  }
  return s;
}

absl::StatusOr<std::string> ConfigParser::HeaderName(const YAML::Node& node,
                                                     absl::string_view path) const {
  DTABD_ASSIGN_OR_RETURN(std::string name, NonEmptyString(node, path));
  for (char c : name) {
    if (!IsTokenChar(c)) {
      return Error(path, absl::StrCat("'", name, "' is not an HTTP header name"));
    }
  }
  return name;
}

absl::StatusOr<ListenAddress> ConfigParser::ParseAdmin(const YAML::Node& node,
                                                       const std::string& path) const {
  DTABD_ASSIGN_OR_RETURN(MapReader m, Map(node, path, {"ip", "port"}));
  ListenAddress admin{"127.0.0.1", 9990};
  if (const YAML::Node* n = m.Get("ip")) {
    DTABD_ASSIGN_OR_RETURN(admin.ip, Ip(*n, m.Child("ip")));
  }
  if (const YAML::Node* n = m.Get("port")) {
    DTABD_ASSIGN_OR_RETURN(admin.port, Port(*n, m.Child("port")));
  }
  return admin;
}

absl::StatusOr<ControlPlaneConfig> ConfigParser::ParseControlPlane(const YAML::Node& node,
                                                                   const std::string& path) const {
  DTABD_ASSIGN_OR_RETURN(MapReader m,
                         Map(node, path, {"address", "token", "token_file", "tls", "cache_dir"}));
  ControlPlaneConfig cp;

  DTABD_ASSIGN_OR_RETURN(const YAML::Node* address, Required(m, "address"));
  DTABD_ASSIGN_OR_RETURN(cp.address, NonEmptyString(*address, m.Child("address")));
  {
    // HOST:PORT, with an IPv6 host in brackets.
    absl::string_view a = cp.address;
    absl::string_view host;
    absl::string_view port;
    bool ok = false;
    if (!a.empty() && a.front() == '[') {
      const size_t close = a.find(']');
      if (close != absl::string_view::npos && close + 1 < a.size() && a[close + 1] == ':') {
        host = a.substr(1, close - 1);
        port = a.substr(close + 2);
        ok = true;
      }
    } else if (const size_t colon = a.rfind(':'); colon != absl::string_view::npos) {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
      ok = host.find(':') == absl::string_view::npos;
    }
    int port_number = 0;
    ok = ok && !host.empty() && !port.empty() &&
         std::all_of(port.begin(), port.end(),
                     [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) &&
         absl::SimpleAtoi(port, &port_number) && port_number >= 1 && port_number <= 65535;
    if (!ok) {
      return Error(m.Child("address"),
                   absl::StrCat("'", cp.address, "' is not HOST:PORT (port 1-65535)"));
    }
  }

  if (m.Has("token") && m.Has("token_file")) {
    return Error(path, "set token or token_file, not both");
  }
  if (const YAML::Node* n = m.Get("token")) {
    DTABD_ASSIGN_OR_RETURN(cp.token, NonEmptyString(*n, m.Child("token")));
  }
  if (const YAML::Node* n = m.Get("token_file")) {
    const std::string key = m.Child("token_file");
    DTABD_ASSIGN_OR_RETURN(std::string file, FilePath(*n, key));
    absl::StatusOr<std::string> contents = ReadFile(file, kMaxTokenFileBytes, "cannot read");
    if (!contents.ok()) {
      return Error(key, contents.status().message());
    }
    absl::string_view first_line = *contents;
    first_line = first_line.substr(0, first_line.find('\n'));
    cp.token = std::string(absl::StripAsciiWhitespace(first_line));
    if (cp.token.empty()) {
      return Error(key, absl::StrCat("'", file, "' holds no token (its first line is empty)"));
    }
  }
  if (const YAML::Node* n = m.Get("tls")) {
    const std::string tls_path = m.Child("tls");
    DTABD_ASSIGN_OR_RETURN(MapReader tls, Map(*n, tls_path, {"ca_file", "server_name"}));
    cp.tls = true;
    if (const YAML::Node* ca = tls.Get("ca_file")) {
      DTABD_ASSIGN_OR_RETURN(cp.tls_ca_file, FilePath(*ca, tls.Child("ca_file")));
    }
    if (const YAML::Node* sn = tls.Get("server_name")) {
      DTABD_ASSIGN_OR_RETURN(cp.tls_server_name, NonEmptyString(*sn, tls.Child("server_name")));
    }
  }
  if (const YAML::Node* n = m.Get("cache_dir")) {
    DTABD_ASSIGN_OR_RETURN(cp.cache_dir, FilePath(*n, m.Child("cache_dir")));
  }
  return cp;
}

absl::StatusOr<NamerConfig> ConfigParser::ParseNamer(const YAML::Node& node,
                                                     const std::string& path) const {
  DTABD_ASSIGN_OR_RETURN(MapReader m, Map(node, path, {"kind", "prefix", "root_dir"}));
  NamerConfig namer;
  DTABD_ASSIGN_OR_RETURN(const YAML::Node* kind, Required(m, "kind"));
  DTABD_ASSIGN_OR_RETURN(namer.kind, String(*kind, m.Child("kind")));
  if (namer.kind != kFsNamer) {
    return Error(m.Child("kind"),
                 absl::StrCat("unknown namer kind '", namer.kind, "' (known: ", kFsNamer, ")"));
  }
  namer.prefix = absl::StrCat("/", namer.kind);
  if (const YAML::Node* n = m.Get("prefix")) {
    DTABD_ASSIGN_OR_RETURN(namer.prefix, DtabPath(*n, m.Child("prefix")));
    if (namer.prefix == "/") {
      return Error(m.Child("prefix"), "must not be empty ('/')");
    }
  }
  DTABD_ASSIGN_OR_RETURN(const YAML::Node* root, Required(m, "root_dir"));
  const std::string root_path = m.Child("root_dir");
  DTABD_ASSIGN_OR_RETURN(namer.root_dir, FilePath(*root, root_path));
  struct stat st;
  if (::stat(namer.root_dir.c_str(), &st) != 0) {
    const int err = errno;
    return Error(
        root_path,
        absl::ErrnoToStatus(err, absl::StrCat("cannot access '", namer.root_dir, "'")).message());
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error(root_path, absl::StrCat("'", namer.root_dir, "' is not a directory"));
  }
  return namer;
}

absl::StatusOr<IdentifierConfig> ConfigParser::ParseIdentifier(const YAML::Node& node,
                                                               const std::string& path) const {
  // The kind decides which other keys are allowed, so read it first.
  if (!node.IsMap()) {
    return Error(path, absl::StrCat("expected a map, got ", Describe(node)));
  }
  const YAML::Node kind_node = node["kind"];
  if (!kind_node.IsDefined()) {
    return Error(path, "missing required key 'kind'");
  }
  IdentifierConfig id;
  const std::string kind_path = ChildPath(path, "kind");
  DTABD_ASSIGN_OR_RETURN(id.kind, String(kind_node, kind_path));
  if (id.kind == kHeaderTokenIdentifier || id.kind == kHeaderIdentifier) {
    DTABD_ASSIGN_OR_RETURN(MapReader m, Map(node, path, {"kind", "header"}));
    id.header = id.kind == kHeaderTokenIdentifier ? "Host" : "l5d-name";
    if (const YAML::Node* n = m.Get("header")) {
      DTABD_ASSIGN_OR_RETURN(id.header, HeaderName(*n, m.Child("header")));
    }
  } else if (id.kind == kMethodAndHostIdentifier) {
    DTABD_RETURN_IF_ERROR(Map(node, path, {"kind"}).status());
  } else if (id.kind == kPathIdentifier) {
    DTABD_ASSIGN_OR_RETURN(MapReader m, Map(node, path, {"kind", "segments", "consume"}));
    if (const YAML::Node* n = m.Get("segments")) {
      DTABD_ASSIGN_OR_RETURN(int64_t segments, Int(*n, m.Child("segments"), 1));
      id.segments = static_cast<int>(segments);
    }
    if (const YAML::Node* n = m.Get("consume")) {
      DTABD_ASSIGN_OR_RETURN(id.consume, Bool(*n, m.Child("consume")));
    }
  } else {
    return Error(kind_path,
                 absl::StrCat("unknown identifier kind '", id.kind, "' (known: ",
                              absl::StrJoin({kHeaderTokenIdentifier, kMethodAndHostIdentifier,
                                             kPathIdentifier, kHeaderIdentifier},
                                            ", "),
                              ")"));
  }
  return id;
}

absl::StatusOr<std::vector<IdentifierConfig>> ConfigParser::ParseIdentifiers(
    const YAML::Node& node, const std::string& path) const {
  std::vector<IdentifierConfig> ids;
  if (node.IsMap()) {
    DTABD_ASSIGN_OR_RETURN(IdentifierConfig id, ParseIdentifier(node, path));
    ids.push_back(std::move(id));
    return ids;
  }
  if (!node.IsSequence()) {
    return Error(path, absl::StrCat("expected a map or a list of maps, got ", Describe(node)));
  }
  if (node.size() == 0) {
    return Error(path, "an empty list identifies no request (omit it for the default)");
  }
  size_t i = 0;
  for (const auto& item : node) {
    DTABD_ASSIGN_OR_RETURN(IdentifierConfig id, ParseIdentifier(item, IndexPath(path, i)));
    ids.push_back(std::move(id));
    ++i;
  }
  return ids;
}

absl::StatusOr<ServerConfig> ConfigParser::ParseServer(const YAML::Node& node,
                                                       const std::string& path) const {
  if (!node.IsMap()) {  // a null server is not an empty one
    return Error(path, absl::StrCat("expected a map, got ", Describe(node)));
  }
  DTABD_ASSIGN_OR_RETURN(MapReader m,
                         Map(node, path, {"ip", "port", "clear_context", "max_call_depth"}));
  ServerConfig server;
  if (const YAML::Node* n = m.Get("ip")) {
    DTABD_ASSIGN_OR_RETURN(server.address.ip, Ip(*n, m.Child("ip")));
  }
  DTABD_ASSIGN_OR_RETURN(const YAML::Node* port, Required(m, "port"));
  DTABD_ASSIGN_OR_RETURN(server.address.port, Port(*port, m.Child("port")));
  if (const YAML::Node* n = m.Get("clear_context")) {
    DTABD_ASSIGN_OR_RETURN(server.clear_context, Bool(*n, m.Child("clear_context")));
  }
  if (const YAML::Node* n = m.Get("max_call_depth")) {
    DTABD_ASSIGN_OR_RETURN(int64_t depth, Int(*n, m.Child("max_call_depth"), 1));
    server.max_call_depth = static_cast<int>(depth);
  }
  return server;
}

absl::StatusOr<OverridePolicy> ConfigParser::ParseOverridePolicy(const YAML::Node& node,
                                                                 const std::string& path) const {
  DTABD_ASSIGN_OR_RETURN(MapReader m,
                         Map(node, path, {"max_bytes", "max_dentries", "allowed_prefixes"}));
  OverridePolicy policy;
  if (const YAML::Node* n = m.Get("max_bytes")) {
    DTABD_ASSIGN_OR_RETURN(int64_t v, Int(*n, m.Child("max_bytes"), 1));
    policy.max_bytes = static_cast<size_t>(v);
  }
  if (const YAML::Node* n = m.Get("max_dentries")) {
    DTABD_ASSIGN_OR_RETURN(int64_t v, Int(*n, m.Child("max_dentries"), 1));
    policy.max_dentries = static_cast<size_t>(v);
  }
  if (const YAML::Node* n = m.Get("allowed_prefixes")) {
    const std::string list_path = m.Child("allowed_prefixes");
    DTABD_ASSIGN_OR_RETURN(std::vector<YAML::Node> items, List(*n, list_path));
    for (size_t i = 0; i < items.size(); ++i) {
      DTABD_ASSIGN_OR_RETURN(std::string prefix, DtabPath(items[i], IndexPath(list_path, i)));
      policy.allowed_prefixes.push_back(std::move(prefix));
    }
  }
  return policy;
}

absl::StatusOr<ClientConfig> ConfigParser::ParseClient(const YAML::Node& node,
                                                       const std::string& path) const {
  DTABD_ASSIGN_OR_RETURN(
      MapReader m,
      Map(node, path,
          {"connect_timeout_ms", "request_timeout_ms", "idle_timeout_ms", "max_idle_per_endpoint",
           "failures_to_eject", "ejection_backoff_ms", "ejection_backoff_max_ms"}));
  ClientConfig client;
  if (const YAML::Node* n = m.Get("connect_timeout_ms")) {
    DTABD_ASSIGN_OR_RETURN(client.connect_timeout, Millis(*n, m.Child("connect_timeout_ms")));
  }
  if (const YAML::Node* n = m.Get("request_timeout_ms")) {
    DTABD_ASSIGN_OR_RETURN(client.request_timeout, Millis(*n, m.Child("request_timeout_ms")));
  }
  if (const YAML::Node* n = m.Get("idle_timeout_ms")) {
    DTABD_ASSIGN_OR_RETURN(client.idle_timeout, Millis(*n, m.Child("idle_timeout_ms")));
  }
  if (const YAML::Node* n = m.Get("max_idle_per_endpoint")) {
    DTABD_ASSIGN_OR_RETURN(int64_t v, Int(*n, m.Child("max_idle_per_endpoint"), 0));
    client.max_idle_per_endpoint = static_cast<int>(v);
  }
  if (const YAML::Node* n = m.Get("failures_to_eject")) {
    DTABD_ASSIGN_OR_RETURN(int64_t v, Int(*n, m.Child("failures_to_eject"), 1));
    client.failures_to_eject = static_cast<int>(v);
  }
  if (const YAML::Node* n = m.Get("ejection_backoff_ms")) {
    DTABD_ASSIGN_OR_RETURN(client.ejection_backoff, Millis(*n, m.Child("ejection_backoff_ms")));
  }
  if (const YAML::Node* n = m.Get("ejection_backoff_max_ms")) {
    DTABD_ASSIGN_OR_RETURN(client.ejection_backoff_max,
                           Millis(*n, m.Child("ejection_backoff_max_ms")));
  }
  if (client.ejection_backoff_max < client.ejection_backoff) {
    return Error(m.Child("ejection_backoff_max_ms"),
                 absl::StrCat(absl::ToInt64Milliseconds(client.ejection_backoff_max),
                              " is less than ejection_backoff_ms (",
                              absl::ToInt64Milliseconds(client.ejection_backoff), ")"));
  }
  return client;
}

absl::StatusOr<RouterConfig> ConfigParser::ParseRouter(const YAML::Node& node,
                                                       const std::string& path,
                                                       bool have_control_plane) const {
  if (!node.IsMap()) {
    return Error(path, absl::StrCat("expected a map, got ", Describe(node)));
  }
  DTABD_ASSIGN_OR_RETURN(MapReader m, Map(node, path,
                                          {"label", "protocol", "namespace", "dtab", "identifier",
                                           "dst_prefix", "servers", "override_policy", "client"}));
  RouterConfig router;

  DTABD_ASSIGN_OR_RETURN(const YAML::Node* label, Required(m, "label"));
  DTABD_ASSIGN_OR_RETURN(router.label, NonEmptyString(*label, m.Child("label")));
  if (!std::all_of(router.label.begin(), router.label.end(), IsNameChar)) {
    return Error(m.Child("label"),
                 absl::StrCat("'", router.label, "' is not a valid label ([A-Za-z0-9_-]+)"));
  }

  if (const YAML::Node* n = m.Get("protocol")) {
    DTABD_ASSIGN_OR_RETURN(std::string protocol, String(*n, m.Child("protocol")));
    if (protocol != "http") {
      return Error(m.Child("protocol"),
                   absl::StrCat("protocol '", protocol, "' is not supported (only 'http')"));
    }
  }

  const YAML::Node* ns = m.Get("namespace");
  const YAML::Node* dtab_text = m.Get("dtab");
  if ((ns == nullptr) == (dtab_text == nullptr)) {
    return Error(path, ns == nullptr ? "set one of 'namespace' (a dtabd namespace) and 'dtab' "
                                       "(a static dtab)"
                                     : "set only one of 'namespace' and 'dtab', not both");
  }
  if (ns != nullptr) {
    const std::string ns_path = m.Child("namespace");
    DTABD_ASSIGN_OR_RETURN(std::string name, String(*ns, ns_path));
    if (name.empty() || name.size() > 128 || !std::all_of(name.begin(), name.end(), IsNameChar)) {
      return Error(ns_path, absl::StrCat("'", name,
                                         "' is not a valid namespace name ([A-Za-z0-9_-]{1,128})"));
    }
    if (!have_control_plane) {
      return Error(ns_path,
                   absl::StrCat("namespace '", name, "' needs a control_plane (dtabd's address)"));
    }
    router.ns = std::move(name);
  } else {
    const std::string dtab_path = m.Child("dtab");
    DTABD_ASSIGN_OR_RETURN(std::string text, String(*dtab_text, dtab_path));
    if (absl::StatusOr<dtab::Dtab> parsed = dtab::ParseDtab(text); !parsed.ok()) {
      return Error(dtab_path, absl::StrCat("bad dtab: ", parsed.status().message()));
    }
    router.static_dtab = std::move(text);
  }

  if (const YAML::Node* n = m.Get("identifier")) {
    DTABD_ASSIGN_OR_RETURN(router.identifiers, ParseIdentifiers(*n, m.Child("identifier")));
  } else {
    IdentifierConfig id;
    id.kind = std::string(kHeaderTokenIdentifier);
    id.header = "Host";
    router.identifiers.push_back(std::move(id));
  }

  if (const YAML::Node* n = m.Get("dst_prefix")) {
    DTABD_ASSIGN_OR_RETURN(router.dst_prefix, DtabPath(*n, m.Child("dst_prefix")));
  }

  const std::string servers_path = m.Child("servers");
  if (const YAML::Node* n = m.Get("servers")) {
    DTABD_ASSIGN_OR_RETURN(std::vector<YAML::Node> items, List(*n, servers_path));
    for (size_t i = 0; i < items.size(); ++i) {
      DTABD_ASSIGN_OR_RETURN(ServerConfig server,
                             ParseServer(items[i], IndexPath(servers_path, i)));
      router.servers.push_back(std::move(server));
    }
  }
  if (router.servers.empty()) {
    return Error(servers_path, "at least one server is required");
  }

  if (const YAML::Node* n = m.Get("override_policy")) {
    DTABD_ASSIGN_OR_RETURN(router.override_policy,
                           ParseOverridePolicy(*n, m.Child("override_policy")));
  }
  if (const YAML::Node* n = m.Get("client")) {
    DTABD_ASSIGN_OR_RETURN(router.client, ParseClient(*n, m.Child("client")));
  }
  return router;
}

absl::Status ConfigParser::CheckListeners(const ProxyConfig& config) const {
  struct Listener {
    std::string key_path;
    const ListenAddress* address;
    IpBytes ip;
  };
  std::vector<Listener> listeners;
  auto add = [&](std::string key_path, const ListenAddress& address) -> absl::Status {
    if (address.port == 0) {
      return absl::OkStatus();  // each gets its own free port
    }
    std::optional<IpBytes> ip = ParseIp(address.ip);
    if (!ip.has_value()) {  // validated while parsing
      return absl::InternalError(absl::StrCat(file_, ": ", key_path, ": bad ip survived parsing"));
    }
    for (const Listener& other : listeners) {
      if (other.address->port == address.port && other.ip.family == ip->family &&
          other.ip.bytes == ip->bytes) {
        return Error(key_path, absl::StrCat("listener ", HostPort(address), " is also used by ",
                                            other.key_path, " (", HostPort(*other.address), ")"));
      }
    }
    listeners.push_back(Listener{std::move(key_path), &address, *std::move(ip)});
    return absl::OkStatus();
  };
  DTABD_RETURN_IF_ERROR(add("admin", config.admin));
  for (size_t r = 0; r < config.routers.size(); ++r) {
    const RouterConfig& router = config.routers[r];
    for (size_t s = 0; s < router.servers.size(); ++s) {
      DTABD_RETURN_IF_ERROR(
          add(absl::StrCat("routers[", r, "].servers[", s, "]"), router.servers[s].address));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ProxyConfig> ConfigParser::Parse(const YAML::Node& root) {
  ProxyConfig config;
  config.path = std::string(file_);
  DTABD_ASSIGN_OR_RETURN(MapReader m,
                         Map(root, "", {"admin", "workers", "control_plane", "namers", "routers"}));

  if (const YAML::Node* n = m.Get("admin")) {
    DTABD_ASSIGN_OR_RETURN(config.admin, ParseAdmin(*n, m.Child("admin")));
  }
  if (const YAML::Node* n = m.Get("workers")) {
    DTABD_ASSIGN_OR_RETURN(int64_t workers, Int(*n, m.Child("workers"), 0));
    config.workers = static_cast<int>(workers);
  }
  if (const YAML::Node* n = m.Get("control_plane")) {
    DTABD_ASSIGN_OR_RETURN(config.control_plane, ParseControlPlane(*n, m.Child("control_plane")));
  }

  if (const YAML::Node* n = m.Get("namers")) {
    const std::string namers_path = m.Child("namers");
    DTABD_ASSIGN_OR_RETURN(std::vector<YAML::Node> items, List(*n, namers_path));
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string item_path = IndexPath(namers_path, i);
      DTABD_ASSIGN_OR_RETURN(NamerConfig namer, ParseNamer(items[i], item_path));
      for (size_t j = 0; j < config.namers.size(); ++j) {
        if (config.namers[j].prefix == namer.prefix) {
          return Error(ChildPath(item_path, "prefix"),
                       absl::StrCat("prefix '", namer.prefix, "' is already used by ",
                                    IndexPath(namers_path, j)));
        }
      }
      config.namers.push_back(std::move(namer));
    }
  }

  const std::string routers_path = m.Child("routers");
  if (const YAML::Node* n = m.Get("routers")) {
    DTABD_ASSIGN_OR_RETURN(std::vector<YAML::Node> items, List(*n, routers_path));
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string item_path = IndexPath(routers_path, i);
      DTABD_ASSIGN_OR_RETURN(RouterConfig router,
                             ParseRouter(items[i], item_path, config.control_plane.has_value()));
      for (size_t j = 0; j < config.routers.size(); ++j) {
        if (config.routers[j].label == router.label) {
          return Error(ChildPath(item_path, "label"),
                       absl::StrCat("label '", router.label, "' is already used by ",
                                    IndexPath(routers_path, j)));
        }
      }
      config.routers.push_back(std::move(router));
    }
  }
  if (config.routers.empty()) {
    return Error(routers_path, "at least one router is required");
  }

  DTABD_RETURN_IF_ERROR(CheckListeners(config));
  return config;
}

// The directory relative paths in the config at `config_path` are resolved
// against: its directory, made absolute (the current directory for a bare
// file name).
absl::StatusOr<std::filesystem::path> BaseDir(absl::string_view config_path) {
  const std::filesystem::path dir = std::filesystem::path(std::string(config_path)).parent_path();
  if (dir.is_absolute()) {
    return dir.lexically_normal();
  }
  std::error_code ec;
  const std::filesystem::path cwd = std::filesystem::current_path(ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(config_path,
                                            ": cannot resolve relative paths: "
                                            "current directory unknown: ",
                                            ec.message()));
  }
  return (cwd / dir).lexically_normal();
}

// "FILE: line L, column C: message" (1-based), or "FILE: message" when
// yaml-cpp gives no position.
absl::Status YamlError(absl::string_view file, const YAML::Exception& e) {
  if (e.mark.is_null()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", e.msg));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(file, ": line ", e.mark.line + 1, ", column ", e.mark.column + 1, ": ", e.msg));
}

// Writes a string value, double-quoted when a YAML reader (yaml-cpp or any
// YAML 1.1/1.2 one) could take its plain form for a boolean, null or number.
void EmitString(YAML::Emitter& out, const std::string& s) {
  static constexpr absl::string_view kSpecial[] = {"true", "false", "yes",  "no", "on", "off",
                                                   "y",    "n",     "null", "~",  ""};
  bool quote = false;
  for (absl::string_view word : kSpecial) {
    quote = quote || absl::EqualsIgnoreCase(s, word);
  }
  double number = 0;
  quote = quote || absl::SimpleAtod(s, &number);
  if (quote) {
    out << YAML::DoubleQuoted;
  }
  out << s;
}

void EmitDuration(YAML::Emitter& out, absl::string_view key, absl::Duration d) {
  out << YAML::Key << std::string(key) << YAML::Value << absl::ToInt64Milliseconds(d);
}

void EmitAddress(YAML::Emitter& out, const ListenAddress& a) {
  out << YAML::Key << "ip" << YAML::Value;
  EmitString(out, a.ip);
  out << YAML::Key << "port" << YAML::Value << a.port;
}

std::string RenderOrThrow(const ProxyConfig& config) {
  YAML::Emitter out;
  out << YAML::Comment(absl::StrCat("dtab-proxy configuration from '",
                                    absl::CHexEscape(config.path), "', with defaults filled in"));
  out << YAML::BeginMap;

  out << YAML::Key << "admin" << YAML::Value << YAML::BeginMap;
  EmitAddress(out, config.admin);
  out << YAML::EndMap;
  out << YAML::Key << "workers" << YAML::Value << config.workers;

  if (config.control_plane.has_value()) {
    const ControlPlaneConfig& cp = *config.control_plane;
    out << YAML::Key << "control_plane" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "address" << YAML::Value;
    EmitString(out, cp.address);
    if (!cp.token.empty()) {
      out << YAML::Key << "token" << YAML::Value << std::string(kRedacted);
    }
    if (cp.tls) {
      out << YAML::Key << "tls" << YAML::Value << YAML::BeginMap;
      if (!cp.tls_ca_file.empty()) {
        out << YAML::Key << "ca_file" << YAML::Value;
        EmitString(out, cp.tls_ca_file);
      }
      if (!cp.tls_server_name.empty()) {
        out << YAML::Key << "server_name" << YAML::Value;
        EmitString(out, cp.tls_server_name);
      }
      out << YAML::EndMap;
    }
    if (!cp.cache_dir.empty()) {
      out << YAML::Key << "cache_dir" << YAML::Value;
      EmitString(out, cp.cache_dir);
    }
    out << YAML::EndMap;
  }

  out << YAML::Key << "namers" << YAML::Value;
  if (config.namers.empty()) {
    out << YAML::Flow;  // "namers: []"
  }
  out << YAML::BeginSeq;
  for (const NamerConfig& namer : config.namers) {
    out << YAML::BeginMap;
    out << YAML::Key << "kind" << YAML::Value << namer.kind;
    out << YAML::Key << "prefix" << YAML::Value << namer.prefix;
    out << YAML::Key << "root_dir" << YAML::Value;
    EmitString(out, namer.root_dir);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  out << YAML::Key << "routers" << YAML::Value << YAML::BeginSeq;
  for (const RouterConfig& router : config.routers) {
    out << YAML::BeginMap;
    out << YAML::Key << "label" << YAML::Value;
    EmitString(out, router.label);
    out << YAML::Key << "protocol" << YAML::Value << "http";
    if (router.ns.has_value()) {
      out << YAML::Key << "namespace" << YAML::Value;
      EmitString(out, *router.ns);
    }
    if (router.static_dtab.has_value()) {
      out << YAML::Key << "dtab" << YAML::Value << YAML::DoubleQuoted << *router.static_dtab;
    }
    out << YAML::Key << "identifier" << YAML::Value << YAML::BeginSeq;
    for (const IdentifierConfig& id : router.identifiers) {
      out << YAML::BeginMap;
      out << YAML::Key << "kind" << YAML::Value << id.kind;
      if (id.kind == kHeaderTokenIdentifier || id.kind == kHeaderIdentifier) {
        out << YAML::Key << "header" << YAML::Value;
        EmitString(out, id.header);
      } else if (id.kind == kPathIdentifier) {
        out << YAML::Key << "segments" << YAML::Value << id.segments;
        out << YAML::Key << "consume" << YAML::Value << id.consume;
      }
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
    out << YAML::Key << "dst_prefix" << YAML::Value << router.dst_prefix;

    out << YAML::Key << "servers" << YAML::Value << YAML::BeginSeq;
    for (const ServerConfig& server : router.servers) {
      out << YAML::BeginMap;
      EmitAddress(out, server.address);
      out << YAML::Key << "clear_context" << YAML::Value << server.clear_context;
      out << YAML::Key << "max_call_depth" << YAML::Value << server.max_call_depth;
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;

    const OverridePolicy& policy = router.override_policy;
    out << YAML::Key << "override_policy" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "max_bytes" << YAML::Value << policy.max_bytes;
    out << YAML::Key << "max_dentries" << YAML::Value << policy.max_dentries;
    out << YAML::Key << "allowed_prefixes" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const std::string& prefix : policy.allowed_prefixes) {
      out << prefix;
    }
    out << YAML::EndSeq;
    out << YAML::EndMap;

    const ClientConfig& client = router.client;
    out << YAML::Key << "client" << YAML::Value << YAML::BeginMap;
    EmitDuration(out, "connect_timeout_ms", client.connect_timeout);
    EmitDuration(out, "request_timeout_ms", client.request_timeout);
    EmitDuration(out, "idle_timeout_ms", client.idle_timeout);
    out << YAML::Key << "max_idle_per_endpoint" << YAML::Value << client.max_idle_per_endpoint;
    out << YAML::Key << "failures_to_eject" << YAML::Value << client.failures_to_eject;
    EmitDuration(out, "ejection_backoff_ms", client.ejection_backoff);
    EmitDuration(out, "ejection_backoff_max_ms", client.ejection_backoff_max);
    out << YAML::EndMap;

    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  out << YAML::EndMap;
  if (!out.good()) {
    return absl::StrCat("# cannot render the configuration: ", out.GetLastError(), "\n");
  }
  return absl::StrCat(out.c_str(), "\n");
}

}  // namespace

absl::StatusOr<ProxyConfig> ParseConfig(absl::string_view text, absl::string_view path) {
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(std::string(text));
    if (docs.size() > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": expected one YAML document, found ", docs.size()));
    }
    DTABD_ASSIGN_OR_RETURN(std::filesystem::path base_dir, BaseDir(path));
    ConfigParser parser(path, std::move(base_dir));
    return parser.Parse(docs.empty() ? YAML::Node() : docs.front());
  } catch (const YAML::Exception& e) {
    return YamlError(path, e);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(path, ": unexpected error: ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(path, ": unexpected error"));
  }
}

absl::StatusOr<ProxyConfig> LoadConfig(const std::string& path) {
  DTABD_ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxConfigBytes, "cannot read config"));
  return ParseConfig(text, path);
}

std::string RenderConfig(const ProxyConfig& config) {
  try {
    return RenderOrThrow(config);
  } catch (const std::exception& e) {
    return absl::StrCat("# cannot render the configuration: ", e.what(), "\n");
  } catch (...) {
    return "# cannot render the configuration\n";
  }
}

}  // namespace dtabd::proxy
