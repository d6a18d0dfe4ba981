// Fault injection with real processes (issue 8): dtabd SIGKILLed under
// write load while a subscribed dtab-proxy routes traffic, then restarted
// on the same database and port; an endpoint of an io.l5d.fs replica set
// dying mid-traffic; the fs namer's directory deleted and recreated while
// routing. Each test prints its figures (requests failed, time to
// converge, writes lost) as "FAULT ..." lines for docs/RELIABILITY.md.
//
// Covered elsewhere: a subscriber that stops reading
// (integration_discovery_test, StuckSubscribersDoNotDelayOthers), 1,000
// subscribers reconnecting at once (integration_mass_reconnect_test), the
// database's disk filling up (storage_disk_full_test), SIGKILL during
// commits (storage_crash_test).
//
// Nothing sleeps: waits poll an observable (a request, an admin page, an
// RPC) until a deadline.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "dtabd/v1/dtab.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/dtabd_process.h"
#include "tests/testing/backend.h"
#include "tests/testing/child_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/proxy_process.h"

#ifndef DTABD_PATH
#error "DTABD_PATH must name the dtabd binary"
#endif
#ifndef WORLD_PATH
#error "WORLD_PATH must name the hello-world sample's world binary"
#endif

namespace dtabd::proxy {
namespace {

using ::dtabd::integration::DtabdProcess;
using ::dtabd::testing::Backend;
using ::dtabd::testing::ChildProcess;
using ::dtabd::testing::Fetch;
using ::dtabd::testing::HttpClient;
using ::dtabd::testing::HttpResponse;
using ::dtabd::testing::ProxyProcess;
using ::dtabd::testing::WriteFileAtomically;

using Clock = std::chrono::steady_clock;
constexpr Clock::duration kDeadline = std::chrono::seconds(20);

bool PollUntil(const std::function<bool()>& probe, Clock::duration timeout = kDeadline) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (!probe()) {
    if (Clock::now() >= deadline) {
      return false;
    }
  }
  return true;
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

std::string Who(const HttpResponse& r) { return r.body.substr(0, r.body.find('\n')); }

// The "version" of the first router in the proxy's /dtabs, or -1.
int64_t DtabsVersion(const std::string& body) {
  const std::string key = "\"version\":";
  const size_t at = body.find(key);
  if (at == std::string::npos) {
    return -1;
  }
  const size_t begin = at + key.size();
  const size_t end = body.find_first_of(",}", begin);
  int64_t v = -1;
  return absl::SimpleAtoi(body.substr(begin, end - begin), &v) ? v : -1;
}

// Requests `host` through `address` on a keep-alive connection (a new one
// after any failure) until stopped, counting answers by backend name and
// failures, each with its time.
class Traffic {
 public:
  Traffic(std::string address, std::string host)
      : address_(std::move(address)), host_(std::move(host)), thread_([this] { Loop(); }) {}
  Traffic(const Traffic&) = delete;
  Traffic& operator=(const Traffic&) = delete;
  ~Traffic() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  int ok() const { return ok_.load(); }
  int failed() const { return failed_.load(); }
  std::map<std::string, int> by_backend() const {
    absl::MutexLock lock(&mu_);
    return by_backend_;
  }
  std::vector<std::string> failures() const {
    absl::MutexLock lock(&mu_);
    return failures_;
  }

 private:
  void Loop() {
    std::unique_ptr<HttpClient> c;
    while (!stop_.load()) {
      if (c == nullptr) {
        absl::StatusOr<std::unique_ptr<HttpClient>> nc = HttpClient::Connect(address_);
        if (!nc.ok()) {
          Fail(nc.status().ToString());
          continue;
        }
        c = *std::move(nc);
      }
      absl::StatusOr<HttpResponse> r =
          c->SendPlain("GET", "/", {{"Host", host_}}).ok()
              ? c->ReadResponse()
              : absl::StatusOr<HttpResponse>(absl::UnavailableError("send failed"));
      if (!r.ok()) {
        Fail(r.status().ToString());
        c.reset();
        continue;
      }
      if (r->status != 200) {
        Fail(absl::StrCat(r->status, " ", r->body.substr(0, 120)));
        continue;
      }
      ++ok_;
      absl::MutexLock lock(&mu_);
      ++by_backend_[Who(*r)];
    }
  }
  void Fail(std::string why) {
    ++failed_;
    absl::MutexLock lock(&mu_);
    if (failures_.size() < 20) {
      failures_.push_back(why.substr(0, why.find('\n')));
    }
  }

  const std::string address_;
  const std::string host_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0};
  std::atomic<int> failed_{0};
  mutable absl::Mutex mu_;
  std::map<std::string, int> by_backend_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: started once the members above exist
};

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) {
    absl::StrAppend(&s, "  ", x, "\n");
  }
  return s;
}

std::unique_ptr<Backend> StartEcho(std::string name) {
  Backend::Options o;
  o.name = std::move(name);
  absl::StatusOr<std::unique_ptr<Backend>> b = Backend::StartEcho(std::move(o));
  if (!b.ok()) {
    ADD_FAILURE() << b.status();
    return nullptr;
  }
  return *std::move(b);
}

// --- dtabd SIGKILLed under write load --------------------------------------

TEST(FaultTest, DtabdSigkillUnderWriteLoadLosesNoAcknowledgedWriteAndProxyKeepsRouting) {
  std::unique_ptr<Backend> a = StartEcho("a");
  ASSERT_NE(a, nullptr);
  absl::StatusOr<std::unique_ptr<DtabdProcess>> first = DtabdProcess::Start();
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string grpc_address = (*first)->grpc_address();

  // Every version routes /svc/world to a, and carries its own marker
  // dentry, so a version's text identifies the write.
  const std::string route = absl::StrCat("/svc/world=>/$/inet/127.0.0.1/", a->port());
  auto dtab_of = [&](int n) { return absl::StrCat(route, ";/marker/", n, "=>/m"); };

  // Writes through whichever dtabd is up (the channel reconnects to the
  // same address); records each acknowledged version with its marker.
  absl::Mutex mu;
  std::map<int64_t, int> acked;  // version -> marker
  int64_t last_acked = 0;
  std::atomic<bool> stop_writes{false};
  std::atomic<int> write_errors{0};
  std::thread writer([&] {
    auto stub = v1::DtabService::NewStub(
        grpc::CreateChannel(grpc_address, grpc::InsecureChannelCredentials()));
    for (int n = 1; !stop_writes.load(); ++n) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      v1::PutDtabRequest req;
      req.set_namespace_("outgoing");
      req.set_dtab(dtab_of(n));
      v1::VersionedDtab got;
      if (stub->PutDtab(&ctx, req, &got).ok()) {
        absl::MutexLock lock(&mu);
        acked[got.version()] = n;
        last_acked = std::max(last_acked, got.version());
      } else {
        ++write_errors;
      }
    }
  });
  // Stops the writer on every exit, ASSERT failures included.
  absl::Cleanup stop_writer = [&] {
    stop_writes = true;
    if (writer.joinable()) {
      writer.join();
    }
  };
  auto last = [&] {
    absl::MutexLock lock(&mu);
    return last_acked;
  };
  ASSERT_TRUE(PollUntil([&] { return last() >= 1; }));

  ProxyProcess::Options po;
  po.yaml = absl::StrCat("workers: 2\ncontrol_plane: {address: \"", grpc_address,
                         "\", cache_dir: cache}\nrouters:\n  - label: out\n"
                         "    namespace: outgoing\n    servers:\n      - {port: 0}\n");
  absl::StatusOr<std::unique_ptr<ProxyProcess>> proxy = ProxyProcess::Start(std::move(po));
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  ProxyProcess* p = proxy->get();
  auto proxy_version = [&] {
    absl::StatusOr<HttpResponse> r = Fetch(p->admin_address(), "GET", "/dtabs", {{"Host", "a"}});
    return r.ok() ? DtabsVersion(r->body) : -1;
  };
  ASSERT_TRUE(PollUntil([&] { return proxy_version() > 0; })) << p->stderr_output();

  Traffic traffic(p->address("out"), "world");
  ASSERT_TRUE(PollUntil([&] { return traffic.ok() >= 50 && last() >= 20; }));

  // SIGKILL mid-write.
  const int64_t acked_before_kill = last();
  ASSERT_TRUE((*first)->Signal(SIGKILL).ok());
  absl::StatusOr<int> code = (*first)->Wait(std::chrono::seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGKILL);
  const Clock::time_point killed = Clock::now();
  const int ok_at_kill = traffic.ok();
  // The proxy routes on its last version while dtabd is down.
  ASSERT_TRUE(PollUntil([&] { return traffic.ok() >= ok_at_kill + 100; }));

  // Restart on the same database and the same gRPC port.
  ChildProcess::Options co;
  co.name = "dtabd";
  co.argv = {DTABD_PATH,    "--db",        (*first)->db_path(), "--grpc-addr", grpc_address,
             "--http-addr", "127.0.0.1:0", "--admin-addr",      "127.0.0.1:0"};
  co.stderr_path = (*first)->stderr_path();
  co.serving_prefix = "dtabd: serving ";
  ChildProcess second(co);
  absl::StatusOr<std::string> line = second.Spawn();
  ASSERT_TRUE(line.ok()) << line.status();
  const Clock::time_point restarted = Clock::now();

  // Writes resume; then stop them and wait for the proxy to converge.
  ASSERT_TRUE(PollUntil([&] { return last() >= acked_before_kill + 20; }))
      << "no writes acknowledged after the restart";
  const Clock::time_point writes_stopped = Clock::now();
  stop_writes = true;
  writer.join();
  const int64_t final_version = last();
  ASSERT_TRUE(PollUntil([&] { return proxy_version() == final_version; }))
      << "proxy at " << proxy_version() << ", latest " << final_version << "\n"
      << p->stderr_output();
  const Clock::time_point converged = Clock::now();
  const int ok_at_converge = traffic.ok();
  ASSERT_TRUE(PollUntil([&] { return traffic.ok() >= ok_at_converge + 50; }));
  traffic.Stop();

  // No request failed, before, during or after (every version routes to a).
  EXPECT_EQ(traffic.failed(), 0) << Join(traffic.failures());
  EXPECT_EQ(traffic.by_backend().size(), 1u);

  // Every acknowledged write is in the history, with its text.
  auto stub = v1::DtabService::NewStub(
      grpc::CreateChannel(grpc_address, grpc::InsecureChannelCredentials()));
  std::map<int64_t, std::string> history;
  int64_t before = 0;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListVersionsRequest req;
    req.set_namespace_("outgoing");
    req.set_page_size(1000);
    req.set_before_version(before);
    v1::ListVersionsResponse resp;
    const grpc::Status s = stub->ListVersions(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    for (const v1::VersionedDtab& v : resp.versions()) {
      history[v.version()] = v.dtab();
    }
    before = resp.next_before_version();
  } while (before > 0);
  int lost = 0;
  for (const auto& [version, marker] : acked) {
    auto it = history.find(version);
    if (it == history.end() || it->second != dtab_of(marker)) {
      ++lost;
      ADD_FAILURE() << "acknowledged version " << version << " (marker " << marker
                    << ") is missing or different after the restart";
    }
  }
  EXPECT_EQ(lost, 0);
  std::cout << "FAULT dtabd-sigkill: acked_writes=" << acked.size()
            << " failed_writes=" << write_errors.load() << " lost_writes=" << lost
            << " requests_ok=" << traffic.ok() << " requests_failed=" << traffic.failed()
            << " restart_ms=" << Ms(restarted - killed)
            << " converge_after_last_write_ms=" << Ms(converged - writes_stopped)
            << " kill_to_converged_ms=" << Ms(converged - killed) << "\n";
  proxy->reset();
  (void)second.Stop();
}

// --- An endpoint dies mid-traffic ---------------------------------------------

TEST(FaultTest, EndpointDyingMidTrafficFailsOverToTheHealthyReplica) {
  std::unique_ptr<Backend> a = StartEcho("a");
  ASSERT_NE(a, nullptr);
  // The replica that dies is a real process (the hello-world sample's
  // `world`), so that its death resets its connections as a crash does.
  absl::StatusOr<testing::TempDir> tmp = testing::TempDir::Create("dtabd-fault-");
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  ChildProcess::Options wo;
  wo.name = "world";
  wo.argv = {WORLD_PATH, "--listen", "127.0.0.1:0", "--text", "b"};
  wo.stderr_path = tmp->Join("world.stderr");
  wo.serving_prefix = "world: serving ";
  ChildProcess b(wo);
  absl::StatusOr<std::string> line = b.Spawn();
  ASSERT_TRUE(line.ok()) << line.status();
  const std::string b_address = line->substr(line->rfind(' ') + 1);
  const std::string b_port = b_address.substr(b_address.rfind(':') + 1);
  const std::string b_name = absl::StrCat("b (", b_address, ")!");
  ProxyProcess::Options po;
  po.yaml =
      "workers: 2\nnamers:\n  - {kind: io.l5d.fs, root_dir: disco}\nrouters:\n"
      "  - label: out\n    dtab: \"/svc=>/#/io.l5d.fs\"\n    servers:\n      - {port: 0}\n"
      "    client: {request_timeout_ms: 2000}\n";  // bounds a hung request, if any
  po.files = {{"disco/world", absl::StrCat("127.0.0.1 ", a->port(), "\n127.0.0.1 ", b_port,
                                           "\n")}};
  absl::StatusOr<std::unique_ptr<ProxyProcess>> proxy = ProxyProcess::Start(std::move(po));
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  Traffic traffic((*proxy)->address("out"), "world");
  ASSERT_TRUE(PollUntil([&] {
    auto by = traffic.by_backend();
    return by["a"] >= 50 && by[b_name] >= 50;
  })) << "traffic does not reach both replicas";

  // b dies: SIGKILL, its listener and connections reset by the kernel.
  const int failed_before = traffic.failed();
  const Clock::time_point died = Clock::now();
  absl::StatusOr<int> code = b.Kill();
  ASSERT_TRUE(code.ok()) << code.status();
  const int b_count = traffic.by_backend()[b_name];
  // Traffic continues on a; count the errors until 500 more successes.
  const int ok_at_death = traffic.ok();
  ASSERT_TRUE(PollUntil([&] { return traffic.ok() >= ok_at_death + 500; }))
      << Join(traffic.failures());
  const Clock::time_point recovered = Clock::now();
  traffic.Stop();
  const int errors = traffic.failed() - failed_before;
  EXPECT_EQ(traffic.by_backend()[b_name], b_count) << "answers from a dead backend";
  // Bounded: the balancer retries or ejects the dead endpoint quickly.
  EXPECT_LE(errors, 20) << Join(traffic.failures());
  std::cout << "FAULT endpoint-death: errors=" << errors << " ok_after=" << traffic.ok() - ok_at_death
            << " window_ms=" << Ms(recovered - died) << "\n"
            << Join(traffic.failures());
}

// --- The fs namer directory deleted and recreated ---------------------------------

TEST(FaultTest, FsNamerDirectoryDeletedAndRecreatedWhileRouting) {
  std::unique_ptr<Backend> a = StartEcho("a");
  ASSERT_NE(a, nullptr);
  ProxyProcess::Options po;
  po.yaml =
      "workers: 2\nnamers:\n  - {kind: io.l5d.fs, root_dir: disco}\nrouters:\n"
      "  - label: out\n    dtab: \"/svc=>/#/io.l5d.fs\"\n    servers:\n      - {port: 0}\n";
  const std::string entry = absl::StrCat("127.0.0.1 ", a->port(), "\n");
  po.files = {{"disco/world", entry}};
  absl::StatusOr<std::unique_ptr<ProxyProcess>> proxy = ProxyProcess::Start(std::move(po));
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  const std::string dir = absl::StrCat((*proxy)->dir(), "/disco");
  Traffic traffic((*proxy)->address("out"), "world");
  ASSERT_TRUE(PollUntil([&] { return traffic.ok() >= 50; }));

  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  ASSERT_FALSE(ec) << ec.message();
  const Clock::time_point deleted = Clock::now();
  // The proxy either keeps the last good endpoints or answers 502 (the
  // service is gone); it must not crash.
  const int seen = traffic.ok() + traffic.failed();
  ASSERT_TRUE(PollUntil([&] { return traffic.ok() + traffic.failed() >= seen + 200; }));
  const int failed_while_gone = traffic.failed();

  ASSERT_TRUE(WriteFileAtomically(absl::StrCat(dir, "/world"), entry).ok());
  const Clock::time_point recreated = Clock::now();
  // Routing resumes: 100 successes in a row after the recreation.
  int streak_start_failed = traffic.failed();
  int streak_start_ok = traffic.ok();
  ASSERT_TRUE(PollUntil([&] {
    if (traffic.failed() != streak_start_failed) {
      streak_start_failed = traffic.failed();
      streak_start_ok = traffic.ok();
    }
    return traffic.ok() >= streak_start_ok + 100;
  })) << "routing did not resume after the directory came back\n"
      << Join(traffic.failures()) << (*proxy)->stderr_output();
  const Clock::time_point resumed = Clock::now();
  traffic.Stop();
  EXPECT_EQ(kill((*proxy)->pid(), 0), 0) << "the proxy died";
  std::cout << "FAULT fs-dir-recreated: failed_while_gone=" << failed_while_gone
            << " failed_total=" << traffic.failed() << " ok=" << traffic.ok()
            << " gone_ms=" << Ms(recreated - deleted)
            << " resume_after_recreate_ms=" << Ms(resumed - recreated) << "\n"
            << Join(traffic.failures());
}

}  // namespace
}  // namespace dtabd::proxy
