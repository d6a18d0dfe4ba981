// Tests for proxy/config.h: the YAML format of dtab-proxy's configuration
// (every key and its default), every class of error and its message shape
// ("FILE: KEY.PATH: reason"), relative path resolution, token files, and
// RenderConfig's round trip through ParseConfig.
#include "proxy/config.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dtab/parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dtabd::proxy {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Compares every field two configs hold, the path and the token aside.
void ExpectEquivalent(const ProxyConfig& a, const ProxyConfig& b) {
  EXPECT_EQ(a.admin.ip, b.admin.ip);
  EXPECT_EQ(a.admin.port, b.admin.port);
  EXPECT_EQ(a.workers, b.workers);
  ASSERT_EQ(a.control_plane.has_value(), b.control_plane.has_value());
  if (a.control_plane.has_value()) {
    EXPECT_EQ(a.control_plane->address, b.control_plane->address);
    EXPECT_EQ(a.control_plane->tls, b.control_plane->tls);
    EXPECT_EQ(a.control_plane->tls_ca_file, b.control_plane->tls_ca_file);
    EXPECT_EQ(a.control_plane->tls_server_name, b.control_plane->tls_server_name);
    EXPECT_EQ(a.control_plane->cache_dir, b.control_plane->cache_dir);
  }
  ASSERT_EQ(a.namers.size(), b.namers.size());
  for (size_t i = 0; i < a.namers.size(); ++i) {
    EXPECT_EQ(a.namers[i].kind, b.namers[i].kind);
    EXPECT_EQ(a.namers[i].prefix, b.namers[i].prefix);
    EXPECT_EQ(a.namers[i].root_dir, b.namers[i].root_dir);
  }
  ASSERT_EQ(a.routers.size(), b.routers.size());
  for (size_t r = 0; r < a.routers.size(); ++r) {
    const RouterConfig& x = a.routers[r];
    const RouterConfig& y = b.routers[r];
    EXPECT_EQ(x.label, y.label);
    EXPECT_EQ(x.ns, y.ns);
    EXPECT_EQ(x.static_dtab, y.static_dtab);
    ASSERT_EQ(x.identifiers.size(), y.identifiers.size());
    for (size_t i = 0; i < x.identifiers.size(); ++i) {
      EXPECT_EQ(x.identifiers[i].kind, y.identifiers[i].kind);
      EXPECT_EQ(x.identifiers[i].header, y.identifiers[i].header);
      EXPECT_EQ(x.identifiers[i].segments, y.identifiers[i].segments);
      EXPECT_EQ(x.identifiers[i].consume, y.identifiers[i].consume);
    }
    EXPECT_EQ(x.dst_prefix, y.dst_prefix);
    ASSERT_EQ(x.servers.size(), y.servers.size());
    for (size_t s = 0; s < x.servers.size(); ++s) {
      EXPECT_EQ(x.servers[s].address.ip, y.servers[s].address.ip);
      EXPECT_EQ(x.servers[s].address.port, y.servers[s].address.port);
      EXPECT_EQ(x.servers[s].clear_context, y.servers[s].clear_context);
      EXPECT_EQ(x.servers[s].max_call_depth, y.servers[s].max_call_depth);
    }
    EXPECT_EQ(x.override_policy.max_bytes, y.override_policy.max_bytes);
    EXPECT_EQ(x.override_policy.max_dentries, y.override_policy.max_dentries);
    EXPECT_EQ(x.override_policy.allowed_prefixes, y.override_policy.allowed_prefixes);
    EXPECT_EQ(x.client.connect_timeout, y.client.connect_timeout);
    EXPECT_EQ(x.client.request_timeout, y.client.request_timeout);
    EXPECT_EQ(x.client.idle_timeout, y.client.idle_timeout);
    EXPECT_EQ(x.client.max_idle_per_endpoint, y.client.max_idle_per_endpoint);
    EXPECT_EQ(x.client.failures_to_eject, y.client.failures_to_eject);
    EXPECT_EQ(x.client.ejection_backoff, y.client.ejection_backoff);
    EXPECT_EQ(x.client.ejection_backoff_max, y.client.ejection_backoff_max);
  }
}

// A fresh directory per test (removed afterwards) holding `disco/`, a
// namer root. Configs are parsed as if read from DIR/proxy.yaml, so
// relative paths resolve into DIR.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir();
    if (pattern.empty() || pattern.back() != '/') {
      pattern += '/';
    }
    pattern += "config_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    dir_ = pattern;
    file_ = dir_ + "/proxy.yaml";
    ASSERT_EQ(mkdir((dir_ + "/disco").c_str(), 0700), 0);
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    EXPECT_FALSE(ec) << "removing " << dir_ << ": " << ec.message();
  }

  void WriteFile(const std::string& path, absl::string_view contents) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << contents;
    out.close();
    ASSERT_TRUE(out.good()) << "writing " << path;
  }

  absl::StatusOr<ProxyConfig> Parse(absl::string_view yaml) { return ParseConfig(yaml, file_); }

  // Parses `yaml`, which must fail with InvalidArgument, and returns the
  // message.
  std::string ErrorOf(absl::string_view yaml) {
    absl::StatusOr<ProxyConfig> config = Parse(yaml);
    EXPECT_FALSE(config.ok()) << "parsed:\n" << yaml;
    if (config.ok()) {
      return "";
    }
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << config.status();
    return std::string(config.status().message());
  }

  // "FILE: rest", the shape of every message.
  std::string Msg(absl::string_view rest) { return absl::StrCat(file_, ": ", rest); }

  // A valid one-router config (static dtab) with `extra` appended to the
  // router's keys (indented by four spaces).
  static std::string OneRouter(absl::string_view extra = "") {
    return absl::StrCat(
        "routers:\n"
        "  - label: r\n"
        "    dtab: /svc => /$/inet/127.1/8080;\n"
        "    servers: [{port: 4140}]\n",
        extra);
  }

  std::string dir_;   // absolute; created in SetUp
  std::string file_;  // dir_ + "/proxy.yaml" (need not exist)
};

TEST_F(ConfigTest, ParsesEveryKey) {
  WriteFile(dir_ + "/token", "  tok-en  \nsecond line\n");
  const std::string yaml = R"(
admin: {ip: 0.0.0.0, port: 9991}
workers: 3
control_plane:
  address: dtabd.example:4321
  token_file: token
  tls: {ca_file: certs/ca.pem, server_name: dtabd.internal}
  cache_dir: var/cache
namers:
  - kind: io.l5d.fs
    root_dir: disco
    prefix: /fs
routers:
  - label: outgoing
    protocol: http
    namespace: outgoing-ns
    identifier:
      - {kind: io.l5d.header.token, header: X-Host}
      - kind: io.l5d.methodAndHost
      - {kind: io.l5d.path, segments: 2, consume: true}
      - {kind: io.l5d.header, header: my-name}
    dst_prefix: /http
    servers:
      - {ip: "::1", port: 4140, clear_context: true, max_call_depth: 7}
      - {port: 4141}
    override_policy:
      max_bytes: 100
      max_dentries: 3
      allowed_prefixes: [/host, /srv/x]
    client:
      connect_timeout_ms: 250
      request_timeout_ms: 3000
      idle_timeout_ms: 9000
      max_idle_per_endpoint: 0
      failures_to_eject: 2
      ejection_backoff_ms: 100
      ejection_backoff_max_ms: 800
  - label: static_2
    dtab: |
      /svc => /#/fs;
      /host => /svc;
    servers: [{ip: 127.0.0.2, port: 4140}]
)";
  absl::StatusOr<ProxyConfig> config = Parse(yaml);
  ASSERT_TRUE(config.ok()) << config.status();

  EXPECT_EQ(config->path, file_);
  EXPECT_EQ(config->admin.ip, "0.0.0.0");
  EXPECT_EQ(config->admin.port, 9991);
  EXPECT_EQ(config->workers, 3);

  ASSERT_TRUE(config->control_plane.has_value());
  const ControlPlaneConfig& cp = *config->control_plane;
  EXPECT_EQ(cp.address, "dtabd.example:4321");
  EXPECT_EQ(cp.token, "tok-en");
  EXPECT_TRUE(cp.tls);
  EXPECT_EQ(cp.tls_ca_file, dir_ + "/certs/ca.pem");
  EXPECT_EQ(cp.tls_server_name, "dtabd.internal");
  EXPECT_EQ(cp.cache_dir, dir_ + "/var/cache");

  ASSERT_EQ(config->namers.size(), 1u);
  EXPECT_EQ(config->namers[0].kind, "io.l5d.fs");
  EXPECT_EQ(config->namers[0].prefix, "/fs");
  EXPECT_EQ(config->namers[0].root_dir, dir_ + "/disco");

  ASSERT_EQ(config->routers.size(), 2u);
  const RouterConfig& out = config->routers[0];
  EXPECT_EQ(out.label, "outgoing");
  EXPECT_EQ(out.ns, "outgoing-ns");
  EXPECT_FALSE(out.static_dtab.has_value());
  ASSERT_EQ(out.identifiers.size(), 4u);
  EXPECT_EQ(out.identifiers[0].kind, "io.l5d.header.token");
  EXPECT_EQ(out.identifiers[0].header, "X-Host");
  EXPECT_EQ(out.identifiers[1].kind, "io.l5d.methodAndHost");
  EXPECT_EQ(out.identifiers[2].kind, "io.l5d.path");
  EXPECT_EQ(out.identifiers[2].segments, 2);
  EXPECT_TRUE(out.identifiers[2].consume);
  EXPECT_EQ(out.identifiers[3].kind, "io.l5d.header");
  EXPECT_EQ(out.identifiers[3].header, "my-name");
  EXPECT_EQ(out.dst_prefix, "/http");
  ASSERT_EQ(out.servers.size(), 2u);
  EXPECT_EQ(out.servers[0].address.ip, "::1");
  EXPECT_EQ(out.servers[0].address.port, 4140);
  EXPECT_TRUE(out.servers[0].clear_context);
  EXPECT_EQ(out.servers[0].max_call_depth, 7);
  EXPECT_EQ(out.servers[1].address.ip, "127.0.0.1");
  EXPECT_EQ(out.servers[1].address.port, 4141);
  EXPECT_EQ(out.override_policy.max_bytes, 100u);
  EXPECT_EQ(out.override_policy.max_dentries, 3u);
  EXPECT_EQ(out.override_policy.allowed_prefixes, (std::vector<std::string>{"/host", "/srv/x"}));
  EXPECT_EQ(out.client.connect_timeout, absl::Milliseconds(250));
  EXPECT_EQ(out.client.request_timeout, absl::Seconds(3));
  EXPECT_EQ(out.client.idle_timeout, absl::Seconds(9));
  EXPECT_EQ(out.client.max_idle_per_endpoint, 0);
  EXPECT_EQ(out.client.failures_to_eject, 2);
  EXPECT_EQ(out.client.ejection_backoff, absl::Milliseconds(100));
  EXPECT_EQ(out.client.ejection_backoff_max, absl::Milliseconds(800));

  const RouterConfig& st = config->routers[1];
  EXPECT_EQ(st.label, "static_2");
  EXPECT_FALSE(st.ns.has_value());
  EXPECT_EQ(st.static_dtab, "/svc => /#/fs;\n/host => /svc;\n");
  EXPECT_EQ(st.servers[0].address.ip, "127.0.0.2");
}

TEST_F(ConfigTest, FillsDefaults) {
  absl::StatusOr<ProxyConfig> config = Parse(OneRouter());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->admin.ip, "127.0.0.1");
  EXPECT_EQ(config->admin.port, 9990);
  EXPECT_EQ(config->workers, 0);
  EXPECT_FALSE(config->control_plane.has_value());
  EXPECT_TRUE(config->namers.empty());
  ASSERT_EQ(config->routers.size(), 1u);
  const RouterConfig& r = config->routers[0];
  ASSERT_EQ(r.identifiers.size(), 1u);
  EXPECT_EQ(r.identifiers[0].kind, "io.l5d.header.token");
  EXPECT_EQ(r.identifiers[0].header, "Host");
  EXPECT_EQ(r.dst_prefix, "/svc");
  ASSERT_EQ(r.servers.size(), 1u);
  EXPECT_EQ(r.servers[0].address.ip, "127.0.0.1");
  EXPECT_EQ(r.servers[0].address.port, 4140);
  EXPECT_FALSE(r.servers[0].clear_context);
  EXPECT_EQ(r.servers[0].max_call_depth, 1000);
  EXPECT_EQ(r.override_policy.max_bytes, 8192u);
  EXPECT_EQ(r.override_policy.max_dentries, 100u);
  EXPECT_TRUE(r.override_policy.allowed_prefixes.empty());
  EXPECT_EQ(r.client.connect_timeout, absl::Seconds(1));
  EXPECT_EQ(r.client.request_timeout, absl::Seconds(10));
  EXPECT_EQ(r.client.idle_timeout, absl::Seconds(60));
  EXPECT_EQ(r.client.max_idle_per_endpoint, 64);
  EXPECT_EQ(r.client.failures_to_eject, 5);
  EXPECT_EQ(r.client.ejection_backoff, absl::Seconds(5));
  EXPECT_EQ(r.client.ejection_backoff_max, absl::Seconds(300));
}

TEST_F(ConfigTest, FillsIdentifierDefaultsPerKind) {
  absl::StatusOr<ProxyConfig> config =
      Parse(OneRouter("    identifier:\n"
                      "      - kind: io.l5d.header.token\n"
                      "      - kind: io.l5d.header\n"
                      "      - kind: io.l5d.path\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  const std::vector<IdentifierConfig>& ids = config->routers[0].identifiers;
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0].header, "Host");
  EXPECT_EQ(ids[1].header, "l5d-name");
  EXPECT_EQ(ids[2].segments, 1);
  EXPECT_FALSE(ids[2].consume);
}

TEST_F(ConfigTest, AcceptsOneIdentifierMap) {
  absl::StatusOr<ProxyConfig> config =
      Parse(OneRouter("    identifier: {kind: io.l5d.path, segments: 3}\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->routers[0].identifiers.size(), 1u);
  EXPECT_EQ(config->routers[0].identifiers[0].kind, "io.l5d.path");
  EXPECT_EQ(config->routers[0].identifiers[0].segments, 3);
}

TEST_F(ConfigTest, EmptyTlsMapTurnsTlsOn) {
  absl::StatusOr<ProxyConfig> config =
      Parse(absl::StrCat("control_plane: {address: '127.0.0.1:4321', tls: {}}\n", OneRouter()));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->control_plane.has_value());
  EXPECT_TRUE(config->control_plane->tls);
  EXPECT_EQ(config->control_plane->tls_ca_file, "");
  EXPECT_EQ(config->control_plane->tls_server_name, "");
  EXPECT_EQ(config->control_plane->token, "");

  config = Parse(absl::StrCat("control_plane: {address: '127.0.0.1:4321'}\n", OneRouter()));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->control_plane->tls);
}

TEST_F(ConfigTest, NamerPrefixDefaultsToKind) {
  absl::StatusOr<ProxyConfig> config =
      Parse(absl::StrCat("namers: [{kind: io.l5d.fs, root_dir: disco}]\n", OneRouter()));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->namers.size(), 1u);
  EXPECT_EQ(config->namers[0].prefix, "/io.l5d.fs");
}

TEST_F(ConfigTest, RejectsUnknownKeysAtEveryLevel) {
  const std::string cp = "control_plane: {address: 'h:1', tls: {}}\n";
  const struct {
    std::string yaml;
    std::string key_path;  // of the map holding the unknown key
  } cases[] = {
      {absl::StrCat("foo: 1\n", OneRouter()), ""},
      {absl::StrCat("admin: {port: 1, foo: 1}\n", OneRouter()), "admin"},
      {absl::StrCat("control_plane: {address: 'h:1', foo: 1}\n", OneRouter()), "control_plane"},
      {absl::StrCat("control_plane: {address: 'h:1', tls: {foo: 1}}\n", OneRouter()),
       "control_plane.tls"},
      {absl::StrCat("namers: [{kind: io.l5d.fs, root_dir: disco, foo: 1}]\n", OneRouter()),
       "namers[0]"},
      {OneRouter("    foo: 1\n"), "routers[0]"},
      {OneRouter("    identifier: {kind: io.l5d.header.token, foo: 1}\n"), "routers[0].identifier"},
      {OneRouter("    identifier: [{kind: io.l5d.path}, {kind: io.l5d.methodAndHost, foo: 1}]\n"),
       "routers[0].identifier[1]"},
      {"routers:\n  - label: r\n    dtab: ''\n    servers: [{port: 1}, {port: 2, foo: 1}]\n",
       "routers[0].servers[1]"},
      {OneRouter("    override_policy: {foo: 1}\n"), "routers[0].override_policy"},
      {OneRouter("    client: {foo: 1}\n"), "routers[0].client"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.yaml);
    const std::string where = c.key_path.empty() ? file_ : absl::StrCat(file_, ": ", c.key_path);
    EXPECT_THAT(ErrorOf(c.yaml),
                AllOf(StartsWith(absl::StrCat(where, ": unknown key 'foo' (allowed: ")),
                      Not(HasSubstr("foo,")), Not(HasSubstr(", foo"))));
  }
  // The list of allowed keys is the section's.
  EXPECT_EQ(ErrorOf(absl::StrCat("admin: {port: 1, foo: 1}\n", OneRouter())),
            Msg("admin: unknown key 'foo' (allowed: ip, port)"));
  // Identifier keys depend on the kind.
  EXPECT_EQ(ErrorOf(OneRouter("    identifier: {kind: io.l5d.header.token, segments: 2}\n")),
            Msg("routers[0].identifier: unknown key 'segments' (allowed: kind, header)"));
}

TEST_F(ConfigTest, RejectsDuplicateKeys) {
  EXPECT_EQ(ErrorOf(absl::StrCat("workers: 1\nworkers: 2\n", OneRouter())),
            Msg("duplicate key 'workers'"));
}

TEST_F(ConfigTest, RejectsBadPorts) {
  EXPECT_EQ(ErrorOf("routers:\n"
                    "  - label: r\n"
                    "    dtab: ''\n"
                    "    servers: [{port: 1}, {port: 70000}]\n"),
            Msg("routers[0].servers[1].port: 70000 is not a port (0-65535)"));
  EXPECT_EQ(ErrorOf(OneRouter() + "admin: {port: abc}\n"),
            Msg("admin.port: 'abc' is not a port (0-65535)"));
  EXPECT_EQ(ErrorOf(OneRouter() + "admin: {port: -1}\n"),
            Msg("admin.port: -1 is not a port (0-65535)"));
  EXPECT_EQ(ErrorOf(OneRouter() + "admin: {port: [1]}\n"),
            Msg("admin.port: expected a port, got a list"));
  EXPECT_EQ(ErrorOf("routers: [{label: r, dtab: '', servers: [{ip: 127.0.0.1}]}]\n"),
            Msg("routers[0].servers[0]: missing required key 'port'"));
}

TEST_F(ConfigTest, RejectsWrongTypes) {
  EXPECT_EQ(ErrorOf("routers:\n  - label: {a: 1}\n    dtab: ''\n    servers: [{port: 1}]\n"),
            Msg("routers[0].label: expected a string, got a map"));
  EXPECT_EQ(ErrorOf(OneRouter() + "workers: abc\n"), Msg("workers: 'abc' is not an integer"));
  EXPECT_EQ(ErrorOf(OneRouter() + "workers: -2\n"), Msg("workers: -2 is negative"));
  EXPECT_EQ(ErrorOf(OneRouter() + "workers: 1.5\n"), Msg("workers: '1.5' is not an integer"));
  EXPECT_EQ(ErrorOf(OneRouter() + "admin: [1, 2]\n"), Msg("admin: expected a map, got a list"));
  EXPECT_EQ(ErrorOf("routers: {label: r}\n"), Msg("routers: expected a list, got a map"));
  EXPECT_EQ(ErrorOf("routers: [x]\n"), Msg("routers[0]: expected a map, got 'x'"));
  EXPECT_EQ(ErrorOf("- a\n- b\n"), Msg("expected a map, got a list"));
  EXPECT_EQ(
      ErrorOf("routers: [{label: r, dtab: '', servers: [{port: 1, clear_context: maybe}]}]\n"),
      Msg("routers[0].servers[0].clear_context: 'maybe' is not a boolean (true or false)"));
  EXPECT_EQ(ErrorOf("routers: [{label: r, dtab: '', servers: [{port: 1, max_call_depth: 0}]}]\n"),
            Msg("routers[0].servers[0].max_call_depth: 0 is not positive"));
  EXPECT_EQ(ErrorOf("routers: [{label: r, dtab: '', servers: [{port: 1, ip: ~}]}]\n"),
            Msg("routers[0].servers[0].ip: missing value (expected an IP address)"));
  EXPECT_EQ(ErrorOf("routers: [{label: r, dtab: '', servers: [~]}]\n"),
            Msg("routers[0].servers[0]: expected a map, got nothing"));
}

TEST_F(ConfigTest, RejectsBadIpLiterals) {
  EXPECT_EQ(ErrorOf("routers: [{label: r, dtab: '', servers: [{ip: localhost, port: 1}]}]\n"),
            Msg("routers[0].servers[0].ip: 'localhost' is not an IPv4 or IPv6 address literal"));
  EXPECT_EQ(ErrorOf(OneRouter() + "admin: {ip: 1.2.3}\n"),
            Msg("admin.ip: '1.2.3' is not an IPv4 or IPv6 address literal"));
}

TEST_F(ConfigTest, RejectsZeroRouters) {
  EXPECT_EQ(ErrorOf(""), Msg("routers: at least one router is required"));
  EXPECT_EQ(ErrorOf("workers: 1\n"), Msg("routers: at least one router is required"));
  EXPECT_EQ(ErrorOf("routers: []\n"), Msg("routers: at least one router is required"));
}

TEST_F(ConfigTest, RejectsRouterWithoutServers) {
  EXPECT_EQ(ErrorOf("routers: [{label: r, dtab: ''}]\n"),
            Msg("routers[0].servers: at least one server is required"));
  EXPECT_EQ(ErrorOf("routers: [{label: r, dtab: '', servers: []}]\n"),
            Msg("routers[0].servers: at least one server is required"));
}

TEST_F(ConfigTest, RejectsMissingOrBadLabel) {
  EXPECT_EQ(ErrorOf("routers: [{dtab: '', servers: [{port: 1}]}]\n"),
            Msg("routers[0]: missing required key 'label'"));
  EXPECT_EQ(ErrorOf("routers: [{label: '', dtab: '', servers: [{port: 1}]}]\n"),
            Msg("routers[0].label: must not be empty"));
  EXPECT_EQ(ErrorOf("routers: [{label: 'a/b', dtab: '', servers: [{port: 1}]}]\n"),
            Msg("routers[0].label: 'a/b' is not a valid label ([A-Za-z0-9_-]+)"));
}

TEST_F(ConfigTest, RejectsDuplicateLabel) {
  EXPECT_EQ(ErrorOf("routers:\n"
                    "  - {label: web, dtab: '', servers: [{port: 1}]}\n"
                    "  - {label: other, dtab: '', servers: [{port: 2}]}\n"
                    "  - {label: web, dtab: '', servers: [{port: 3}]}\n"),
            Msg("routers[2].label: label 'web' is already used by routers[0]"));
}

TEST_F(ConfigTest, RejectsTwoListenersOnOneAddress) {
  EXPECT_EQ(ErrorOf("routers:\n"
                    "  - {label: a, dtab: '', servers: [{port: 4140}]}\n"
                    "  - {label: b, dtab: '', servers: [{port: 4141}, {port: 4140}]}\n"),
            Msg("routers[1].servers[1]: listener 127.0.0.1:4140 is also used by "
                "routers[0].servers[0] (127.0.0.1:4140)"));
  EXPECT_EQ(ErrorOf("routers: [{label: a, dtab: '', servers: [{port: 9990}]}]\n"),
            Msg("routers[0].servers[0]: listener 127.0.0.1:9990 is also used by admin "
                "(127.0.0.1:9990)"));
  // One IPv6 address, spelled two ways.
  EXPECT_EQ(ErrorOf("routers:\n"
                    "  - {label: a, dtab: '', servers: [{ip: '::1', port: 80}]}\n"
                    "  - {label: b, dtab: '', servers: [{ip: '0:0::1', port: 80}]}\n"),
            Msg("routers[1].servers[0]: listener [0:0::1]:80 is also used by "
                "routers[0].servers[0] ([::1]:80)"));
}

TEST_F(ConfigTest, AllowsSharedPortZeroAndDistinctIps) {
  absl::StatusOr<ProxyConfig> config = Parse(
      "admin: {port: 0}\n"
      "routers:\n"
      "  - {label: a, dtab: '', servers: [{port: 0}, {port: 0}, {port: 4140}]}\n"
      "  - {label: b, dtab: '', servers: [{ip: 127.0.0.2, port: 4140}]}\n"
      "  - {label: c, dtab: '', servers: [{ip: '::1', port: 4140}]}\n");
  EXPECT_TRUE(config.ok()) << config.status();
}

TEST_F(ConfigTest, RequiresExactlyOneOfNamespaceAndDtab) {
  const std::string cp = "control_plane: {address: 'localhost:4321'}\n";
  EXPECT_EQ(ErrorOf(cp + "routers: [{label: r, servers: [{port: 1}]}]\n"),
            Msg("routers[0]: set one of 'namespace' (a dtabd namespace) and 'dtab' (a static "
                "dtab)"));
  EXPECT_EQ(ErrorOf(cp + "routers: [{label: r, namespace: n, dtab: '', servers: [{port: 1}]}]\n"),
            Msg("routers[0]: set only one of 'namespace' and 'dtab', not both"));
}

TEST_F(ConfigTest, NamespaceRouterNeedsControlPlane) {
  EXPECT_EQ(ErrorOf("routers: [{label: r, namespace: web, servers: [{port: 1}]}]\n"),
            Msg("routers[0].namespace: namespace 'web' needs a control_plane (dtabd's "
                "address)"));
}

TEST_F(ConfigTest, RejectsInvalidNamespaceName) {
  const std::string cp = "control_plane: {address: 'localhost:4321'}\n";
  EXPECT_EQ(ErrorOf(cp + "routers: [{label: r, namespace: 'a.b', servers: [{port: 1}]}]\n"),
            Msg("routers[0].namespace: 'a.b' is not a valid namespace name "
                "([A-Za-z0-9_-]{1,128})"));
  EXPECT_THAT(ErrorOf(absl::StrCat(cp, "routers: [{label: r, namespace: ", std::string(129, 'n'),
                                   ", servers: [{port: 1}]}]\n")),
              HasSubstr("is not a valid namespace name"));
  absl::StatusOr<ProxyConfig> config = Parse(absl::StrCat(
      cp, "routers: [{label: r, namespace: ", std::string(128, 'n'), ", servers: [{port: 1}]}]\n"));
  EXPECT_TRUE(config.ok()) << config.status();
}

TEST_F(ConfigTest, RejectsBadDtabWithParserMessage) {
  const std::string bad = "/svc => ";
  absl::StatusOr<dtab::Dtab> parsed = dtab::ParseDtab(bad);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(
      ErrorOf(absl::StrCat("routers: [{label: r, dtab: '", bad, "', servers: [{port: 1}]}]\n")),
      Msg(absl::StrCat("routers[0].dtab: bad dtab: ", parsed.status().message())));
}

TEST_F(ConfigTest, RejectsBadPaths) {
  absl::StatusOr<dtab::Path> parsed = dtab::ParsePath("svc");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(
      ErrorOf(OneRouter("    dst_prefix: svc\n")),
      Msg(absl::StrCat("routers[0].dst_prefix: 'svc' is not a path: ", parsed.status().message())));
  EXPECT_THAT(ErrorOf(OneRouter("    override_policy: {allowed_prefixes: [/ok, 'b a d']}\n")),
              StartsWith(Msg("routers[0].override_policy.allowed_prefixes[1]: 'b a d' is not a "
                             "path: ")));
  EXPECT_THAT(ErrorOf(absl::StrCat("namers: [{kind: io.l5d.fs, root_dir: disco, prefix: x}]\n",
                                   OneRouter())),
              StartsWith(Msg("namers[0].prefix: 'x' is not a path: ")));
  EXPECT_EQ(ErrorOf(absl::StrCat("namers: [{kind: io.l5d.fs, root_dir: disco, prefix: /}]\n",
                                 OneRouter())),
            Msg("namers[0].prefix: must not be empty ('/')"));
}

TEST_F(ConfigTest, StoresPathsInCanonicalForm) {
  absl::StatusOr<ProxyConfig> config =
      Parse(OneRouter("    dst_prefix: ' /a/b '\n"
                      "    override_policy: {allowed_prefixes: ['/host # comment']}\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->routers[0].dst_prefix, "/a/b");
  EXPECT_EQ(config->routers[0].override_policy.allowed_prefixes, std::vector<std::string>{"/host"});
}

TEST_F(ConfigTest, RejectsDuplicateNamerPrefix) {
  ASSERT_EQ(mkdir((dir_ + "/disco2").c_str(), 0700), 0);
  EXPECT_EQ(ErrorOf(absl::StrCat("namers:\n"
                                 "  - {kind: io.l5d.fs, root_dir: disco}\n"
                                 "  - {kind: io.l5d.fs, root_dir: disco2, prefix: /io.l5d.fs}\n",
                                 OneRouter())),
            Msg("namers[1].prefix: prefix '/io.l5d.fs' is already used by namers[0]"));
}

TEST_F(ConfigTest, RejectsBadNamers) {
  EXPECT_EQ(ErrorOf(absl::StrCat("namers: [{kind: io.l5d.k8s, root_dir: disco}]\n", OneRouter())),
            Msg("namers[0].kind: unknown namer kind 'io.l5d.k8s' (known: io.l5d.fs)"));
  EXPECT_EQ(ErrorOf(absl::StrCat("namers: [{root_dir: disco}]\n", OneRouter())),
            Msg("namers[0]: missing required key 'kind'"));
  EXPECT_EQ(ErrorOf(absl::StrCat("namers: [{kind: io.l5d.fs}]\n", OneRouter())),
            Msg("namers[0]: missing required key 'root_dir'"));
  EXPECT_EQ(ErrorOf(absl::StrCat("namers: [{kind: io.l5d.fs, root_dir: nope}]\n", OneRouter())),
            Msg(absl::StrCat("namers[0].root_dir: cannot access '", dir_,
                             "/nope': No such file or directory")));
  WriteFile(dir_ + "/plain", "x");
  EXPECT_EQ(ErrorOf(absl::StrCat("namers: [{kind: io.l5d.fs, root_dir: plain}]\n", OneRouter())),
            Msg(absl::StrCat("namers[0].root_dir: '", dir_, "/plain' is not a directory")));
}

TEST_F(ConfigTest, RejectsBadIdentifiers) {
  EXPECT_EQ(ErrorOf(OneRouter("    identifier: {kind: io.l5d.static}\n")),
            Msg("routers[0].identifier.kind: unknown identifier kind 'io.l5d.static' (known: "
                "io.l5d.header.token, io.l5d.methodAndHost, io.l5d.path, io.l5d.header)"));
  EXPECT_EQ(ErrorOf(OneRouter("    identifier: [{kind: io.l5d.path}, {kind: nope}]\n")),
            Msg("routers[0].identifier[1].kind: unknown identifier kind 'nope' (known: "
                "io.l5d.header.token, io.l5d.methodAndHost, io.l5d.path, io.l5d.header)"));
  EXPECT_EQ(ErrorOf(OneRouter("    identifier: {header: Host}\n")),
            Msg("routers[0].identifier: missing required key 'kind'"));
  EXPECT_EQ(ErrorOf(OneRouter("    identifier: []\n")),
            Msg("routers[0].identifier: an empty list identifies no request (omit it for the "
                "default)"));
  EXPECT_EQ(ErrorOf(OneRouter("    identifier: io.l5d.path\n")),
            Msg("routers[0].identifier: expected a map or a list of maps, got 'io.l5d.path'"));
  EXPECT_EQ(ErrorOf(OneRouter("    identifier: {kind: io.l5d.path, segments: 0}\n")),
            Msg("routers[0].identifier.segments: 0 is not positive"));
  EXPECT_EQ(ErrorOf(OneRouter("    identifier: {kind: io.l5d.path, consume: 1}\n")),
            Msg("routers[0].identifier.consume: '1' is not a boolean (true or false)"));
  EXPECT_EQ(ErrorOf(OneRouter("    identifier: {kind: io.l5d.header, header: 'a b'}\n")),
            Msg("routers[0].identifier.header: 'a b' is not an HTTP header name"));
  EXPECT_EQ(ErrorOf(OneRouter("    identifier: {kind: io.l5d.header.token, header: 'x:'}\n")),
            Msg("routers[0].identifier.header: 'x:' is not an HTTP header name"));
}

TEST_F(ConfigTest, RejectsUnsupportedProtocol) {
  EXPECT_EQ(ErrorOf(OneRouter("    protocol: h2\n")),
            Msg("routers[0].protocol: protocol 'h2' is not supported (only 'http')"));
}

TEST_F(ConfigTest, RejectsBadLimitsAndTimeouts) {
  EXPECT_EQ(ErrorOf(OneRouter("    override_policy: {max_bytes: 0}\n")),
            Msg("routers[0].override_policy.max_bytes: 0 is not positive"));
  EXPECT_EQ(ErrorOf(OneRouter("    override_policy: {max_dentries: -1}\n")),
            Msg("routers[0].override_policy.max_dentries: -1 is not positive"));
  EXPECT_EQ(ErrorOf(OneRouter("    client: {connect_timeout_ms: 0}\n")),
            Msg("routers[0].client.connect_timeout_ms: 0 is not positive"));
  EXPECT_EQ(ErrorOf(OneRouter("    client: {request_timeout_ms: soon}\n")),
            Msg("routers[0].client.request_timeout_ms: 'soon' is not an integer"));
  EXPECT_EQ(ErrorOf(OneRouter("    client: {max_idle_per_endpoint: -1}\n")),
            Msg("routers[0].client.max_idle_per_endpoint: -1 is negative"));
  EXPECT_EQ(ErrorOf(OneRouter("    client: {failures_to_eject: 0}\n")),
            Msg("routers[0].client.failures_to_eject: 0 is not positive"));
  EXPECT_EQ(ErrorOf(OneRouter("    client: {idle_timeout_ms: 99999999999}\n")),
            Msg("routers[0].client.idle_timeout_ms: 99999999999 is too large (at most "
                "2147483647)"));
  EXPECT_EQ(
      ErrorOf(OneRouter("    client: {ejection_backoff_ms: 1000, ejection_backoff_max_ms: 999}\n")),
      Msg("routers[0].client.ejection_backoff_max_ms: 999 is less than ejection_backoff_ms "
          "(1000)"));
  // The default maximum (300 s) is below a larger backoff too.
  EXPECT_THAT(ErrorOf(OneRouter("    client: {ejection_backoff_ms: 600000}\n")),
              HasSubstr("300000 is less than ejection_backoff_ms (600000)"));
}

TEST_F(ConfigTest, ValidatesControlPlaneAddress) {
  for (const char* bad : {"localhost", ":4321", "host:", "host:0", "host:70000", "host:12a",
                          "::1:4321", "[::1]", "[::1]4321"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(
        ErrorOf(absl::StrCat("control_plane: {address: '", bad, "'}\n", OneRouter())),
        Msg(absl::StrCat("control_plane.address: '", bad, "' is not HOST:PORT (port 1-65535)")));
  }
  for (const char* good : {"localhost:4321", "10.0.0.1:1", "[::1]:4321", "dtabd.svc:65535"}) {
    SCOPED_TRACE(good);
    absl::StatusOr<ProxyConfig> config =
        Parse(absl::StrCat("control_plane: {address: '", good, "'}\n", OneRouter()));
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->control_plane->address, good);
  }
  EXPECT_EQ(ErrorOf(absl::StrCat("control_plane: {token: x}\n", OneRouter())),
            Msg("control_plane: missing required key 'address'"));
}

TEST_F(ConfigTest, ReadsFirstLineOfTokenFile) {
  WriteFile(dir_ + "/tok", "\tabc123 \r\nignored\n");
  absl::StatusOr<ProxyConfig> config = Parse(
      absl::StrCat("control_plane: {address: 'h:1', token_file: ", dir_, "/tok}\n", OneRouter()));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->control_plane->token, "abc123");

  WriteFile(dir_ + "/tok", "no-newline");
  config = Parse(absl::StrCat("control_plane: {address: 'h:1', token_file: tok}\n", OneRouter()));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->control_plane->token, "no-newline");
}

TEST_F(ConfigTest, RejectsMissingOrEmptyTokenFile) {
  EXPECT_EQ(
      ErrorOf(absl::StrCat("control_plane: {address: 'h:1', token_file: missing}\n", OneRouter())),
      Msg(absl::StrCat("control_plane.token_file: cannot read '", dir_,
                       "/missing': No such file or directory")));
  WriteFile(dir_ + "/empty", "  \nsecond\n");
  EXPECT_EQ(
      ErrorOf(absl::StrCat("control_plane: {address: 'h:1', token_file: empty}\n", OneRouter())),
      Msg(absl::StrCat("control_plane.token_file: '", dir_,
                       "/empty' holds no token (its first line is empty)")));
}

TEST_F(ConfigTest, RejectsTokenAndTokenFileTogether) {
  WriteFile(dir_ + "/tok", "t\n");
  EXPECT_EQ(ErrorOf(absl::StrCat("control_plane: {address: 'h:1', token: a, token_file: tok}\n",
                                 OneRouter())),
            Msg("control_plane: set token or token_file, not both"));
}

TEST_F(ConfigTest, ResolvesRelativePathsAgainstTheConfigDirectory) {
  ASSERT_EQ(mkdir((dir_ + "/conf").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((dir_ + "/conf/disco").c_str(), 0700), 0);
  WriteFile(dir_ + "/conf/token", "from-conf\n");
  const std::string yaml = absl::StrCat(
      "control_plane:\n"
      "  address: 'h:1'\n"
      "  token_file: ./token\n"
      "  tls: {ca_file: ../ca.pem}\n"
      "  cache_dir: cache/\n"
      "namers:\n"
      "  - {kind: io.l5d.fs, root_dir: disco, prefix: /a}\n"
      "  - {kind: io.l5d.fs, root_dir: ",
      dir_, "/disco, prefix: /b}\n", OneRouter());
  absl::StatusOr<ProxyConfig> config = ParseConfig(yaml, dir_ + "/conf/proxy.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->path, dir_ + "/conf/proxy.yaml");
  EXPECT_EQ(config->control_plane->token, "from-conf");
  EXPECT_EQ(config->control_plane->tls_ca_file, dir_ + "/ca.pem");
  EXPECT_EQ(config->control_plane->cache_dir, dir_ + "/conf/cache");
  EXPECT_EQ(config->namers[0].root_dir, dir_ + "/conf/disco");
  EXPECT_EQ(config->namers[1].root_dir, dir_ + "/disco");
}

TEST_F(ConfigTest, ResolvesBareFileNameAgainstTheCurrentDirectory) {
  std::error_code ec;
  const std::filesystem::path cwd = std::filesystem::current_path(ec);
  ASSERT_FALSE(ec) << ec.message();
  absl::StatusOr<ProxyConfig> config =
      ParseConfig(absl::StrCat("control_plane: {address: 'h:1', cache_dir: cache}\n", OneRouter()),
                  "proxy.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->path, "proxy.yaml");
  EXPECT_EQ(config->control_plane->cache_dir, (cwd / "cache").lexically_normal().string());
}

TEST_F(ConfigTest, ReportsYamlSyntaxErrorsWithLineAndColumn) {
  EXPECT_EQ(ErrorOf("routers:\n"
                    "  - label: r\n"
                    "    servers: [{port: 1}\n"
                    "    dtab: x\n"),
            Msg("line 4, column 5: end of sequence flow not found"));
  EXPECT_THAT(ErrorOf("a: 1\n b: 2\n"), StartsWith(Msg("line 2, column 3: ")));
}

TEST_F(ConfigTest, RejectsSeveralDocuments) {
  EXPECT_EQ(ErrorOf(OneRouter() + "---\n" + OneRouter()),
            Msg("expected one YAML document, found 2"));
}

TEST_F(ConfigTest, RenderConfigRoundTripsEveryKey) {
  WriteFile(dir_ + "/token", "s3cr3t\n");
  const std::string yaml = R"(
admin: {ip: "::", port: 9000}
workers: 4
control_plane:
  address: "[::1]:4321"
  token_file: token
  tls: {ca_file: ca.pem, server_name: dtabd}
  cache_dir: cache
namers:
  - {kind: io.l5d.fs, root_dir: disco}
  - {kind: io.l5d.fs, root_dir: disco, prefix: /other}
routers:
  - label: "null"
    namespace: "true"
    identifier:
      - {kind: io.l5d.path, segments: 2, consume: true}
      - {kind: io.l5d.methodAndHost}
      - {kind: io.l5d.header}
    dst_prefix: /s
    servers: [{ip: "::1", port: 1, clear_context: true, max_call_depth: 3}]
    override_policy: {max_bytes: 1, max_dentries: 2, allowed_prefixes: [/a, /b/c]}
    client:
      connect_timeout_ms: 1
      request_timeout_ms: 2
      idle_timeout_ms: 3
      max_idle_per_endpoint: 4
      failures_to_eject: 5
      ejection_backoff_ms: 6
      ejection_backoff_max_ms: 7
  - label: "007"
    dtab: "/svc => /#/io.l5d.fs | /$/inet/127.1/80;\n# comment: 'quoted' \"too\"\n/a=>/b"
    servers: [{port: 2}]
)";
  absl::StatusOr<ProxyConfig> config = Parse(yaml);
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string rendered = RenderConfig(*config);
  EXPECT_THAT(rendered, HasSubstr("<redacted>"));
  EXPECT_THAT(rendered, Not(HasSubstr("s3cr3t")));
  EXPECT_THAT(rendered, Not(HasSubstr("token_file")));

  absl::StatusOr<ProxyConfig> again = Parse(rendered);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << rendered;
  ExpectEquivalent(*config, *again);
  EXPECT_EQ(again->control_plane->token, "<redacted>");
  // Rendering is stable.
  EXPECT_EQ(RenderConfig(*again), rendered);
}

TEST_F(ConfigTest, RenderConfigFillsInEveryDefault) {
  absl::StatusOr<ProxyConfig> config = Parse(OneRouter());
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string rendered = RenderConfig(*config);
  for (const char* key : {"admin:",
                          "ip: 127.0.0.1",
                          "port: 9990",
                          "workers: 0",
                          "namers: []",
                          "protocol: http",
                          "kind: io.l5d.header.token",
                          "header: Host",
                          "dst_prefix: /svc",
                          "clear_context: false",
                          "max_call_depth: 1000",
                          "max_bytes: 8192",
                          "max_dentries: 100",
                          "allowed_prefixes: []",
                          "connect_timeout_ms: 1000",
                          "request_timeout_ms: 10000",
                          "idle_timeout_ms: 60000",
                          "max_idle_per_endpoint: 64",
                          "failures_to_eject: 5",
                          "ejection_backoff_ms: 5000",
                          "ejection_backoff_max_ms: 300000"}) {
    EXPECT_THAT(rendered, HasSubstr(key));
  }
  EXPECT_THAT(rendered, Not(HasSubstr("control_plane")));
  absl::StatusOr<ProxyConfig> again = Parse(rendered);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << rendered;
  ExpectEquivalent(*config, *again);
}

TEST_F(ConfigTest, LoadConfigReadsTheFile) {
  WriteFile(file_, OneRouter());
  absl::StatusOr<ProxyConfig> config = LoadConfig(file_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->path, file_);
  EXPECT_EQ(config->routers[0].label, "r");
}

TEST_F(ConfigTest, LoadConfigReportsUnreadableFile) {
  const std::string missing = dir_ + "/missing.yaml";
  absl::StatusOr<ProxyConfig> config = LoadConfig(missing);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(config.status().message(),
            absl::StrCat("cannot read config '", missing, "': No such file or directory"));

  config = LoadConfig(dir_ + "/disco");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              HasSubstr(absl::StrCat("cannot read config '", dir_, "/disco': ")));
}

TEST_F(ConfigTest, LoadConfigReportsParseErrorsWithTheFileName) {
  WriteFile(file_, "routers: []\n");
  absl::StatusOr<ProxyConfig> config = LoadConfig(file_);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(), Msg("routers: at least one router is required"));
}

}  // namespace
}  // namespace dtabd::proxy
