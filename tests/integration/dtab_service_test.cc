// Integration tests of dtabd.v1.DtabService: each test starts the real dtabd
// (DtabdProcess: 127.0.0.1:0, a fresh temporary database) and drives it
// through the generated client. Every RPC has a deadline; nothing sleeps:
// watch tests read the stream's next message after each write.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dtabd/v1/dtab.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/integration/dtabd_process.h"

namespace dtabd::integration {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr auto kRpcDeadline = std::chrono::seconds(10);
constexpr auto kWatchDeadline = std::chrono::seconds(30);
constexpr absl::string_view kHelloWorld = "/srv=>/#/io.l5d.fs;/host=>/srv;/svc=>/host";

MATCHER_P2(StatusIs, code, message_matcher, "") {
  *result_listener << "status " << arg.error_code() << " '" << arg.error_message() << "'";
  return arg.error_code() == code &&
         ::testing::ExplainMatchResult(message_matcher, arg.error_message(), result_listener);
}

MATCHER(IsOk, "") {
  *result_listener << "status " << arg.error_code() << " '" << arg.error_message() << "'";
  return arg.ok();
}

MATCHER_P(EqualsProto, expected, "") {
  *result_listener << "\n" << arg.DebugString() << "vs\n" << expected.DebugString();
  return MessageDifferencer::Equals(arg, expected);
}

std::vector<int64_t> Versions(const v1::ListVersionsResponse& page) {
  std::vector<int64_t> out;
  for (const v1::VersionedDtab& v : page.versions()) {
    out.push_back(v.version());
  }
  return out;
}

// An open WatchDtab stream. The destructor cancels it if it is still open.
class WatchStream {
 public:
  WatchStream(v1::DtabService::Stub* stub, const std::string& ns, absl::string_view token = "") {
    ctx_.set_deadline(std::chrono::system_clock::now() + kWatchDeadline);
    if (!token.empty()) {
      ctx_.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    }
    v1::WatchDtabRequest req;
    req.set_namespace_(ns);
    reader_ = stub->WatchDtab(&ctx_, req);
  }
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;
  ~WatchStream() {
    if (!finished_) {
      ctx_.TryCancel();
      (void)Finish();
    }
  }

  // The next message; false when the stream has ended (then call Finish).
  bool Next(v1::WatchDtabResponse* r) { return reader_->Read(r); }

  // Reads to the end of the stream and returns its status.
  grpc::Status Finish() {
    v1::WatchDtabResponse ignored;
    while (reader_->Read(&ignored)) {
    }
    finished_ = true;
    return reader_->Finish();
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::WatchDtabResponse>> reader_;
  bool finished_ = false;
};

class DtabServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartDtabd(DtabdProcess::Options()); }

  void TearDown() override {
    if (HasFailure() && dtabd_ != nullptr) {
      std::cerr << "dtabd's stderr:\n" << dtabd_->stderr_output();
    }
  }

  void StartDtabd(DtabdProcess::Options options) {
    absl::StatusOr<std::unique_ptr<DtabdProcess>> p = DtabdProcess::Start(std::move(options));
    ASSERT_TRUE(p.ok()) << p.status();
    dtabd_ = *std::move(p);
    Connect();
  }

  // A new channel to dtabd's current address (after a restart, too).
  void Connect() {
    stub_ = v1::DtabService::NewStub(
        grpc::CreateChannel(dtabd_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  // Closes the client's connection. dtabd's graceful shutdown waits (up to
  // its 5 s grace) for client connections to close after its GOAWAY, and an
  // idle synchronous client only reads the GOAWAY when gRPC's backup poller
  // runs (every 5 s): tests that stop dtabd close theirs first.
  void CloseChannel() { stub_.reset(); }

  // Calls a unary method of the stub with a fresh context: a deadline, and
  // the bearer token if any.
  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (v1::DtabService::Stub::*method)(grpc::ClientContext*,
                                                                   const Req&, Resp*),
                    const Req& req, Resp* resp, absl::string_view token = "") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    if (!token.empty()) {
      ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    }
    return (stub_.get()->*method)(&ctx, req, resp);
  }

  grpc::Status Get(const std::string& ns, int64_t version, v1::VersionedDtab* out,
                   absl::string_view token = "") {
    v1::GetDtabRequest req;
    req.set_namespace_(ns);
    req.set_version(version);
    return Call(&v1::DtabService::Stub::GetDtab, req, out, token);
  }

  grpc::Status Create(const std::string& ns, absl::string_view dtab, v1::VersionedDtab* out,
                      absl::string_view token = "") {
    v1::CreateDtabRequest req;
    req.set_namespace_(ns);
    req.set_dtab(std::string(dtab));
    return Call(&v1::DtabService::Stub::CreateDtab, req, out, token);
  }

  grpc::Status Update(const std::string& ns, absl::string_view dtab, int64_t expected,
                      v1::VersionedDtab* out, absl::string_view token = "") {
    v1::UpdateDtabRequest req;
    req.set_namespace_(ns);
    req.set_dtab(std::string(dtab));
    req.set_expected_version(expected);
    return Call(&v1::DtabService::Stub::UpdateDtab, req, out, token);
  }

  grpc::Status Put(const std::string& ns, absl::string_view dtab, v1::VersionedDtab* out,
                   absl::string_view token = "", const std::string& comment = "") {
    v1::PutDtabRequest req;
    req.set_namespace_(ns);
    req.set_dtab(std::string(dtab));
    req.set_comment(comment);
    return Call(&v1::DtabService::Stub::PutDtab, req, out, token);
  }

  grpc::Status Delete(const std::string& ns, int64_t expected, v1::VersionedDtab* out,
                      absl::string_view token = "") {
    v1::DeleteDtabRequest req;
    req.set_namespace_(ns);
    req.set_expected_version(expected);
    return Call(&v1::DtabService::Stub::DeleteDtab, req, out, token);
  }

  grpc::Status Rollback(const std::string& ns, int64_t to, int64_t expected,
                        v1::VersionedDtab* out, absl::string_view token = "") {
    v1::RollbackDtabRequest req;
    req.set_namespace_(ns);
    req.set_to_version(to);
    req.set_expected_version(expected);
    return Call(&v1::DtabService::Stub::RollbackDtab, req, out, token);
  }

  grpc::Status History(const std::string& ns, int page_size, int64_t before,
                       v1::ListVersionsResponse* out, absl::string_view token = "") {
    v1::ListVersionsRequest req;
    req.set_namespace_(ns);
    req.set_page_size(page_size);
    req.set_before_version(before);
    return Call(&v1::DtabService::Stub::ListVersions, req, out, token);
  }

  grpc::Status List(v1::ListDtabsResponse* out, absl::string_view token = "") {
    return Call(&v1::DtabService::Stub::ListDtabs, v1::ListDtabsRequest(), out, token);
  }

  grpc::Status Validate(absl::string_view dtab, v1::ValidateDtabResponse* out,
                        absl::string_view token = "") {
    v1::ValidateDtabRequest req;
    req.set_dtab(std::string(dtab));
    return Call(&v1::DtabService::Stub::ValidateDtab, req, out, token);
  }

  grpc::Status Explain(const std::string& ns, const std::string& path,
                       const std::string& override_dtab, v1::ExplainResponse* out,
                       int max_depth = 0) {
    v1::ExplainRequest req;
    req.set_namespace_(ns);
    req.set_path(path);
    req.set_override(override_dtab);
    req.set_max_depth(max_depth);
    return Call(&v1::DtabService::Stub::Explain, req, out);
  }

  std::unique_ptr<DtabdProcess> dtabd_;
  std::unique_ptr<v1::DtabService::Stub> stub_;
};

// --- ListDtabs ---------------------------------------------------------

TEST_F(DtabServiceTest, ListDtabsOfEmptyStoreIsEmpty) {
  v1::ListDtabsResponse list;
  ASSERT_THAT(List(&list), IsOk());
  EXPECT_THAT(list.namespaces(), IsEmpty());
}

TEST_F(DtabServiceTest, ListDtabsReturnsLiveNamespacesSortedByName) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("beta", "/a=>/b", &v), IsOk());
  ASSERT_THAT(Put("alpha", "/a=>/b", &v), IsOk());
  ASSERT_THAT(Put("alpha", "/a=>/c", &v), IsOk());
  ASSERT_THAT(Put("gone", "/a=>/b", &v), IsOk());
  ASSERT_THAT(Delete("gone", 0, &v), IsOk());

  v1::ListDtabsResponse list;
  ASSERT_THAT(List(&list), IsOk());
  ASSERT_EQ(list.namespaces_size(), 2);
  EXPECT_EQ(list.namespaces(0).namespace_(), "alpha");
  EXPECT_EQ(list.namespaces(0).version(), 2);
  EXPECT_EQ(list.namespaces(0).revision(), 3);
  EXPECT_EQ(list.namespaces(1).namespace_(), "beta");
  EXPECT_EQ(list.namespaces(1).version(), 1);
  EXPECT_EQ(list.namespaces(1).revision(), 1);
}

// --- GetDtab -----------------------------------------------------------

TEST_F(DtabServiceTest, GetDtabReturnsLatestVersionWithAuditFields) {
  v1::VersionedDtab put;
  ASSERT_THAT(Put("default", "/a=>/b", &put), IsOk());
  ASSERT_THAT(Put("default", std::string(kHelloWorld), &put, "", "hello world"), IsOk());

  v1::VersionedDtab got;
  ASSERT_THAT(Get("default", 0, &got), IsOk());
  EXPECT_EQ(got.namespace_(), "default");
  EXPECT_EQ(got.version(), 2);
  EXPECT_EQ(got.revision(), 2);
  EXPECT_EQ(got.dtab(), kHelloWorld);
  EXPECT_EQ(got.author(), "anonymous");  // no --tokens
  EXPECT_EQ(got.comment(), "hello world");
  EXPECT_GT(got.created_at().seconds(), 0);
  EXPECT_FALSE(got.deleted());
  EXPECT_THAT(got, EqualsProto(put));  // the write's answer is what is stored
}

TEST_F(DtabServiceTest, GetDtabByVersionReturnsThatVersion) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/one", &v), IsOk());
  ASSERT_THAT(Put("default", "/a=>/two", &v), IsOk());

  v1::VersionedDtab got;
  ASSERT_THAT(Get("default", 1, &got), IsOk());
  EXPECT_EQ(got.version(), 1);
  EXPECT_EQ(got.dtab(), "/a=>/one");
  ASSERT_THAT(Get("default", 2, &got), IsOk());
  EXPECT_EQ(got.dtab(), "/a=>/two");
}

TEST_F(DtabServiceTest, GetDtabOfMissingNamespaceIsNotFound) {
  v1::VersionedDtab got;
  EXPECT_THAT(Get("nope", 0, &got),
              StatusIs(grpc::StatusCode::NOT_FOUND, "dtab 'nope' does not exist"));
  EXPECT_THAT(Get("nope", 1, &got), StatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'nope'")));
}

TEST_F(DtabServiceTest, GetDtabOfMissingVersionIsNotFound) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/b", &v), IsOk());
  EXPECT_THAT(Get("default", 7, &v),
              StatusIs(grpc::StatusCode::NOT_FOUND, "dtab 'default' has no version 7"));
}

TEST_F(DtabServiceTest, GetDtabWithBadNamespaceIsInvalidArgument) {
  v1::VersionedDtab v;
  EXPECT_THAT(Get("no/slashes", 0, &v),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("no/slashes")));
  EXPECT_THAT(Get("no/slashes", 3, &v),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("no/slashes")));
  EXPECT_THAT(Get("", 0, &v), StatusIs(grpc::StatusCode::INVALID_ARGUMENT, ::testing::_));
  EXPECT_THAT(Get(std::string(129, 'x'), 0, &v),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, ::testing::_));
}

TEST_F(DtabServiceTest, GetDtabWithNegativeVersionIsInvalidArgument) {
  v1::VersionedDtab v;
  EXPECT_THAT(Get("default", -1, &v),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("version -1")));
}

// --- CreateDtab --------------------------------------------------------

TEST_F(DtabServiceTest, CreateDtabStartsAtVersionOne) {
  v1::VersionedDtab v;
  ASSERT_THAT(Create("default", kHelloWorld, &v), IsOk());
  EXPECT_EQ(v.namespace_(), "default");
  EXPECT_EQ(v.version(), 1);
  EXPECT_EQ(v.dtab(), kHelloWorld);
}

TEST_F(DtabServiceTest, CreateDtabOfExistingNamespaceIsAlreadyExists) {
  v1::VersionedDtab v;
  ASSERT_THAT(Create("default", "/a=>/b", &v), IsOk());
  EXPECT_THAT(Create("default", "/a=>/c", &v),
              StatusIs(grpc::StatusCode::ALREADY_EXISTS,
                       "dtab 'default' already exists (version 1)"));
  ASSERT_THAT(Get("default", 0, &v), IsOk());
  EXPECT_EQ(v.dtab(), "/a=>/b");
}

TEST_F(DtabServiceTest, CreateDtabWithUnparsableDtabIsInvalidArgumentWithMarkedPosition) {
  v1::VersionedDtab v;
  EXPECT_THAT(Create("default", "/a=>/b;/c=/d", &v),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                       "dtab 'default': '>' expected but '/' found at '/a=>/b;/c=[/]d'"));
  EXPECT_THAT(Get("default", 0, &v), StatusIs(grpc::StatusCode::NOT_FOUND, ::testing::_));
}

TEST_F(DtabServiceTest, CreateDtabWithBadNamespaceIsInvalidArgument) {
  v1::VersionedDtab v;
  EXPECT_THAT(Create("a b", "/a=>/b", &v),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("'a b'")));
}

TEST_F(DtabServiceTest, OversizedDtabIsInvalidArgumentAndOversizedMessageIsResourceExhausted) {
  v1::VersionedDtab v;
  // Over the store's 1 MiB limit on dtab text, within gRPC's 4 MiB message limit.
  EXPECT_THAT(Put("default", std::string(2 << 20, ' '), &v),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("the limit is 1048576")));
  // Over gRPC's limit on received messages.
  EXPECT_THAT(Put("default", std::string(5 << 20, ' '), &v),
              StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, ::testing::_));
  EXPECT_THAT(Get("default", 0, &v), StatusIs(grpc::StatusCode::NOT_FOUND, ::testing::_));
}

// --- UpdateDtab --------------------------------------------------------

TEST_F(DtabServiceTest, UpdateDtabWithCurrentVersionApplies) {
  v1::VersionedDtab v;
  ASSERT_THAT(Create("default", "/a=>/b", &v), IsOk());
  ASSERT_THAT(Update("default", "/a=>/c", 1, &v), IsOk());
  EXPECT_EQ(v.version(), 2);
  EXPECT_EQ(v.dtab(), "/a=>/c");
}

TEST_F(DtabServiceTest, UpdateDtabWithStaleVersionIsAbortedNamingCurrentVersion) {
  v1::VersionedDtab v;
  ASSERT_THAT(Create("default", "/a=>/b", &v), IsOk());
  ASSERT_THAT(Update("default", "/a=>/c", 1, &v), IsOk());
  EXPECT_THAT(Update("default", "/a=>/d", 1, &v),
              StatusIs(grpc::StatusCode::ABORTED,
                       "dtab 'default': expected version 1 but the current version is 2; "
                       "re-read and retry"));
  ASSERT_THAT(Get("default", 0, &v), IsOk());
  EXPECT_EQ(v.version(), 2);
  EXPECT_EQ(v.dtab(), "/a=>/c");
}

TEST_F(DtabServiceTest, UpdateDtabOfMissingNamespaceIsNotFound) {
  v1::VersionedDtab v;
  EXPECT_THAT(Update("nope", "/a=>/b", 1, &v),
              StatusIs(grpc::StatusCode::NOT_FOUND, "dtab 'nope' does not exist"));
}

TEST_F(DtabServiceTest, UpdateDtabWithUnparsableDtabIsInvalidArgument) {
  v1::VersionedDtab v;
  ASSERT_THAT(Create("default", "/a=>/b", &v), IsOk());
  EXPECT_THAT(Update("default", "/a=>", 1, &v),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("[]")));
}

// --- PutDtab -----------------------------------------------------------

TEST_F(DtabServiceTest, PutDtabCreatesThenReplaces) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/b", &v), IsOk());
  EXPECT_EQ(v.version(), 1);
  ASSERT_THAT(Put("default", "/a=>/c", &v), IsOk());
  EXPECT_EQ(v.version(), 2);
  EXPECT_EQ(v.dtab(), "/a=>/c");
}

TEST_F(DtabServiceTest, PutDtabWithUnparsableDtabIsInvalidArgument) {
  v1::VersionedDtab v;
  EXPECT_THAT(Put("default", "a=>/b", &v),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("[a]")));
}

// --- DeleteDtab --------------------------------------------------------

TEST_F(DtabServiceTest, DeleteDtabWritesTombstoneThatHistoryKeeps) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/b", &v), IsOk());
  v1::VersionedDtab tombstone;
  ASSERT_THAT(Delete("default", 0, &tombstone), IsOk());
  EXPECT_EQ(tombstone.version(), 2);
  EXPECT_TRUE(tombstone.deleted());
  EXPECT_EQ(tombstone.dtab(), "");

  EXPECT_THAT(Get("default", 0, &v),
              StatusIs(grpc::StatusCode::NOT_FOUND, "dtab 'default' was deleted at version 2"));
  ASSERT_THAT(Get("default", 2, &v), IsOk());
  EXPECT_TRUE(v.deleted());
  ASSERT_THAT(Get("default", 1, &v), IsOk());
  EXPECT_EQ(v.dtab(), "/a=>/b");

  v1::ListVersionsResponse history;
  ASSERT_THAT(History("default", 0, 0, &history), IsOk());
  EXPECT_THAT(Versions(history), ElementsAre(2, 1));
  EXPECT_TRUE(history.versions(0).deleted());
  EXPECT_FALSE(history.versions(1).deleted());

  v1::ListDtabsResponse list;
  ASSERT_THAT(List(&list), IsOk());
  EXPECT_THAT(list.namespaces(), IsEmpty());

  // Versions are never reused: re-creating continues after the tombstone.
  ASSERT_THAT(Create("default", "/a=>/c", &v), IsOk());
  EXPECT_EQ(v.version(), 3);
}

TEST_F(DtabServiceTest, DeleteDtabOfMissingNamespaceIsNotFound) {
  v1::VersionedDtab v;
  EXPECT_THAT(Delete("nope", 0, &v), StatusIs(grpc::StatusCode::NOT_FOUND, ::testing::_));
  ASSERT_THAT(Put("default", "/a=>/b", &v), IsOk());
  ASSERT_THAT(Delete("default", 0, &v), IsOk());
  EXPECT_THAT(Delete("default", 0, &v), StatusIs(grpc::StatusCode::NOT_FOUND, ::testing::_));
}

TEST_F(DtabServiceTest, DeleteDtabWithStaleVersionIsAborted) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/b", &v), IsOk());
  ASSERT_THAT(Put("default", "/a=>/c", &v), IsOk());
  EXPECT_THAT(Delete("default", 1, &v),
              StatusIs(grpc::StatusCode::ABORTED, HasSubstr("current version is 2")));
  ASSERT_THAT(Delete("default", 2, &v), IsOk());
  EXPECT_TRUE(v.deleted());
}

// --- ListVersions ------------------------------------------------------

TEST_F(DtabServiceTest, ListVersionsPagesNewestFirst) {
  v1::VersionedDtab v;
  for (int i = 1; i <= 5; ++i) {
    ASSERT_THAT(Put("default", absl::StrCat("/a=>/v", i), &v), IsOk());
  }
  v1::ListVersionsResponse page;
  ASSERT_THAT(History("default", 2, 0, &page), IsOk());
  EXPECT_THAT(Versions(page), ElementsAre(5, 4));
  EXPECT_EQ(page.versions(0).dtab(), "/a=>/v5");
  ASSERT_EQ(page.next_before_version(), 4);

  ASSERT_THAT(History("default", 2, page.next_before_version(), &page), IsOk());
  EXPECT_THAT(Versions(page), ElementsAre(3, 2));
  ASSERT_EQ(page.next_before_version(), 2);

  ASSERT_THAT(History("default", 2, page.next_before_version(), &page), IsOk());
  EXPECT_THAT(Versions(page), ElementsAre(1));
  EXPECT_EQ(page.next_before_version(), 0);

  // The default page holds them all.
  ASSERT_THAT(History("default", 0, 0, &page), IsOk());
  EXPECT_THAT(Versions(page), ElementsAre(5, 4, 3, 2, 1));
  EXPECT_EQ(page.next_before_version(), 0);
}

TEST_F(DtabServiceTest, ListVersionsWithBadPageSizeIsInvalidArgument) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/b", &v), IsOk());
  v1::ListVersionsResponse page;
  EXPECT_THAT(History("default", -1, 0, &page),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("page_size -1")));
  EXPECT_THAT(History("default", 1001, 0, &page),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("page_size 1001")));
}

TEST_F(DtabServiceTest, ListVersionsOfMissingNamespaceIsNotFound) {
  v1::ListVersionsResponse page;
  EXPECT_THAT(History("nope", 0, 0, &page), StatusIs(grpc::StatusCode::NOT_FOUND, ::testing::_));
  EXPECT_THAT(History("no/pe", 0, 0, &page),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, ::testing::_));
}

// --- RollbackDtab ------------------------------------------------------

TEST_F(DtabServiceTest, RollbackDtabWritesOldTextAsNewVersion) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/one", &v), IsOk());
  ASSERT_THAT(Put("default", "/a=>/two", &v), IsOk());
  ASSERT_THAT(Rollback("default", 1, 0, &v), IsOk());
  EXPECT_EQ(v.version(), 3);
  EXPECT_EQ(v.dtab(), "/a=>/one");
  EXPECT_EQ(v.comment(), "rollback to version 1");

  v1::VersionedDtab latest;
  ASSERT_THAT(Get("default", 0, &latest), IsOk());
  EXPECT_THAT(latest, EqualsProto(v));
}

TEST_F(DtabServiceTest, RollbackDtabRestoresDeletedNamespace) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/one", &v), IsOk());
  ASSERT_THAT(Delete("default", 0, &v), IsOk());
  ASSERT_THAT(Rollback("default", 1, 0, &v), IsOk());
  EXPECT_EQ(v.version(), 3);
  EXPECT_FALSE(v.deleted());
  ASSERT_THAT(Get("default", 0, &v), IsOk());
  EXPECT_EQ(v.dtab(), "/a=>/one");
}

TEST_F(DtabServiceTest, RollbackDtabErrors) {
  v1::VersionedDtab v;
  EXPECT_THAT(Rollback("nope", 1, 0, &v), StatusIs(grpc::StatusCode::NOT_FOUND, ::testing::_));
  ASSERT_THAT(Put("default", "/a=>/one", &v), IsOk());
  ASSERT_THAT(Delete("default", 0, &v), IsOk());
  ASSERT_THAT(Put("default", "/a=>/three", &v), IsOk());
  EXPECT_THAT(Rollback("default", 9, 0, &v),
              StatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("has no version 9")));
  EXPECT_THAT(Rollback("default", 2, 0, &v),
              StatusIs(grpc::StatusCode::FAILED_PRECONDITION,
                       HasSubstr("version 2 is a deletion")));
  EXPECT_THAT(Rollback("default", 1, 2, &v),
              StatusIs(grpc::StatusCode::ABORTED, HasSubstr("current version is 3")));
  ASSERT_THAT(Rollback("default", 1, 3, &v), IsOk());
  EXPECT_EQ(v.version(), 4);
}

// --- ValidateDtab ------------------------------------------------------

TEST_F(DtabServiceTest, ValidateDtabReturnsCanonicalForm) {
  v1::ValidateDtabResponse r;
  ASSERT_THAT(Validate(" /srv => /#/io.l5d.fs ;\n /host=>/srv ; /svc => /host ; ", &r), IsOk());
  EXPECT_EQ(r.canonical(), kHelloWorld);
  EXPECT_EQ(r.dentries(), 3);

  ASSERT_THAT(Validate("", &r), IsOk());
  EXPECT_EQ(r.canonical(), "");
  EXPECT_EQ(r.dentries(), 0);
}

TEST_F(DtabServiceTest, ValidateDtabRejectsBadDtabWithMarkedPosition) {
  v1::ValidateDtabResponse r;
  EXPECT_THAT(Validate("/srv=>/#/io.l5d.fs;/host=/srv", &r),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                       "'>' expected but '/' found at '/srv=>/#/io.l5d.fs;/host=[/]srv'"));
  EXPECT_THAT(Validate("/a=>", &r),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("at '/a=>[]'")));
}

// --- Explain -----------------------------------------------------------

TEST_F(DtabServiceTest, ExplainBindsHelloWorldWithOverride) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", kHelloWorld, &v), IsOk());

  v1::ExplainResponse r;
  ASSERT_THAT(Explain("default", "/svc/world", "/host/world=>/srv/world-v2", &r), IsOk());
  EXPECT_EQ(r.version(), 1);
  EXPECT_EQ(r.bound(), "/#/io.l5d.fs/world-v2");
  EXPECT_EQ(r.bind_error(), "");
  EXPECT_EQ(r.ignored_branch_errors(), 0);
  // What `dtabctl explain` prints for the base dtab followed by the
  // override: the override's dentry wins, the base's stays as the
  // alternative.
  EXPECT_EQ(
      r.delegation_json(),
      R"({"type":"delegate","path":"/svc/world","dentry":null,"delegate":)"
      R"({"type":"alt","path":"/host/world","dentry":{"prefix":"/svc","dst":"/host"},"alt":[)"
      R"({"type":"delegate","path":"/srv/world-v2",)"
      R"("dentry":{"prefix":"/host/world","dst":"/srv/world-v2"},)"
      R"("delegate":{"type":"leaf","path":"/#/io.l5d.fs/world-v2",)"
      R"("dentry":{"prefix":"/srv","dst":"/#/io.l5d.fs"},)"
      R"("bound":{"id":"/#/io.l5d.fs/world-v2","path":"/"}}},)"
      R"({"type":"delegate","path":"/srv/world","dentry":{"prefix":"/host","dst":"/srv"},)"
      R"("delegate":{"type":"leaf","path":"/#/io.l5d.fs/world",)"
      R"("dentry":{"prefix":"/srv","dst":"/#/io.l5d.fs"},)"
      R"("bound":{"id":"/#/io.l5d.fs/world","path":"/"}}}]}})");

  // Without the override, the base dtab alone.
  ASSERT_THAT(Explain("default", "/svc/world", "", &r), IsOk());
  EXPECT_EQ(r.bound(), "/#/io.l5d.fs/world");
}

TEST_F(DtabServiceTest, ExplainErrors) {
  v1::ExplainResponse r;
  EXPECT_THAT(Explain("default", "/svc/world", "", &r),
              StatusIs(grpc::StatusCode::NOT_FOUND, "dtab 'default' does not exist"));
  EXPECT_THAT(Explain("bad ns", "/svc/world", "", &r),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, ::testing::_));
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", kHelloWorld, &v), IsOk());
  EXPECT_THAT(Explain("default", "/svc/world", "/host=", &r),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, StartsWith("override: ")));
  EXPECT_THAT(Explain("default", "svc/world", "", &r),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, StartsWith("path: ")));
}

TEST_F(DtabServiceTest, ExplainOfUnmatchedPathIsNeg) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", kHelloWorld, &v), IsOk());
  v1::ExplainResponse r;
  ASSERT_THAT(Explain("default", "/nothing/here", "", &r), IsOk());
  EXPECT_EQ(r.bound(), "~");
  EXPECT_EQ(r.bind_error(), "");
  EXPECT_EQ(r.delegation_json(), R"({"type":"neg","path":"/nothing/here","dentry":null})");
}

TEST_F(DtabServiceTest, ExplainOfLoopReportsBindErrorAtMaxDepth) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/b;/b=>/a", &v), IsOk());
  v1::ExplainResponse r;
  ASSERT_THAT(Explain("default", "/a", "", &r), IsOk());
  EXPECT_EQ(r.bound(), "");
  EXPECT_EQ(r.bind_error(), "Max recursion level: 100 reached in Namer lookup");
  ASSERT_THAT(Explain("default", "/a", "", &r, /*max_depth=*/5), IsOk());
  EXPECT_EQ(r.bind_error(), "Max recursion level: 5 reached in Namer lookup");
}

// --- WatchDtab ---------------------------------------------------------

TEST_F(DtabServiceTest, WatchDtabSendsCurrentThenChangesThenDeletion) {
  v1::VersionedDtab v1_put;
  ASSERT_THAT(Put("default", "/a=>/one", &v1_put), IsOk());

  WatchStream watch(stub_.get(), "default");
  v1::WatchDtabResponse r;
  ASSERT_TRUE(watch.Next(&r));
  EXPECT_FALSE(r.absent());
  EXPECT_THAT(r.dtab(), EqualsProto(v1_put));

  v1::VersionedDtab v2_put;
  ASSERT_THAT(Put("default", "/a=>/two", &v2_put), IsOk());
  ASSERT_TRUE(watch.Next(&r));
  EXPECT_FALSE(r.absent());
  EXPECT_THAT(r.dtab(), EqualsProto(v2_put));

  v1::VersionedDtab tombstone;
  ASSERT_THAT(Delete("default", 0, &tombstone), IsOk());
  ASSERT_TRUE(watch.Next(&r));
  EXPECT_TRUE(r.dtab().deleted());
  EXPECT_EQ(r.dtab().version(), 3);
  EXPECT_THAT(r.dtab(), EqualsProto(tombstone));

  // The stream stays open after a deletion: a re-creation follows.
  v1::VersionedDtab v4;
  ASSERT_THAT(Create("default", "/a=>/four", &v4), IsOk());
  ASSERT_TRUE(watch.Next(&r));
  EXPECT_THAT(r.dtab(), EqualsProto(v4));
}

TEST_F(DtabServiceTest, WatchDtabStartedBeforeCreationSendsAbsentThenCreation) {
  WatchStream watch(stub_.get(), "later");
  v1::WatchDtabResponse r;
  ASSERT_TRUE(watch.Next(&r));
  EXPECT_TRUE(r.absent());
  EXPECT_FALSE(r.has_dtab());

  // Writes to other namespaces are not sent.
  v1::VersionedDtab other;
  ASSERT_THAT(Put("other", "/x=>/y", &other), IsOk());
  v1::VersionedDtab created;
  ASSERT_THAT(Create("later", "/a=>/b", &created), IsOk());
  ASSERT_TRUE(watch.Next(&r));
  EXPECT_FALSE(r.absent());
  EXPECT_THAT(r.dtab(), EqualsProto(created));
}

TEST_F(DtabServiceTest, WatchDtabOfDeletedNamespaceSendsTombstoneFirst) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/b", &v), IsOk());
  ASSERT_THAT(Delete("default", 0, &v), IsOk());
  WatchStream watch(stub_.get(), "default");
  v1::WatchDtabResponse r;
  ASSERT_TRUE(watch.Next(&r));
  EXPECT_TRUE(r.dtab().deleted());
  EXPECT_EQ(r.dtab().version(), 2);
}

TEST_F(DtabServiceTest, WatchDtabWithBadNamespaceIsInvalidArgument) {
  WatchStream watch(stub_.get(), "bad/ns");
  v1::WatchDtabResponse r;
  EXPECT_FALSE(watch.Next(&r));
  EXPECT_THAT(watch.Finish(), StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("bad/ns")));
}

TEST_F(DtabServiceTest, WatchDtabStreamsEndWhenClientCancels) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kWatchDeadline);
  v1::WatchDtabRequest req;
  req.set_namespace_("default");
  std::unique_ptr<grpc::ClientReader<v1::WatchDtabResponse>> reader = stub_->WatchDtab(&ctx, req);
  v1::WatchDtabResponse r;
  ASSERT_TRUE(reader->Read(&r));
  ctx.TryCancel();
  while (reader->Read(&r)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server is unaffected.
  v1::VersionedDtab v;
  EXPECT_THAT(Put("default", "/a=>/b", &v), IsOk());
}

// --- Restart -----------------------------------------------------------

TEST_F(DtabServiceTest, RestartKeepsEverythingAndVersionsContinue) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/one", &v), IsOk());
  ASSERT_THAT(Put("default", "/a=>/two", &v, "", "second"), IsOk());
  ASSERT_THAT(Create("gone", "/g=>/h", &v), IsOk());
  ASSERT_THAT(Delete("gone", 0, &v), IsOk());
  ASSERT_THAT(Put("other", "/x=>/y", &v), IsOk());  // revision 5

  v1::ListDtabsResponse list_before;
  ASSERT_THAT(List(&list_before), IsOk());
  v1::ListVersionsResponse default_before, gone_before;
  ASSERT_THAT(History("default", 0, 0, &default_before), IsOk());
  ASSERT_THAT(History("gone", 0, 0, &gone_before), IsOk());

  CloseChannel();
  ASSERT_TRUE(dtabd_->Restart().ok());
  Connect();

  v1::ListDtabsResponse list_after;
  ASSERT_THAT(List(&list_after), IsOk());
  EXPECT_THAT(list_after, EqualsProto(list_before));
  v1::ListVersionsResponse default_after, gone_after;
  ASSERT_THAT(History("default", 0, 0, &default_after), IsOk());
  EXPECT_THAT(default_after, EqualsProto(default_before));
  ASSERT_THAT(History("gone", 0, 0, &gone_after), IsOk());
  EXPECT_THAT(gone_after, EqualsProto(gone_before));

  // The latest versions are served (from memory) after a restart too.
  ASSERT_THAT(Get("default", 0, &v), IsOk());
  EXPECT_THAT(v, EqualsProto(default_before.versions(0)));
  // (Before the restart the message says "was deleted at version 2"; after
  // it, dtabd only loads live namespaces into memory and says "does not
  // exist".)
  EXPECT_THAT(Get("gone", 0, &v), StatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("'gone'")));
  WatchStream watch(stub_.get(), "default");
  v1::WatchDtabResponse r;
  ASSERT_TRUE(watch.Next(&r));
  EXPECT_THAT(r.dtab(), EqualsProto(default_before.versions(0)));

  // Versions and revisions continue; none is reused.
  ASSERT_THAT(Put("default", "/a=>/three", &v), IsOk());
  EXPECT_EQ(v.version(), 3);
  EXPECT_EQ(v.revision(), 6);
  ASSERT_TRUE(watch.Next(&r));
  EXPECT_THAT(r.dtab(), EqualsProto(v));
  ASSERT_THAT(Create("gone", "/g=>/i", &v), IsOk());
  EXPECT_EQ(v.version(), 3);
  EXPECT_EQ(v.revision(), 7);
}

// --- Graceful shutdown -------------------------------------------------

TEST_F(DtabServiceTest, SigtermEndsWatchWithUnavailableAndExitsZero) {
  v1::VersionedDtab v;
  ASSERT_THAT(Put("default", "/a=>/b", &v), IsOk());
  {
    WatchStream watch(stub_.get(), "default");
    WatchStream absent_watch(stub_.get(), "absent");
    v1::WatchDtabResponse r;
    ASSERT_TRUE(watch.Next(&r));
    ASSERT_TRUE(absent_watch.Next(&r));

    ASSERT_TRUE(dtabd_->Signal(SIGTERM).ok());
    EXPECT_THAT(watch.Finish(),
                StatusIs(grpc::StatusCode::UNAVAILABLE, HasSubstr("shutting down")));
    EXPECT_THAT(absent_watch.Finish(),
                StatusIs(grpc::StatusCode::UNAVAILABLE, HasSubstr("shutting down")));
  }
  CloseChannel();
  absl::StatusOr<int> code = dtabd_->Wait(std::chrono::seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_THAT(dtabd_->stderr_output(), HasSubstr("dtabd: SIGTERM, shutting down"));
}

// --- Startup failures (and DtabdProcess reporting them) ----------------

// Starts dtabd with `options` and expects it to exit with `exit_status`
// before serving, its stderr holding `message`.
void ExpectRefused(DtabdProcess::Options options, int exit_status, const std::string& message) {
  absl::StatusOr<std::unique_ptr<DtabdProcess>> p = DtabdProcess::Start(std::move(options));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(p.status().message(),
              HasSubstr(absl::StrCat("exited before serving (status ", exit_status, ")")));
  EXPECT_THAT(p.status().message(), HasSubstr(message));
}

TEST(DtabdStartupTest, UnknownFlagExitsWithUsageError) {
  DtabdProcess::Options o;
  o.extra_args = {"--no-such-flag", "x"};
  ExpectRefused(std::move(o), 2, "unknown flag '--no-such-flag'");
}

TEST(DtabdStartupTest, NonLoopbackAddressWithoutTokensIsRefused) {
  DtabdProcess::Options o;
  o.extra_args = {"--grpc-addr", "0.0.0.0:0"};  // the last --grpc-addr wins
  ExpectRefused(std::move(o), 1,
                "--grpc-addr='0.0.0.0:0' is not a loopback address: without --tokens");
}

// gRPC's default SO_REUSEPORT would let a second dtabd share the port (and
// take half the connections, to another database).
TEST(DtabdStartupTest, GrpcPortAlreadyServedIsRefused) {
  absl::StatusOr<std::unique_ptr<DtabdProcess>> first = DtabdProcess::Start();
  ASSERT_TRUE(first.ok()) << first.status();
  DtabdProcess::Options o;
  o.extra_args = {"--grpc-addr", (*first)->grpc_address()};  // the last --grpc-addr wins
  ExpectRefused(std::move(o), 1,
                absl::StrCat("--grpc-addr='", (*first)->grpc_address(),
                             "': cannot listen (address in use?)"));
}

// A second dtabd on the same database would commit writes the first one's
// subscribers never hear of.
TEST(DtabdStartupTest, DatabaseInUseByAnotherDtabdIsRefused) {
  absl::StatusOr<std::unique_ptr<DtabdProcess>> first = DtabdProcess::Start();
  ASSERT_TRUE(first.ok()) << first.status();
  DtabdProcess::Options o;
  o.extra_args = {"--db", (*first)->db_path()};  // the last --db wins
  ExpectRefused(std::move(o), 1,
                absl::StrCat("--db='", (*first)->db_path(),
                             "': in use by another dtabd (it holds the file's lock)"));
  // A killed dtabd leaves no stale lock behind: the kernel drops it.
  ASSERT_TRUE((*first)->Signal(SIGKILL).ok());
  ASSERT_TRUE((*first)->Wait(std::chrono::seconds(10)).ok());
  DtabdProcess::Options again;
  again.extra_args = {"--db", (*first)->db_path()};
  absl::StatusOr<std::unique_ptr<DtabdProcess>> third = DtabdProcess::Start(std::move(again));
  EXPECT_TRUE(third.ok()) << third.status();
}

TEST(DtabdStartupTest, FileThatIsNotADatabaseIsRefusedNamingIt) {
  const std::string path = ::testing::TempDir() + "/not-a-database.db";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << std::string(4096, '\x5a');  // not SQLite's header
  }
  DtabdProcess::Options o;
  o.extra_args = {"--db", path};
  absl::StatusOr<std::unique_ptr<DtabdProcess>> p = DtabdProcess::Start(std::move(o));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(p.status().message(), HasSubstr("exited before serving (status 1)"));
  EXPECT_THAT(p.status().message(), HasSubstr(absl::StrCat("--db='", path, "': ")));
  EXPECT_THAT(p.status().message(), HasSubstr("file is not a database"));
  std::ifstream in(path, std::ios::binary);  // left as it was
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), std::string(4096, '\x5a'));
  std::remove(path.c_str());
}

TEST(DtabdStartupTest, MalformedTokensFileIsRefused) {
  DtabdProcess::Options o;
  o.tokens = "just-a-token\n";
  ExpectRefused(std::move(o), 1, "tokens:1: expected 'TOKEN IDENTITY read|write', got 1 fields");
}

// --- Authentication ----------------------------------------------------

constexpr char kTokens[] =
    "# token identity scope\n"
    "r3ad-t0ken reader read\n"
    "wr1te-t0ken deployer write\n";

class DtabServiceAuthTest : public DtabServiceTest {
 protected:
  void SetUp() override {
    DtabdProcess::Options o;
    o.tokens = kTokens;
    StartDtabd(std::move(o));
  }
};

TEST_F(DtabServiceAuthTest, NoTokenIsUnauthenticated) {
  v1::VersionedDtab v;
  v1::ListDtabsResponse list;
  v1::ValidateDtabResponse valid;
  EXPECT_THAT(List(&list), StatusIs(grpc::StatusCode::UNAUTHENTICATED, HasSubstr("Bearer")));
  EXPECT_THAT(Get("default", 0, &v), StatusIs(grpc::StatusCode::UNAUTHENTICATED, ::testing::_));
  EXPECT_THAT(Get("default", 1, &v), StatusIs(grpc::StatusCode::UNAUTHENTICATED, ::testing::_));
  EXPECT_THAT(Validate("/a=>/b", &valid),
              StatusIs(grpc::StatusCode::UNAUTHENTICATED, ::testing::_));
  EXPECT_THAT(Put("default", "/a=>/b", &v),
              StatusIs(grpc::StatusCode::UNAUTHENTICATED, ::testing::_));
  WatchStream watch(stub_.get(), "default");
  v1::WatchDtabResponse r;
  EXPECT_FALSE(watch.Next(&r));
  EXPECT_THAT(watch.Finish(), StatusIs(grpc::StatusCode::UNAUTHENTICATED, ::testing::_));
}

TEST_F(DtabServiceAuthTest, UnknownTokenIsUnauthenticated) {
  v1::VersionedDtab v;
  EXPECT_THAT(Get("default", 0, &v, "not-a-token"),
              StatusIs(grpc::StatusCode::UNAUTHENTICATED, "unknown token"));
  EXPECT_THAT(Put("default", "/a=>/b", &v, "not-a-token"),
              StatusIs(grpc::StatusCode::UNAUTHENTICATED, "unknown token"));
}

TEST_F(DtabServiceAuthTest, ReadTokenWritingIsPermissionDenied) {
  v1::VersionedDtab v;
  const absl::string_view read = "r3ad-t0ken";
  const auto denied =
      StatusIs(grpc::StatusCode::PERMISSION_DENIED, HasSubstr("token of 'reader' is read-only"));
  EXPECT_THAT(Put("default", "/a=>/b", &v, read), denied);
  EXPECT_THAT(Create("default", "/a=>/b", &v, read), denied);
  ASSERT_THAT(Put("default", "/a=>/b", &v, "wr1te-t0ken"), IsOk());
  EXPECT_THAT(Update("default", "/a=>/c", 1, &v, read), denied);
  EXPECT_THAT(Rollback("default", 1, 0, &v, read), denied);
  EXPECT_THAT(Delete("default", 0, &v, read), denied);

  // Nothing was written.
  ASSERT_THAT(Get("default", 0, &v, read), IsOk());
  EXPECT_EQ(v.version(), 1);
}

TEST_F(DtabServiceAuthTest, ReadTokenReads) {
  v1::VersionedDtab v;
  const absl::string_view read = "r3ad-t0ken";
  ASSERT_THAT(Put("default", "/a=>/b", &v, "wr1te-t0ken"), IsOk());
  v1::ListDtabsResponse list;
  EXPECT_THAT(List(&list, read), IsOk());
  EXPECT_THAT(Get("default", 0, &v, read), IsOk());
  EXPECT_THAT(Get("default", 1, &v, read), IsOk());
  v1::ListVersionsResponse page;
  EXPECT_THAT(History("default", 0, 0, &page, read), IsOk());
  v1::ValidateDtabResponse valid;
  EXPECT_THAT(Validate("/a=>/b", &valid, read), IsOk());
  WatchStream watch(stub_.get(), "default", read);
  v1::WatchDtabResponse r;
  ASSERT_TRUE(watch.Next(&r));
  EXPECT_EQ(r.dtab().version(), 1);
}

TEST_F(DtabServiceAuthTest, WriteTokenWritesWithItsIdentityAsAuthor) {
  v1::VersionedDtab v;
  const absl::string_view write = "wr1te-t0ken";
  ASSERT_THAT(Create("default", "/a=>/b", &v, write), IsOk());
  EXPECT_EQ(v.author(), "deployer");
  ASSERT_THAT(Update("default", "/a=>/c", 1, &v, write), IsOk());
  ASSERT_THAT(Put("default", "/a=>/d", &v, write), IsOk());
  ASSERT_THAT(Rollback("default", 1, 0, &v, write), IsOk());
  ASSERT_THAT(Delete("default", 0, &v, write), IsOk());

  v1::ListVersionsResponse page;
  ASSERT_THAT(History("default", 0, 0, &page, "r3ad-t0ken"), IsOk());
  ASSERT_EQ(page.versions_size(), 5);
  for (const v1::VersionedDtab& version : page.versions()) {
    EXPECT_EQ(version.author(), "deployer") << "version " << version.version();
  }
}

}  // namespace
}  // namespace dtabd::integration
