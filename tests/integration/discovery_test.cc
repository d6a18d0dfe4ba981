// Integration tests of dtabd.v1.DiscoveryService: the real dtabd
// (DtabdProcess: 127.0.0.1:0, a fresh temporary database) driven by raw
// typed stream clients (the server's raw ByteBuffer methods speak exactly
// the typed protos). One test per streaming rule of issue 5 and
// ../shared/reference/xds-notes.md.
//
// Nothing sleeps. Every call has a deadline; a stream's responses are read
// by a thread into a queue, and the test takes the next one with a
// deadline. "Nothing else was sent" is shown by ordering, not by waiting: a
// stream delivers in order, so after provoking a change to a different
// resource the next response must be exactly that change; anything the
// server should not have sent would have come first.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dtabd/v1/discovery.grpc.pb.h"
#include "dtabd/v1/dtab.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/dtabd_process.h"

namespace dtabd::integration {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr auto kRpcDeadline = std::chrono::seconds(10);
constexpr auto kStreamDeadline = std::chrono::seconds(60);
// How long a response that must come may take.
constexpr absl::Duration kNext = absl::Seconds(10);

MATCHER_P2(StatusIs, code, message_matcher, "") {
  *result_listener << "status " << arg.error_code() << " '" << arg.error_message() << "'";
  return arg.error_code() == code &&
         ::testing::ExplainMatchResult(message_matcher, arg.error_message(), result_listener);
}

MATCHER(IsOk, "") {
  *result_listener << "status " << arg.error_code() << " '" << arg.error_message() << "'";
  return arg.ok();
}

// A bidirectional stream with a reader thread. Responses queue up; Next
// takes the oldest, waiting up to a deadline. The destructor cancels the
// stream if it has not ended and joins the reader.
template <typename Req, typename Resp>
class Stream {
 public:
  using Opener =
      std::function<std::unique_ptr<grpc::ClientReaderWriter<Req, Resp>>(grpc::ClientContext*)>;

  // Opens the stream. With `read` false nobody reads it (a stuck client);
  // ReadDirectly may still take single responses.
  explicit Stream(const Opener& open, bool read = true) {
    ctx_.set_deadline(std::chrono::system_clock::now() + kStreamDeadline);
    rw_ = open(&ctx_);
    if (read) {
      reader_ = std::thread([this] { ReadLoop(); });
    }
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (!finished_) {
      ctx_.TryCancel();
      if (reader_.joinable()) {
        reader_.join();
      }
      (void)rw_->Finish();
    }
  }

  bool Send(const Req& req) { return rw_->Write(req); }

  // The next response, or nullopt if none came within `timeout` or the
  // stream ended.
  std::optional<Resp> Next(absl::Duration timeout = kNext) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || ended_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (queue_.empty()) {
      return std::nullopt;
    }
    Resp r = std::move(queue_.front());
    queue_.pop_front();
    return r;
  }

  // Without a reader thread: one blocking read (bounded by the stream's
  // deadline).
  std::optional<Resp> ReadDirectly() {
    Resp r;
    if (!rw_->Read(&r)) {
      return std::nullopt;
    }
    return r;
  }

  // Responses received and not yet taken.
  size_t buffered() const {
    absl::MutexLock lock(&mu_);
    return queue_.size();
  }

  // Waits up to `timeout` for the server to end the stream (responses
  // still queued are dropped) and returns its status. Needs the reader
  // thread.
  grpc::Status Finish(absl::Duration timeout = kNext) {
    {
      absl::MutexLock lock(&mu_);
      auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ended_; };
      if (!mu_.AwaitWithTimeout(absl::Condition(&ended), timeout)) {
        return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "test: stream did not end");
      }
    }
    if (reader_.joinable()) {
      reader_.join();
    }
    finished_ = true;
    return rw_->Finish();
  }

  // Trailing metadata; valid after Finish.
  std::multimap<std::string, std::string> Trailers() const {
    std::multimap<std::string, std::string> out;
    for (const auto& [k, v] : ctx_.GetServerTrailingMetadata()) {
      out.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
    }
    return out;
  }

 private:
  void ReadLoop() {
    Resp r;
    while (rw_->Read(&r)) {
      absl::MutexLock lock(&mu_);
      queue_.push_back(std::move(r));
    }
    absl::MutexLock lock(&mu_);
    ended_ = true;
  }

  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<Req, Resp>> rw_;
  std::thread reader_;
  bool finished_ = false;
  mutable absl::Mutex mu_;
  std::deque<Resp> queue_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

using DeltaStream = Stream<v1::DeltaDiscoveryRequest, v1::DeltaDiscoveryResponse>;
using SotwStream = Stream<v1::DiscoveryRequest, v1::DiscoveryResponse>;

// Resource name -> version.
std::map<std::string, std::string> Resources(const v1::DeltaDiscoveryResponse& r) {
  std::map<std::string, std::string> out;
  for (const v1::DtabResource& res : r.resources()) {
    out[res.name()] = res.version();
  }
  return out;
}
std::map<std::string, std::string> Resources(const v1::DiscoveryResponse& r) {
  std::map<std::string, std::string> out;
  for (const v1::DtabResource& res : r.resources()) {
    out[res.name()] = res.version();
  }
  return out;
}
std::vector<std::string> Removed(const v1::DeltaDiscoveryResponse& r) {
  std::vector<std::string> out(r.removed_resources().begin(), r.removed_resources().end());
  std::sort(out.begin(), out.end());
  return out;
}

v1::Node MakeNode(const std::string& id) {
  v1::Node node;
  node.set_id(id);
  node.set_cluster("test-cluster");
  node.set_user_agent("discovery_test");
  return node;
}

// The first request of a delta stream.
v1::DeltaDiscoveryRequest DeltaHello(const std::string& node_id,
                                     const std::vector<std::string>& subscribe,
                                     const std::map<std::string, std::string>& initial = {}) {
  v1::DeltaDiscoveryRequest req;
  *req.mutable_node() = MakeNode(node_id);
  for (const std::string& n : subscribe) {
    req.add_resource_names_subscribe(n);
  }
  for (const auto& [name, version] : initial) {
    (*req.mutable_initial_resource_versions())[name] = version;
  }
  return req;
}

v1::DeltaDiscoveryRequest DeltaAck(const v1::DeltaDiscoveryResponse& r) {
  v1::DeltaDiscoveryRequest req;
  req.set_response_nonce(r.nonce());
  return req;
}

v1::DeltaDiscoveryRequest DeltaNack(const v1::DeltaDiscoveryResponse& r, const std::string& why) {
  v1::DeltaDiscoveryRequest req;
  req.set_response_nonce(r.nonce());
  req.mutable_error_detail()->set_code(3);  // INVALID_ARGUMENT
  req.mutable_error_detail()->set_message(why);
  return req;
}

v1::DiscoveryRequest SotwRequest(const std::string& node_id, const std::vector<std::string>& names,
                                 const std::string& version_info = "",
                                 const std::string& nonce = "") {
  v1::DiscoveryRequest req;
  if (!node_id.empty()) {
    *req.mutable_node() = MakeNode(node_id);
  }
  for (const std::string& n : names) {
    req.add_resource_names(n);
  }
  req.set_version_info(version_info);
  req.set_response_nonce(nonce);
  return req;
}

class DiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override { StartDtabd({}); }

  void TearDown() override {
    if (HasFailure() && dtabd_ != nullptr) {
      std::cerr << "dtabd's stderr:\n" << dtabd_->stderr_output();
    }
  }

  void StartDtabd(std::vector<std::string> extra_args) {
    DtabdProcess::Options o;
    o.extra_args = std::move(extra_args);
    absl::StatusOr<std::unique_ptr<DtabdProcess>> p = DtabdProcess::Start(std::move(o));
    ASSERT_TRUE(p.ok()) << p.status();
    dtabd_ = *std::move(p);
    Connect();
  }

  // A new channel to dtabd's current address (after a restart, too).
  void Connect() {
    channel_ = grpc::CreateChannel(dtabd_->grpc_address(), grpc::InsecureChannelCredentials());
    dtabs_ = v1::DtabService::NewStub(channel_);
    discovery_ = v1::DiscoveryService::NewStub(channel_);
  }

  // Drops the client's connection (see DtabServiceTest::CloseChannel:
  // dtabd's graceful shutdown waits for it). Streams must be gone first.
  void CloseChannel() {
    dtabs_.reset();
    discovery_.reset();
    channel_.reset();
  }

  std::unique_ptr<DeltaStream> OpenDelta(bool read = true) {
    return std::make_unique<DeltaStream>(
        [this](grpc::ClientContext* ctx) { return discovery_->DeltaDtabs(ctx); }, read);
  }
  std::unique_ptr<SotwStream> OpenSotw() {
    return std::make_unique<SotwStream>(
        [this](grpc::ClientContext* ctx) { return discovery_->StreamDtabs(ctx); });
  }

  // Writes `dtab` to `ns` (creating it) and returns the new version.
  int64_t Put(const std::string& ns, absl::string_view dtab) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    v1::PutDtabRequest req;
    req.set_namespace_(ns);
    req.set_dtab(std::string(dtab));
    v1::VersionedDtab out;
    const grpc::Status s = dtabs_->PutDtab(&ctx, req, &out);
    EXPECT_THAT(s, IsOk()) << "PutDtab " << ns;
    return out.version();
  }

  int64_t Delete(const std::string& ns) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    v1::DeleteDtabRequest req;
    req.set_namespace_(ns);
    v1::VersionedDtab out;
    const grpc::Status s = dtabs_->DeleteDtab(&ctx, req, &out);
    EXPECT_THAT(s, IsOk()) << "DeleteDtab " << ns;
    return out.version();
  }

  grpc::Status Rollout(const std::string& ns, v1::RolloutStatusResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    v1::RolloutStatusRequest req;
    req.set_namespace_(ns);
    return discovery_->GetRolloutStatus(&ctx, req, out);
  }

  grpc::Status Subscribers(v1::ListSubscribersResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    return discovery_->ListSubscribers(&ctx, v1::ListSubscribersRequest(), out);
  }

  std::unique_ptr<DtabdProcess> dtabd_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::DtabService::Stub> dtabs_;
  std::unique_ptr<v1::DiscoveryService::Stub> discovery_;
};

// --- Delta ---------------------------------------------------------------

TEST_F(DiscoveryTest, DeltaFirstResponseHasExistingResourcesAndRemovedForAbsentNames) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  Put("b", "/b=>/two");
  Put("unsubscribed", "/u=>/v");
  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "b", "missing"})));

  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "1"), Pair("b", "2")));
  EXPECT_THAT(Removed(*r), ElementsAre("missing"));
  EXPECT_THAT(r->nonce(), Not(IsEmpty()));
  EXPECT_EQ(r->system_version_info(), "4");  // the store revision
  for (const v1::DtabResource& res : r->resources()) {
    EXPECT_EQ(res.dtab().namespace_(), res.name());
    EXPECT_EQ(res.dtab().version(), res.name() == "a" ? 1 : 2);
    EXPECT_EQ(res.dtab().dtab(), res.name() == "a" ? "/a=>/one" : "/b=>/two");
  }
}

TEST_F(DiscoveryTest, DeltaEveryResponseHasADistinctNonEmptyNonce) {
  Put("a", "/a=>/v1");
  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "absent"})));
  std::set<std::string> nonces;
  for (int i = 2; i <= 6; ++i) {
    std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
    ASSERT_TRUE(r) << "response " << i - 1;
    EXPECT_THAT(r->nonce(), Not(IsEmpty()));
    EXPECT_TRUE(nonces.insert(r->nonce()).second) << "nonce " << r->nonce() << " reused";
    ASSERT_TRUE(s->Send(DeltaAck(*r)));
    Put("a", absl::StrCat("/a=>/v", i));
  }
}

TEST_F(DiscoveryTest, DeltaAckThenWriteSendsOnlyTheChangedResource) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "b", "missing"})));
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  Put("a", "/a=>/two");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "2")));
  EXPECT_THAT(Removed(*r), IsEmpty());
  EXPECT_EQ(r->resources(0).dtab().dtab(), "/a=>/two");
}

TEST_F(DiscoveryTest, DeltaNackedVersionIsNeverResentOnlyANewerOne) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "b"})));
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  Put("a", "/a=>/two");
  r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "2")));
  ASSERT_TRUE(s->Send(DeltaNack(*r, "cannot use a@2")));
  // A request that makes dtabd reconsider every namespace (a wildcard
  // subscription) must not bring a@2 back either.
  v1::DeltaDiscoveryRequest wildcard;
  wildcard.add_resource_names_subscribe("*");
  ASSERT_TRUE(s->Send(wildcard));

  // A change to another namespace: the next response is that change alone,
  // not a@2 again (no resend loop).
  Put("b", "/b=>/two");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("b", "2")));
  EXPECT_THAT(Removed(*r), IsEmpty());
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  // A newer version of a is sent.
  Put("a", "/a=>/three");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "3")));
}

TEST_F(DiscoveryTest, DeltaDeletionIsSentAsRemovedResource) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "b"})));
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  Delete("b");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), IsEmpty());
  EXPECT_THAT(Removed(*r), ElementsAre("b"));
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  // Recreated: delivered with a version past the deletion's.
  Put("b", "/b=>/again");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("b", "3")));
}

TEST_F(DiscoveryTest, DeltaNameSubscribedBeforeItExistsIsDeliveredWhenCreated) {
  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"later"})));
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), IsEmpty());
  EXPECT_THAT(Removed(*r), ElementsAre("later"));
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  // Subscribed later on the same stream, before it exists, too.
  v1::DeltaDiscoveryRequest more;
  more.add_resource_names_subscribe("later2");
  ASSERT_TRUE(s->Send(more));
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Removed(*r), ElementsAre("later2"));
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  Put("later", "/l=>/one");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("later", "1")));
  EXPECT_THAT(Removed(*r), IsEmpty());
  ASSERT_TRUE(s->Send(DeltaAck(*r)));
  Put("later2", "/l=>/two");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("later2", "1")));
}

TEST_F(DiscoveryTest, DeltaReconnectWithCurrentVersionsResendsNothing) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  Put("b", "/b=>/two");
  std::map<std::string, std::string> held;
  {
    auto s = OpenDelta();
    ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "b"})));
    std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
    ASSERT_TRUE(r);
    held = Resources(*r);
    ASSERT_TRUE(s->Send(DeltaAck(*r)));
  }
  ASSERT_THAT(held, UnorderedElementsAre(Pair("a", "1"), Pair("b", "2")));

  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "b"}, held)));
  Put("b", "/b=>/three");
  // The first response after the reconnect is the change alone.
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("b", "3")));
  EXPECT_THAT(Removed(*r), IsEmpty());
}

TEST_F(DiscoveryTest, DeltaReconnectReportsNamespaceDeletedWhileDisconnected) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  std::map<std::string, std::string> held;
  {
    auto s = OpenDelta();
    ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "b"})));
    std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
    ASSERT_TRUE(r);
    held = Resources(*r);
    ASSERT_TRUE(s->Send(DeltaAck(*r)));
  }
  Delete("b");

  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "b"}, held)));
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), IsEmpty());
  EXPECT_THAT(Removed(*r), ElementsAre("b"));
}

// istio#41494: a wildcard client's resources deleted while it was away
// leaked, because only live names were considered on reconnect.
TEST_F(DiscoveryTest, DeltaWildcardReconnectReportsNamespaceDeletedWhileDisconnected) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  std::map<std::string, std::string> held;
  {
    auto s = OpenDelta();
    ASSERT_TRUE(s->Send(DeltaHello("n1", {"*"})));
    std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
    ASSERT_TRUE(r);
    held = Resources(*r);
    ASSERT_TRUE(s->Send(DeltaAck(*r)));
  }
  ASSERT_THAT(held, UnorderedElementsAre(Pair("a", "1"), Pair("b", "1")));
  Delete("b");

  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"*"}, held)));
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), IsEmpty());
  EXPECT_THAT(Removed(*r), ElementsAre("b"));
}

TEST_F(DiscoveryTest, DeltaUnsubscribeStopsDelivery) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "b"})));
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  // Unsubscribing from a while subscribing to an absent name: the answer
  // (removed "absent") shows dtabd has processed the unsubscribe.
  v1::DeltaDiscoveryRequest change;
  change.add_resource_names_unsubscribe("a");
  change.add_resource_names_subscribe("absent");
  ASSERT_TRUE(s->Send(change));
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), IsEmpty());
  EXPECT_THAT(Removed(*r), ElementsAre("absent"));
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  Put("a", "/a=>/two");
  Delete("a");
  Put("b", "/b=>/two");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("b", "2")));
  EXPECT_THAT(Removed(*r), IsEmpty());
}

TEST_F(DiscoveryTest, DeltaWildcardReceivesEveryNamespaceIncludingLaterOnes) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  Put("gone", "/g=>/one");
  Delete("gone");
  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"*"})));
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "1"), Pair("b", "1")));
  EXPECT_THAT(Removed(*r), IsEmpty());
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  Put("c", "/c=>/one");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("c", "1")));
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  Delete("a");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), IsEmpty());
  EXPECT_THAT(Removed(*r), ElementsAre("a"));
}

// --- One unacknowledged response; coalescing; stuck subscribers ----------

TEST_F(DiscoveryTest, UnackedStreamGetsOneResponseThenOnlyTheNewestVersionAfterAck) {
  Put("a", "/a=>/v1");
  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"a"})));
  std::optional<v1::DeltaDiscoveryResponse> first = s->Next();
  ASSERT_TRUE(first);
  ASSERT_THAT(Resources(*first), UnorderedElementsAre(Pair("a", "1")));

  for (int v = 2; v <= 21; ++v) {
    ASSERT_EQ(Put("a", absl::StrCat("/a=>/v", v)), v);
  }
  EXPECT_EQ(s->buffered(), 0u);  // nothing may have come (stronger check below)
  ASSERT_TRUE(s->Send(DeltaAck(*first)));
  // Had dtabd sent any of versions 2..21 before the ACK, it would come
  // first.
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "21")));
  EXPECT_EQ(r->resources(0).dtab().dtab(), "/a=>/v21");
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  Put("a", "/a=>/v22");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "22")));
}

TEST_F(DiscoveryTest, StuckSubscribersDoNotDelayOthers) {
  Put("hot", "/h=>/v1");
  // One client reads its first response, then neither reads nor ACKs;
  // another reads everything and never ACKs; a wildcard one never ACKs.
  auto stuck = OpenDelta(/*read=*/false);
  ASSERT_TRUE(stuck->Send(DeltaHello("stuck", {"hot"})));
  ASSERT_TRUE(stuck->ReadDirectly());
  auto unacking = OpenDelta();
  ASSERT_TRUE(unacking->Send(DeltaHello("unacking", {"hot"})));
  ASSERT_TRUE(unacking->Next());
  auto wildcard = OpenDelta(/*read=*/false);
  ASSERT_TRUE(wildcard->Send(DeltaHello("wildcard", {"*"})));
  ASSERT_TRUE(wildcard->ReadDirectly());

  auto fast = OpenDelta();
  ASSERT_TRUE(fast->Send(DeltaHello("fast", {"hot"})));
  std::optional<v1::DeltaDiscoveryResponse> r = fast->Next();
  ASSERT_TRUE(r);
  for (int v = 2; v <= 50; ++v) {
    ASSERT_TRUE(fast->Send(DeltaAck(*r)));
    ASSERT_EQ(Put("hot", absl::StrCat("/h=>/v", v)), v);
    r = fast->Next(absl::Seconds(2));
    ASSERT_TRUE(r) << "version " << v << " did not reach the fast client within 2 s";
    EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("hot", absl::StrCat(v))));
  }
  // The unacking client still holds exactly its one response.
  EXPECT_EQ(unacking->buffered(), 0u);
}

// --- State of the world --------------------------------------------------

TEST_F(DiscoveryTest, SotwFirstResponseIsTheFullSubscribedStateWithVersionInfo) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  Put("c", "/c=>/one");
  auto s = OpenSotw();
  ASSERT_TRUE(s->Send(SotwRequest("n1", {"a", "b", "missing"})));
  std::optional<v1::DiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "1"), Pair("b", "1")));
  EXPECT_EQ(r->version_info(), "3");
  EXPECT_THAT(r->nonce(), Not(IsEmpty()));
  for (const v1::DtabResource& res : r->resources()) {
    EXPECT_EQ(res.dtab().dtab(), absl::StrCat("/", res.name(), "=>/one"));
  }
}

TEST_F(DiscoveryTest, SotwAckedStreamGetsFullStateOnChangeAndOnNewResourceNames) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  Put("c", "/c=>/one");
  auto s = OpenSotw();
  ASSERT_TRUE(s->Send(SotwRequest("n1", {"a", "b"})));
  std::optional<v1::DiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  std::set<std::string> nonces = {r->nonce()};
  ASSERT_TRUE(s->Send(SotwRequest("", {"a", "b"}, r->version_info(), r->nonce())));  // ACK

  Put("a", "/a=>/two");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "2"), Pair("b", "1")));
  EXPECT_EQ(r->version_info(), "4");
  EXPECT_TRUE(nonces.insert(r->nonce()).second);
  ASSERT_TRUE(s->Send(SotwRequest("", {"a", "b"}, r->version_info(), r->nonce())));

  // A new set of names is answered with the full new state.
  ASSERT_TRUE(s->Send(SotwRequest("", {"a", "c"}, r->version_info(), r->nonce())));
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "2"), Pair("c", "1")));
  EXPECT_TRUE(nonces.insert(r->nonce()).second);
  ASSERT_TRUE(s->Send(SotwRequest("", {"a", "c"}, r->version_info(), r->nonce())));

  // b is no longer subscribed: its change sends nothing; c's does.
  Put("b", "/b=>/two");
  Put("c", "/c=>/two");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "2"), Pair("c", "2")));
}

TEST_F(DiscoveryTest, SotwDeletedResourceDisappearsFromNextFullState) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  auto s = OpenSotw();
  ASSERT_TRUE(s->Send(SotwRequest("n1", {"a", "b"})));
  std::optional<v1::DiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(s->Send(SotwRequest("", {"a", "b"}, r->version_info(), r->nonce())));

  Delete("b");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "1")));
  ASSERT_TRUE(s->Send(SotwRequest("", {"a", "b"}, r->version_info(), r->nonce())));

  Delete("a");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), IsEmpty());  // the empty state deletes everything
}

TEST_F(DiscoveryTest, SotwNackedStateIsNotResent) {
  Put("a", "/a=>/one");
  Put("b", "/b=>/one");
  auto s = OpenSotw();
  ASSERT_TRUE(s->Send(SotwRequest("n1", {"a", "b"})));
  std::optional<v1::DiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  const std::string applied = r->version_info();
  ASSERT_TRUE(s->Send(SotwRequest("", {"a", "b"}, applied, r->nonce())));

  Put("a", "/a=>/two");
  r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "2"), Pair("b", "1")));
  // NACK: error_detail set, version_info the last applied.
  v1::DiscoveryRequest nack = SotwRequest("", {"a", "b"}, applied, r->nonce());
  nack.mutable_error_detail()->set_code(3);
  nack.mutable_error_detail()->set_message("cannot use a@2");
  ASSERT_TRUE(s->Send(nack));
  // Repeating the request (as a client retrying would) does not bring the
  // rejected state back either.
  ASSERT_TRUE(s->Send(nack));

  Put("b", "/b=>/two");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "2"), Pair("b", "2")));
}

// Only the rejected state itself is held back: once the client has ACKed
// another state, reaching the rejected content again (here through a
// deletion) is a change it must hear of.
TEST_F(DiscoveryTest, SotwStateEqualToAnEarlierNackedOneIsSentOnceTheClientMovedOn) {
  Put("a", "/a=>/one");
  auto s = OpenSotw();
  ASSERT_TRUE(s->Send(SotwRequest("n1", {"a", "b"})));
  std::optional<v1::DiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  std::string applied = r->version_info();
  ASSERT_TRUE(s->Send(SotwRequest("", {"a", "b"}, applied, r->nonce())));

  Put("a", "/a=>/two");
  r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "2")));
  v1::DiscoveryRequest nack = SotwRequest("", {"a", "b"}, applied, r->nonce());
  nack.mutable_error_detail()->set_message("cannot use a@2");
  ASSERT_TRUE(s->Send(nack));

  Put("b", "/b=>/one");
  r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "2"), Pair("b", "1")));
  ASSERT_TRUE(s->Send(SotwRequest("", {"a", "b"}, r->version_info(), r->nonce())));  // ACK

  Delete("b");
  r = s->Next();
  ASSERT_TRUE(r) << "b's deletion was not sent";
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "2")));
}

TEST_F(DiscoveryTest, SotwRequestWithoutNamesIsWildcard) {
  Put("a", "/a=>/one");
  auto s = OpenSotw();
  ASSERT_TRUE(s->Send(SotwRequest("n1", {})));
  std::optional<v1::DiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "1")));
  ASSERT_TRUE(s->Send(SotwRequest("", {}, r->version_info(), r->nonce())));

  Put("z", "/z=>/one");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "1"), Pair("z", "1")));
}

// --- Rollout status and subscribers --------------------------------------

TEST_F(DiscoveryTest, NackNamingResourcesRejectsOnlyThoseAndAppliesTheRest) {
  Put("good", "/a=>/one");
  Put("bad", "/b=>/one");
  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("partial", {"good", "bad", "barrier"})));
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_THAT(Resources(*r), UnorderedElementsAre(Pair("good", "1"), Pair("bad", "1")));
  v1::DeltaDiscoveryRequest nack = DeltaNack(*r, "namespace 'bad' version 1: no");
  nack.mutable_error_detail()->add_resource_names("bad");
  ASSERT_TRUE(s->Send(nack));
  Put("barrier", "/c=>/one");  // processed once its response arrives
  r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_THAT(Resources(*r), UnorderedElementsAre(Pair("barrier", "1")));

  v1::RolloutStatusResponse good;
  ASSERT_THAT(Rollout("good", &good), IsOk());
  ASSERT_EQ(good.nodes_size(), 1);
  EXPECT_EQ(good.nodes(0).acked_version(), "1");
  EXPECT_EQ(good.nodes(0).nacked_version(), "");
  EXPECT_EQ(good.rejecting(), 0);
  v1::RolloutStatusResponse bad;
  ASSERT_THAT(Rollout("bad", &bad), IsOk());
  ASSERT_EQ(bad.nodes_size(), 1);
  EXPECT_EQ(bad.nodes(0).acked_version(), "");
  EXPECT_EQ(bad.nodes(0).nacked_version(), "1");
  EXPECT_EQ(bad.rejecting(), 1);
}

TEST_F(DiscoveryTest, RolloutStatusCountsAResumedCurrentVersionAsApplied) {
  Put("ns", "/a=>/one");
  auto s = OpenDelta();
  // Resumes holding the current version: nothing is re-sent for "ns"; the
  // answer for the absent "barrier" shows the first request was processed.
  ASSERT_TRUE(s->Send(DeltaHello("resumed", {"ns", "barrier"}, {{"ns", "1"}})));
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  ASSERT_THAT(Resources(*r), IsEmpty());
  ASSERT_THAT(Removed(*r), UnorderedElementsAre("barrier"));

  v1::RolloutStatusResponse status;
  ASSERT_THAT(Rollout("ns", &status), IsOk());
  ASSERT_EQ(status.nodes_size(), 1);
  EXPECT_EQ(status.nodes(0).acked_version(), "1");
  EXPECT_EQ(status.behind(), 0);
  EXPECT_THAT(status.nodes_by_version(), UnorderedElementsAre(Pair("1", 1)));
}

TEST_F(DiscoveryTest, RolloutStatusShowsAckedAndNackingNodesAndSubscribersListsThem) {
  Put("ns", "/a=>/one");
  auto a = OpenDelta();
  auto b = OpenDelta();
  ASSERT_TRUE(a->Send(DeltaHello("a", {"ns", "barrier"})));
  ASSERT_TRUE(b->Send(DeltaHello("b", {"ns", "barrier"})));
  std::optional<v1::DeltaDiscoveryResponse> ra = a->Next();
  std::optional<v1::DeltaDiscoveryResponse> rb = b->Next();
  ASSERT_TRUE(ra && rb);
  ASSERT_THAT(Resources(*ra), UnorderedElementsAre(Pair("ns", "1")));
  ASSERT_THAT(Resources(*rb), UnorderedElementsAre(Pair("ns", "1")));
  ASSERT_TRUE(a->Send(DeltaAck(*ra)));
  ASSERT_TRUE(b->Send(DeltaNack(*rb, "line 1: bad dentry")));
  // Both answers are processed once the next response (which waits for
  // them) arrives.
  Put("barrier", "/b=>/one");
  ra = a->Next();
  rb = b->Next();
  ASSERT_TRUE(ra && rb);
  ASSERT_THAT(Resources(*ra), UnorderedElementsAre(Pair("barrier", "1")));
  ASSERT_THAT(Resources(*rb), UnorderedElementsAre(Pair("barrier", "1")));
  auto c = OpenSotw();  // another stream type, on another namespace
  ASSERT_TRUE(c->Send(SotwRequest("c", {"elsewhere"})));
  ASSERT_TRUE(c->Next());

  v1::RolloutStatusResponse status;
  ASSERT_THAT(Rollout("ns", &status), IsOk());
  EXPECT_EQ(status.namespace_(), "ns");
  EXPECT_EQ(status.current_version(), "1");
  EXPECT_EQ(status.rejecting(), 1);
  EXPECT_EQ(status.behind(), 1);
  EXPECT_THAT(status.nodes_by_version(), UnorderedElementsAre(Pair("1", 1), Pair("", 1)));
  ASSERT_EQ(status.nodes_size(), 2);
  for (const v1::NodeRolloutStatus& n : status.nodes()) {
    EXPECT_EQ(n.cluster(), "test-cluster");
    EXPECT_EQ(n.sent_version(), "1");
    EXPECT_THAT(n.peer(), HasSubstr("127.0.0.1"));
    EXPECT_GT(n.connected_at().seconds(), 0);
    if (n.node_id() == "a") {
      EXPECT_EQ(n.acked_version(), "1");
      EXPECT_EQ(n.nacked_version(), "");
      EXPECT_EQ(n.nack_error(), "");
    } else {
      EXPECT_EQ(n.node_id(), "b");
      EXPECT_EQ(n.acked_version(), "");
      EXPECT_EQ(n.nacked_version(), "1");
      EXPECT_EQ(n.nack_error(), "line 1: bad dentry");
    }
  }

  v1::ListSubscribersResponse subs;
  ASSERT_THAT(Subscribers(&subs), IsOk());
  std::map<std::string, v1::Subscriber> by_node;
  for (const v1::Subscriber& sub : subs.subscribers()) {
    by_node[sub.node_id()] = sub;
  }
  ASSERT_EQ(subs.subscribers_size(), 3);
  ASSERT_EQ(by_node.size(), 3u);
  EXPECT_EQ(by_node["a"].stream(), "delta");
  EXPECT_EQ(by_node["b"].stream(), "delta");
  EXPECT_EQ(by_node["c"].stream(), "sotw");
  EXPECT_THAT(by_node["a"].resource_names(), ElementsAre("barrier", "ns"));
  EXPECT_THAT(by_node["c"].resource_names(), ElementsAre("elsewhere"));
  EXPECT_EQ(by_node["a"].cluster(), "test-cluster");
  EXPECT_EQ(by_node["a"].user_agent(), "discovery_test");
  EXPECT_THAT(by_node["a"].peer(), HasSubstr("127.0.0.1"));

  // Once both ACK a newer version, nothing is behind or rejecting.
  ASSERT_TRUE(a->Send(DeltaAck(*ra)));
  ASSERT_TRUE(b->Send(DeltaAck(*rb)));
  Put("ns", "/a=>/two");
  for (DeltaStream* s : {a.get(), b.get()}) {
    std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
    ASSERT_TRUE(r);
    ASSERT_THAT(Resources(*r), UnorderedElementsAre(Pair("ns", "2")));
    ASSERT_TRUE(s->Send(DeltaAck(*r)));
  }
  Put("barrier", "/b=>/two");
  ASSERT_TRUE(a->Next());
  ASSERT_TRUE(b->Next());
  v1::RolloutStatusResponse after;
  ASSERT_THAT(Rollout("ns", &after), IsOk());
  EXPECT_EQ(after.current_version(), "2");
  EXPECT_EQ(after.rejecting(), 0);
  EXPECT_EQ(after.behind(), 0);
  EXPECT_THAT(after.nodes_by_version(), UnorderedElementsAre(Pair("2", 2)));
}

// --- Overload ------------------------------------------------------------

class DiscoveryOverloadTest : public DiscoveryTest {
 protected:
  void SetUp() override {}
};

TEST_F(DiscoveryOverloadTest, StreamPastMaxStreamsEndsWithResourceExhaustedAndPushback) {
  StartDtabd({"--max-streams", "2"});
  Put("a", "/a=>/one");
  auto s1 = OpenDelta();
  auto s2 = OpenSotw();
  ASSERT_TRUE(s1->Send(DeltaHello("n1", {"a"})));
  ASSERT_TRUE(s2->Send(SotwRequest("n2", {"a"})));
  std::optional<v1::DeltaDiscoveryResponse> r1 = s1->Next();
  ASSERT_TRUE(r1);
  ASSERT_TRUE(s2->Next());

  auto s3 = OpenDelta();
  (void)s3->Send(DeltaHello("n3", {"a"}));  // may fail: the stream is ended
  EXPECT_THAT(s3->Finish(),
              StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("at most 2 streams")));
  EXPECT_THAT(s3->Trailers(), ::testing::Contains(Pair("grpc-retry-pushback-ms", "1000")));
  // The admitted streams are unaffected.
  ASSERT_TRUE(s1->Send(DeltaAck(*r1)));
  Put("a", "/a=>/two");
  std::optional<v1::DeltaDiscoveryResponse> r = s1->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "2")));
}

TEST_F(DiscoveryOverloadTest, NewStreamsPastRateEndWithResourceExhaustedAndPushback) {
  StartDtabd({"--new-streams-per-s", "0.001", "--new-streams-burst", "2"});
  Put("a", "/a=>/one");
  // Two streams are admitted (the burst) and end; the third is refused
  // although none is open: the limit is on the rate of new streams.
  for (int i = 0; i < 2; ++i) {
    auto s = OpenDelta();
    ASSERT_TRUE(s->Send(DeltaHello("n", {"a"})));
    ASSERT_TRUE(s->Next()) << "stream " << i;
  }
  auto s = OpenSotw();
  (void)s->Send(SotwRequest("n", {"a"}));
  EXPECT_THAT(s->Finish(),
              StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("too many new streams")));
  EXPECT_THAT(s->Trailers(), ::testing::Contains(Pair("grpc-retry-pushback-ms", "1000")));
}

TEST(DiscoveryStartupTest, NonPositiveStreamLimitExitsWithUsageError) {
  DtabdProcess::Options o;
  o.extra_args = {"--max-streams", "0"};
  absl::StatusOr<std::unique_ptr<DtabdProcess>> p = DtabdProcess::Start(std::move(o));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(p.status().message(), HasSubstr("exited before serving (status 2)"));
  EXPECT_THAT(p.status().message(), HasSubstr("--max-streams='0': expected a positive integer"));
}

// --- Shutdown and restart ------------------------------------------------

TEST_F(DiscoveryTest, SigtermEndsOpenStreamsWithUnavailable) {
  Put("a", "/a=>/one");
  {
    auto delta = OpenDelta();
    auto sotw = OpenSotw();
    auto unacked = OpenDelta();
    ASSERT_TRUE(delta->Send(DeltaHello("n1", {"a"})));
    ASSERT_TRUE(sotw->Send(SotwRequest("n2", {"a"})));
    ASSERT_TRUE(unacked->Send(DeltaHello("n3", {"a"})));
    std::optional<v1::DeltaDiscoveryResponse> r = delta->Next();
    ASSERT_TRUE(r);
    ASSERT_TRUE(delta->Send(DeltaAck(*r)));
    ASSERT_TRUE(sotw->Next());
    ASSERT_TRUE(unacked->Next());

    ASSERT_TRUE(dtabd_->Signal(SIGTERM).ok());
    for (auto* s : {delta.get(), unacked.get()}) {
      EXPECT_THAT(s->Finish(), StatusIs(grpc::StatusCode::UNAVAILABLE, HasSubstr("shutting down")));
    }
    EXPECT_THAT(sotw->Finish(),
                StatusIs(grpc::StatusCode::UNAVAILABLE, HasSubstr("shutting down")));
  }
  CloseChannel();
  absl::StatusOr<int> code = dtabd_->Wait(std::chrono::seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

TEST_F(DiscoveryTest, RestartedDtabdResumesDeltaClientWithoutVersionsGoingBackwards) {
  Put("a", "/a=>/one");
  Put("a", "/a=>/two");
  Put("b", "/b=>/one");
  Put("gone", "/g=>/one");
  std::map<std::string, std::string> held;
  {
    auto s = OpenDelta();
    ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "b", "gone"})));
    std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
    ASSERT_TRUE(r);
    held = Resources(*r);
    ASSERT_TRUE(s->Send(DeltaAck(*r)));
    ASSERT_THAT(held, UnorderedElementsAre(Pair("a", "2"), Pair("b", "1"), Pair("gone", "1")));
    // Deleted while the client is connected: it hears of it...
    Delete("gone");
    r = s->Next();
    ASSERT_TRUE(r);
    EXPECT_THAT(Removed(*r), ElementsAre("gone"));
    held.erase("gone");
    // ...but b's deletion happens after dtabd went down for this client.
    ASSERT_TRUE(dtabd_->Signal(SIGTERM).ok());
    EXPECT_THAT(s->Finish(), StatusIs(grpc::StatusCode::UNAVAILABLE, HasSubstr("shutting down")));
  }
  CloseChannel();
  ASSERT_TRUE(dtabd_->Restart().ok());
  Connect();
  Delete("b");

  auto s = OpenDelta();
  ASSERT_TRUE(s->Send(DeltaHello("n1", {"a", "b", "gone"}, held)));
  // a is unchanged: not re-sent; b is gone; gone is still absent.
  std::optional<v1::DeltaDiscoveryResponse> r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), IsEmpty());
  EXPECT_THAT(Removed(*r), ElementsAre("b", "gone"));
  ASSERT_TRUE(s->Send(DeltaAck(*r)));

  // New versions continue from the persisted ones, never restarting at 1.
  Put("a", "/a=>/three");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("a", "3")));
  ASSERT_TRUE(s->Send(DeltaAck(*r)));
  Put("gone", "/g=>/again");
  r = s->Next();
  ASSERT_TRUE(r);
  EXPECT_THAT(Resources(*r), UnorderedElementsAre(Pair("gone", "3")));
  EXPECT_EQ(r->system_version_info(), "8");
}

}  // namespace
}  // namespace dtabd::integration
