// End-to-end test of the hello-world staging story (README "The demo",
// examples/hello-world/demo.sh): the real dtabd, dtab-proxy, hello, world
// and dtabctl binaries, wired as the demo wires them but on ports chosen
// at run time (port 0 everywhere, addresses read from serving lines). The
// proxy runs the example's own configuration (examples/hello-world/
// dtab-proxy.yaml, its placeholders filled in) and dtabd holds the
// example's dtabs (examples/hello-world/dtabs/).
//
// Every test starts the whole topology afresh (fixture SetUp), in the
// order the dependencies require: dtabd and its namespaces, world-v1 and
// world-v2, the proxy (its fs namer's disco/ files naming the worlds), then
// hello (which needs the outgoing router's port) and finally disco/hello,
// which the namer picks up while running. Each process is stopped and each
// temporary directory removed by the fixture's members, also on failure.
//
// Nothing sleeps: waits poll something observable (an admin page, a
// request through the proxy) until a deadline, and each probe waits for its
// answer.
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/cli/dtabctl_test_util.h"
#include "tests/integration/dtabd_process.h"
#include "tests/testing/child_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/proxy_process.h"

#ifndef HELLO_PATH
#error "HELLO_PATH must name the hello binary"
#endif
#ifndef WORLD_PATH
#error "WORLD_PATH must name the world binary"
#endif
#ifndef HELLO_WORLD_EXAMPLE_DIR
#error "HELLO_WORLD_EXAMPLE_DIR must name examples/hello-world"
#endif

namespace dtabd::e2e {
namespace {

using cli::testutil::Dtabctl;
using cli::testutil::RunResult;
using integration::DtabdProcess;
using testing::ChildProcess;
using testing::Fetch;
using testing::HttpResponse;
using testing::ProxyProcess;
using testing::TempDir;

// How long any wait may take: generous, for loaded CI machines (ctest -j).
constexpr absl::Duration kDeadline = absl::Seconds(30);
constexpr std::chrono::milliseconds kStartTimeout{30'000};
constexpr char kOverride[] = "/host/world => /srv/world-v2;";

std::string ExamplePath(absl::string_view relative) {
  return absl::StrCat(HELLO_WORLD_EXAMPLE_DIR, "/", relative);
}

// Calls `probe` until it returns true or `timeout` passes; each call does
// real work (a request), so this never sleeps.
bool PollUntil(const std::function<bool()>& probe, absl::Duration timeout = kDeadline) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (probe()) {
      return true;
    }
    if (absl::Now() >= deadline) {
      return false;
    }
  }
}

// "127.0.0.1:PORT" as an io.l5d.fs file line, "127.0.0.1 PORT\n".
std::string EndpointLine(absl::string_view address) {
  const size_t colon = address.rfind(':');
  return absl::StrCat(address.substr(0, colon), " ", address.substr(colon + 1), "\n");
}

// GET / on `address` with `Host: host` and `extra` headers; a failed
// exchange is status 0 with the error as body (so probes can keep going).
HttpResponse Get(absl::string_view address, absl::string_view host,
                 const testing::Headers& extra = {}) {
  testing::Headers headers = {{"Host", std::string(host)}};
  headers.insert(headers.end(), extra.begin(), extra.end());
  absl::StatusOr<HttpResponse> r = Fetch(address, "GET", "/", headers);
  if (!r.ok()) {
    HttpResponse failed;
    failed.body = r.status().ToString();
    return failed;
  }
  return *std::move(r);
}

// The "version=V" field of `dtabctl get NS`'s header line, or -1.
int64_t VersionFromGet(absl::string_view output) {
  for (absl::string_view field : absl::StrSplit(output.substr(0, output.find('\n')), ' ')) {
    int64_t v = 0;
    if (absl::ConsumePrefix(&field, "version=") && absl::SimpleAtoi(field, &v)) {
      return v;
    }
  }
  return -1;
}

// The VERSION column of `dtabctl history`'s table, top to bottom.
std::vector<int64_t> VersionsFromHistory(absl::string_view output) {
  std::vector<int64_t> versions;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    int64_t v = 0;
    if (absl::SimpleAtoi(line.substr(0, line.find(' ')), &v)) {
      versions.push_back(v);
    }
  }
  return versions;
}

std::string Describe(const RunResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout:\n", r.out, "stderr:\n", r.err);
}

class HelloWorldE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> tmp = TempDir::Create("e2e-hello-world-");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<TempDir>(*std::move(tmp));

    DtabdProcess::Options dtabd_options;
    dtabd_options.timeout = kStartTimeout;
    absl::StatusOr<std::unique_ptr<DtabdProcess>> dtabd = DtabdProcess::Start(dtabd_options);
    ASSERT_TRUE(dtabd.ok()) << dtabd.status();
    dtabd_ = *std::move(dtabd);
    for (const char* ns : {"ingress", "outgoing"}) {
      const RunResult r = Ctl({"create", ns, "-f", ExamplePath(absl::StrCat("dtabs/", ns, ".dtab")),
                               "--comment", "e2e: the example's dtab"});
      ASSERT_EQ(r.exit_code, 0) << Describe(r);
    }

    ASSERT_NO_FATAL_FAILURE(
        StartService(&world_v1_, "world-v1", {WORLD_PATH, "--text", "world"}, "world: serving "));
    ASSERT_NO_FATAL_FAILURE(
        StartService(&world_v2_, "world-v2", {WORLD_PATH, "--text", "earth"}, "world: serving "));

    std::string yaml = testing::ReadFileOrEmpty(ExamplePath("dtab-proxy.yaml"));
    ASSERT_FALSE(yaml.empty()) << "cannot read " << ExamplePath("dtab-proxy.yaml");
    ProxyProcess::Options po;
    po.yaml = std::move(yaml);
    po.timeout = kStartTimeout;
    po.substitutions = {{"{{ADMIN_PORT}}", "0"},
                        {"{{DTABD_ADDR}}", dtabd_->grpc_address()},
                        {"{{INGRESS_PORT}}", "0"},
                        {"{{EDGE_PORT}}", "0"},
                        {"{{OUTGOING_PORT}}", "0"}};
    po.files = {{"disco/world-v1", EndpointLine(Address(*world_v1_))},
                {"disco/world-v2", EndpointLine(Address(*world_v2_))}};
    absl::StatusOr<std::unique_ptr<ProxyProcess>> proxy = ProxyProcess::Start(std::move(po));
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
    ingress_ = proxy_->address("ingress");
    edge_ = proxy_->address("edge");
    const std::string outgoing = proxy_->address("outgoing");
    ASSERT_FALSE(ingress_.empty() || edge_.empty() || outgoing.empty()) << proxy_->config_text();

    ASSERT_NO_FATAL_FAILURE(
        StartService(&hello_, "hello", {HELLO_PATH, "--proxy", outgoing}, "hello: serving "));
    const absl::Status written = testing::WriteFileAtomically(proxy_->dir() + "/disco/hello",
                                                              EndpointLine(Address(*hello_)));
    ASSERT_TRUE(written.ok()) << written;

    ASSERT_TRUE(PollUntil([&] { return Get(proxy_->admin_address(), "admin").status == 200; }))
        << "the proxy never became ready: " << Get(proxy_->admin_address(), "admin");
    // Until the namer has read disco/hello, the ingress answers 502.
    ASSERT_TRUE(PollUntil([&] { return Get(ingress_, "www.hello.world").status == 200; }))
        << Get(ingress_, "www.hello.world");
  }

  void TearDown() override {
    if (!HasFailure()) {
      return;
    }
    if (proxy_ != nullptr) {
      std::cerr << "--- dtab-proxy stderr:\n" << proxy_->stderr_output();
    }
    if (dtabd_ != nullptr) {
      std::cerr << "--- dtabd stderr:\n" << dtabd_->stderr_output();
    }
    for (const auto* s : {&hello_, &world_v1_, &world_v2_}) {
      if (*s != nullptr) {
        std::cerr << "--- " << (*s)->options().name << " stderr:\n" << (*s)->stderr_output();
      }
    }
  }

  // Starts `argv` plus `--listen 127.0.0.1:0` and reads its serving line.
  void StartService(std::unique_ptr<ChildProcess>* out, const std::string& name,
                    std::vector<std::string> argv, const std::string& serving_prefix) {
    argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
    ChildProcess::Options o;
    o.name = name;
    o.argv = std::move(argv);
    o.stderr_path = tmp_->Join(name + ".stderr");
    o.serving_prefix = serving_prefix;
    o.timeout = kStartTimeout;
    auto child = std::make_unique<ChildProcess>(std::move(o));
    absl::StatusOr<std::string> line = child->Spawn();
    ASSERT_TRUE(line.ok()) << line.status();
    *out = std::move(child);
  }

  // The address from a service's serving line ("NAME: serving IP:PORT").
  static std::string Address(const ChildProcess& service) {
    return service.serving_line().substr(service.options().serving_prefix.size());
  }

  RunResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", dtabd_->grpc_address(), "--timeout", "30s"});
    return Dtabctl(args);
  }

  std::string WorldAnswer() const {
    return absl::StrCat("Hello (", Address(*hello_), ") world (", Address(*world_v1_), ")!!\n");
  }
  std::string EarthAnswer() const {
    return absl::StrCat("Hello (", Address(*hello_), ") earth (", Address(*world_v2_), ")!!\n");
  }

  // Declared first: removed after every process below has stopped.
  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<DtabdProcess> dtabd_;
  std::unique_ptr<ChildProcess> world_v1_;
  std::unique_ptr<ChildProcess> world_v2_;
  std::unique_ptr<ProxyProcess> proxy_;
  std::unique_ptr<ChildProcess> hello_;  // last: stopped first
  std::string ingress_;
  std::string edge_;
};

TEST_F(HelloWorldE2eTest, IngressSendsWwwHelloWorldToHelloAndHelloToWorldV1) {
  const HttpResponse r = Get(ingress_, "www.hello.world");
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.body, WorldAnswer());
}

TEST_F(HelloWorldE2eTest, OverrideHeaderSendsThatRequestAloneToWorldV2) {
  const HttpResponse staged = Get(ingress_, "www.hello.world", {{"l5d-dtab", kOverride}});
  EXPECT_EQ(staged.status, 200) << staged;
  EXPECT_EQ(staged.body, EarthAnswer());

  const HttpResponse next = Get(ingress_, "www.hello.world");
  EXPECT_EQ(next.status, 200) << next;
  EXPECT_EQ(next.body, WorldAnswer());
}

TEST_F(HelloWorldE2eTest, EdgeListenerDropsOverridesFromPublicTraffic) {
  const HttpResponse plain = Get(edge_, "www.hello.world");
  EXPECT_EQ(plain.status, 200) << plain;
  EXPECT_EQ(plain.body, WorldAnswer());

  const HttpResponse dtab = Get(edge_, "www.hello.world", {{"l5d-dtab", kOverride}});
  EXPECT_EQ(dtab.status, 200) << dtab;
  EXPECT_EQ(dtab.body, WorldAnswer());

  const HttpResponse ctx = Get(edge_, "www.hello.world", {{"l5d-ctx-dtab", kOverride}});
  EXPECT_EQ(ctx.status, 200) << ctx;
  EXPECT_EQ(ctx.body, WorldAnswer());
}

TEST_F(HelloWorldE2eTest, IngressOnlyRoutesThePublicName) {
  const HttpResponse r = Get(ingress_, "world");
  EXPECT_EQ(r.status, 502) << r;
}

TEST_F(HelloWorldE2eTest, HelloAnswers502NamingWorldWhenWorldHasNoEndpoints) {
  std::error_code ec;
  ASSERT_TRUE(std::filesystem::remove(proxy_->dir() + "/disco/world-v1", ec)) << ec.message();
  HttpResponse r;
  EXPECT_TRUE(PollUntil([&] {
    r = Get(ingress_, "www.hello.world");
    return r.status == 502;
  })) << r;
  EXPECT_TRUE(absl::StartsWith(
      r.body, absl::StrCat("hello (", Address(*hello_), "): world answered 502 through the proxy")))
      << r;
}

TEST_F(HelloWorldE2eTest, CanaryShiftWithCompareAndSetRollsOutAndRollsBack) {
  RunResult get = Ctl({"get", "outgoing"});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  const int64_t base = VersionFromGet(get.out);
  ASSERT_GT(base, 0) << get.out;
  const std::string base_dtab = get.out.substr(get.out.find('\n') + 1);

  // Compare-and-set from the version just read succeeds once...
  const std::string canary = ExamplePath("dtabs/outgoing-canary.dtab");
  const std::string expect = absl::StrCat(base);
  RunResult apply = Ctl({"apply", "outgoing", "-f", canary, "--expect-version", expect, "--comment",
                         "canary: 1 in 10 to world-v2"});
  ASSERT_EQ(apply.exit_code, 0) << Describe(apply);
  const std::string shifted = absl::StrCat(base + 1);
  EXPECT_TRUE(absl::StrContains(apply.out, absl::StrCat("applied as version ", shifted)))
      << apply.out;
  // ...and a second writer holding the same, now stale, version loses.
  RunResult stale = Ctl({"apply", "outgoing", "-f", canary, "--expect-version", expect});
  EXPECT_EQ(stale.exit_code, 5) << Describe(stale);

  // Once rollout --wait returns, the proxy routes with the new version.
  RunResult rollout = Ctl({"rollout", "outgoing", "--wait"});
  ASSERT_EQ(rollout.exit_code, 0) << Describe(rollout);
  EXPECT_TRUE(absl::StrContains(rollout.out, absl::StrCat(" version=", shifted, " nodes=1 ")))
      << rollout.out;
  EXPECT_TRUE(absl::StrContains(rollout.out, " behind=0 ")) << rollout.out;

  // Both versions of world now answer; nothing else does.
  std::map<std::string, int> seen;
  EXPECT_TRUE(PollUntil([&] {
    const HttpResponse r = Get(ingress_, "www.hello.world");
    ++seen[r.status == 200 ? r.body : absl::StrCat(r.status, " ", r.body)];
    return seen.count(EarthAnswer()) > 0 && seen.count(WorldAnswer()) > 0;
  }));
  for (const auto& [answer, count] : seen) {
    EXPECT_TRUE(answer == WorldAnswer() || answer == EarthAnswer()) << count << " x " << answer;
  }

  RunResult history = Ctl({"history", "outgoing"});
  ASSERT_EQ(history.exit_code, 0) << Describe(history);
  EXPECT_EQ(VersionsFromHistory(history.out), (std::vector<int64_t>{base + 1, base}))
      << history.out;

  RunResult rollback = Ctl({"rollback", "outgoing", "--to", expect});
  ASSERT_EQ(rollback.exit_code, 0) << Describe(rollback);
  const std::string restored = absl::StrCat(base + 2);
  EXPECT_TRUE(absl::StrContains(
      rollback.out, absl::StrCat("rolled back to version ", expect, " as version ", restored)))
      << rollback.out;
  get = Ctl({"get", "outgoing"});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_EQ(VersionFromGet(get.out), base + 2) << get.out;
  EXPECT_EQ(get.out.substr(get.out.find('\n') + 1), base_dtab);

  rollout = Ctl({"rollout", "outgoing", "--wait"});
  ASSERT_EQ(rollout.exit_code, 0) << Describe(rollout);
  EXPECT_TRUE(absl::StrContains(rollout.out, absl::StrCat(" version=", restored, " nodes=1 ")))
      << rollout.out;
  history = Ctl({"history", "outgoing"});
  EXPECT_EQ(VersionsFromHistory(history.out), (std::vector<int64_t>{base + 2, base + 1, base}))
      << history.out;

  // Back on world-v1 only: with one call in ten going to world-v2 before,
  // 100 answers from world-v1 in a row would be a 1-in-37,000 accident.
  for (int i = 0; i < 100; ++i) {
    const HttpResponse r = Get(ingress_, "www.hello.world");
    ASSERT_EQ(r.body, WorldAnswer()) << "request " << i << ": " << r;
  }
  // The per-request override still works on top of the restored dtab.
  const HttpResponse staged = Get(ingress_, "www.hello.world", {{"l5d-dtab", kOverride}});
  EXPECT_EQ(staged.body, EarthAnswer()) << staged;
}

}  // namespace
}  // namespace dtabd::e2e
