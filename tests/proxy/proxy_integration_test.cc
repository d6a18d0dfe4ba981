// Integration tests of the dtab-proxy binary: each test starts the real
// proxy (ProxyProcess: a YAML config in a temporary directory, every
// listener on 127.0.0.1:0), small in-process HTTP backends (Backend) and,
// for `namespace:` routers, the real dtabd (DtabdProcess), then asserts
// what clients and backends see: status, l5d-* headers, which backend
// answered. Behaviour follows shared/reference/linkerd-behaviour.md
// sections 2.2-2.5 (identifiers, l5d-* headers, errors, namers).
//
// Nothing sleeps: waits poll something observable (a request, an admin
// page, a log file) until a deadline, and each probe waits for its answer.
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dtabd/v1/dtab.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/dtabd_process.h"
#include "tests/testing/backend.h"
#include "tests/testing/child_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/proxy_process.h"

namespace dtabd::proxy {
namespace {

using ::dtabd::integration::DtabdProcess;
using ::dtabd::testing::Backend;
using ::dtabd::testing::Fetch;
using ::dtabd::testing::Fnv1a;
using ::dtabd::testing::Headers;
using ::dtabd::testing::HttpClient;
using ::dtabd::testing::HttpResponse;
using ::dtabd::testing::PatternBytes;
using ::dtabd::testing::PatternFnv;
using ::dtabd::testing::ProxyProcess;
using ::dtabd::testing::ReceivedRequest;
using ::dtabd::testing::TempDir;
using ::dtabd::testing::WriteFileAtomically;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

using Clock = std::chrono::steady_clock;

// How long any wait for an observable change may take.
constexpr Clock::duration kDeadline = std::chrono::seconds(10);
constexpr size_t kLargeBody = 32 << 20;

// "/$/inet/127.0.0.1/PORT" of a backend.
std::string Inet(const Backend* b) { return absl::StrCat("/$/inet/127.0.0.1/", b->port()); }

// The port of "HOST:PORT".
std::string PortOf(absl::string_view address) {
  return std::string(address.substr(address.rfind(':') + 1));
}

// The first line of a body: the name of the backend that answered.
std::string Who(const HttpResponse& r) { return r.body.substr(0, r.body.find('\n')); }

// A config with one router "out" on a static `dtab` and one plain server.
// `router_extra` is appended inside the router (indent 4), `top_extra` at
// the top level.
std::string StaticConfig(absl::string_view dtab, absl::string_view router_extra = "",
                         absl::string_view top_extra = "") {
  return absl::StrCat("workers: 2\n", top_extra,
                      "routers:\n"
                      "  - label: out\n"
                      "    dtab: \"",
                      dtab,
                      "\"\n"
                      "    servers:\n"
                      "      - {port: 0}\n",
                      router_extra);
}

// A loopback port that refuses connections: a bound socket that never
// listens, held (so nobody else takes the port) until destroyed.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot bind: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
  }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  ~RefusingPort() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }

  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A proxy error: `status` with a non-empty l5d-err.
void ExpectProxyErrorStatus(const HttpResponse& r, int status) {
  EXPECT_EQ(r.status, status) << r;
  EXPECT_FALSE(r.HeaderOr("l5d-err").empty()) << r;
  EXPECT_NE(r.Header("l5d-err"), nullptr) << r;
}

// Calls `probe` until it returns true or kDeadline passes; each call does
// real work (a request, a file read), so this never sleeps.
bool PollUntil(const std::function<bool()>& probe, Clock::duration timeout = kDeadline) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    if (probe()) {
      return true;
    }
    if (Clock::now() >= deadline) {
      return false;
    }
  }
}

class ProxyIntegrationTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!HasFailure()) {
      return;
    }
    for (const auto& p : proxies_) {
      std::cerr << "--- dtab-proxy (" << p->dir() << ") stderr:\n" << p->stderr_output();
    }
    if (dtabd_ != nullptr) {
      std::cerr << "--- dtabd stderr:\n" << dtabd_->stderr_output();
    }
  }

  // Starts an echo backend named `name`; null (with a failure) if it
  // cannot start. Tests check HasFailure() after their setup.
  Backend* Echo(std::string name, Backend::Options options = {}) {
    options.name = std::move(name);
    absl::StatusOr<std::unique_ptr<Backend>> b = Backend::StartEcho(std::move(options));
    if (!b.ok()) {
      ADD_FAILURE() << b.status();
      return nullptr;
    }
    backends_.push_back(*std::move(b));
    return backends_.back().get();
  }

  Backend* Hello(std::string name, std::string next_hop) {
    Backend::Options options;
    options.name = std::move(name);
    absl::StatusOr<std::unique_ptr<Backend>> b =
        Backend::StartHello(std::move(options), std::move(next_hop));
    if (!b.ok()) {
      ADD_FAILURE() << b.status();
      return nullptr;
    }
    backends_.push_back(*std::move(b));
    return backends_.back().get();
  }

  // Starts dtab-proxy; null (with a failure) if it cannot start.
  ProxyProcess* Proxy(std::string yaml,
                      std::vector<std::pair<std::string, std::string>> files = {}) {
    ProxyProcess::Options options;
    options.yaml = std::move(yaml);
    options.files = std::move(files);
    absl::StatusOr<std::unique_ptr<ProxyProcess>> p = ProxyProcess::Start(std::move(options));
    if (!p.ok()) {
      ADD_FAILURE() << p.status();
      return nullptr;
    }
    proxies_.push_back(*std::move(p));
    return proxies_.back().get();
  }

  void StartDtabd() {
    absl::StatusOr<std::unique_ptr<DtabdProcess>> d = DtabdProcess::Start();
    ASSERT_TRUE(d.ok()) << d.status();
    dtabd_ = *std::move(d);
    stub_ = v1::DtabService::NewStub(
        grpc::CreateChannel(dtabd_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  // Writes a new version of namespace `ns` in dtabd; returns the version
  // (0, with a failure, on error).
  int64_t PutDtab(const std::string& ns, const std::string& dtab) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::PutDtabRequest req;
    req.set_namespace_(ns);
    req.set_dtab(dtab);
    v1::VersionedDtab got;
    const grpc::Status s = stub_->PutDtab(&ctx, req, &got);
    if (!s.ok()) {
      ADD_FAILURE() << "PutDtab " << ns << ": " << s.error_code() << " " << s.error_message();
      return 0;
    }
    return got.version();
  }

  // One request on a fresh connection; a transport failure is reported
  // and gives status 0.
  static HttpResponse Send(const std::string& address, const Headers& headers,
                           absl::string_view method = "GET", absl::string_view target = "/",
                           absl::string_view body = "") {
    absl::StatusOr<HttpResponse> r = Fetch(address, method, target, headers, body);
    if (!r.ok()) {
      ADD_FAILURE() << method << " " << target << " to " << address << ": " << r.status();
      return HttpResponse();
    }
    return *std::move(r);
  }

  static HttpResponse Get(const std::string& address, absl::string_view host,
                          Headers more = {}) {
    Headers headers = {{"Host", std::string(host)}};
    headers.insert(headers.end(), more.begin(), more.end());
    return Send(address, headers);
  }

  static HttpResponse Admin(const ProxyProcess* p, absl::string_view target) {
    return Send(p->admin_address(), {{"Host", "admin"}}, "GET", target);
  }

  std::vector<std::unique_ptr<Backend>> backends_;
  std::unique_ptr<DtabdProcess> dtabd_;
  std::unique_ptr<v1::DtabService::Stub> stub_;
  // Last: stopped first, while backends and dtabd still run.
  std::vector<std::unique_ptr<ProxyProcess>> proxies_;
};

// --- Routing ------------------------------------------------------------

TEST_F(ProxyIntegrationTest, RoutesByHostHeaderAsOneVerbatimLabel) {
  Backend* a = Echo("a");
  Backend* b = Echo("b");
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(StaticConfig(absl::StrCat("/svc/a=>", Inet(a), ";/svc/b=>", Inet(b))));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(p->listeners().size(), 1u);
  EXPECT_EQ(p->listeners()[0].label, "out");
  const std::string out = p->address("out");
  ASSERT_THAT(out, StartsWith("127.0.0.1:"));

  HttpResponse r = Get(out, "a");
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.body, "a\n");
  EXPECT_EQ(a->last_request().HeaderOr("l5d-dst-service"), "/svc/a");
  r = Get(out, "b");
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.body, "b\n");
  EXPECT_EQ(a->request_count(), 1u);
  EXPECT_EQ(b->request_count(), 1u);

  // The header is one label, as is: a port stays (no such name here), and
  // case is kept.
  r = Get(out, "a:8080");
  EXPECT_EQ(r.status, 502) << r;
  EXPECT_THAT(r.body, HasSubstr("/svc/a:8080"));
  r = Get(out, "A");
  EXPECT_EQ(r.status, 502) << r;
  EXPECT_THAT(r.body, HasSubstr("/svc/A"));
  EXPECT_EQ(a->request_count(), 1u);

  // A clean drain on SIGTERM.
  absl::StatusOr<int> code = p->Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << p->stderr_output();
}

TEST_F(ProxyIntegrationTest, OtherIdentifiersBuildTheirNames) {
  Backend* a = Echo("a");
  ASSERT_FALSE(HasFailure());
  const std::string dtab = absl::StrCat("/svc/world=>", Inet(a), ";/svc/1.1/GET/world=>", Inet(a),
                                        ";/svc/1.0/GET=>", Inet(a));
  auto router = [&](absl::string_view label, absl::string_view identifier) {
    return absl::StrCat("  - label: ", label, "\n    dtab: \"", dtab, "\"\n    identifier: ",
                        identifier, "\n    servers:\n      - {port: 0}\n");
  };
  ProxyProcess* p = Proxy(absl::StrCat(
      "routers:\n", router("path", "{kind: io.l5d.path, segments: 1, consume: true}"),
      router("method", "{kind: io.l5d.methodAndHost}"), router("name", "{kind: io.l5d.header}"),
      // A list: the first that identifies the request wins.
      router("list", "[{kind: io.l5d.header}, {kind: io.l5d.header.token}]")));
  ASSERT_NE(p, nullptr);

  // io.l5d.path with consume: the segment names the service and is
  // removed from the forwarded target (the query stays).
  HttpResponse r = Send(p->address("path"), {{"Host", "ignored"}}, "GET", "/world/api/v1?x=1");
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(a->last_request().target, "/api/v1?x=1");
  EXPECT_EQ(a->last_request().HeaderOr("l5d-dst-service"), "/svc/world");
  r = Send(p->address("path"), {{"Host", "world"}}, "GET", "/");
  ExpectProxyErrorStatus(r, 400);

  // io.l5d.methodAndHost: version, method and lower-cased host.
  r = Get(p->address("method"), "WORLD");
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(a->last_request().HeaderOr("l5d-dst-service"), "/svc/1.1/GET/world");
  absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(p->address("method"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendBytes("GET / HTTP/1.0\r\n\r\n").ok());
  absl::StatusOr<HttpResponse> r10 = (*c)->ReadResponse();
  ASSERT_TRUE(r10.ok()) << r10.status();
  EXPECT_EQ(r10->status, 200) << *r10;
  EXPECT_EQ(a->last_request().HeaderOr("l5d-dst-service"), "/svc/1.0/GET");

  // io.l5d.header: l5d-name parsed as a path.
  r = Get(p->address("name"), "ignored", {{"l5d-name", "/world"}});
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(a->last_request().HeaderOr("l5d-dst-service"), "/svc/world");
  r = Get(p->address("name"), "world");
  ExpectProxyErrorStatus(r, 400);

  // A list falls back to the next identifier.
  r = Get(p->address("list"), "world");
  EXPECT_EQ(r.status, 200) << r;
  r = Get(p->address("list"), "nowhere", {{"l5d-name", "/world"}});
  EXPECT_EQ(r.status, 200) << r;
}

TEST_F(ProxyIntegrationTest, FsNamerFilesNameEndpoints) {
  Backend* a = Echo("a");
  Backend* b = Echo("b");
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(
      StaticConfig("/svc=>/#/io.l5d.fs;/svc/hello=>/#/io.l5d.fs/team/hello;"
                   "/svc/deep=>/#/io.l5d.fs/world/extra",
                   "", "namers:\n  - {kind: io.l5d.fs, root_dir: disco}\n"),
      {{"disco/world", absl::StrCat("# the world service\n127.0.0.1 ", a->port(), "\n")},
       {"disco/team/hello", absl::StrCat("127.0.0.1 ", b->port(), " * 2\n")},
       {"disco/broken", "127.0.0.1 not-a-port\n"}});
  ASSERT_NE(p, nullptr);
  const std::string out = p->address("out");

  HttpResponse r = Get(out, "world");
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "a");
  const ReceivedRequest got = a->last_request();
  EXPECT_EQ(got.HeaderOr("l5d-dst-service"), "/svc/world");
  EXPECT_EQ(got.HeaderOr("l5d-dst-client"), "/#/io.l5d.fs/world");
  EXPECT_EQ(got.Header("l5d-dst-residual"), nullptr);

  // Directories nest; what is left after the file's name is the residual.
  r = Get(out, "hello");
  EXPECT_EQ(Who(r), "b") << r;
  EXPECT_EQ(b->last_request().HeaderOr("l5d-dst-client"), "/#/io.l5d.fs/team/hello");
  r = Get(out, "deep");
  EXPECT_EQ(Who(r), "a") << r;
  EXPECT_EQ(a->last_request().HeaderOr("l5d-dst-client"), "/#/io.l5d.fs/world");
  EXPECT_EQ(a->last_request().HeaderOr("l5d-dst-residual"), "/extra");

  // No file: Neg, 502 naming the service.
  r = Get(out, "nowhere");
  EXPECT_EQ(r.status, 502) << r;
  EXPECT_THAT(r.body, HasSubstr("/svc/nowhere"));

  // A file that never parsed has no endpoints; the reason is given.
  r = Get(out, "broken");
  EXPECT_EQ(r.status, 502) << r;
  EXPECT_THAT(r.body, AllOf(HasSubstr("/svc/broken"), HasSubstr("line 1")));
  EXPECT_EQ(a->request_count() + b->request_count(), 3u);
}

TEST_F(ProxyIntegrationTest, FsNamerChangesApplyWithoutRestartAndBadFilesKeepLastGood) {
  Backend* a = Echo("a");
  Backend* b = Echo("b");
  Backend* c = Echo("c");
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(StaticConfig("/svc=>/#/io.l5d.fs", "",
                                       "namers:\n  - {kind: io.l5d.fs, root_dir: disco}\n"),
                          {{"disco/world", absl::StrCat("127.0.0.1 ", a->port(), "\n")}});
  ASSERT_NE(p, nullptr);
  const std::string out = p->address("out");
  const std::string file = absl::StrCat(p->dir(), "/disco/world");
  EXPECT_EQ(Who(Get(out, "world")), "a");

  // Point the service at b: visible without a restart.
  ASSERT_TRUE(WriteFileAtomically(file, absl::StrCat("127.0.0.1 ", b->port(), "\n")).ok());
  EXPECT_TRUE(PollUntil([&] { return Who(Get(out, "world")) == "b"; }))
      << "still routed to a after the file changed";
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Who(Get(out, "world")), "b");
  }

  // A malformed version is reported and ignored: b keeps serving.
  ASSERT_TRUE(WriteFileAtomically(file, absl::StrCat("127.0.0.1 ", c->port(), "\nbogus\n")).ok());
  EXPECT_TRUE(PollUntil([&] {
    EXPECT_EQ(Who(Get(out, "world")), "b");
    return absl::StrContains(p->stderr_output(), "line 2");
  })) << "the malformed file was not reported";
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Who(Get(out, "world")), "b");
  }
  EXPECT_EQ(c->request_count(), 0u);

  // Fixing the file applies again.
  ASSERT_TRUE(WriteFileAtomically(file, absl::StrCat("127.0.0.1 ", c->port(), "\n")).ok());
  EXPECT_TRUE(PollUntil([&] { return Who(Get(out, "world")) == "c"; }));
}

// --- Overrides and l5d-* headers ------------------------------------------

class OverrideTest : public ProxyIntegrationTest {
 protected:
  void SetUp() override {
    a_ = Echo("a");
    b_ = Echo("b");
    c_ = Echo("c");
    ASSERT_FALSE(HasFailure());
    proxy_ = Proxy(StaticConfig(absl::StrCat("/srv/a=>", Inet(a_), ";/srv/b=>", Inet(b_),
                                             ";/srv/c=>", Inet(c_),
                                             ";/host/world=>/srv/a;/svc=>/host;/svc/res=>",
                                             Inet(a_), "/extra/path")));
    ASSERT_NE(proxy_, nullptr);
    out_ = proxy_->address("out");
  }

  Backend* a_ = nullptr;
  Backend* b_ = nullptr;
  Backend* c_ = nullptr;
  ProxyProcess* proxy_ = nullptr;
  std::string out_;
};

TEST_F(OverrideTest, ForwardsDstHeadersReqidAndVia) {
  HttpResponse r = Get(out_, "world", {{"Via", "1.1 edge"}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "a");
  const ReceivedRequest got = a_->last_request();
  EXPECT_EQ(got.HeaderOr("l5d-dst-service"), "/svc/world");
  EXPECT_EQ(got.HeaderOr("l5d-dst-client"), Inet(a_));
  EXPECT_EQ(got.Header("l5d-dst-residual"), nullptr);
  EXPECT_THAT(got.HeaderOr("l5d-reqid"), MatchesRegex("[0-9a-f]+"));
  EXPECT_EQ(got.Header("l5d-ctx-dtab"), nullptr) << "no override, no l5d-ctx-dtab";
  EXPECT_EQ(got.HeaderOr("host"), "world");
  // The earlier hop is kept and this one added.
  const std::vector<std::string> via = got.HeaderValues("via");
  std::string all_via;
  for (const std::string& v : via) {
    absl::StrAppend(&all_via, v, ",");
  }
  EXPECT_THAT(all_via, AllOf(HasSubstr("1.1 edge"), HasSubstr("dtab-proxy")));

  // Each request gets its own id.
  Get(out_, "world");
  EXPECT_NE(a_->last_request().HeaderOr("l5d-reqid"), got.HeaderOr("l5d-reqid"));

  // The residual of a bound name is forwarded.
  r = Get(out_, "res");
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(a_->last_request().HeaderOr("l5d-dst-residual"), "/extra/path");
  EXPECT_EQ(a_->last_request().HeaderOr("l5d-dst-client"), Inet(a_));
}

TEST_F(OverrideTest, CtxDtabRoutesAndIsForwarded) {
  HttpResponse r = Get(out_, "world", {{"l5d-ctx-dtab", "/host/world => /srv/b"}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "b");
  EXPECT_THAT(b_->last_request().HeaderValues("l5d-ctx-dtab"), ElementsAre("/host/world=>/srv/b"));
}

TEST_F(OverrideTest, UserDtabWinsOverCtxDtabAndBothAreReplacedByTheCombination) {
  HttpResponse r = Get(out_, "world",
                       {{"l5d-dtab", "/host/world=>/srv/c"}, {"l5d-ctx-dtab", "/host/world=>/srv/b"}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "c");
  const ReceivedRequest got = c_->last_request();
  // ctx entries first, then user entries; one header; l5d-dtab never sent.
  EXPECT_THAT(got.HeaderValues("l5d-ctx-dtab"),
              ElementsAre("/host/world=>/srv/b;/host/world=>/srv/c"));
  EXPECT_EQ(got.Header("l5d-dtab"), nullptr);
  EXPECT_EQ(b_->request_count(), 0u);
}

TEST_F(OverrideTest, LaterEntriesWin) {
  // Within one header.
  HttpResponse r = Get(out_, "world", {{"l5d-dtab", "/host/world=>/srv/c;/host/world=>/srv/b"}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "b");
  // Across headers: every value, in order.
  r = Get(out_, "world", {{"l5d-dtab", "/host/world=>/srv/b"}, {"l5d-dtab", "/host/world=>/srv/c"}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "c");
  EXPECT_THAT(c_->last_request().HeaderValues("l5d-ctx-dtab"),
              ElementsAre("/host/world=>/srv/b;/host/world=>/srv/c"));
  r = Get(out_, "world",
          {{"l5d-ctx-dtab", "/host/world=>/srv/c"}, {"l5d-ctx-dtab", "/host/world=>/srv/b"}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "b");
}

TEST_F(OverrideTest, OtherContextHeadersPassThroughAndDtabLocalIsIgnored) {
  HttpResponse r = Get(out_, "world",
                       {{"l5d-ctx-thing", "one"},
                        {"L5d-Ctx-Other", "two"},
                        {"dtab-local", "/host/world=>/srv/b"},
                        {"x-app", "kept"}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "a") << "dtab-local must not route";
  const ReceivedRequest got = a_->last_request();
  EXPECT_EQ(got.HeaderOr("l5d-ctx-thing"), "one");
  EXPECT_EQ(got.HeaderOr("l5d-ctx-other"), "two");
  EXPECT_EQ(got.HeaderOr("dtab-local"), "/host/world=>/srv/b");
  EXPECT_EQ(got.HeaderOr("x-app"), "kept");
}

TEST_F(OverrideTest, OverridePropagatesAcrossTwoProxyHopsThroughAnApp) {
  // hop 1 (this test's proxy_) -> hello -> hop 2 -> world-v1 / world-v2.
  Backend* v1 = Echo("world-v1");
  Backend* v2 = Echo("world-v2");
  ASSERT_FALSE(HasFailure());
  ProxyProcess* hop2 =
      Proxy(StaticConfig(absl::StrCat("/srv/world-v1=>", Inet(v1), ";/srv/world-v2=>", Inet(v2),
                                      ";/host/world=>/srv/world-v1;/svc=>/host")));
  ASSERT_NE(hop2, nullptr);
  Backend* hello = Hello("hello", hop2->address("out"));
  ASSERT_NE(hello, nullptr);
  ProxyProcess* hop1 =
      Proxy(StaticConfig(absl::StrCat("/srv/hello=>", Inet(hello),
                                      ";/host/hello=>/srv/hello;/svc=>/host")));
  ASSERT_NE(hop1, nullptr);

  HttpResponse r = Get(hop1->address("out"), "hello");
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.body, "hello\nworld-v1\n");

  r = Get(hop1->address("out"), "hello",
          {{"l5d-dtab", "/host/world=>/srv/world-v2"}, {"l5d-ctx-thing", "x"}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.body, "hello\nworld-v2\n");
  EXPECT_EQ(v1->request_count(), 1u);
  ASSERT_EQ(v2->request_count(), 1u);
  const ReceivedRequest at_hello = hello->last_request();
  EXPECT_THAT(at_hello.HeaderValues("l5d-ctx-dtab"), ElementsAre("/host/world=>/srv/world-v2"));
  EXPECT_EQ(at_hello.Header("l5d-dtab"), nullptr);
  const ReceivedRequest at_world = v2->last_request();
  EXPECT_THAT(at_world.HeaderValues("l5d-ctx-dtab"), ElementsAre("/host/world=>/srv/world-v2"));
  EXPECT_EQ(at_world.HeaderOr("l5d-ctx-thing"), "x");
  EXPECT_EQ(at_world.HeaderOr("l5d-dst-service"), "/svc/world");
  EXPECT_EQ(at_world.HeaderOr("l5d-dst-client"), Inet(v2));
}

// --- Errors -------------------------------------------------------------

// Every proxy error names itself: l5d-err (URL-encoded) and a text body.
void ExpectProxyError(const HttpResponse& r, int status, absl::string_view body_part) {
  EXPECT_EQ(r.status, status) << r;
  ASSERT_NE(r.Header("l5d-err"), nullptr) << r;
  EXPECT_FALSE(r.Header("l5d-err")->empty());
  EXPECT_EQ(r.Header("l5d-err")->find(' '), std::string::npos) << "not URL-encoded: " << r;
  EXPECT_THAT(r.HeaderOr("content-type"), StartsWith("text/plain"));
  EXPECT_THAT(r.body, HasSubstr(body_part)) << r;
}

TEST_F(OverrideTest, MissingHostIs400) {
  HttpResponse r = Send(out_, {});
  ExpectProxyError(r, 400, "Host");
  r = Send(out_, {{"Host", ""}});
  ExpectProxyError(r, 400, "Host");
  EXPECT_EQ(a_->request_count(), 0u);
}

TEST_F(OverrideTest, MalformedOverrideIs400) {
  HttpResponse r = Get(out_, "world", {{"l5d-dtab", "/host/world=>"}});
  ExpectProxyError(r, 400, "l5d-dtab");
  r = Get(out_, "world", {{"l5d-ctx-dtab", "not a dtab"}});
  ExpectProxyError(r, 400, "l5d-ctx-dtab");
  EXPECT_EQ(a_->request_count() + b_->request_count() + c_->request_count(), 0u);
}

TEST_F(OverrideTest, UnroutableNameIs502NamingServiceDtabAndOverride) {
  HttpResponse r = Get(out_, "nowhere", {{"l5d-dtab", "/host/other=>/srv/b"}});
  ExpectProxyError(r, 502, "Unable to route request!");
  EXPECT_THAT(r.body, AllOf(HasSubstr("/svc/nowhere"), HasSubstr("static"),
                            HasSubstr("/host/world=>/srv/a"), HasSubstr("/host/other=>/srv/b")));
  EXPECT_EQ(r.Header("l5d-retryable"), nullptr);
}

TEST_F(OverrideTest, ViaLoopIs400) {
  // A proxy allowing 3 hops; first, requests that arrive with too many.
  ProxyProcess* strict = Proxy(absl::StrCat(
      "workers: 1\nrouters:\n  - label: out\n    dtab: \"/svc/a=>", Inet(a_),
      "\"\n    servers:\n      - {port: 0, max_call_depth: 3}\n"));
  ASSERT_NE(strict, nullptr);
  const std::string out = strict->address("out");
  HttpResponse r = Get(out, "a", {{"Via", "1.1 p1, 1.1 p2"}, {"Via", "1.1 p3"}});
  EXPECT_EQ(r.status, 200) << r;
  r = Get(out, "a", {{"Via", "1.1 p1, 1.1 p2, 1.1 p3, 1.1 p4"}});
  ExpectProxyError(r, 400, "call depth");
  EXPECT_EQ(a_->request_count(), 1u);

  // A real loop: an override sends /svc/loop back to the proxy itself; the
  // override travels as l5d-ctx-dtab, so each hop loops again until the
  // Via chain is too long.
  r = Get(out, "loop", {{"l5d-dtab", absl::StrCat("/svc/loop=>/$/inet/127.0.0.1/", PortOf(out))}});
  ExpectProxyError(r, 400, "call depth");
}

TEST_F(ProxyIntegrationTest, OverridePolicyViolationsAre400) {
  Backend* a = Echo("a");
  Backend* b = Echo("b");
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(StaticConfig(
      absl::StrCat("/srv/a=>", Inet(a), ";/srv/b=>", Inet(b), ";/host/world=>/srv/a;/svc=>/host"),
      "    override_policy: {max_bytes: 64, max_dentries: 2, allowed_prefixes: [/host]}\n"));
  ASSERT_NE(p, nullptr);
  const std::string out = p->address("out");

  HttpResponse r = Get(out, "world", {{"l5d-dtab", "/host/world=>/srv/b"}});
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "b");

  r = Get(out, "world", {{"l5d-dtab", "/svc/world=>/srv/b"}});
  ExpectProxyError(r, 400, "not allowed");
  r = Get(out, "world", {{"l5d-ctx-dtab", "/srv/a=>/srv/b"}});
  ExpectProxyError(r, 400, "not allowed");

  r = Get(out, "world", {{"l5d-dtab", "/host/x=>/srv/b;/host/y=>/srv/b;/host/world=>/srv/b"}});
  ExpectProxyError(r, 400, "dentries");

  r = Get(out, "world", {{"l5d-dtab", absl::StrCat("/host/world=>/srv/b/", std::string(60, 'x'))}});
  ExpectProxyError(r, 400, "bytes");
  // The limit counts l5d-ctx-dtab and l5d-dtab together.
  r = Get(out, "world", {{"l5d-ctx-dtab", absl::StrCat("/host/a=>/srv/", std::string(30, 'y'))},
                         {"l5d-dtab", absl::StrCat("/host/b=>/srv/", std::string(30, 'z'))}});
  ExpectProxyError(r, 400, "bytes");
  EXPECT_EQ(a->request_count(), 0u);
  EXPECT_EQ(b->request_count(), 1u);
}

TEST_F(ProxyIntegrationTest, RefusedConnectionIs502AndRetryable) {
  RefusingPort refusing;
  ASSERT_FALSE(HasFailure());
  const int port = refusing.port();
  ProxyProcess* p = Proxy(StaticConfig(absl::StrCat("/svc/dead=>/$/inet/127.0.0.1/", port)));
  ASSERT_NE(p, nullptr);
  HttpResponse r = Get(p->address("out"), "dead");
  ExpectProxyError(r, 502, absl::StrCat("127.0.0.1:", port));
  EXPECT_EQ(r.HeaderOr("l5d-retryable"), "true");
  EXPECT_THAT(r.body, HasSubstr("/svc/dead"));
}

TEST_F(ProxyIntegrationTest, SlowBackendIs503AfterTheRequestTimeout) {
  Backend::Options slow;
  slow.delay = absl::Seconds(5);
  Backend* a = Echo("slow", slow);
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(StaticConfig(absl::StrCat("/svc/slow=>", Inet(a)),
                                       "    client: {request_timeout_ms: 300}\n"));
  ASSERT_NE(p, nullptr);
  const Clock::time_point start = Clock::now();
  HttpResponse r = Get(p->address("out"), "slow");
  const Clock::duration took = Clock::now() - start;
  ExpectProxyError(r, 503, "/svc/slow");
  EXPECT_LT(took, std::chrono::seconds(4)) << "answered by the backend, not the timeout";
  EXPECT_GE(took, std::chrono::milliseconds(250));
  EXPECT_EQ(a->request_count(), 1u);
}

TEST_F(ProxyIntegrationTest, SigtermDrainsInFlightRequestsAndClosesIdleConnections) {
  Backend::Options slow;
  slow.delay = absl::Milliseconds(700);
  Backend* a = Echo("slow", slow);
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(StaticConfig(absl::StrCat("/svc/slow=>", Inet(a))));
  ASSERT_NE(p, nullptr);
  const std::string address = p->address("out");
  absl::StatusOr<std::unique_ptr<HttpClient>> busy = HttpClient::Connect(address);
  ASSERT_TRUE(busy.ok()) << busy.status();
  absl::StatusOr<std::unique_ptr<HttpClient>> idle = HttpClient::Connect(address);
  ASSERT_TRUE(idle.ok()) << idle.status();
  ASSERT_TRUE((*busy)->SendPlain("GET", "/", {{"Host", "slow"}}).ok());
  // The request has reached the backend: it is in flight.
  ASSERT_TRUE(PollUntil([&] { return a->request_count() == 1; }));
  ASSERT_EQ(kill(p->pid(), SIGTERM), 0);
  // The in-flight request completes, and its connection closes after it.
  absl::StatusOr<HttpResponse> r = (*busy)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << *r;
  EXPECT_EQ(r->body, "slow\n");
  EXPECT_TRUE((*busy)->ClosedByServer());
  // The idle keep-alive connection is closed without a response.
  EXPECT_TRUE((*idle)->ClosedByServer());
  absl::StatusOr<int> exit = p->Stop();
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0) << p->stderr_output();
  EXPECT_THAT(p->stderr_output(), HasSubstr("draining"));
}

// Regression: only refused connections counted toward ejection, so an
// endpoint that accepted and never answered kept getting requests, each
// waiting out the request timeout.
TEST_F(ProxyIntegrationTest, AnEndpointThatTimesOutIsEjected) {
  Backend::Options hang;
  hang.delay = absl::Seconds(3);
  Backend* slow = Echo("slow", hang);
  Backend* fast = Echo("fast");
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(
      StaticConfig("/svc=>/#/io.l5d.fs", "    client: {request_timeout_ms: 200, failures_to_eject: 2}\n",
                   "namers:\n  - {kind: io.l5d.fs, root_dir: disco}\n"),
      {{"disco/world", absl::StrCat("127.0.0.1 ", slow->port(), "\n127.0.0.1 ", fast->port(), "\n")}});
  ASSERT_NE(p, nullptr);
  const std::string out = p->address("out");
  // Until the slow endpoint has failed twice, some requests time out (503).
  int timeouts = 0;
  for (int i = 0; i < 40 && timeouts < 2; ++i) {
    if (Get(out, "world").status == 503) ++timeouts;
  }
  ASSERT_EQ(timeouts, 2);
  // Ejected (for 5 s by default): every request now goes to the fast one.
  for (int i = 0; i < 20; ++i) {
    HttpResponse r = Get(out, "world");
    EXPECT_EQ(r.status, 200) << r;
    EXPECT_EQ(Who(r), "fast");
  }
  EXPECT_EQ(slow->request_count(), 2u);
}

// --- clear_context --------------------------------------------------------

TEST_F(ProxyIntegrationTest, ClearContextDropsInboundContextAndStripsResponses) {
  Backend::Options tagged;
  tagged.response_headers = {{"l5d-backend-note", "internal"}, {"x-kept", "yes"}};
  Backend* a = Echo("a", tagged);
  Backend* b = Echo("b");
  Backend::Options failing;
  failing.status = 500;
  failing.response_headers = {{"l5d-err", "upstream%20broke"}};
  Backend* e = Echo("e", failing);
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(absl::StrCat("workers: 2\nrouters:\n  - label: out\n    dtab: \"/srv/a=>",
                                       Inet(a), ";/srv/b=>", Inet(b), ";/srv/e=>", Inet(e),
                                       ";/host/world=>/srv/a;/host/err=>/srv/e;/svc=>/host\"\n"
                                       "    servers:\n"
                                       "      - {port: 0}\n"
                                       "      - {port: 0, clear_context: true}\n"));
  ASSERT_NE(p, nullptr);
  // A router with two servers appears twice, in order.
  ASSERT_EQ(p->listeners().size(), 2u);
  EXPECT_EQ(p->listeners()[0].label, "out");
  EXPECT_EQ(p->listeners()[1].label, "out");
  const std::string trusted = p->address("out", 0);
  const std::string edge = p->address("out", 1);
  ASSERT_NE(trusted, edge);

  const Headers context = {{"l5d-dtab", "/host/world=>/srv/b"},
                           {"l5d-ctx-dtab", "/host/world=>/srv/b"},
                           {"l5d-ctx-thing", "x"},
                           {"l5d-sample", "1.0"},
                           {"L5D-Custom", "y"}};
  // Trusted: the override routes.
  HttpResponse r = Get(trusted, "world", context);
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "b");

  // Edge: every inbound l5d-* is dropped; the proxy's own are still added.
  r = Get(edge, "world", context);
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "a");
  const ReceivedRequest got = a->last_request();
  for (const auto& [name, value] : got.headers) {
    if (absl::StartsWith(name, "l5d-")) {
      EXPECT_THAT(name, ::testing::AnyOf("l5d-dst-service", "l5d-dst-client", "l5d-reqid"))
          << name << ": " << value;
    }
  }
  EXPECT_EQ(got.HeaderOr("l5d-dst-service"), "/svc/world");
  // Responses lose their l5d-* headers at the edge only.
  EXPECT_EQ(r.Header("l5d-backend-note"), nullptr) << r;
  EXPECT_EQ(r.HeaderOr("x-kept"), "yes");
  r = Get(trusted, "world");
  EXPECT_EQ(r.HeaderOr("l5d-backend-note"), "internal") << r;

  // An error from a backend that carries l5d-err: body cleared at the edge.
  r = Get(trusted, "err");
  EXPECT_EQ(r.status, 500) << r;
  EXPECT_EQ(r.body, "e\n");
  EXPECT_EQ(r.HeaderOr("l5d-err"), "upstream%20broke");
  r = Get(edge, "err");
  EXPECT_EQ(r.status, 500) << r;
  EXPECT_EQ(r.body, "") << r;
  EXPECT_EQ(r.Header("l5d-err"), nullptr) << r;

  // The proxy's own errors at the edge: status only.
  r = Get(edge, "nowhere");
  EXPECT_EQ(r.status, 502) << r;
  EXPECT_EQ(r.body, "") << r;
  EXPECT_EQ(r.Header("l5d-err"), nullptr) << r;
  r = Get(trusted, "nowhere");
  ExpectProxyError(r, 502, "/svc/nowhere");
}

// --- Weighted unions --------------------------------------------------------

TEST_F(ProxyIntegrationTest, WeightedUnionSplitsTrafficByWeight) {
  Backend* a = Echo("a");
  Backend* b = Echo("b");
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(StaticConfig(absl::StrCat("/srv/a=>", Inet(a), ";/srv/b=>", Inet(b),
                                                    ";/host/world=>3*/srv/a & 1*/srv/b",
                                                    ";/svc=>/host")));
  ASSERT_NE(p, nullptr);
  absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(p->address("out"));
  ASSERT_TRUE(c.ok()) << c.status();
  constexpr int kRequests = 2000;
  int to_a = 0;
  int to_b = 0;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE((*c)->SendPlain("GET", "/", {{"Host", "world"}}).ok());
    absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << *r;
    const std::string who = Who(*r);
    to_a += who == "a";
    to_b += who == "b";
  }
  EXPECT_EQ(to_a + to_b, kRequests);
  // 75% +- 5% (the binomial's standard deviation is about 1%).
  EXPECT_GE(to_a, kRequests * 70 / 100) << "a: " << to_a << ", b: " << to_b;
  EXPECT_LE(to_a, kRequests * 80 / 100) << "a: " << to_a << ", b: " << to_b;
  EXPECT_EQ(a->request_count(), static_cast<size_t>(to_a));
}

// --- dtabd: namespace routers ------------------------------------------------

// A config with one router "out" on namespace "outgoing" of dtabd at
// `address`, caching in `cache_dir`.
std::string NamespaceConfig(absl::string_view address, absl::string_view cache_dir) {
  return absl::StrCat("workers: 2\n"
                      "control_plane: {address: \"",
                      address, "\", cache_dir: \"", cache_dir,
                      "\"}\n"
                      "routers:\n"
                      "  - label: out\n"
                      "    namespace: outgoing\n"
                      "    servers:\n"
                      "      - {port: 0}\n");
}

// The "version" of router "out" in /dtabs, or -1.
int64_t DtabsVersion(const HttpResponse& dtabs) {
  const std::string key = "\"version\":";
  const size_t at = dtabs.body.find(key);
  if (at == std::string::npos) {
    return -1;
  }
  const size_t begin = at + key.size();
  const size_t end = dtabs.body.find_first_of(",}", begin);
  int64_t v = -1;
  if (!absl::SimpleAtoi(dtabs.body.substr(begin, end - begin), &v)) {
    return -1;
  }
  return v;
}

TEST_F(ProxyIntegrationTest, NewDtabVersionRoutesTheNextRequest) {
  Backend* a = Echo("a");
  Backend* b = Echo("b");
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(StartDtabd());
  const int64_t v1 = PutDtab("outgoing", absl::StrCat("/svc/world=>", Inet(a)));
  ASSERT_GT(v1, 0);
  ProxyProcess* p = Proxy(NamespaceConfig(dtabd_->grpc_address(), "cache"));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(PollUntil([&] { return Admin(p, "/ready").status == 200; }))
      << Admin(p, "/ready");
  ASSERT_TRUE(PollUntil([&] { return DtabsVersion(Admin(p, "/dtabs")) == v1; }))
      << Admin(p, "/dtabs");
  HttpResponse r = Get(p->address("out"), "world");
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "a");

  const int64_t v2 = PutDtab("outgoing", absl::StrCat("/svc/world=>", Inet(b)));
  ASSERT_GT(v2, v1);
  ASSERT_TRUE(PollUntil([&] { return DtabsVersion(Admin(p, "/dtabs")) == v2; }))
      << Admin(p, "/dtabs");
  // The very next request uses it.
  r = Get(p->address("out"), "world");
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "b");
  EXPECT_EQ(a->request_count(), 1u);

  // Errors name the namespace and version.
  r = Get(p->address("out"), "nowhere");
  ExpectProxyError(r, 502, "/svc/nowhere");
  EXPECT_THAT(r.body, AllOf(HasSubstr("outgoing"), HasSubstr(absl::StrCat("version ", v2))));
}

TEST_F(ProxyIntegrationTest, CachedDtabRoutesWhileDtabdIsDownAtStart) {
  Backend* a = Echo("a");
  ASSERT_FALSE(HasFailure());
  absl::StatusOr<TempDir> cache = TempDir::Create("dtab-proxy-cache-");
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_NO_FATAL_FAILURE(StartDtabd());
  const int64_t v1 = PutDtab("outgoing", absl::StrCat("/svc/world=>", Inet(a)));
  ASSERT_GT(v1, 0);
  const std::string grpc_address = dtabd_->grpc_address();

  // An earlier run fills the cache, and dies without cleaning up.
  ProxyProcess* first = Proxy(NamespaceConfig(grpc_address, cache->path()));
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(PollUntil([&] { return DtabsVersion(Admin(first, "/dtabs")) == v1; }));
  const std::string cache_file = cache->Join("outgoing.dtab");
  ASSERT_TRUE(PollUntil([&] { return std::filesystem::exists(cache_file); }))
      << "no cache file " << cache_file;
  absl::StatusOr<int> code = first->Kill();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGKILL);
  // (Our idle channel would hold dtabd's graceful shutdown for its 5 s
  // grace period.)
  stub_.reset();
  code = dtabd_->Stop();
  ASSERT_TRUE(code.ok()) << code.status();

  // dtabd is down: the proxy starts from the cache, ready at once.
  ProxyProcess* second = Proxy(NamespaceConfig(grpc_address, cache->path()));
  ASSERT_NE(second, nullptr);
  HttpResponse ready = Admin(second, "/ready");
  EXPECT_EQ(ready.status, 200) << ready;
  EXPECT_EQ(DtabsVersion(Admin(second, "/dtabs")), v1);
  HttpResponse r = Get(second->address("out"), "world");
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(Who(r), "a");
}

TEST_F(ProxyIntegrationTest, WithoutDtabdOrCacheTheRouterIsNotReady) {
  RefusingPort dtabd_port;
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p =
      Proxy(NamespaceConfig(absl::StrCat("127.0.0.1:", dtabd_port.port()), "cache"));
  ASSERT_NE(p, nullptr);
  HttpResponse r = Admin(p, "/ready");
  EXPECT_EQ(r.status, 503) << r;
  EXPECT_THAT(r.body, HasSubstr("out"));
  r = Admin(p, "/dtabs");
  EXPECT_EQ(DtabsVersion(r), -1) << r;
  EXPECT_THAT(r.body, HasSubstr("\"version\":null"));
  r = Get(p->address("out"), "world");
  ExpectProxyError(r, 502, "/svc/world");
  EXPECT_THAT(r.body, HasSubstr("outgoing"));
}

TEST_F(ProxyIntegrationTest, RoutingContinuesWhenDtabdIsKilledMidTraffic) {
  Backend* a = Echo("a");
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(StartDtabd());
  const int64_t v1 = PutDtab("outgoing", absl::StrCat("/svc/world=>", Inet(a)));
  ASSERT_GT(v1, 0);
  ProxyProcess* p = Proxy(NamespaceConfig(dtabd_->grpc_address(), "cache"));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(PollUntil([&] { return DtabsVersion(Admin(p, "/dtabs")) == v1; }));
  const std::string connected = "dtab_proxy_control_plane_state{state=\"connected\"} 1";
  ASSERT_TRUE(PollUntil([&] { return absl::StrContains(Admin(p, "/metrics").body, connected); }))
      << Admin(p, "/metrics");

  // Traffic on a keep-alive connection while dtabd dies.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> bad{0};
  std::thread traffic([&] {
    absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(p->address("out"));
    if (!c.ok()) {
      ++bad;
      return;
    }
    while (!stop.load()) {
      absl::StatusOr<HttpResponse> r =
          (*c)->SendPlain("GET", "/", {{"Host", "world"}}).ok()
              ? (*c)->ReadResponse()
              : absl::StatusOr<HttpResponse>(absl::UnavailableError("send failed"));
      ++(r.ok() && r->status == 200 && Who(*r) == "a" ? ok : bad);
    }
  });
  EXPECT_TRUE(PollUntil([&] { return ok.load() >= 20; }));
  ASSERT_TRUE(dtabd_->Signal(SIGKILL).ok());
  absl::StatusOr<int> code = dtabd_->Wait(std::chrono::seconds(10));
  EXPECT_TRUE(code.ok()) << code.status();
  // The proxy notices, and keeps routing on the last version.
  EXPECT_TRUE(PollUntil([&] { return !absl::StrContains(Admin(p, "/metrics").body, connected); }))
      << Admin(p, "/metrics");
  const int before = ok.load();
  EXPECT_TRUE(PollUntil([&] { return ok.load() >= before + 50; }));
  stop = true;
  traffic.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(DtabsVersion(Admin(p, "/dtabs")), v1);
  EXPECT_EQ(Admin(p, "/ready").status, 200);
}

// --- Large bodies -----------------------------------------------------------

class LargeBodyTest : public ProxyIntegrationTest {
 protected:
  void SetUp() override {
    Backend::Options streaming;
    streaming.stream_bytes = kLargeBody;
    sink_ = Echo("sink");
    source_ = Echo("source", streaming);
    ASSERT_FALSE(HasFailure());
    proxy_ = Proxy(StaticConfig(
        absl::StrCat("/svc/sink=>", Inet(sink_), ";/svc/source=>", Inet(source_))));
    ASSERT_NE(proxy_, nullptr);
  }

  void ExpectSinkGotPattern(const HttpResponse& r) {
    ASSERT_EQ(r.status, 200) << r;
    EXPECT_EQ(Who(r), "sink");
    EXPECT_EQ(r.HeaderOr("x-body-bytes"), absl::StrCat(kLargeBody));
    EXPECT_EQ(r.HeaderOr("x-body-fnv"), absl::StrCat(absl::Hex(PatternFnv(kLargeBody))));
    EXPECT_EQ(sink_->last_request().body_size, kLargeBody);
  }

  Backend* sink_ = nullptr;
  Backend* source_ = nullptr;
  ProxyProcess* proxy_ = nullptr;
};

TEST_F(LargeBodyTest, PostsWithContentLengthStreamThrough) {
  absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(proxy_->address("out"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendPlain("POST", "/upload", {{"Host", "sink"}}, PatternBytes(0, kLargeBody))
                  .ok());
  absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSinkGotPattern(*r);
  EXPECT_EQ(sink_->last_request().HeaderOr("content-length"), absl::StrCat(kLargeBody));
}

TEST_F(LargeBodyTest, PostsWithChunkedEncodingStreamThrough) {
  absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(proxy_->address("out"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendChunked("POST", "/upload", {{"Host", "sink"}}, kLargeBody, 1 << 20,
                                [](size_t offset, size_t n) { return PatternBytes(offset, n); })
                  .ok());
  absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSinkGotPattern(*r);
  // The connection stays usable.
  ASSERT_TRUE((*c)->SendPlain("GET", "/", {{"Host", "sink"}}).ok());
  r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(LargeBodyTest, ChunkedResponsesStreamBackIntact) {
  absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(proxy_->address("out"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendPlain("GET", "/download", {{"Host", "source"}}).ok());
  absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << *r;
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->body.size(), kLargeBody);
  EXPECT_EQ(Fnv1a(r->body), PatternFnv(kLargeBody));
}

// --- HTTP/1.1 details --------------------------------------------------------

class ProtocolTest : public ProxyIntegrationTest {
 protected:
  void SetUp() override {
    Backend::Options streaming;
    streaming.stream_bytes = kStreamed;
    streaming.stream_chunk = 10'000;
    a_ = Echo("a");
    source_ = Echo("source", streaming);
    ASSERT_FALSE(HasFailure());
    proxy_ = Proxy(StaticConfig(absl::StrCat("/svc/a=>", Inet(a_), ";/svc/source=>",
                                             Inet(source_))));
    ASSERT_NE(proxy_, nullptr);
  }

  absl::StatusOr<std::unique_ptr<HttpClient>> Connect() {
    return HttpClient::Connect(proxy_->address("out"));
  }

  static constexpr size_t kStreamed = 100'000;
  Backend* a_ = nullptr;
  Backend* source_ = nullptr;
  ProxyProcess* proxy_ = nullptr;
};

TEST_F(ProtocolTest, Http10ClientGetsAnUnchunkedBodyEndedByClose) {
  absl::StatusOr<std::unique_ptr<HttpClient>> c = Connect();
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendBytes("GET / HTTP/1.0\r\nHost: source\r\n\r\n").ok());
  absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << *r;
  // Chunked framing is HTTP/1.1 only (RFC 9112 section 7).
  EXPECT_EQ(r->Header("transfer-encoding"), nullptr) << *r;
  EXPECT_EQ(r->body.size(), kStreamed);
  EXPECT_EQ(Fnv1a(r->body), PatternFnv(kStreamed));
}

TEST_F(ProtocolTest, HeadGetsHeadersOnlyAndTheConnectionStaysUsable) {
  absl::StatusOr<std::unique_ptr<HttpClient>> c = Connect();
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendPlain("HEAD", "/", {{"Host", "a"}}).ok());
  absl::StatusOr<HttpResponse> r = (*c)->ReadResponse(/*head=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << *r;
  EXPECT_EQ(r->HeaderOr("x-backend"), "a");
  EXPECT_EQ(a_->last_request().method, "HEAD");
  ASSERT_TRUE((*c)->SendPlain("GET", "/", {{"Host", "a"}}).ok());
  r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << *r;
  EXPECT_EQ(r->body, "a\n");
}

TEST_F(ProtocolTest, PipelinedRequestsAreAnsweredInOrder) {
  absl::StatusOr<std::unique_ptr<HttpClient>> c = Connect();
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendBytes("GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
                              "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                              "GET /three HTTP/1.1\r\nHost: source\r\n\r\n")
                  .ok());
  for (const char* who : {"a", "a", "source"}) {
    absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << *r;
    EXPECT_EQ(r->HeaderOr("x-backend"), who);
  }
  const std::vector<ReceivedRequest> got = a_->requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].target, "/one");
  EXPECT_EQ(got[1].target, "/two");
  EXPECT_EQ(got[1].body_size, 3u);
}

TEST_F(ProtocolTest, ExpectContinueIsAnsweredBeforeTheBodyIsSent) {
  absl::StatusOr<std::unique_ptr<HttpClient>> c = Connect();
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendBytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                              "Expect: 100-continue\r\n\r\n")
                  .ok());
  absl::StatusOr<HttpResponse> interim = (*c)->ReadHead();
  ASSERT_TRUE(interim.ok()) << interim.status();
  EXPECT_EQ(interim->status, 100) << *interim;
  ASSERT_TRUE((*c)->SendBytes("hello").ok());
  absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << *r;
  EXPECT_EQ(r->HeaderOr("x-body-bytes"), "5");
  EXPECT_EQ(a_->last_request().Header("expect"), nullptr);
}

TEST_F(ProtocolTest, ConnectionCloseIsHonoured) {
  absl::StatusOr<std::unique_ptr<HttpClient>> c = Connect();
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendPlain("GET", "/", {{"Host", "a"}, {"Connection", "close"}}).ok());
  absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << *r;
  EXPECT_EQ(r->HeaderOr("connection"), "close");
  EXPECT_TRUE((*c)->ClosedByServer());
  // Hop-by-hop headers are not forwarded.
  EXPECT_EQ(a_->last_request().HeaderOr("connection"), "<none>");
}

// --- Upstream misbehaviour -----------------------------------------------------

// A scripted backend on a raw socket, for responses dtabd::http::Server
// never sends: for each entry of `replies`, in order, it accepts a
// connection, reads one request head (up to the blank line), writes the
// reply's bytes and closes the connection. Every wait is bounded (poll
// with a deadline); the destructor wakes and joins the thread.
class ScriptedBackend {
 public:
  explicit ScriptedBackend(std::vector<std::string> replies) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
        listen(listen_fd_, 16) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
    wake_fd_ = eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this, replies = std::move(replies)] { Serve(replies); });
  }
  ScriptedBackend(const ScriptedBackend&) = delete;
  ScriptedBackend& operator=(const ScriptedBackend&) = delete;
  ~ScriptedBackend() {
    const uint64_t one = 1;
    if (wake_fd_ >= 0) {
      (void)!write(wake_fd_, &one, sizeof one);
    }
    if (thread_.joinable()) {
      thread_.join();
    }
    if (wake_fd_ >= 0) {
      close(wake_fd_);
    }
    if (listen_fd_ >= 0) {
      close(listen_fd_);
    }
  }

  int port() const { return port_; }
  std::string inet() const { return absl::StrCat("/$/inet/127.0.0.1/", port_); }
  // Connections whose request head was read and answered (or is being).
  int served() const { return served_.load(); }

 private:
  // Waits until `fd` is readable (true), or the destructor or a 10 s
  // deadline (false).
  bool Readable(int fd) {
    pollfd pfd[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = poll(pfd, 2, 10'000);
    return n > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && pfd[1].revents == 0;
  }

  void Serve(const std::vector<std::string>& replies) {
    for (const std::string& reply : replies) {
      if (!Readable(listen_fd_)) {
        return;
      }
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        return;
      }
      std::string head;
      while (head.find("\r\n\r\n") == std::string::npos && Readable(fd)) {
        char buf[4096];
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
          break;
        }
        head.append(buf, static_cast<size_t>(n));
      }
      // Counted before the reply goes out: a client that has the reply
      // must see the count (it raced with the close before).
      ++served_;
      absl::string_view out = reply;
      while (!out.empty()) {
        const ssize_t n = send(fd, out.data(), out.size(), MSG_NOSIGNAL);
        if (n <= 0) {
          break;
        }
        out.remove_prefix(static_cast<size_t>(n));
      }
      close(fd);
    }
  }

  int listen_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  std::atomic<int> served_{0};
  std::thread thread_;
};

TEST_F(ProxyIntegrationTest, CloseDelimitedResponseIsReframedAsChunked) {
  ScriptedBackend raw({"HTTP/1.1 200 OK\r\nX-Backend: raw\r\n\r\nhello, world"});
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(StaticConfig(absl::StrCat("/svc/raw=>", raw.inet())));
  ASSERT_NE(p, nullptr);
  absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(p->address("out"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendPlain("GET", "/", {{"Host", "raw"}}).ok());
  absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << *r;
  EXPECT_TRUE(r->chunked) << *r;
  EXPECT_EQ(r->body, "hello, world");
  // The client connection survives the upstream's close.
  ASSERT_TRUE((*c)->SendPlain("GET", "/", {{"Host", "nowhere"}}).ok());
  r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 502) << *r;
}

TEST_F(ProxyIntegrationTest, BrokenUpstreamResponsesAre502) {
  ScriptedBackend empty({""});
  ScriptedBackend garbage({"SSH-2.0-OpenSSH_9.2\r\n\r\n"});
  ScriptedBackend huge({absl::StrCat("HTTP/1.1 200 OK\r\nX-Big: ", std::string(70'000, 'x'),
                                     "\r\nContent-Length: 0\r\n\r\n")});
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(StaticConfig(absl::StrCat("/svc/empty=>", empty.inet(),
                                                    ";/svc/garbage=>", garbage.inet(),
                                                    ";/svc/huge=>", huge.inet())));
  ASSERT_NE(p, nullptr);
  HttpResponse r = Get(p->address("out"), "empty");
  ExpectProxyError(r, 502, "/svc/empty");
  r = Get(p->address("out"), "garbage");
  ExpectProxyError(r, 502, "/svc/garbage");
  r = Get(p->address("out"), "huge");
  ExpectProxyError(r, 502, "/svc/huge");
  EXPECT_EQ(empty.served(), 1);
  EXPECT_EQ(garbage.served(), 1);
  EXPECT_EQ(huge.served(), 1);
}

TEST_F(ProxyIntegrationTest, BodylessRequestOnAStalePooledConnectionIsRetried) {
  // Each reply is sent as if the connection stayed open, then the backend
  // closes it: the proxy pools a connection that is already dead.
  const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
  ScriptedBackend flaky({reply, reply, reply});
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(StaticConfig(absl::StrCat("/svc/flaky=>", flaky.inet())));
  ASSERT_NE(p, nullptr);
  absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(p->address("out"));
  ASSERT_TRUE(c.ok()) << c.status();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*c)->SendPlain("GET", "/", {{"Host", "flaky"}}).ok());
    absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << "request " << i << ": " << *r;
    EXPECT_EQ(r->body, "ok\n");
  }
  EXPECT_EQ(flaky.served(), 3);
}

// Regression: a request with a body cannot be retried once sent, so a pooled
// connection the upstream has closed while idle (e.g. its keep-alive timeout
// is shorter than ours) gave 502. It is now checked before use.
TEST_F(ProxyIntegrationTest, RequestWithABodySkipsAPooledConnectionTheUpstreamClosed) {
  const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
  ScriptedBackend closing({reply, reply});
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(StaticConfig(absl::StrCat("/svc/closing=>", closing.inet())));
  ASSERT_NE(p, nullptr);
  absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(p->address("out"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendPlain("GET", "/", {{"Host", "closing"}}).ok());
  absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << *r;
  // The backend has closed the connection the proxy pooled.
  ASSERT_TRUE(PollUntil([&] { return closing.served() == 1; }));
  ASSERT_TRUE((*c)->SendBytes("POST / HTTP/1.1\r\nHost: closing\r\nContent-Length: 5\r\n\r\nhello")
                  .ok());
  r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << *r;
  EXPECT_EQ(r->body, "ok\n");
  EXPECT_EQ(closing.served(), 2);
}

// --- Malformed HTTP ---------------------------------------------------------

class MalformedHttpTest : public ProxyIntegrationTest {
 protected:
  void SetUp() override {
    a_ = Echo("a");
    ASSERT_FALSE(HasFailure());
    proxy_ = Proxy(StaticConfig(absl::StrCat("/svc/a=>", Inet(a_))));
    ASSERT_NE(proxy_, nullptr);
  }

  // Sends `bytes` on a fresh connection; expects `status` with l5d-err,
  // then the connection closed, then the proxy still serving.
  void ExpectRejected(absl::string_view bytes, int status) {
    absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(proxy_->address("out"));
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE((*c)->SendBytes(bytes).ok());
    absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, status) << *r;
    EXPECT_NE(r->Header("l5d-err"), nullptr) << *r;
    EXPECT_TRUE((*c)->ClosedByServer()) << "the connection stays open";
    HttpResponse ok = Get(proxy_->address("out"), "a");
    EXPECT_EQ(ok.status, 200) << ok;
  }

  Backend* a_ = nullptr;
  ProxyProcess* proxy_ = nullptr;
};

TEST_F(MalformedHttpTest, GarbageRequestLineIs400) {
  ExpectRejected("GARBAGE\r\n\r\n", 400);
  ExpectRejected("GET / HTTP/9.9 extra\r\nHost: a\r\n\r\n", 400);
  EXPECT_EQ(a_->request_count(), 2u) << "only the follow-up requests arrive";
}

TEST_F(MalformedHttpTest, ContentLengthWithTransferEncodingIs400) {
  ExpectRejected(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      400);
  EXPECT_EQ(a_->request_count(), 1u);
}

TEST_F(MalformedHttpTest, ConflictingContentLengthsAre400) {
  ExpectRejected(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
      "hello!",
      400);
  EXPECT_EQ(a_->request_count(), 1u);
}

TEST_F(MalformedHttpTest, BadChunkSizeIs400) {
  ExpectRejected(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
      400);
}

TEST_F(MalformedHttpTest, HeaderBlockOverTheLimitIs431) {
  ExpectRejected(
      absl::StrCat("GET / HTTP/1.1\r\nHost: a\r\nX-Big: ", std::string(17 << 10, 'x'), "\r\n\r\n"),
      431);
  EXPECT_EQ(a_->request_count(), 1u);
}

// --- Admin ------------------------------------------------------------------

TEST_F(ProxyIntegrationTest, AdminPagesDescribeRoutersAndCountRequests) {
  Backend* a = Echo("a");
  ASSERT_FALSE(HasFailure());
  ProxyProcess* p = Proxy(StaticConfig(absl::StrCat("/srv/a=>", Inet(a), ";/svc/world=>/srv/a")));
  ASSERT_NE(p, nullptr);
  ASSERT_THAT(p->admin_address(), StartsWith("127.0.0.1:"));

  HttpResponse r = Admin(p, "/ready");
  EXPECT_EQ(r.status, 200) << r;

  r = Admin(p, "/dtabs");
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_THAT(r.HeaderOr("content-type"), StartsWith("application/json"));
  EXPECT_THAT(r.body, AllOf(HasSubstr("\"label\":\"out\""), HasSubstr("\"namespace\":null"),
                            HasSubstr("\"state\":\"static\""),
                            HasSubstr(absl::StrCat("/srv/a=>", Inet(a)))));

  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Get(p->address("out"), "world").status, 200);
  }
  EXPECT_EQ(Get(p->address("out"), "nowhere").status, 502);
  const std::string ok_series =
      "dtab_proxy_service_requests_total{router=\"out\",service=\"/svc/world\",class=\"2xx\"} 3";
  const std::string err_series =
      "dtab_proxy_service_requests_total{router=\"out\",service=\"/svc/nowhere\",class=\"5xx\"} 1";
  EXPECT_TRUE(PollUntil([&] {
    const std::string m = Admin(p, "/metrics").body;
    return absl::StrContains(m, ok_series) && absl::StrContains(m, err_series);
  })) << Admin(p, "/metrics").body;

  r = Admin(p, "/delegator.json?namespace=out&path=/svc/world");
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_THAT(r.HeaderOr("content-type"), StartsWith("application/json"));
  EXPECT_THAT(r.body, AllOf(HasSubstr("\"path\":\"/svc/world\""), HasSubstr(Inet(a)),
                            HasSubstr(absl::StrCat("\"port\":", a->port()))));
  r = Admin(p, "/delegator.json?namespace=nope&path=/svc/world");
  EXPECT_EQ(r.status, 404) << r;
}

}  // namespace
}  // namespace dtabd::proxy
