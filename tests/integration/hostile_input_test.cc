// The hostile-input table of issue 8 at dtabd's three front doors: the
// gRPC DtabService, the namerd HTTP API and dtabctl (the real binaries;
// DtabdProcess on 127.0.0.1:0). Each row sends one bad input and expects a
// clear error, then checks that nothing was lost or corrupted: the good
// dtab written first is still there, at the same version, with the same
// text, and dtabd still serves. docs/RELIABILITY.md ("Hostile inputs")
// lists the rows and their outcomes.
//
// Nothing sleeps: every wait is a blocking call with a deadline (gRPC
// deadlines, HttpClient timeouts, poll on a raw socket, waitpid on a child
// that is itself bounded by its own deadline).
#include <fcntl.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "dtabd/v1/dtab.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/dtabd_process.h"
#include "tests/testing/child_process.h"
#include "tests/testing/http_client.h"

#ifndef DTABCTL_PATH
#error "DTABCTL_PATH must name the dtabctl binary"
#endif

extern char** environ;

namespace dtabd::integration {
namespace {

using ::dtabd::testing::Fetch;
using ::dtabd::testing::Headers;
using ::dtabd::testing::HttpClient;
using ::dtabd::testing::HttpResponse;
using ::dtabd::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kDeadline = std::chrono::seconds(20);
constexpr absl::string_view kGood = "/svc=>/host;/host/web=>/srv/web";

// "(((…/a…)))" nested `depth` times.
std::string Nested(int depth) {
  return absl::StrCat(std::string(depth, '('), "/a", std::string(depth, ')'));
}

// "/x=>/a0 | /a1 | … " with `n` alternatives.
std::string ManyAlternatives(int n) {
  std::string s = "/x=>/a0";
  for (int i = 1; i < n; ++i) {
    absl::StrAppend(&s, " | /a", i);
  }
  return s;
}

// The result of one dtabctl run.
struct CliRun {
  int code = -1;  // exit code, or 128 + signal
  std::string out;
  std::string err;
};

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<DtabdProcess>> p = DtabdProcess::Start();
    ASSERT_TRUE(p.ok()) << p.status();
    dtabd_ = *std::move(p);
    stub_ = v1::DtabService::NewStub(
        grpc::CreateChannel(dtabd_->grpc_address(), grpc::InsecureChannelCredentials()));
    absl::StatusOr<TempDir> tmp = TempDir::Create("dtabd-hostile-");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<TempDir>(*std::move(tmp));
    // The good state every row must leave intact.
    v1::CreateDtabRequest req;
    req.set_namespace_("good");
    req.set_dtab(std::string(kGood));
    v1::VersionedDtab got;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    const grpc::Status s = stub_->CreateDtab(&ctx, req, &got);
    ASSERT_TRUE(s.ok()) << s.error_message();
    good_version_ = got.version();
  }

  void TearDown() override {
    if (HasFailure() && dtabd_ != nullptr) {
      std::cerr << "--- dtabd stderr:\n" << dtabd_->stderr_output();
    }
  }

  // The good namespace is unchanged, the list holds nothing but it, and
  // dtabd answers on gRPC and HTTP.
  void ExpectGoodStateIntact() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::GetDtabRequest req;
    req.set_namespace_("good");
    v1::VersionedDtab got;
    const grpc::Status s = stub_->GetDtab(&ctx, req, &got);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    EXPECT_EQ(got.version(), good_version_);
    EXPECT_EQ(got.dtab(), kGood);

    grpc::ClientContext lctx;
    lctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::ListDtabsResponse list;
    const grpc::Status ls = stub_->ListDtabs(&lctx, v1::ListDtabsRequest(), &list);
    ASSERT_TRUE(ls.ok()) << ls.error_message();
    ASSERT_EQ(list.namespaces_size(), 1) << list.DebugString();
    EXPECT_EQ(list.namespaces(0).namespace_(), "good");

    absl::StatusOr<HttpResponse> r =
        Fetch(dtabd_->http_address(), "GET", "/api/1/dtabs/good",
              {{"Host", "dtabd"}, {"Accept", "application/dtab"}});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << *r;
  }

  grpc::Status Create(const std::string& ns, const std::string& dtab) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::CreateDtabRequest req;
    req.set_namespace_(ns);
    req.set_dtab(dtab);
    v1::VersionedDtab got;
    return stub_->CreateDtab(&ctx, req, &got);
  }
  grpc::Status Update(const std::string& ns, const std::string& dtab) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::UpdateDtabRequest req;
    req.set_namespace_(ns);
    req.set_dtab(dtab);
    req.set_expected_version(good_version_);
    v1::VersionedDtab got;
    return stub_->UpdateDtab(&ctx, req, &got);
  }
  grpc::Status Put(const std::string& ns, const std::string& dtab) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::PutDtabRequest req;
    req.set_namespace_(ns);
    req.set_dtab(dtab);
    v1::VersionedDtab got;
    return stub_->PutDtab(&ctx, req, &got);
  }
  grpc::Status Validate(const std::string& dtab) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::ValidateDtabRequest req;
    req.set_dtab(dtab);
    v1::ValidateDtabResponse got;
    return stub_->ValidateDtab(&ctx, req, &got);
  }

  // The namerd API: POST (create) and PUT (upsert) with a dtab body.
  HttpResponse Http(absl::string_view method, absl::string_view target, absl::string_view body,
                    Headers extra = {}) {
    Headers h = {{"Host", "dtabd"}, {"Content-Type", "application/dtab"}};
    h.insert(h.end(), extra.begin(), extra.end());
    absl::StatusOr<HttpResponse> r = Fetch(dtabd_->http_address(), method, target, h, body);
    if (!r.ok()) {
      ADD_FAILURE() << method << " " << target << ": " << r.status();
      return HttpResponse();
    }
    return *std::move(r);
  }

  // Runs dtabctl --server ADDR ARGS with `input` on standard input; output
  // goes to files (no pipe can fill up), and waitpid is bounded by
  // dtabctl's own RPC deadline.
  CliRun Dtabctl(std::vector<std::string> args, absl::string_view input = "") {
    CliRun run;
    const std::string in_path = tmp_->Join("stdin");
    const std::string out_path = tmp_->Join("stdout");
    const std::string err_path = tmp_->Join("stderr");
    if (!testing::WriteFileAtomically(in_path, input).ok()) {
      ADD_FAILURE() << "cannot write " << in_path;
      return run;
    }
    std::vector<std::string> argv = {DTABCTL_PATH, "--server", dtabd_->grpc_address()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (std::string& a : argv) {
      cargv.push_back(a.data());
    }
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn: " << std::strerror(rc);
      return run;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    run.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    run.out = testing::ReadFileOrEmpty(out_path);
    run.err = testing::ReadFileOrEmpty(err_path);
    return run;
  }

  std::unique_ptr<DtabdProcess> dtabd_;
  std::unique_ptr<v1::DtabService::Stub> stub_;
  std::unique_ptr<TempDir> tmp_;
  int64_t good_version_ = 0;
};

// --- Invalid dtab text, every API ------------------------------------------

TEST_F(HostileInputTest, InvalidDtabIsInvalidArgumentOnEveryGrpcWrite) {
  for (const char* bad : {"/a=>", "/a=>/b;;", "a=>/b", "/a=>/b!", "/a=>(/b", "=>",
                                "/a=>/b | ", "/a => 1.2.3*/b & /c"}) {
    SCOPED_TRACE(bad);
    grpc::Status s = Create("fresh", bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("expected"));
    s = Update("good", bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    s = Put("good", bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    s = Validate(bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  }
  ExpectGoodStateIntact();
}

TEST_F(HostileInputTest, InvalidDtabIsBadRequestOnNamerdHttpPostAndPut) {
  HttpResponse r = Http("POST", "/api/1/dtabs/fresh", "/a=>");
  EXPECT_EQ(r.status, 400) << r;
  EXPECT_THAT(r.body, HasSubstr("expected but end of input found"));
  r = Http("PUT", "/api/1/dtabs/good", "/a=>/b!");
  EXPECT_EQ(r.status, 400) << r;
  r = Http("PUT", "/api/1/dtabs/good", R"([{"prefix":"/a","dst":"/b |"}])",
           {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 400) << r;
  r = Http("PUT", "/api/1/dtabs/good", "[{\"prefix\":", {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 400) << r;
  ExpectGoodStateIntact();
}

TEST_F(HostileInputTest, InvalidDtabFailsDtabctlApplyAndValidateWithExitTwo) {
  CliRun r = Dtabctl({"apply", "good", "-f", "-"}, "/a=>");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("expected but end of input found"));
  r = Dtabctl({"validate", "-f", "-"}, "/a=>/b;(");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("invalid dtab"));
  r = Dtabctl({"create", "fresh", "-f", "-"}, "nonsense");
  EXPECT_EQ(r.code, 2) << r.err;
  ExpectGoodStateIntact();
}

// --- Invalid namespace names -------------------------------------------------

TEST_F(HostileInputTest, InvalidNamespaceIsRejectedByGrpcHttpAndDtabctl) {
  const std::vector<std::string> bad = {"",    std::string(129, 'n'), "../x", "a/b",
                                        std::string("a\0b", 3), "caf\xc3\xa9", "a b", "."};
  for (const std::string& ns : bad) {
    SCOPED_TRACE(absl::CHexEscape(ns));
    grpc::Status s = Create(ns, "/a=>/b");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("namespace"));
    s = Put(ns, "/a=>/b");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  }

  // HTTP: the namespace is a path segment, percent-encoded.
  for (const std::string& target :
       {"/api/1/dtabs/" + std::string(129, 'n'), std::string("/api/1/dtabs/..%2Fx"),
        std::string("/api/1/dtabs/a%00b"), std::string("/api/1/dtabs/caf%C3%A9"),
        std::string("/api/1/dtabs/a%20b"), std::string("/api/1/dtabs/%FF")}) {
    SCOPED_TRACE(target);
    HttpResponse r = Http("POST", target, "/a=>/b");
    EXPECT_EQ(r.status, 400) << r;
    r = Http("PUT", target, "/a=>/b");
    EXPECT_EQ(r.status, 400) << r;
  }

  // dtabctl: the same names as arguments (NUL cannot be an argument).
  for (const std::string& ns : {std::string(129, 'n'), std::string("../x"),
                               std::string("caf\xc3\xa9"), std::string("a b")}) {
    SCOPED_TRACE(ns);
    CliRun r = Dtabctl({"apply", ns, "-f", "-"}, "/a=>/b");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr("namespace"));
  }
  ExpectGoodStateIntact();
}

// --- Oversized bodies and headers ---------------------------------------------

TEST_F(HostileInputTest, OversizedHttpBodyIs413AndOversizedHeaderIs431) {
  HttpResponse r = Http("PUT", "/api/1/dtabs/good",
                        absl::StrCat("/a=>/b # ", std::string(2 << 20, 'x')));
  EXPECT_EQ(r.status, 413) << r.status << " " << r.body.substr(0, 200);
  r = Http("GET", "/api/1/dtabs/good", "", {{"X-Big", std::string(70 << 10, 'h')}});
  EXPECT_EQ(r.status, 431) << r.status << " " << r.body.substr(0, 200);
  r = Http("GET", absl::StrCat("/api/1/dtabs/good?", std::string(70 << 10, 'q')), "");
  EXPECT_EQ(r.status, 431) << r.status << " " << r.body.substr(0, 200);
  ExpectGoodStateIntact();
}

TEST_F(HostileInputTest, OversizedGrpcMessageIsResourceExhausted) {
  // Over gRPC's default 4 MiB receive limit.
  const std::string huge = absl::StrCat("/a=>/b # ", std::string(5 << 20, 'x'));
  grpc::Status s = Put("good", huge);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  s = Validate(huge);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  ExpectGoodStateIntact();
}

// --- Pathological dtabs -------------------------------------------------------

TEST_F(HostileInputTest, TenThousandDeepParenthesesAreRejectedNotACrash) {
  const std::string deep = absl::StrCat("/x=>", Nested(10'000));
  grpc::Status s = Put("good", deep);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("nested deeper than"));
  EXPECT_LT(s.error_message().size(), 4096u) << "the message quotes the whole input";
  s = Validate(deep);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  HttpResponse r = Http("PUT", "/api/1/dtabs/good", deep);
  EXPECT_EQ(r.status, 400) << r.status;
  EXPECT_THAT(r.body, HasSubstr("nested deeper than"));
  CliRun run = Dtabctl({"validate", "-f", "-"}, deep);
  EXPECT_EQ(run.code, 2) << run.err.substr(0, 300);
  ExpectGoodStateIntact();
}

TEST_F(HostileInputTest, HundredThousandAlternativesAreHandledWithinBounds) {
  // 100,000 alternatives (789 KB): under every size limit, so it is a
  // valid dtab; it must validate and store intact, fast, without harm.
  const std::string wide = ManyAlternatives(100'000);
  const auto start = std::chrono::steady_clock::now();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  v1::ValidateDtabRequest req;
  req.set_dtab(wide);
  v1::ValidateDtabResponse got;
  grpc::Status s = stub_->ValidateDtab(&ctx, req, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.dentries(), 1);
  EXPECT_EQ(got.canonical(), wide);
  s = Put("wide", wide);
  ASSERT_TRUE(s.ok()) << s.error_message();
  grpc::ClientContext gctx;
  gctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  v1::GetDtabRequest greq;
  greq.set_namespace_("wide");
  v1::VersionedDtab stored;
  s = stub_->GetDtab(&gctx, greq, &stored);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stored.dtab(), wide);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  // Over HTTP the same text is 789 KB, under the 1 MiB body limit.
  HttpResponse r = Http("PUT", "/api/1/dtabs/wide", wide);
  EXPECT_EQ(r.status, 204) << r.status << " " << r.body.substr(0, 200);
  // Clean up so that the good-state check (one namespace) still holds.
  grpc::ClientContext dctx;
  dctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  v1::DeleteDtabRequest dreq;
  dreq.set_namespace_("wide");
  s = stub_->DeleteDtab(&dctx, dreq, &stored);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ExpectGoodStateIntact();
}

TEST_F(HostileInputTest, OverflowingWeightsAreInvalidArgument) {
  const std::string huge(400, '9');
  for (const std::string& bad : {absl::StrCat("/x=>", huge, "*/a & /b"),
                                absl::StrCat("/x=>/a & ", huge, ".0*/b"),
                                std::string("/x=>1e400*/a & /b"),
                                std::string("/x=>1e-400*/a & /b")}) {
    SCOPED_TRACE(bad.substr(0, 40));
    grpc::Status s = Validate(bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    s = Put("good", bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    HttpResponse r = Http("PUT", "/api/1/dtabs/good", bad);
    EXPECT_EQ(r.status, 400) << r;
    EXPECT_THAT(r.body, Not(HasSubstr("Infinity")));
  }
  // The largest finite weights are fine and print back parseably.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  v1::ValidateDtabRequest req;
  req.set_dtab(absl::StrCat("/x=>", std::string(308, '9'), "*/a & /b"));
  v1::ValidateDtabResponse got;
  ASSERT_TRUE(stub_->ValidateDtab(&ctx, req, &got).ok());
  EXPECT_THAT(got.canonical(), Not(HasSubstr("Infinity")));
  EXPECT_TRUE(Validate(got.canonical()).ok()) << got.canonical().substr(0, 80);
  ExpectGoodStateIntact();
}

TEST_F(HostileInputTest, NonUtf8BytesAreRejectedInDtabsAndComments) {
  for (const std::string& bad : {std::string("/x=>/\xff\xfe"), std::string("# \xff\n/x=>/a"),
                                std::string("/x=>/a # caf\xc3\x28\n"),
                                std::string("/x=>/a # \xed\xa0\x80")}) {
    SCOPED_TRACE(absl::CHexEscape(bad));
    // namerd HTTP: the body is bytes, so the parser sees them.
    HttpResponse r = Http("PUT", "/api/1/dtabs/good", bad);
    EXPECT_EQ(r.status, 400) << r;
    r = Http("POST", "/api/1/dtabs/fresh", bad);
    EXPECT_EQ(r.status, 400) << r;
    // dtabctl: refused before anything is sent.
    CliRun run = Dtabctl({"apply", "good", "-f", "-"}, bad);
    EXPECT_EQ(run.code, 2) << run.err;
    EXPECT_THAT(run.err, HasSubstr("UTF-8"));
    run = Dtabctl({"validate", "-f", "-"}, bad);
    EXPECT_EQ(run.code, 2) << run.err;
    // gRPC: protobuf strings must be UTF-8; a client that sends raw bytes
    // anyway gets an error (the request does not decode), never a write.
    grpc::Status s = Put("good", bad);
    EXPECT_FALSE(s.ok());
  }
  // UTF-8 comments are fine and come back as written.
  const std::string utf8 = "# caf\xc3\xa9 \xe2\x82\xac\n/x=>/a";
  HttpResponse r = Http("PUT", "/api/1/dtabs/utf8", utf8);
  EXPECT_EQ(r.status, 204) << r;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  v1::DeleteDtabRequest dreq;
  dreq.set_namespace_("utf8");
  v1::VersionedDtab deleted;
  grpc::Status s = stub_->DeleteDtab(&ctx, dreq, &deleted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ExpectGoodStateIntact();
}

// --- Garbage on the gRPC port ---------------------------------------------------

// Connects to `address` ("127.0.0.1:PORT"), sends `bytes`, then reads
// until the peer closes or `timeout` passes; returns what was read.
std::string RawExchange(const std::string& address, absl::string_view bytes,
                        std::chrono::milliseconds timeout, bool half_close = true) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    ADD_FAILURE() << "bad address " << address;
    return "";
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    ADD_FAILURE() << "connect " << address << ": " << std::strerror(errno);
    if (fd >= 0) {
      close(fd);
    }
    return "";
  }
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      break;  // the server may close early: fine
    }
    sent += static_cast<size_t>(n);
  }
  if (half_close) {
    shutdown(fd, SHUT_WR);
  }
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      break;
    }
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return got;
}

constexpr absl::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// An HTTP/2 frame header: 24-bit length, type, flags, 31-bit stream id.
std::string FrameHeader(uint32_t length, uint8_t type, uint8_t flags, uint32_t stream) {
  std::string h(9, '\0');
  h[0] = static_cast<char>(length >> 16);
  h[1] = static_cast<char>(length >> 8);
  h[2] = static_cast<char>(length);
  h[3] = static_cast<char>(type);
  h[4] = static_cast<char>(flags);
  h[5] = static_cast<char>(stream >> 24);
  h[6] = static_cast<char>(stream >> 16);
  h[7] = static_cast<char>(stream >> 8);
  h[8] = static_cast<char>(stream);
  return h;
}

TEST_F(HostileInputTest, GarbageAndTruncatedGrpcFramesLeaveDtabdServing) {
  const std::string addr = dtabd_->grpc_address();
  const std::string settings = FrameHeader(0, 0x4, 0, 0);
  std::vector<std::pair<std::string, std::string>> inputs = {
      {"http/1.1 request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"random bytes", std::string(4096, '\xa5')},
      {"truncated preface", std::string(kPreface.substr(0, 10))},
      {"preface, then a frame header cut short", absl::StrCat(kPreface, settings.substr(0, 5))},
      {"preface, settings, then a 16 MiB frame announced and cut",
       absl::StrCat(kPreface, settings, FrameHeader(0xffffff, 0x0, 0, 1), "abc")},
      {"HEADERS on stream 0", absl::StrCat(kPreface, settings, FrameHeader(4, 0x1, 0x4, 0),
                                           "\x82\x86\x84\x41")},
      {"HEADERS with garbage HPACK",
       absl::StrCat(kPreface, settings, FrameHeader(8, 0x1, 0x4 | 0x1, 1), std::string(8, '\xff'))},
      {"unknown frame types and a bad WINDOW_UPDATE",
       absl::StrCat(kPreface, settings, FrameHeader(3, 0xee, 0, 1), "xyz",
                    FrameHeader(4, 0x8, 0, 0), std::string(4, '\0'))},
      {"DATA on a stream never opened",
       absl::StrCat(kPreface, settings, FrameHeader(5, 0x0, 0x1, 7),
                    std::string("\0\0\0\0\xff", 5))},
  };
  for (const auto& [what, bytes] : inputs) {
    SCOPED_TRACE(what);
    // Each exchange ends when dtabd closes (a GOAWAY or reset) or after the
    // timeout; what matters is what happens next.
    (void)RawExchange(addr, bytes, std::chrono::milliseconds(500));
    EXPECT_EQ(Validate("/a=>/b").error_code(), grpc::StatusCode::OK);
  }
  // A gRPC message framed inside a valid HTTP/2 stream, but whose
  // 5-byte gRPC prefix announces more than arrives (truncated message),
  // or whose payload is not a protobuf: sent through a generic stub.
  grpc::GenericStub generic(
      grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
  for (const std::string& payload : {std::string("\xff\xff\xff\xff\xff\xff"),
                                    std::string("\x0a\x80\x80\x80\x80\x80\x80"),
                                    std::string("\x0a\x05/a=>")}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    grpc::Slice slice(payload.data(), payload.size());
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::Status s;
    bool done = false;
    absl::Mutex mu;
    generic.UnaryCall(&ctx, "/dtabd.v1.DtabService/PutDtab", grpc::StubOptions(), &request,
                      &response, [&](grpc::Status st) {
                        absl::MutexLock lock(&mu);
                        s = std::move(st);
                        done = true;
                      });
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&done));
    EXPECT_FALSE(s.ok()) << absl::CHexEscape(payload);
  }
  ExpectGoodStateIntact();
  EXPECT_GT(dtabd_->pid(), 0);
}

}  // namespace
}  // namespace dtabd::integration
