// End-to-end tests of `dtabctl rollout` and `dtabctl subscribers`: the real
// dtabd (DTABD_PATH) on 127.0.0.1:0, raw DeltaDtabs streams opened with the
// generated dtabd.v1.DiscoveryService stub acting as proxies (nodes) that
// ACK or NACK what they receive, and the real dtabctl (DTABCTL_PATH) as a
// child process. Exit codes: 0 ok, 2 usage, 4 nothing to wait for, 8
// rollout --wait timed out, 9 a node NACKed.
//
// No test sleeps. A node's ACK or NACK is known to be processed when the
// response to a request carrying it arrives: the same request subscribes to
// a fresh name, which dtabd must answer (with a removal, as the name does
// not exist). rollout --wait says on stderr what it waits for before the
// test lets a node answer, so the wait is seen to begin and to end.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "dtabd/v1/discovery.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/cli/dtabctl_test_util.h"

namespace dtabd::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::StartsWith;
using testutil::Child;
using testutil::Dtabctl;
using testutil::Dtabd;
using testutil::RunResult;
using testutil::TempDir;

using Stream =
    grpc::ClientReaderWriter<v1::DeltaDiscoveryRequest, v1::DeltaDiscoveryResponse>;

// A proxy on one DeltaDtabs stream, driven by the test: it answers each
// response only when told to.
class Node {
 public:
  // Opens a stream to `addr` as node `id` subscribed to `names` and reads
  // the first response (first()). nullptr after a test failure.
  static std::unique_ptr<Node> Connect(const std::string& addr, const std::string& id,
                                       const std::vector<std::string>& names,
                                       const std::string& cluster = "test") {
    auto n = std::unique_ptr<Node>(new Node());
    n->stub_ = v1::DiscoveryService::NewStub(
        grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
    n->ctx_.set_deadline(std::chrono::system_clock::now() + testutil::kTimeout);
    n->stream_ = n->stub_->DeltaDtabs(&n->ctx_);
    v1::DeltaDiscoveryRequest req;
    req.mutable_node()->set_id(id);
    req.mutable_node()->set_cluster(cluster);
    req.mutable_node()->set_user_agent("rollout-test");
    for (const std::string& name : names) {
      req.add_resource_names_subscribe(name);
    }
    if (!n->stream_->Write(req)) {
      ADD_FAILURE() << id << ": cannot write the first request";
      return nullptr;
    }
    std::optional<v1::DeltaDiscoveryResponse> first = n->Read();
    if (!first) {
      return nullptr;
    }
    n->first_ = *std::move(first);
    return n;
  }

  ~Node() {
    ctx_.TryCancel();
    if (stream_ != nullptr) {
      (void)stream_->Finish();
    }
  }

  const v1::DeltaDiscoveryResponse& first() const { return first_; }

  // The next response; nullopt (a test failure) if the stream ended.
  std::optional<v1::DeltaDiscoveryResponse> Read() {
    if (pending_) {
      return *std::exchange(pending_, std::nullopt);
    }
    v1::DeltaDiscoveryResponse r;
    if (!stream_->Read(&r)) {
      ADD_FAILURE() << "the stream ended before a response arrived";
      return std::nullopt;
    }
    return r;
  }

  // ACKs `r` and returns once dtabd has processed the ACK.
  void Ack(const v1::DeltaDiscoveryResponse& r) { Answer(r, std::nullopt); }

  // NACKs `r` with `error` and returns once dtabd has processed the NACK.
  void Nack(const v1::DeltaDiscoveryResponse& r, const std::string& error) { Answer(r, error); }

 private:
  Node() = default;

  void Answer(const v1::DeltaDiscoveryResponse& r, const std::optional<std::string>& error) {
    const std::string sync = absl::StrCat("rollout-test-sync-", ++syncs_);
    v1::DeltaDiscoveryRequest req;
    req.set_response_nonce(r.nonce());
    if (error) {
      req.mutable_error_detail()->set_code(3);  // INVALID_ARGUMENT
      req.mutable_error_detail()->set_message(*error);
    }
    req.add_resource_names_subscribe(sync);
    ASSERT_TRUE(stream_->Write(req));
    // dtabd handles a stream's requests in order, and answers a new
    // subscription only after applying the ACK/NACK in the same request.
    std::optional<v1::DeltaDiscoveryResponse> reply = Read();
    ASSERT_TRUE(reply.has_value());
    ASSERT_THAT(reply->removed_resources(), ElementsAre(sync));
    v1::DeltaDiscoveryRequest done;
    done.add_resource_names_unsubscribe(sync);
    if (reply->resources().empty()) {
      done.set_response_nonce(reply->nonce());  // ACK the sync reply
    } else {
      // A version that was waiting for the answer came along; the test
      // reads (and answers) it next.
      pending_ = std::move(reply);
    }
    ASSERT_TRUE(stream_->Write(done));
  }

  std::unique_ptr<v1::DiscoveryService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<Stream> stream_;
  v1::DeltaDiscoveryResponse first_;
  // A response read while answering another, returned by the next Read.
  std::optional<v1::DeltaDiscoveryResponse> pending_;
  int syncs_ = 0;
};

// The version of `name` in response `r`, or "" if absent.
std::string VersionIn(const v1::DeltaDiscoveryResponse& r, const std::string& name) {
  for (const v1::DtabResource& res : r.resources()) {
    if (res.name() == name) {
      return res.version();
    }
  }
  return "";
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class DtabctlRolloutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dtabd_ = Dtabd::Start(dir_.path());
    ASSERT_NE(dtabd_, nullptr);
  }

  void TearDown() override {
    if (dtabd_ != nullptr) {
      dtabd_->Stop();
    }
  }

  // dtabctl with --server pointing at the test's dtabd.
  RunResult Run(std::vector<std::string> args, absl::string_view input = "") {
    args.insert(args.begin(), {"--server", dtabd_->grpc_addr()});
    return Dtabctl(args, input);
  }

  // dtabctl started in the background, for --wait.
  std::unique_ptr<Child> Start(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {DTABCTL_PATH, "--server", dtabd_->grpc_addr()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::unique_ptr<Child> c = Child::Start(argv);
    if (c != nullptr) {
      c->CloseStdin();
    }
    return c;
  }

  // Writes `dtab` as the next version of `ns`.
  void Apply(const std::string& ns, absl::string_view dtab) {
    const RunResult r = Run({"apply", ns, "-f", "-"}, dtab);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::unique_ptr<Node> Connect(const std::string& id, const std::vector<std::string>& names,
                                const std::string& cluster = "test") {
    return Node::Connect(dtabd_->grpc_addr(), id, names, cluster);
  }

  TempDir dir_;
  std::unique_ptr<Dtabd> dtabd_;
};

TEST_F(DtabctlRolloutTest, RolloutPrintsSummaryThenOneLinePerNode) {
  Apply("web", "/svc=>/a");
  auto a = Connect("node-a", {"web"});
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(VersionIn(a->first(), "web"), "1");
  a->Ack(a->first());
  auto b = Connect("node-b", {"web"});  // receives version 1, never answers
  ASSERT_NE(b, nullptr);
  Apply("web", "/svc=>/b");
  std::optional<v1::DeltaDiscoveryResponse> v2 = a->Read();
  ASSERT_TRUE(v2.has_value());
  ASSERT_EQ(VersionIn(*v2, "web"), "2");
  a->Nack(*v2, "cannot use /b");
  auto c = Connect("node-c", {"web"}, "east");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(VersionIn(c->first(), "web"), "2");
  c->Ack(c->first());

  RunResult r = Run({"rollout", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, IsEmpty());
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_EQ(lines[0],
            "rollout namespace=web current_version=2 version=2 nodes=3 by_version=2:1,1:1,none:1 "
            "behind=2 rejecting=1");
  EXPECT_THAT(lines[1], MatchesRegex("NODE +CLUSTER +STATE +ACKED +SENT +NACKED +PEER +ERROR"));
  EXPECT_THAT(lines[2],
              MatchesRegex("node-a +test +rejecting +1 +2 +2 +ipv4:127.0.0.1:[0-9]+ +"
                           "\"cannot use /b\""));
  EXPECT_THAT(lines[3], MatchesRegex("node-b +test +behind +- +1 +- +ipv4:127.0.0.1:[0-9]+"));
  EXPECT_THAT(lines[4], MatchesRegex("node-c +east +ok +2 +2 +- +ipv4:127.0.0.1:[0-9]+"));

  // Against an older version, a node that ACKed it or anything newer is ok.
  r = Run({"rollout", "web", "--version", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_EQ(lines[0],
            "rollout namespace=web current_version=2 version=1 nodes=3 by_version=2:1,1:1,none:1 "
            "behind=1 rejecting=0");
  EXPECT_THAT(lines[2], StartsWith("node-a  test     ok "));
  EXPECT_THAT(lines[3], StartsWith("node-b  test     behind "));

  r = Run({"--json", "rollout", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::RolloutStatusResponse status;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &status).ok()) << r.out;
  EXPECT_EQ(status.current_version(), "2");
  EXPECT_EQ(status.nodes_size(), 3);
  EXPECT_EQ(status.behind(), 2);
  EXPECT_EQ(status.rejecting(), 1);
}

TEST_F(DtabctlRolloutTest, RolloutOfANamespaceNobodySubscribesShowsNoNodes) {
  Apply("web", "/svc=>/a");
  auto a = Connect("node-a", {"other"});
  ASSERT_NE(a, nullptr);
  RunResult r = Run({"rollout", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out),
              ElementsAre("rollout namespace=web current_version=1 version=1 nodes=0 "
                          "by_version=- behind=0 rejecting=0",
                          "NODE  CLUSTER  STATE  ACKED  SENT  NACKED  PEER  ERROR"));
  // Nothing to wait for.
  r = Run({"rollout", "web", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "dtabctl: note: no connected node subscribes to web\n");
}

TEST_F(DtabctlRolloutTest, WaitExitsZeroOnceEveryNodeHasAcked) {
  Apply("web", "/svc=>/a");
  auto a = Connect("node-a", {"web"});
  ASSERT_NE(a, nullptr);
  auto b = Connect("node-b", {"web"});
  ASSERT_NE(b, nullptr);
  b->Ack(b->first());

  std::unique_ptr<Child> wait = Start({"rollout", "web", "--wait", "--timeout", "30s"});
  ASSERT_NE(wait, nullptr);
  EXPECT_EQ(wait->ReadErrLine(),
            "dtabctl: waiting for web version 1: 1 of 2 node(s) behind: node-a");
  a->Ack(a->first());
  std::string out, err;
  ASSERT_EQ(wait->Communicate("", &out, &err), 0) << err;
  EXPECT_THAT(err, IsEmpty());
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 4u) << out;
  EXPECT_EQ(lines[0],
            "rollout namespace=web current_version=1 version=1 nodes=2 by_version=1:2 behind=0 "
            "rejecting=0");
  EXPECT_THAT(lines[2], StartsWith("node-a  test     ok "));
  EXPECT_THAT(lines[3], StartsWith("node-b  test     ok "));
}

TEST_F(DtabctlRolloutTest, WaitForAnOlderVersionCountsNodesOnANewerOne) {
  Apply("web", "/svc=>/a");
  Apply("web", "/svc=>/b");
  auto a = Connect("node-a", {"web"});
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(VersionIn(a->first(), "web"), "2");
  a->Ack(a->first());
  const RunResult r = Run({"rollout", "web", "--wait", "--version", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("rollout namespace=web current_version=2 version=1 nodes=1 "
                                "by_version=2:1 behind=0 rejecting=0\n"));
}

TEST_F(DtabctlRolloutTest, WaitTimesOutWithExitEightNamingTheNodesBehind) {
  Apply("web", "/svc=>/a");
  auto a = Connect("node-a", {"web"});  // never answers
  ASSERT_NE(a, nullptr);
  auto b = Connect("node-b", {"web"});
  ASSERT_NE(b, nullptr);
  b->Ack(b->first());

  const RunResult r = Run({"rollout", "web", "--wait", "--timeout", "1s"});
  EXPECT_EQ(r.exit_code, 8) << r.err;
  EXPECT_EQ(r.err,
            "dtabctl: waiting for web version 1: 1 of 2 node(s) behind: node-a\n"
            "dtabctl: timed out after --timeout 1s waiting for web version 1: 1 of 2 "
            "node(s) behind: node-a\n");
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0],
            "rollout namespace=web current_version=1 version=1 nodes=2 by_version=1:1,none:1 "
            "behind=1 rejecting=0");
  EXPECT_THAT(lines[2], MatchesRegex("node-a +test +behind +- +1 +- .*"));
}

TEST_F(DtabctlRolloutTest, WaitExitsNineAsSoonAsANodeNacks) {
  Apply("web", "/svc=>/a");
  auto a = Connect("node-a", {"web"});
  ASSERT_NE(a, nullptr);
  auto b = Connect("node-b", {"web"});
  ASSERT_NE(b, nullptr);

  std::unique_ptr<Child> wait = Start({"rollout", "web", "--wait", "--timeout", "30s"});
  ASSERT_NE(wait, nullptr);
  EXPECT_EQ(wait->ReadErrLine(),
            "dtabctl: waiting for web version 1: 2 of 2 node(s) behind: node-a, node-b");
  a->Nack(a->first(), "rule 1: unknown namer");
  // node-b is still behind, but the rollout has failed: no need to wait.
  std::string out, err;
  EXPECT_EQ(wait->Communicate("", &out, &err), 9) << err;
  EXPECT_EQ(err,
            "dtabctl: web version 1 rejected by 1 of 2 node(s): node-a (rule 1: unknown "
            "namer)\n");
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 4u) << out;
  EXPECT_EQ(lines[0],
            "rollout namespace=web current_version=1 version=1 nodes=2 by_version=none:2 "
            "behind=2 rejecting=1");
  EXPECT_THAT(lines[2], MatchesRegex("node-a +test +rejecting +- +1 +1 +.*\"rule 1: unknown "
                                     "namer\""));
  EXPECT_THAT(lines[3], MatchesRegex("node-b +test +behind +- +1 +- .*"));

  // A newer version that the node ACKs ends the rejection.
  Apply("web", "/svc=>/b");
  std::optional<v1::DeltaDiscoveryResponse> v2 = a->Read();
  ASSERT_TRUE(v2.has_value());
  ASSERT_EQ(VersionIn(*v2, "web"), "2");
  a->Ack(*v2);
  b->Ack(b->first());  // version 1; then version 2 arrives
  v2 = b->Read();
  ASSERT_TRUE(v2.has_value());
  ASSERT_EQ(VersionIn(*v2, "web"), "2");
  b->Ack(*v2);
  const RunResult r = Run({"rollout", "web", "--wait", "--version", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(DtabctlRolloutTest, WaitOnANamespaceWithoutVersionExitsFour) {
  const RunResult r = Run({"rollout", "nosuch", "--wait"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, StartsWith("dtabctl: namespace 'nosuch' has no current version"));
}

TEST_F(DtabctlRolloutTest, SubscribersListsConnectedNodes) {
  Apply("web", "/svc=>/a");
  Apply("api", "/svc=>/b");
  auto a = Connect("node-a", {"web"});
  ASSERT_NE(a, nullptr);
  auto b = Connect("node-b", {"web", "api"}, "east");
  ASSERT_NE(b, nullptr);

  RunResult r = Run({"subscribers"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_THAT(lines[0],
              MatchesRegex("NODE +CLUSTER +STREAM +PEER +CONNECTED_AT +USER_AGENT +NAMESPACES"));
  EXPECT_THAT(lines[1], MatchesRegex("node-a +test +delta +ipv4:127.0.0.1:[0-9]+ +"
                                     "[0-9-]+T[0-9:.]+Z +rollout-test.* +web"));
  EXPECT_THAT(lines[2], MatchesRegex("node-b +east +delta +ipv4:127.0.0.1:[0-9]+ +"
                                     "[0-9-]+T[0-9:.]+Z +rollout-test.* +api,web"));

  r = Run({"subscribers", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  std::vector<std::string> ids;
  for (const std::string& line : lines) {
    v1::Subscriber s;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &s).ok()) << line;
    ids.push_back(s.node_id());
    EXPECT_EQ(s.stream(), "delta");
  }
  EXPECT_THAT(ids, ElementsAre("node-a", "node-b"));
}

TEST(DtabctlRolloutUsageTest, UsageErrorsExitTwo) {
  const std::map<std::string, std::string> env = {{"DTABD_ADDR", "127.0.0.1:1"}};
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{"rollout"}, "dtabctl rollout: expected NS\n"},
      {{"rollout", "web", "--wait=yes"}, "dtabctl rollout: option '--wait' takes no value"},
      {{"rollout", "web", "--version", "x"},
       "dtabctl rollout: --version: 'x' is not a positive integer"},
      {{"subscribers", "web"}, "dtabctl subscribers: expected no operands"},
      {{"subscribers", "--wait"}, "dtabctl subscribers: unknown option '--wait'"},
  };
  for (const Case& c : cases) {
    const RunResult r = Dtabctl(c.args, "", env);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << ": " << r.err;
    EXPECT_THAT(r.out, IsEmpty());
    EXPECT_THAT(r.err, StartsWith(c.message));
    EXPECT_THAT(r.err, HasSubstr("usage: dtabctl "));
  }
}

TEST(DtabctlRolloutUsageTest, UnreachableServerExitsSix) {
  const RunResult r =
      Dtabctl({"--server", "127.0.0.1:1", "--timeout", "2s", "rollout", "web", "--wait"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
}

}  // namespace
}  // namespace dtabd::cli
