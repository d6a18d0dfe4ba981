// dtab-proxy's configuration: the YAML file given with --config, in
// linkerd 1's spirit (shared/reference/linkerd-behaviour.md section 2) with
// snake_case keys. Example:
//
//   admin: {ip: 127.0.0.1, port: 9990}
//   workers: 2                      # io threads; default: hardware threads
//   control_plane:                  # optional; needed by any `namespace:` router
//     address: 127.0.0.1:4321
//     token: s3cr3t                 # or token_file: /etc/dtab-proxy/token
//     tls: {ca_file: ca.pem, server_name: dtabd.example}
//     cache_dir: var/proxy-cache
//   namers:
//     - kind: io.l5d.fs
//       root_dir: disco             # relative paths: to the config file's directory
//       prefix: /io.l5d.fs          # default: /<kind>; bound as /#/io.l5d.fs/...
//   routers:
//     - label: outgoing
//       namespace: outgoing         # a dtabd namespace, or
//       # dtab: "/svc => /#/io.l5d.fs;"   (static, without dtabd)
//       identifier: {kind: io.l5d.header.token, header: Host}   # or a list
//       dst_prefix: /svc
//       servers:
//         - {ip: 127.0.0.1, port: 4140, clear_context: false}
//       override_policy: {max_bytes: 4096, max_dentries: 32, allowed_prefixes: [/host]}
//       client: {connect_timeout_ms: 1000, request_timeout_ms: 10000, ...}
//
// LoadConfig rejects unknown keys, wrong types and bad values with
// InvalidArgument "FILE: KEY.PATH: reason", e.g.
// "proxy.yaml: routers[0].servers[1].port: 70000 is not a port (0-65535)".
//
// Thread-safety: the functions share no state and may run concurrently;
// ParseConfig and LoadConfig read files (the config, token_file) and stat
// root_dir, so they belong on the control thread, not the data path.
#ifndef DTABD_PROXY_CONFIG_H_
#define DTABD_PROXY_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace dtabd::proxy {

// A listen address. `ip` is an IPv4 or IPv6 literal (default 127.0.0.1,
// linkerd's loopback default); port 0 picks a free port.
struct ListenAddress {
  std::string ip = "127.0.0.1";
  uint16_t port = 0;
};

struct ControlPlaneConfig {
  // dtabd's gRPC address "HOST:PORT" (required).
  std::string address;
  // Bearer token (from `token`, or the first line of `token_file`).
  std::string token;
  // TLS to dtabd when `tls` is present: CA bundle PEM (empty: system
  // roots) and the name to verify (empty: the address's host).
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_server_name;
  // Last accepted dtab of each namespace; empty: no cache.
  std::string cache_dir;
};

struct NamerConfig {
  // Only "io.l5d.fs" for now.
  std::string kind;
  // Path prefix below /#, e.g. "/io.l5d.fs" (default "/" + kind).
  std::string prefix;
  // io.l5d.fs: the directory of endpoint files (absolute after loading).
  std::string root_dir;
};

struct IdentifierConfig {
  // "io.l5d.header.token" (default), "io.l5d.methodAndHost", "io.l5d.path",
  // "io.l5d.header".
  std::string kind = "io.l5d.header.token";
  // io.l5d.header.token: default "Host"; io.l5d.header: default "l5d-name".
  std::string header;
  // io.l5d.path: number of segments (>= 1, default 1) and whether they are
  // removed from the forwarded URI.
  int segments = 1;
  bool consume = false;
};

struct ServerConfig {
  ListenAddress address;
  // Untrusted listener: drop inbound l5d-* headers, strip l5d-* (and error
  // bodies) from responses.
  bool clear_context = false;
  // Via-based loop detection: hops allowed (linkerd's maxCallDepth).
  int max_call_depth = 1000;
};

struct OverridePolicy {
  // Total bytes of all l5d-ctx-dtab and l5d-dtab values (default 8 KiB).
  size_t max_bytes = 8192;
  // Dentries in the combined override (default 100).
  size_t max_dentries = 100;
  // When non-empty, every override dentry's prefix must start with one of
  // these paths (e.g. "/host"); otherwise any prefix is allowed.
  std::vector<std::string> allowed_prefixes;
};

struct ClientConfig {
  absl::Duration connect_timeout = absl::Seconds(1);
  // Whole request, from the first byte read to the last byte written back.
  absl::Duration request_timeout = absl::Seconds(10);
  // Idle keep-alive connections (both sides) are closed after this.
  absl::Duration idle_timeout = absl::Seconds(60);
  // Idle upstream connections kept per endpoint and io thread.
  int max_idle_per_endpoint = 64;
  // Failure accrual: this many consecutive connection failures eject an
  // endpoint for `ejection_backoff` (doubling per further ejection up to
  // `ejection_backoff_max`).
  int failures_to_eject = 5;
  absl::Duration ejection_backoff = absl::Seconds(5);
  absl::Duration ejection_backoff_max = absl::Seconds(300);
};

struct RouterConfig {
  std::string label;
  // Exactly one of `ns` (a dtabd namespace) and `static_dtab` is set.
  std::optional<std::string> ns;
  std::optional<std::string> static_dtab;
  // Tried in order; the first that identifies the request wins.
  std::vector<IdentifierConfig> identifiers;
  std::string dst_prefix = "/svc";
  std::vector<ServerConfig> servers;
  OverridePolicy override_policy;
  ClientConfig client;
};

struct ProxyConfig {
  // The file it came from (for messages and /config).
  std::string path;
  ListenAddress admin{"127.0.0.1", 9990};
  // io threads; 0: std::thread::hardware_concurrency().
  int workers = 0;
  std::optional<ControlPlaneConfig> control_plane;
  std::vector<NamerConfig> namers;
  std::vector<RouterConfig> routers;
};

// Parses YAML `text` into the effective configuration, every default
// filled in; `path` names it in messages (ProxyConfig::path) and anchors
// relative paths (root_dir, cache_dir, token_file, ca_file), which are
// resolved against its directory (the current directory for a bare file
// name) and stored absolute. Reads token_file (its first line, trimmed).
// Checks: at least one router; labels unique, [A-Za-z0-9_-]+; each router
// has exactly one of namespace/dtab (a valid namespace name; a static dtab
// that parses); a namespace router needs control_plane; at least one server
// per router; ports 0-65535 (no two listeners, admin included, on one
// non-zero port of one IP address, however it is spelled); valid IP
// literals; control_plane.address is HOST:PORT; dst_prefix, namer prefixes
// and allowed_prefixes parse as paths (canonical form is stored); positive
// timeouts and limits; known identifier and namer kinds; header names are
// HTTP tokens; namer prefixes unique; root_dir is an existing directory.
// Unknown and duplicate keys anywhere are errors.
// InvalidArgument: "PATH: KEY.PATH: reason" for a failed check (just
// "PATH: reason" at the top level), "PATH: line L, column C: message" for
// YAML syntax errors (1-based). Internal: yaml-cpp threw something other
// than a YAML::Exception, or the current directory is unknown. Never throws.
absl::StatusOr<ProxyConfig> ParseConfig(absl::string_view text, absl::string_view path);

// Reads `path` and ParseConfig()s it. When the file cannot be read, the
// errno's code (NotFound, PermissionDenied, ...) with the message
// "cannot read config 'PATH': <strerror>"; files over 16 MiB are
// InvalidArgument.
absl::StatusOr<ProxyConfig> LoadConfig(const std::string& path);

// The configuration as YAML, for the admin /config page: every key with its
// effective value (durations in ms), the token shown as "<redacted>" and
// token_file not shown. For a config from ParseConfig, the result parses
// back (ParseConfig) to an equal config, the token aside, as long as every
// root_dir still exists. Never throws.
std::string RenderConfig(const ProxyConfig& config);

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_CONFIG_H_
