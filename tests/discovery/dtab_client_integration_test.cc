// DtabClient against the real dtabd binary (DtabdProcess, loopback): every
// behaviour the proxy relies on, end to end. Each test's database lives in
// its own temporary directory and dtabd listens on a reserved port, so a
// test can stop dtabd, edit the database through another dtabd while
// clients are disconnected, and bring dtabd back at the same address.
//
// Nothing sleeps: tests wait on the recorder's, the log's or the client's
// conditions, with deadlines. "Nothing else was delivered" is shown by
// ordering: dtabd answers one response at a time, so once a later change
// (often to another namespace) has been delivered, any redelivery would
// already have happened.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "discovery/dtab_cache.h"
#include "discovery/dtab_client.h"
#include "dtabd/v1/discovery.grpc.pb.h"
#include "dtabd/v1/dtab.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/discovery/test_util.h"
#include "tests/integration/dtabd_process.h"

namespace dtabd::discovery {
namespace {

using ::dtabd::discovery::testing::kWait;
using ::dtabd::discovery::testing::LogCapture;
using ::dtabd::discovery::testing::Recorder;
using ::dtabd::discovery::testing::ReservedPort;
using ::dtabd::discovery::testing::ToString;
using ::dtabd::discovery::testing::Update;
using ::dtabd::integration::DtabdProcess;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr auto kRpcDeadline = std::chrono::seconds(10);
constexpr char kWriteToken[] = "w-token";
constexpr char kReadToken[] = "r-token";

class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TEST_TMPDIR");
    std::string pattern =
        (base != nullptr && *base != '\0' ? std::string(base)
                                          : std::filesystem::temp_directory_path().string()) +
        "/dtab-client-it-XXXXXX";
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Waits until `client` has accepted `n` deliveries in all (its state and
// cache are updated after the callback returns, so a recorded update may
// not be applied yet).
bool WaitAccepted(const DtabClient& client, int64_t n) {
  return client.AwaitStats([n](const DtabClient::Stats& s) { return s.accepted >= n; }, kWait);
}

// Each namespace's versions, in delivery order, strictly increase.
bool VersionsIncrease(const std::vector<Update>& updates) {
  std::map<std::string, int64_t> last;
  for (const Update& u : updates) {
    if (!u.version.has_value() || !u.accepted) {
      continue;
    }
    if (*u.version <= last[u.ns]) {
      return false;
    }
    last[u.ns] = *u.version;
  }
  return true;
}

class DtabClientIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    ASSERT_NE(port_.port(), 0);
    StartDtabd();
  }

  // Starts dtabd on the test's database. `at_reserved_port`: on the
  // reserved port (where clients connect); else on any port (an "offline"
  // dtabd no client sees).
  std::unique_ptr<DtabdProcess> SpawnDtabd(bool at_reserved_port,
                                           std::vector<std::string> extra = {}) {
    DtabdProcess::Options o;
    o.tokens = tokens_;
    o.extra_args = {"--db", db_path()};
    if (at_reserved_port) {
      o.extra_args.push_back("--grpc-addr");
      o.extra_args.push_back(port_.address());
    }
    o.extra_args.insert(o.extra_args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<DtabdProcess>> p = DtabdProcess::Start(std::move(o));
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  void StartDtabd(std::vector<std::string> extra = {}) {
    dtabd_ = SpawnDtabd(/*at_reserved_port=*/true, std::move(extra));
    ASSERT_NE(dtabd_, nullptr);
    ASSERT_EQ(dtabd_->grpc_address(), port_.address());
    UseDtabd(*dtabd_);
  }

  // Stops dtabd (SIGTERM: its streams end with UNAVAILABLE).
  void StopDtabd() {
    if (dtabd_ != nullptr) {
      absl::StatusOr<int> code = dtabd_->Stop();
      EXPECT_TRUE(code.ok() && *code == 0) << code.status() << " " << dtabd_->stderr_output();
      dtabd_.reset();
    }
  }

  // Sends writes to `p`.
  void UseDtabd(const DtabdProcess& p) {
    stub_ = v1::DtabService::NewStub(
        grpc::CreateChannel(p.grpc_address(), grpc::InsecureChannelCredentials()));
    discovery_stub_ = v1::DiscoveryService::NewStub(
        grpc::CreateChannel(p.grpc_address(), grpc::InsecureChannelCredentials()));
  }

  std::string db_path() const { return tmp_.path() + "/dtabd.db"; }
  std::string cache_dir() const { return tmp_.path() + "/cache"; }

  void Prepare(grpc::ClientContext* ctx, const char* token = kWriteToken) {
    ctx->set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }

  // Writes `text` as the next version of `ns` and returns that version.
  int64_t Put(const std::string& ns, const std::string& text) {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v1::PutDtabRequest req;
    req.set_namespace_(ns);
    req.set_dtab(text);
    v1::VersionedDtab out;
    const grpc::Status s = stub_->PutDtab(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out.version();
  }

  int64_t Delete(const std::string& ns) {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v1::DeleteDtabRequest req;
    req.set_namespace_(ns);
    v1::VersionedDtab out;
    const grpc::Status s = stub_->DeleteDtab(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out.version();
  }

  v1::RolloutStatusResponse Rollout(const std::string& ns) {
    grpc::ClientContext ctx;
    Prepare(&ctx, kReadToken);
    v1::RolloutStatusRequest req;
    req.set_namespace_(ns);
    v1::RolloutStatusResponse out;
    const grpc::Status s = discovery_stub_->GetRolloutStatus(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  DtabClient::Options ClientOptions(std::vector<std::string> namespaces,
                                    const std::string& node_id = "proxy-1") {
    DtabClient::Options o;
    o.target = port_.address();
    o.token = kReadToken;
    o.node.set_id(node_id);
    o.node.set_cluster("edge");
    o.namespaces = std::move(namespaces);
    o.cache_dir = cache_dir();
    o.backoff_base = absl::Milliseconds(20);
    o.backoff_max = absl::Milliseconds(200);
    o.random_seed = 99;
    o.logger = log_.logger();
    return o;
  }

  std::unique_ptr<DtabClient> StartClient(DtabClient::Options o, Recorder* recorder = nullptr) {
    absl::StatusOr<std::unique_ptr<DtabClient>> c =
        DtabClient::Start(std::move(o), (recorder != nullptr ? recorder : &recorder_)->callback());
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  void TearDown() override {
    if (HasFailure()) {
      if (dtabd_ != nullptr) {
        std::cerr << "dtabd stderr:\n" << dtabd_->stderr_output();
      }
      for (const std::string& l : log_.lines()) {
        std::cerr << "client log: " << l << "\n";
      }
    }
  }

  std::string tokens_ = absl::StrCat(kWriteToken, " admin write\n", kReadToken, " proxy read\n");
  TempDir tmp_;
  ReservedPort port_;
  std::unique_ptr<DtabdProcess> dtabd_;
  std::unique_ptr<v1::DtabService::Stub> stub_;
  std::unique_ptr<v1::DiscoveryService::Stub> discovery_stub_;
  Recorder recorder_;
  LogCapture log_;
};

TEST_F(DtabClientIntegrationTest, UpdatesAreDeliveredAndAcked) {
  ASSERT_EQ(Put("a", "/svc=>/#/io.l5d.fs"), 1);
  std::unique_ptr<DtabClient> client = StartClient(ClientOptions({"a", "b"}));
  ASSERT_TRUE(recorder_.WaitForUpdate("a", 1));
  ASSERT_EQ(Put("a", "/svc=>/#/io.l5d.k8s"), 2);
  ASSERT_TRUE(recorder_.WaitForUpdate("a", 2));
  // dtabd holds one unacknowledged response per stream: b's delivery shows
  // it has processed the ACK of a@2.
  ASSERT_EQ(Put("b", "/x=>/y"), 1);
  ASSERT_TRUE(recorder_.WaitForUpdate("b", 1));

  EXPECT_EQ(ToString(recorder_.updates("a")), "a@1 a@2");
  EXPECT_EQ(ToString(recorder_.updates("b")), "b@removed b@1");
  EXPECT_EQ(recorder_.updates("a")[1].dtab, "/svc=>/#/io.l5d.k8s");
  ASSERT_TRUE(WaitAccepted(*client, 4));
  EXPECT_THAT(client->accepted_versions(), UnorderedElementsAre(Pair("a", 2), Pair("b", 1)));
  const v1::RolloutStatusResponse rollout = Rollout("a");
  ASSERT_EQ(rollout.nodes_size(), 1);
  EXPECT_EQ(rollout.nodes(0).node_id(), "proxy-1");
  EXPECT_EQ(rollout.nodes(0).acked_version(), "2");
  EXPECT_EQ(rollout.nodes(0).nacked_version(), "");
  EXPECT_EQ(rollout.behind(), 0);

  const DtabClient::Stats st = client->stats();
  EXPECT_EQ(st.state, ConnectionState::kConnected);
  EXPECT_EQ(st.nacks, 0);
  EXPECT_EQ(st.redundant, 0);
  EXPECT_EQ(st.streams, 1);
  EXPECT_THAT(log_.lines(), IsEmpty());
}

TEST_F(DtabClientIntegrationTest, RejectedUpdateIsNackedNotRedeliveredAndNotCached) {
  recorder_.set_policy([](const std::string&, const std::optional<v1::VersionedDtab>& d) {
    return d.has_value() && absl::StrContains(d->dtab(), "bad")
               ? absl::InvalidArgumentError("dtab: rule 1: missing '=>'")
               : absl::OkStatus();
  });
  ASSERT_EQ(Put("a", "/svc=>/good"), 1);
  ASSERT_EQ(Put("b", "/b=>/1"), 1);
  std::unique_ptr<DtabClient> client = StartClient(ClientOptions({"a", "b"}));
  ASSERT_TRUE(recorder_.WaitFor([](const std::vector<Update>& us) { return us.size() == 2; }));
  ASSERT_EQ(Put("a", "/svc=>/bad"), 2);
  ASSERT_TRUE(recorder_.WaitForUpdate("a", 2));
  // b's next version arrives only once dtabd has processed the NACK.
  ASSERT_EQ(Put("b", "/b=>/2"), 2);
  ASSERT_TRUE(recorder_.WaitForUpdate("b", 2));

  const v1::RolloutStatusResponse rollout = Rollout("a");
  ASSERT_EQ(rollout.nodes_size(), 1);
  EXPECT_EQ(rollout.nodes(0).acked_version(), "1");
  EXPECT_EQ(rollout.nodes(0).nacked_version(), "2");
  EXPECT_THAT(rollout.nodes(0).nack_error(), HasSubstr("namespace 'a' version 2: dtab: rule 1"));
  EXPECT_EQ(rollout.rejecting(), 1);
  // The cache still holds the accepted version.
  {
    absl::StatusOr<std::unique_ptr<DtabCache>> cache = DtabCache::Open(cache_dir());
    ASSERT_TRUE(cache.ok());
    EXPECT_EQ((*cache)->Read("a")->version(), 1);
  }

  ASSERT_EQ(Put("a", "/svc=>/better"), 3);
  ASSERT_TRUE(recorder_.WaitForUpdate("a", 3));
  ASSERT_TRUE(WaitAccepted(*client, 4));
  // Exactly one delivery per version: v2 was never sent again.
  EXPECT_EQ(ToString(recorder_.updates("a")), "a@1 a@2(rejected) a@3");
  const DtabClient::Stats st = client->stats();
  EXPECT_EQ(st.nacks, 1);
  EXPECT_EQ(st.redundant, 0);
  EXPECT_EQ(client->accepted_version("a"), 3);
  client->Stop();
  absl::StatusOr<std::unique_ptr<DtabCache>> cache = DtabCache::Open(cache_dir());
  ASSERT_TRUE(cache.ok());
  EXPECT_EQ((*cache)->Read("a")->dtab(), "/svc=>/better");
}

TEST_F(DtabClientIntegrationTest, DeletionIsDeliveredAsRemovalAndClearsTheCache) {
  ASSERT_EQ(Put("a", "/svc=>/one"), 1);
  std::unique_ptr<DtabClient> client = StartClient(ClientOptions({"a"}));
  ASSERT_TRUE(WaitAccepted(*client, 1));
  ASSERT_TRUE(std::filesystem::exists(cache_dir() + "/a.dtab"));
  Delete("a");
  ASSERT_TRUE(WaitAccepted(*client, 2));
  EXPECT_EQ(client->accepted_version("a"), std::nullopt);
  EXPECT_TRUE(client->known_absent("a"));
  EXPECT_FALSE(std::filesystem::exists(cache_dir() + "/a.dtab"));
  // Re-created: versions continue after the tombstone.
  ASSERT_EQ(Put("a", "/svc=>/three"), 3);
  ASSERT_TRUE(recorder_.WaitForUpdate("a", 3));
  EXPECT_EQ(ToString(recorder_.updates()), "a@1 a@removed a@3");
}

TEST_F(DtabClientIntegrationTest, NameSubscribedBeforeItExistsIsDeliveredWhenCreated) {
  std::unique_ptr<DtabClient> client = StartClient(ClientOptions({"later"}));
  // First, the authoritative "does not exist".
  ASSERT_TRUE(WaitAccepted(*client, 1));
  EXPECT_TRUE(client->known_absent("later"));
  ASSERT_EQ(Put("later", "/svc=>/now"), 1);
  ASSERT_TRUE(WaitAccepted(*client, 2));
  EXPECT_EQ(ToString(recorder_.updates()), "later@removed later@1");
  EXPECT_EQ(client->accepted_version("later"), 1);
}

TEST_F(DtabClientIntegrationTest, DtabdRestartWithClientConnectedConvergesWithoutGoingBack) {
  ASSERT_EQ(Put("a", "/a=>/1"), 1);
  ASSERT_EQ(Put("b", "/b=>/1"), 1);
  std::unique_ptr<DtabClient> client = StartClient(ClientOptions({"a", "b", "c"}));
  ASSERT_TRUE(recorder_.WaitFor([](const std::vector<Update>& us) { return us.size() == 3; }));

  StopDtabd();
  ASSERT_TRUE(client->AwaitStats(
      [](const DtabClient::Stats& s) {
        return s.last_error.code() == absl::StatusCode::kUnavailable;
      },
      kWait));
  StartDtabd();
  // The resumed stream's first response reports the absent c again (the
  // protocol cannot claim absence) and nothing else.
  ASSERT_TRUE(client->AwaitStats(
      [](const DtabClient::Stats& s) { return s.streams >= 2 && s.redundant_removals >= 1; },
      kWait));
  ASSERT_EQ(Put("a", "/a=>/2"), 2);
  ASSERT_TRUE(recorder_.WaitForUpdate("a", 2));

  ASSERT_TRUE(WaitAccepted(*client, 4));
  const std::vector<Update> updates = recorder_.updates();
  EXPECT_TRUE(VersionsIncrease(updates)) << ToString(updates);
  EXPECT_EQ(ToString(recorder_.updates("a")), "a@1 a@2");
  EXPECT_EQ(ToString(recorder_.updates("b")), "b@1");
  EXPECT_EQ(ToString(recorder_.updates("c")), "c@removed");
  const DtabClient::Stats st = client->stats();
  EXPECT_EQ(st.redundant, 0);
  EXPECT_EQ(st.redundant_removals, 1);
  EXPECT_EQ(st.state, ConnectionState::kConnected);
  EXPECT_THAT(client->accepted_versions(), UnorderedElementsAre(Pair("a", 2), Pair("b", 1)));
}

TEST_F(DtabClientIntegrationTest, ChangesMadeWhileDisconnectedArriveOnReconnect) {
  ASSERT_EQ(Put("a", "/a=>/1"), 1);
  ASSERT_EQ(Put("b", "/b=>/1"), 1);
  ASSERT_EQ(Put("c", "/c=>/1"), 1);
  std::unique_ptr<DtabClient> client = StartClient(ClientOptions({"a", "b", "c"}));
  ASSERT_TRUE(recorder_.WaitFor([](const std::vector<Update>& us) { return us.size() == 3; }));

  StopDtabd();
  {
    // Another dtabd, on a port the client does not know, edits the database.
    std::unique_ptr<DtabdProcess> offline = SpawnDtabd(/*at_reserved_port=*/false);
    ASSERT_NE(offline, nullptr);
    UseDtabd(*offline);
    ASSERT_EQ(Put("a", "/a=>/2"), 2);
    Delete("b");
    ASSERT_TRUE(offline->Stop().ok());
  }
  StartDtabd();
  ASSERT_TRUE(recorder_.WaitForUpdate("a", 2));
  ASSERT_TRUE(recorder_.WaitForUpdate("b", std::nullopt));
  // c was unchanged: not delivered again (shown by a later change of c
  // being the next delivery of c).
  ASSERT_EQ(Put("c", "/c=>/2"), 2);
  ASSERT_TRUE(recorder_.WaitForUpdate("c", 2));
  EXPECT_EQ(ToString(recorder_.updates("c")), "c@1 c@2");
  EXPECT_EQ(client->stats().redundant, 0);
  EXPECT_TRUE(VersionsIncrease(recorder_.updates()));
}

TEST_F(DtabClientIntegrationTest, CacheLetsAFreshClientRouteWithDtabdDownThenResumeFromIt) {
  ASSERT_EQ(Put("a", "/a=>/1"), 1);
  ASSERT_EQ(Put("a", "/a=>/2"), 2);
  {
    std::unique_ptr<DtabClient> first = StartClient(ClientOptions({"a", "b"}));
    ASSERT_TRUE(recorder_.WaitForUpdate("a", 2));
    ASSERT_TRUE(recorder_.WaitForUpdate("b", std::nullopt));
    // (Stopped while a stream is open, dtabd exits at once; see the report
    // on its 5 s exit with only idle connections.)
    StopDtabd();
  }

  // A restarted proxy: dtabd is down, yet Start delivers the cached a@2.
  Recorder fresh;
  std::unique_ptr<DtabClient> client = StartClient(ClientOptions({"a", "b"}, "proxy-2"), &fresh);
  EXPECT_EQ(ToString(fresh.updates()), "a@2");
  EXPECT_EQ(client->accepted_version("a"), 2);
  ASSERT_TRUE(client->AwaitStats(
      [](const DtabClient::Stats& s) { return s.consecutive_failures >= 2; }, kWait));
  EXPECT_EQ(client->stats().last_error.code(), absl::StatusCode::kUnavailable);

  // dtabd returns: it knows a@2 from initial_resource_versions and sends
  // only what the cache could not say (b does not exist).
  StartDtabd();
  ASSERT_TRUE(fresh.WaitForUpdate("b", std::nullopt));
  ASSERT_EQ(Put("a", "/a=>/3"), 3);
  ASSERT_TRUE(fresh.WaitForUpdate("a", 3));
  EXPECT_EQ(ToString(fresh.updates()), "a@2 b@removed a@3");
  EXPECT_EQ(client->stats().redundant, 0);
  EXPECT_EQ(client->stats().from_cache, 1);
}

TEST_F(DtabClientIntegrationTest, CachedVersionDeletedWhileDownIsDeliveredAsRemoval) {
  ASSERT_EQ(Put("a", "/a=>/1"), 1);
  {
    std::unique_ptr<DtabClient> first = StartClient(ClientOptions({"a"}));
    ASSERT_TRUE(recorder_.WaitForUpdate("a", 1));
  }
  Delete("a");
  Recorder fresh;
  std::unique_ptr<DtabClient> client = StartClient(ClientOptions({"a"}), &fresh);
  ASSERT_TRUE(WaitAccepted(*client, 2));
  EXPECT_EQ(ToString(fresh.updates()), "a@1 a@removed");
  EXPECT_FALSE(std::filesystem::exists(cache_dir() + "/a.dtab"));
}

// A dtabd that stops answering without closing the connection (SIGSTOP:
// the kernel keeps the TCP connection up) is detected by keepalive pings,
// not left to route on stale data forever.
TEST_F(DtabClientIntegrationTest, SilentlyHungDtabdIsDetectedByKeepaliveAndResumedAfter) {
  ASSERT_EQ(Put("a", "/a=>/1"), 1);
  DtabClient::Options o = ClientOptions({"a"});
  o.keepalive_time = absl::Seconds(11);  // dtabd accepts pings 10 s apart
  o.keepalive_timeout = absl::Seconds(1);
  std::unique_ptr<DtabClient> client = StartClient(o);
  ASSERT_TRUE(WaitAccepted(*client, 1));

  ASSERT_TRUE(dtabd_->Signal(SIGSTOP).ok());
  std::string error;  // the first error, as the predicate saw it
  const bool detected = client->AwaitStats(
      [&error](const DtabClient::Stats& s) {
        error = s.last_error.ToString();
        return s.last_error.code() == absl::StatusCode::kUnavailable;
      },
      absl::Seconds(30));
  ASSERT_TRUE(dtabd_->Signal(SIGCONT).ok());
  ASSERT_TRUE(detected) << error;
  EXPECT_THAT(error, HasSubstr("keepalive watchdog timeout"));

  ASSERT_EQ(Put("a", "/a=>/2"), 2);
  ASSERT_TRUE(recorder_.WaitForUpdate("a", 2, absl::Seconds(40)));
  EXPECT_EQ(ToString(recorder_.updates()), "a@1 a@2");
}

TEST_F(DtabClientIntegrationTest, WrongTokenIsLoggedAtOnceAndRightTokenSubscribes) {
  ASSERT_EQ(Put("a", "/a=>/1"), 1);
  DtabClient::Options bad = ClientOptions({"a"});
  bad.token = "wrong";
  bad.cache_dir = "";
  std::unique_ptr<DtabClient> rejected = StartClient(bad);
  ASSERT_TRUE(log_.WaitForLine("UNAUTHENTICATED"));
  EXPECT_EQ(rejected->stats().last_error.code(), absl::StatusCode::kUnauthenticated);
  rejected->Stop();
  EXPECT_THAT(recorder_.updates(), IsEmpty());

  std::unique_ptr<DtabClient> client = StartClient(ClientOptions({"a"}));
  ASSERT_TRUE(recorder_.WaitForUpdate("a", 1));
}

TEST_F(DtabClientIntegrationTest, OverloadedDtabdPushesBackAndTheClientGetsInLater) {
  StopDtabd();
  StartDtabd({"--max-streams", "1"});
  ASSERT_EQ(Put("a", "/a=>/1"), 1);
  Recorder first_recorder;
  DtabClient::Options o1 = ClientOptions({"a"}, "proxy-1");
  o1.cache_dir = "";
  std::unique_ptr<DtabClient> first = StartClient(o1, &first_recorder);
  ASSERT_TRUE(first_recorder.WaitForUpdate("a", 1));

  DtabClient::Options o2 = ClientOptions({"a"}, "proxy-2");
  o2.cache_dir = "";
  o2.warn_after_failures = 0;
  std::unique_ptr<DtabClient> second = StartClient(o2);
  ASSERT_TRUE(log_.WaitForLine("RESOURCE_EXHAUSTED"));
  EXPECT_EQ(second->stats().last_error.code(), absl::StatusCode::kResourceExhausted);
  // dtabd's pushback (1s) is honoured, not the 20ms backoff.
  const std::string line = log_.lines()[0];
  absl::Duration delay;
  ASSERT_TRUE(absl::ParseDuration(line.substr(line.rfind("retrying in ") + 12), &delay)) << line;
  EXPECT_GE(delay, absl::Seconds(1));
  first->Stop();
  ASSERT_TRUE(recorder_.WaitForUpdate("a", 1));
}

}  // namespace
}  // namespace dtabd::discovery
