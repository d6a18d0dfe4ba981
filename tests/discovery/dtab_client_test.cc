// DtabClient against an in-process fake DiscoveryService whose streams each
// test scripts: the request sequence (subscribe, ACK, NACK, resume), client
// side validation of responses, deduplication, the cache at Start, backoff
// (reset only after a message; deterministic delays from the seed),
// pushback, logging only of persistent failures, and Stop.
#include "discovery/dtab_client.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "discovery/backoff.h"
#include "discovery/dtab_cache.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/discovery/test_util.h"

namespace dtabd::discovery {
namespace {

using ::dtabd::discovery::testing::kWait;
using ::dtabd::discovery::testing::LogCapture;
using ::dtabd::discovery::testing::Recorder;
using ::dtabd::discovery::testing::ReservedPort;
using ::dtabd::discovery::testing::ToString;
using ::dtabd::discovery::testing::Update;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

using ServerStream =
    grpc::ServerReaderWriter<v1::DeltaDiscoveryResponse, v1::DeltaDiscoveryRequest>;

// A DiscoveryService whose DeltaDtabs streams run `handler` (given the
// stream's index, from 0). Every request read through Read() is recorded.
class FakeServer final : public v1::DiscoveryService::Service {
 public:
  using Handler = std::function<grpc::Status(int index, grpc::ServerContext*, ServerStream*)>;

  explicit FakeServer(Handler handler) : handler_(std::move(handler)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~FakeServer() override {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  grpc::Status DeltaDtabs(grpc::ServerContext* ctx, ServerStream* stream) override {
    const int index = streams_.fetch_add(1);
    return handler_(index, ctx, stream);
  }

  // Reads and records one request; false when the stream has ended.
  bool Read(ServerStream* stream, v1::DeltaDiscoveryRequest* req) {
    if (!stream->Read(req)) {
      return false;
    }
    absl::MutexLock lock(&mu_);
    requests_.push_back(*req);
    return true;
  }
  // Reads until the client ends the stream (cancel), recording requests.
  grpc::Status Drain(ServerStream* stream) {
    v1::DeltaDiscoveryRequest req;
    while (Read(stream, &req)) {
    }
    return grpc::Status::OK;
  }

  // Waits until `n` requests were recorded and returns them all.
  std::vector<v1::DeltaDiscoveryRequest> WaitForRequests(size_t n) {
    struct Eval {
      const std::vector<v1::DeltaDiscoveryRequest>* r;
      size_t n;
      bool operator()() const { return r->size() >= n; }
    };
    absl::MutexLock lock(&mu_);
    const Eval eval{&requests_, n};
    mu_.AwaitWithTimeout(absl::Condition(&eval), kWait);
    return requests_;
  }

  int streams() const { return streams_.load(); }

 private:
  const Handler handler_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<int> streams_{0};
  absl::Mutex mu_;
  std::vector<v1::DeltaDiscoveryRequest> requests_ ABSL_GUARDED_BY(mu_);
};

v1::VersionedDtab MakeDtab(const std::string& ns, int64_t version, const std::string& text = "") {
  v1::VersionedDtab d;
  d.set_namespace_(ns);
  d.set_version(version);
  d.set_dtab(text.empty() ? absl::StrCat("/svc=>/#/io.l5d.fs/", ns, version) : text);
  d.set_revision(version * 10);
  return d;
}

void AddResource(v1::DeltaDiscoveryResponse* r, const v1::VersionedDtab& d) {
  v1::DtabResource* res = r->add_resources();
  res->set_name(d.namespace_());
  res->set_version(absl::StrCat(d.version()));
  *res->mutable_dtab() = d;
}

v1::DeltaDiscoveryResponse Response(const std::string& nonce,
                                    const std::vector<v1::VersionedDtab>& dtabs,
                                    const std::vector<std::string>& removed = {}) {
  v1::DeltaDiscoveryResponse r;
  r.set_nonce(nonce);
  for (const v1::VersionedDtab& d : dtabs) {
    AddResource(&r, d);
  }
  for (const std::string& n : removed) {
    r.add_removed_resources(n);
  }
  return r;
}

class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TEST_TMPDIR");
    std::string pattern =
        (base != nullptr && *base != '\0' ? std::string(base)
                                          : std::filesystem::temp_directory_path().string()) +
        "/dtab-client-XXXXXX";
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

class DtabClientTest : public ::testing::Test {
 protected:
  DtabClient::Options BaseOptions(const std::string& target, std::vector<std::string> namespaces) {
    DtabClient::Options o;
    o.target = target;
    o.namespaces = std::move(namespaces);
    o.node.set_id("proxy-1");
    o.node.set_cluster("edge");
    o.backoff_base = absl::Milliseconds(10);
    o.backoff_max = absl::Milliseconds(80);
    o.random_seed = 1234;
    o.logger = log_.logger();
    return o;
  }

  std::unique_ptr<DtabClient> StartClient(DtabClient::Options o) {
    absl::StatusOr<std::unique_ptr<DtabClient>> c =
        DtabClient::Start(std::move(o), recorder_.callback());
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  Recorder recorder_;
  LogCapture log_;
  TempDir tmp_;
};

// --- Start ------------------------------------------------------------------

TEST_F(DtabClientTest, StartRejectsInvalidOptions) {
  auto start = [&](DtabClient::Options o) {
    return DtabClient::Start(std::move(o), recorder_.callback()).status();
  };
  DtabClient::Options o = BaseOptions("127.0.0.1:1", {"a"});
  o.target = "";
  EXPECT_EQ(start(o).code(), absl::StatusCode::kInvalidArgument);
  o = BaseOptions("127.0.0.1:1", {});
  EXPECT_THAT(start(o).message(), HasSubstr("no namespaces"));
  o = BaseOptions("127.0.0.1:1", {"a", "b/c"});
  EXPECT_THAT(start(o).message(), HasSubstr("'b/c'"));
  o = BaseOptions("127.0.0.1:1", {"a"});
  o.backoff_base = absl::ZeroDuration();
  EXPECT_THAT(start(o).message(), HasSubstr("backoff_base"));
  o = BaseOptions("127.0.0.1:1", {"a"});
  o.backoff_max = absl::Milliseconds(1);
  EXPECT_THAT(start(o).message(), HasSubstr("backoff_max"));
  o = BaseOptions("127.0.0.1:1", {"a"});
  o.backoff_jitter = 1.5;
  EXPECT_THAT(start(o).message(), HasSubstr("backoff_jitter"));
  o = BaseOptions("127.0.0.1:1", {"a"});
  o.keepalive_time = absl::Seconds(1);
  EXPECT_THAT(start(o).message(), HasSubstr("keepalive_time"));
  o = BaseOptions("127.0.0.1:1", {"a"});
  EXPECT_THAT(DtabClient::Start(o, nullptr).status().message(), HasSubstr("no callback"));
  TempDir tmp;
  std::ofstream(tmp.path() + "/file") << "x";
  o.cache_dir = tmp.path() + "/file";
  EXPECT_EQ(start(o).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(recorder_.updates(), IsEmpty());
}

// --- The request sequence -----------------------------------------------------

TEST_F(DtabClientTest, SubscribesThenAcksAcceptedAndNacksRejectedResponses) {
  FakeServer server([&server](int, grpc::ServerContext*, ServerStream* s) {
    v1::DeltaDiscoveryRequest req;
    server.Read(s, &req);
    s->Write(Response("n1", {MakeDtab("a", 1)}, {"b"}));
    server.Read(s, &req);
    s->Write(Response("n2", {MakeDtab("a", 2, "bad")}));
    server.Read(s, &req);
    s->Write(Response("n3", {MakeDtab("a", 3)}));
    return server.Drain(s);
  });
  recorder_.set_policy([](const std::string&, const std::optional<v1::VersionedDtab>& d) {
    return d.has_value() && d->dtab() == "bad"
               ? absl::InvalidArgumentError("dtab 'a': rule 1: missing '=>'")
               : absl::OkStatus();
  });
  DtabClient::Options o = BaseOptions(server.address(), {"a", "b", "a"});
  o.token = "s3cret";
  std::unique_ptr<DtabClient> client = StartClient(o);
  const std::vector<v1::DeltaDiscoveryRequest> reqs = server.WaitForRequests(4);
  ASSERT_EQ(reqs.size(), 4u);

  EXPECT_EQ(reqs[0].node().id(), "proxy-1");
  EXPECT_EQ(reqs[0].node().cluster(), "edge");
  EXPECT_EQ(reqs[0].node().user_agent(), "dtabd-discovery-client");
  EXPECT_THAT(reqs[0].resource_names_subscribe(), ElementsAre("a", "b"));  // deduplicated
  EXPECT_THAT(reqs[0].initial_resource_versions(), IsEmpty());
  EXPECT_EQ(reqs[0].response_nonce(), "");
  EXPECT_FALSE(reqs[0].has_error_detail());

  EXPECT_EQ(reqs[1].response_nonce(), "n1");  // ACK
  EXPECT_FALSE(reqs[1].has_error_detail());
  EXPECT_THAT(reqs[1].resource_names_subscribe(), IsEmpty());
  EXPECT_FALSE(reqs[1].has_node());

  EXPECT_EQ(reqs[2].response_nonce(), "n2");  // NACK
  ASSERT_TRUE(reqs[2].has_error_detail());
  EXPECT_EQ(reqs[2].error_detail().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(reqs[2].error_detail().message(),
            "namespace 'a' version 2: dtab 'a': rule 1: missing '=>'");

  EXPECT_EQ(reqs[3].response_nonce(), "n3");
  EXPECT_FALSE(reqs[3].has_error_detail());

  EXPECT_EQ(ToString(recorder_.updates()), "a@1 b@removed a@2(rejected) a@3");
  EXPECT_EQ(client->accepted_version("a"), 3);
  EXPECT_EQ(client->accepted_version("b"), std::nullopt);
  EXPECT_TRUE(client->known_absent("b"));
  ASSERT_TRUE(client->AwaitStats([](const DtabClient::Stats& s) { return s.acks == 2; }, kWait));
  const DtabClient::Stats st = client->stats();
  EXPECT_EQ(st.state, ConnectionState::kConnected);
  EXPECT_EQ(st.responses, 3);
  EXPECT_EQ(st.nacks, 1);
  EXPECT_EQ(st.deliveries, 4);
  EXPECT_EQ(st.accepted, 3);
  EXPECT_EQ(st.streams, 1);
  client->Stop();
  EXPECT_EQ(client->connection_state(), ConnectionState::kStopped);
  EXPECT_THAT(log_.lines(), IsEmpty());
}

TEST_F(DtabClientTest, SendsTheTokenAsBearerAuthorization) {
  absl::Notification seen;
  std::string authorization;
  FakeServer server([&](int, grpc::ServerContext* ctx, ServerStream* s) {
    auto it = ctx->client_metadata().find("authorization");
    if (it != ctx->client_metadata().end() && !seen.HasBeenNotified()) {
      authorization = std::string(it->second.data(), it->second.size());
      seen.Notify();
    }
    return server.Drain(s);
  });
  DtabClient::Options o = BaseOptions(server.address(), {"a"});
  o.token = "s3cret";
  std::unique_ptr<DtabClient> client = StartClient(o);
  ASSERT_TRUE(seen.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(authorization, "Bearer s3cret");
}

TEST_F(DtabClientTest, ReconnectResumesWithInitialVersionsOfAcceptedNamespacesOnly) {
  FakeServer server([&server](int index, grpc::ServerContext*, ServerStream* s) {
    v1::DeltaDiscoveryRequest req;
    server.Read(s, &req);
    if (index == 0) {
      s->Write(Response("n1", {MakeDtab("a", 3), MakeDtab("b", 5, "bad")}, {"c"}));
      server.Read(s, &req);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "dtabd is shutting down");
    }
    return server.Drain(s);
  });
  recorder_.set_policy([](const std::string&, const std::optional<v1::VersionedDtab>& d) {
    return d.has_value() && d->dtab() == "bad" ? absl::InvalidArgumentError("no")
                                               : absl::OkStatus();
  });
  std::unique_ptr<DtabClient> client = StartClient(BaseOptions(server.address(), {"a", "b", "c"}));
  const std::vector<v1::DeltaDiscoveryRequest> reqs = server.WaitForRequests(3);
  ASSERT_EQ(reqs.size(), 3u);
  // The second stream's first request: a fresh subscription (no nonce: nonces
  // do not survive a stream) with the accepted version of a only.
  const v1::DeltaDiscoveryRequest& resume = reqs[2];
  EXPECT_EQ(resume.node().id(), "proxy-1");
  EXPECT_THAT(resume.resource_names_subscribe(), ElementsAre("a", "b", "c"));
  EXPECT_THAT(resume.initial_resource_versions(), UnorderedElementsAre(Pair("a", "3")));
  EXPECT_EQ(resume.response_nonce(), "");
  EXPECT_EQ(server.streams(), 2);
}

// --- Validation and deduplication ---------------------------------------------

TEST_F(DtabClientTest, MalformedResourcesAreNackedWithoutCallingTheCallback) {
  FakeServer server([&server](int, grpc::ServerContext*, ServerStream* s) {
    v1::DeltaDiscoveryRequest req;
    server.Read(s, &req);
    v1::DeltaDiscoveryResponse r = Response("n1", {MakeDtab("a", 1), MakeDtab("a", 2)});
    AddResource(&r, MakeDtab("zzz", 1));        // not subscribed
    v1::DtabResource* bad = r.add_resources();  // bad version
    bad->set_name("b");
    bad->set_version("x7");
    v1::DtabResource* other = r.add_resources();  // dtab of another namespace
    other->set_name("c");
    other->set_version("4");
    *other->mutable_dtab() = MakeDtab("d", 4);
    s->Write(r);
    server.Read(s, &req);
    return server.Drain(s);
  });
  std::unique_ptr<DtabClient> client = StartClient(BaseOptions(server.address(), {"a", "b", "c"}));
  const std::vector<v1::DeltaDiscoveryRequest> reqs = server.WaitForRequests(2);
  ASSERT_EQ(reqs.size(), 2u);
  ASSERT_TRUE(reqs[1].has_error_detail());
  const std::string& msg = reqs[1].error_detail().message();
  EXPECT_THAT(msg, HasSubstr("resource 'a' appears twice"));
  EXPECT_THAT(msg, HasSubstr("resource 'zzz' was not subscribed"));
  EXPECT_THAT(msg, HasSubstr("resource 'b': bad version 'x7'"));
  EXPECT_THAT(msg, HasSubstr("resource 'c' version 4: its dtab is 'd' version 4"));
  // The first, valid, resource was applied.
  EXPECT_EQ(ToString(recorder_.updates()), "a@1");
}

TEST_F(DtabClientTest, VersionsAlreadyHeldOrRejectedAreNotDeliveredAgain) {
  FakeServer server([&server](int, grpc::ServerContext*, ServerStream* s) {
    v1::DeltaDiscoveryRequest req;
    server.Read(s, &req);
    const std::vector<v1::DeltaDiscoveryResponse> script = {
        Response("n1", {MakeDtab("a", 1)}, {"b"}),
        Response("n2", {MakeDtab("a", 1)}, {"b"}),  // both already held
        Response("n3", {MakeDtab("a", 2, "bad")}),
        Response("n4", {MakeDtab("a", 2, "bad")}),  // already rejected
        Response("n5", {MakeDtab("a", 3)}),
    };
    for (const v1::DeltaDiscoveryResponse& r : script) {
      s->Write(r);
      server.Read(s, &req);
    }
    return server.Drain(s);
  });
  recorder_.set_policy([](const std::string&, const std::optional<v1::VersionedDtab>& d) {
    return d.has_value() && d->dtab() == "bad" ? absl::InvalidArgumentError("unparseable")
                                               : absl::OkStatus();
  });
  std::unique_ptr<DtabClient> client = StartClient(BaseOptions(server.address(), {"a", "b"}));
  const std::vector<v1::DeltaDiscoveryRequest> reqs = server.WaitForRequests(6);
  ASSERT_EQ(reqs.size(), 6u);
  EXPECT_FALSE(reqs[2].has_error_detail());  // n2: ACK
  EXPECT_TRUE(reqs[3].has_error_detail());   // n3: NACK
  ASSERT_TRUE(reqs[4].has_error_detail());   // n4: NACK again, same error
  EXPECT_EQ(reqs[4].error_detail().message(), "namespace 'a' version 2: unparseable");
  EXPECT_FALSE(reqs[5].has_error_detail());  // n5: ACK
  EXPECT_EQ(ToString(recorder_.updates()), "a@1 b@removed a@2(rejected) a@3");
  const DtabClient::Stats st = client->stats();
  EXPECT_EQ(st.redundant, 2);
  EXPECT_EQ(st.redundant_removals, 1);
}

// --- Cache --------------------------------------------------------------------

TEST_F(DtabClientTest, CachedVersionsAreDeliveredBeforeStartReturnsAndResumedFrom) {
  {
    absl::StatusOr<std::unique_ptr<DtabCache>> cache = DtabCache::Open(tmp_.path());
    ASSERT_TRUE(cache.ok());
    ASSERT_TRUE((*cache)->Write(MakeDtab("a", 3)).ok());
    ASSERT_TRUE((*cache)->Write(MakeDtab("b", 5)).ok());
    ASSERT_TRUE((*cache)->Write(MakeDtab("unsubscribed", 9)).ok());
  }
  FakeServer server(
      [&server](int, grpc::ServerContext*, ServerStream* s) { return server.Drain(s); });
  DtabClient::Options o = BaseOptions(server.address(), {"a", "b", "c"});
  o.cache_dir = tmp_.path();
  std::unique_ptr<DtabClient> client = StartClient(o);
  // No waiting: Start delivered them.
  EXPECT_EQ(ToString(recorder_.updates()), "a@3 b@5");
  EXPECT_THAT(client->accepted_versions(), UnorderedElementsAre(Pair("a", 3), Pair("b", 5)));
  EXPECT_EQ(client->stats().from_cache, 2);
  const std::vector<v1::DeltaDiscoveryRequest> reqs = server.WaitForRequests(1);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_THAT(reqs[0].initial_resource_versions(),
              UnorderedElementsAre(Pair("a", "3"), Pair("b", "5")));
}

TEST_F(DtabClientTest, CorruptCacheFileIsReportedAndIgnored) {
  std::ofstream(tmp_.path() + "/a.dtab") << "dtabd-dtab-cache 1 00000000 3\nabc";
  {
    absl::StatusOr<std::unique_ptr<DtabCache>> cache = DtabCache::Open(tmp_.path());
    ASSERT_TRUE(cache.ok());
    ASSERT_TRUE((*cache)->Write(MakeDtab("b", 5)).ok());
  }
  ReservedPort nobody;  // dtabd is down
  DtabClient::Options o = BaseOptions(nobody.address(), {"a", "b"});
  o.cache_dir = tmp_.path();
  std::unique_ptr<DtabClient> client = StartClient(o);
  EXPECT_EQ(ToString(recorder_.updates()), "b@5");
  ASSERT_FALSE(log_.lines().empty());
  EXPECT_THAT(log_.lines()[0], HasSubstr("ignoring the cached dtab of namespace 'a'"));
  EXPECT_THAT(log_.lines()[0], HasSubstr("checksum mismatch"));
  EXPECT_EQ(client->accepted_version("a"), std::nullopt);
}

TEST_F(DtabClientTest, RejectedCachedVersionIsRemovedFromTheCache) {
  {
    absl::StatusOr<std::unique_ptr<DtabCache>> cache = DtabCache::Open(tmp_.path());
    ASSERT_TRUE(cache.ok());
    ASSERT_TRUE((*cache)->Write(MakeDtab("a", 3, "old syntax")).ok());
  }
  recorder_.set_policy([](const std::string&, const std::optional<v1::VersionedDtab>&) {
    return absl::InvalidArgumentError("cannot parse");
  });
  ReservedPort nobody;
  DtabClient::Options o = BaseOptions(nobody.address(), {"a"});
  o.cache_dir = tmp_.path();
  std::unique_ptr<DtabClient> client = StartClient(o);
  EXPECT_EQ(ToString(recorder_.updates()), "a@3(rejected)");
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/a.dtab"));
  EXPECT_EQ(client->accepted_version("a"), std::nullopt);
  ASSERT_FALSE(log_.lines().empty());
  EXPECT_THAT(log_.lines()[0], HasSubstr("rejected cached version 3"));
}

TEST_F(DtabClientTest, AcceptedVersionsAreCachedRejectedOnesAreNotAndRemovalsDeleteTheFile) {
  FakeServer server([&server](int, grpc::ServerContext*, ServerStream* s) {
    v1::DeltaDiscoveryRequest req;
    server.Read(s, &req);
    s->Write(Response("n1", {MakeDtab("a", 1), MakeDtab("b", 1)}));
    server.Read(s, &req);
    s->Write(Response("n2", {MakeDtab("a", 2, "bad")}, {"b"}));
    server.Read(s, &req);
    return server.Drain(s);
  });
  recorder_.set_policy([](const std::string&, const std::optional<v1::VersionedDtab>& d) {
    return d.has_value() && d->dtab() == "bad" ? absl::InvalidArgumentError("no")
                                               : absl::OkStatus();
  });
  DtabClient::Options o = BaseOptions(server.address(), {"a", "b"});
  o.cache_dir = tmp_.path();
  std::unique_ptr<DtabClient> client = StartClient(o);
  ASSERT_EQ(server.WaitForRequests(3).size(), 3u);
  client->Stop();  // the cache is written before each ACK; Stop for a quiet directory
  absl::StatusOr<std::unique_ptr<DtabCache>> cache = DtabCache::Open(tmp_.path());
  ASSERT_TRUE(cache.ok());
  absl::StatusOr<v1::VersionedDtab> a = (*cache)->Read("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->version(), 1);
  EXPECT_EQ((*cache)->Read("b").status().code(), absl::StatusCode::kNotFound);
}

// --- Backoff, pushback, logging -------------------------------------------------

// The delays logged ("retrying in D") for each failure, in order.
std::vector<std::string> LoggedDelays(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const std::string& l : lines) {
    const size_t at = l.rfind("retrying in ");
    if (at != std::string::npos) {
      out.push_back(l.substr(at + 12));
    }
  }
  return out;
}

TEST_F(DtabClientTest, BackoffGrowsFromTheSeedAndRestartsOnlyAfterAMessage) {
  // Streams 0-3 open and end without a message; 4 and 5 send one, then end.
  absl::Notification started;
  std::atomic<DtabClient*> client_ptr{nullptr};
  absl::Mutex mu;
  std::vector<int> failures_seen;  // the client's consecutive_failures as each stream opens
  FakeServer server([&](int index, grpc::ServerContext*, ServerStream* s) {
    started.WaitForNotification();
    {
      absl::MutexLock lock(&mu);
      failures_seen.push_back(client_ptr.load()->stats().consecutive_failures);
    }
    v1::DeltaDiscoveryRequest req;
    server.Read(s, &req);
    if (index >= 6) {
      return server.Drain(s);
    }
    if (index >= 4) {
      s->Write(Response(absl::StrCat("n", index), {}, {"a"}));
      server.Read(s, &req);
    }
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "go away");
  });
  DtabClient::Options o = BaseOptions(server.address(), {"a"});
  o.warn_after_failures = 0;  // log every failure with its delay
  o.backoff_base = absl::Milliseconds(20);
  o.backoff_max = absl::Milliseconds(500);
  std::unique_ptr<DtabClient> client = StartClient(o);
  client_ptr = client.get();
  started.Notify();
  {
    absl::MutexLock lock(&mu);
    auto seven = [&failures_seen]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return failures_seen.size() >= 7; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&seven), kWait));
  }
  client->Stop();
  {
    absl::MutexLock lock(&mu);
    EXPECT_THAT(std::vector<int>(failures_seen.begin(), failures_seen.begin() + 7),
                ElementsAre(0, 1, 2, 3, 4, 1, 1));
  }

  // The same seed gives the same delays: 4 growing ones, then a restart at
  // base after each stream that delivered a message.
  Backoff expected({o.backoff_base, o.backoff_max, 2.0, o.backoff_jitter}, *o.random_seed);
  std::vector<std::string> want;
  for (int i = 0; i < 4; ++i) {
    want.push_back(absl::FormatDuration(expected.Next()));
  }
  for (int i = 0; i < 2; ++i) {
    expected.Reset();
    want.push_back(absl::FormatDuration(expected.Next()));
  }
  const std::vector<std::string> got = LoggedDelays(log_.lines());
  ASSERT_GE(got.size(), 6u);
  EXPECT_EQ(std::vector<std::string>(got.begin(), got.begin() + 6), want);
}

TEST_F(DtabClientTest, ResourceExhaustedPushbackIsHonoured) {
  FakeServer server([&server](int index, grpc::ServerContext* ctx, ServerStream* s) {
    if (index == 0) {
      ctx->AddTrailingMetadata("grpc-retry-pushback-ms", "300");
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many streams");
    }
    return server.Drain(s);
  });
  DtabClient::Options o = BaseOptions(server.address(), {"a"});
  o.warn_after_failures = 0;
  std::unique_ptr<DtabClient> client = StartClient(o);
  ASSERT_TRUE(log_.WaitForLines(1));
  Backoff expected({o.backoff_base, o.backoff_max, 2.0, o.backoff_jitter}, *o.random_seed);
  const absl::Duration want = expected.NextWithPushback(absl::Milliseconds(300));
  EXPECT_GE(want, absl::Milliseconds(300));
  EXPECT_THAT(log_.lines()[0], HasSubstr("RESOURCE_EXHAUSTED: too many streams"));
  EXPECT_THAT(LoggedDelays(log_.lines()), ElementsAre(absl::FormatDuration(want)));
  ASSERT_EQ(server.WaitForRequests(1).size(), 1u);  // stream 1's subscription
  EXPECT_EQ(server.streams(), 2);
}

TEST_F(DtabClientTest, TransientFailuresAreLoggedOnlyOnceTheyPersist) {
  ReservedPort nobody;
  DtabClient::Options o = BaseOptions(nobody.address(), {"a"});
  o.warn_after_failures = 3;
  std::unique_ptr<DtabClient> client = StartClient(o);
  ASSERT_TRUE(log_.WaitForLines(2));
  const std::vector<std::string> lines = log_.lines();
  EXPECT_THAT(lines[0], HasSubstr("(4 attempts in a row): UNAVAILABLE"));
  EXPECT_THAT(lines[1], HasSubstr("(5 attempts in a row)"));
  const DtabClient::Stats st = client->stats();
  EXPECT_GE(st.consecutive_failures, 5);
  EXPECT_EQ(st.last_error.code(), absl::StatusCode::kUnavailable);
}

TEST_F(DtabClientTest, RecoveryAfterLoggedFailuresIsLogged) {
  std::atomic<int> refused{0};
  FakeServer server([&](int index, grpc::ServerContext*, ServerStream* s) {
    if (index < 2) {
      ++refused;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "not yet");
    }
    v1::DeltaDiscoveryRequest req;
    server.Read(s, &req);
    s->Write(Response("n1", {MakeDtab("a", 1)}));
    return server.Drain(s);
  });
  DtabClient::Options o = BaseOptions(server.address(), {"a"});
  o.warn_after_failures = 1;
  std::unique_ptr<DtabClient> client = StartClient(o);
  ASSERT_TRUE(log_.WaitForLine("re-established after 2 failed attempts"));
  EXPECT_THAT(log_.lines()[0], HasSubstr("(2 attempts in a row): UNAVAILABLE: not yet"));
  EXPECT_EQ(log_.lines().size(), 2u);
}

TEST_F(DtabClientTest, FailuresRetryingCannotFixAreLoggedAtOnceAndRetriedSlowly) {
  FakeServer server([](int, grpc::ServerContext*, ServerStream*) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
  });
  DtabClient::Options o = BaseOptions(server.address(), {"a"});
  o.warn_after_failures = 3;
  o.backoff_max = absl::Minutes(10);
  std::unique_ptr<DtabClient> client = StartClient(o);
  ASSERT_TRUE(log_.WaitForLines(1));
  EXPECT_THAT(log_.lines()[0], HasSubstr("(1 attempts in a row): UNAUTHENTICATED: bad token"));
  const std::vector<std::string> delays = LoggedDelays(log_.lines());
  ASSERT_EQ(delays.size(), 1u);
  absl::Duration d;
  ASSERT_TRUE(absl::ParseDuration(delays[0], &d)) << delays[0];
  EXPECT_GE(d, absl::Minutes(5));
  ASSERT_TRUE(client->AwaitStats(
      [](const DtabClient::Stats& s) { return s.state == ConnectionState::kBackoff; }, kWait));
  client->Stop();  // wakes the 5+ minute wait at once
  EXPECT_EQ(client->connection_state(), ConnectionState::kStopped);
}

// --- Stop ---------------------------------------------------------------------

TEST_F(DtabClientTest, StopEndsAnOpenStreamAndIsIdempotentAcrossThreads) {
  FakeServer server(
      [&server](int, grpc::ServerContext*, ServerStream* s) { return server.Drain(s); });
  std::unique_ptr<DtabClient> client = StartClient(BaseOptions(server.address(), {"a"}));
  ASSERT_TRUE(client->AwaitStats(
      [](const DtabClient::Stats& s) { return s.state == ConnectionState::kConnected; }, kWait));
  std::thread other([&] { client->Stop(); });
  client->Stop();
  other.join();
  client->Stop();
  EXPECT_EQ(client->connection_state(), ConnectionState::kStopped);
  client.reset();  // the destructor's Stop is a no-op
}

TEST_F(DtabClientTest, StopWhileTheCallbackRunsWaitsForItAndDeliversNothingAfter) {
  absl::Notification in_callback;
  absl::Notification release;
  FakeServer server([&server](int, grpc::ServerContext*, ServerStream* s) {
    v1::DeltaDiscoveryRequest req;
    server.Read(s, &req);
    s->Write(Response("n1", {MakeDtab("a", 1)}));
    s->Write(Response("n2", {MakeDtab("a", 2)}));
    return server.Drain(s);
  });
  recorder_.set_policy([&](const std::string&, const std::optional<v1::VersionedDtab>&) {
    in_callback.Notify();
    release.WaitForNotification();
    return absl::OkStatus();
  });
  std::unique_ptr<DtabClient> client = StartClient(BaseOptions(server.address(), {"a"}));
  ASSERT_TRUE(in_callback.WaitForNotificationWithTimeout(kWait));
  std::thread stopper([&] { client->Stop(); });
  ASSERT_TRUE(client->AwaitStats(
      [](const DtabClient::Stats& s) { return s.state == ConnectionState::kStopped; }, kWait));
  release.Notify();
  stopper.join();
  EXPECT_EQ(ToString(recorder_.updates()), "a@1");
}

}  // namespace
}  // namespace dtabd::discovery
