// The hostile-input table of issue 8 at dtab-proxy's router listener (the
// real binary, ProxyProcess, with an in-process echo backend): HTTP request
// smuggling shapes and hostile l5d-dtab overrides. Each smuggling row must
// be a 400 that closes the connection, and the bytes after the malformed
// framing (a second, smuggled request) must never reach the backend; each
// override row must be a clear 400 (or route normally when valid), quickly,
// with the proxy still serving. proxy_integration_test's MalformedHttpTest
// already covers a garbage request line, Content-Length with
// Transfer-Encoding, two different Content-Lengths, a non-hex chunk size
// and a header block over the limit; the rows here are the others.
//
// Nothing sleeps: each exchange waits on the proxy's answer (HttpClient
// reads with a deadline).
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backend.h"
#include "tests/testing/http_client.h"
#include "tests/testing/proxy_process.h"

namespace dtabd::proxy {
namespace {

using ::dtabd::testing::Backend;
using ::dtabd::testing::Fetch;
using ::dtabd::testing::Headers;
using ::dtabd::testing::HttpClient;
using ::dtabd::testing::HttpResponse;
using ::dtabd::testing::ProxyProcess;
using ::testing::HasSubstr;

// The request a smuggling attempt tries to slip past the proxy.
constexpr absl::string_view kSmuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";

class HostileHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Backend::Options o;
    o.name = "a";
    absl::StatusOr<std::unique_ptr<Backend>> a = Backend::StartEcho(std::move(o));
    ASSERT_TRUE(a.ok()) << a.status();
    a_ = *std::move(a);
    o = Backend::Options();
    o.name = "b";
    absl::StatusOr<std::unique_ptr<Backend>> b = Backend::StartEcho(std::move(o));
    ASSERT_TRUE(b.ok()) << b.status();
    b_ = *std::move(b);
    ProxyProcess::Options po;
    po.yaml = absl::StrCat("workers: 2\nrouters:\n  - label: out\n    dtab: \"/srv/a=>",
                           "/$/inet/127.0.0.1/", a_->port(), ";/srv/b=>/$/inet/127.0.0.1/",
                           b_->port(), ";/svc/a=>/srv/a;/svc/b=>/srv/b\"\n",
                           "    servers:\n      - {port: 0}\n");
    absl::StatusOr<std::unique_ptr<ProxyProcess>> p = ProxyProcess::Start(std::move(po));
    ASSERT_TRUE(p.ok()) << p.status();
    proxy_ = *std::move(p);
    out_ = proxy_->address("out");
  }

  void TearDown() override {
    if (HasFailure() && proxy_ != nullptr) {
      std::cerr << "--- dtab-proxy stderr:\n" << proxy_->stderr_output();
    }
  }

  // Sends `bytes` on a fresh connection and expects 400 with l5d-err, the
  // connection closed, nothing smuggled through, and the proxy serving.
  // Not `strict`: only the status and that nothing reached the backend
  // are checked (for rows the proxy rejects without l5d-err and without
  // closing; see the DISABLED_ tests below).
  void ExpectRejected(absl::string_view bytes, int status = 400, bool strict = true) {
    SCOPED_TRACE(absl::CHexEscape(bytes.substr(0, 160)));
    const size_t before = a_->request_count();
    const size_t smuggled_before = SmuggledCount();
    absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(out_);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE((*c)->SendBytes(bytes).ok());
    absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, status) << *r;
    if (strict) {
      EXPECT_NE(r->Header("l5d-err"), nullptr) << *r;
      EXPECT_TRUE((*c)->ClosedByServer()) << "the connection stays open";
    }
    c->reset();
    // A follow-up request is served: the proxy is fine, and it is the only
    // request the backend saw since.
    absl::StatusOr<HttpResponse> ok = Fetch(out_, "GET", "/after", {{"Host", "a"}});
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_EQ(ok->status, 200) << *ok;
    EXPECT_EQ(a_->request_count(), before + 1) << "the backend saw the rejected request";
    EXPECT_EQ(SmuggledCount(), smuggled_before) << "a smuggled request reached the backend";
  }

  // How many requests for /smuggled the backend has seen.
  size_t SmuggledCount() const {
    size_t n = 0;
    for (const auto& got : a_->requests()) {
      n += got.target == "/smuggled";
    }
    return n;
  }

  // GET Host: a with `extra` headers on a fresh connection.
  HttpResponse Get(Headers extra, absl::string_view host = "a") {
    Headers h = {{"Host", std::string(host)}};
    h.insert(h.end(), extra.begin(), extra.end());
    absl::StatusOr<HttpResponse> r = Fetch(out_, "GET", "/", h);
    if (!r.ok()) {
      ADD_FAILURE() << r.status();
      return HttpResponse();
    }
    return *std::move(r);
  }

  std::unique_ptr<Backend> a_;
  std::unique_ptr<Backend> b_;
  std::unique_ptr<ProxyProcess> proxy_;  // last: stopped before the backends
  std::string out_;
};

// --- Request smuggling shapes -----------------------------------------------

// KNOWN DEVIATION (reported, proxy/data_plane.cc): two equal
// Content-Lengths (as two fields or "5, 5") are taken as one length, as
// RFC 9110 section 8.6 permits; issue 8 asks for 400. The framing stays
// consistent (the bytes after the body are a pipelined request), so this is
// not a smuggling hole, but enable this once the proxy rejects them.
TEST_F(HostileHttpTest, TwoEqualContentLengthsAre400) {
  ExpectRejected(absl::StrCat("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                              "Content-Length: 5\r\n\r\nhello",
                              kSmuggled));
  ExpectRejected(absl::StrCat("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
                              kSmuggled));
}

TEST_F(HostileHttpTest, MalformedContentLengthsAre400) {
  for (const char* cl : {"+5", "-1", "5 5", "0x5", "5.0", "", "99999999999999999999999"}) {
    ExpectRejected(absl::StrCat("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ", cl,
                                "\r\n\r\nhello", kSmuggled));
  }
}

TEST_F(HostileHttpTest, TransferEncodingThenContentLengthSmuggleIs400) {
  // The reverse order of MalformedHttpTest's row, with a smuggled request
  // where a CL-framing peer would look for the next one.
  ExpectRejected(absl::StrCat("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                              "Content-Length: 4\r\n\r\n5c\r\n",
                              kSmuggled, "\r\n0\r\n\r\n"));
}

// Transfer codings the proxy cannot frame are 400 and nothing behind them
// reaches the backend.
TEST_F(HostileHttpTest, TransferEncodingOtherThanFinalChunkedIs400AndSmugglesNothing) {
  for (const char* te : {"gzip, chunked, gzip", "chunked, gzip", "gzip", "identity",
                         "chunked, chunked", "xchunked", "\"chunked\""}) {
    ExpectRejected(absl::StrCat("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ", te,
                                "\r\n\r\n0\r\n\r\n", kSmuggled),
                   400, /*strict=*/false);
  }
}

// KNOWN DEVIATION (reported, proxy/data_plane.cc): the 400s above carry no
// l5d-err and leave the connection open (the proxy goes on to parse the
// bytes after the rejected head as a new request); "chunked;q=1" is taken
// as chunked (200), and so are two Transfer-Encoding fields
// "chunked" + "gzip". Enable once the proxy closes after these errors.
TEST_F(HostileHttpTest, TransferEncodingOtherThanChunkedIs400AndCloses) {
  for (const char* te : {"gzip, chunked, gzip", "chunked, gzip", "gzip", "identity",
                         "chunked, chunked", "xchunked", "chunked;q=1", "\"chunked\""}) {
    ExpectRejected(absl::StrCat("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ", te,
                                "\r\n\r\n0\r\n\r\n", kSmuggled));
  }
  // Two Transfer-Encoding fields whose combination is not just "chunked".
  ExpectRejected(absl::StrCat("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                              "Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
                              kSmuggled));
}

TEST_F(HostileHttpTest, TeHeaderWithChunkedIsNotFramingAndIsNotForwardedAsSuch) {
  // `TE: chunked` is not Transfer-Encoding: the request has no body, and
  // the next request on the connection is a real one (not smuggled).
  absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(out_);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendBytes("GET /one HTTP/1.1\r\nHost: a\r\nTE: chunked\r\n\r\n").ok());
  absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << *r;
  EXPECT_EQ(a_->last_request().target, "/one");
  EXPECT_EQ(a_->last_request().body_size, 0u);
  // TE is hop-by-hop: "chunked" in it is meaningless to the backend.
  EXPECT_EQ(a_->last_request().Header("transfer-encoding"), nullptr);
}

// obs-fold continuation lines are answered 400 and the connection closed
// (RFC 9112 section 5.2 allows either that or unfolding; unfolding would let
// "Transfer-Encoding:\r\n chunked" frame differently here and upstream).
TEST_F(HostileHttpTest, ObsFoldHeaderContinuationIs400) {
  ExpectRejected("GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n");
  // A fold right after the request line.
  ExpectRejected("GET / HTTP/1.1\r\n Host: a\r\n\r\n");
  ExpectRejected(absl::StrCat("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\t5\r\n\r\n",
                              "hello", kSmuggled));
  ExpectRejected(absl::StrCat("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n"
                              "\r\n0\r\n\r\n",
                              kSmuggled));
}

TEST_F(HostileHttpTest, ObsFoldArrivingInALaterWriteIs400) {
  // The header is complete only with the second write: the fold is seen
  // whichever read brings it.
  absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(out_);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendBytes("GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n").ok());
  ASSERT_TRUE((*c)->SendBytes(" two\r\n\r\n").ok());
  absl::StatusOr<HttpResponse> r = (*c)->ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 400) << *r;
  EXPECT_TRUE(absl::StrContains(r->body, "obsolete line folding")) << *r;
  EXPECT_TRUE((*c)->ClosedByServer());
}

TEST_F(HostileHttpTest, WhitespaceBeforeColonAndBareLfAre400) {
  ExpectRejected(absl::StrCat("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello",
                              kSmuggled));
  ExpectRejected(absl::StrCat("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"
                              "0\r\n\r\n",
                              kSmuggled));
}

TEST_F(HostileHttpTest, BadChunkFramingIs400) {
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const std::string& body : {
           // size overflowing 64 bits, and a huge size that wraps to small
           absl::StrCat("ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
           absl::StrCat("10000000000000005\r\nhello\r\n0\r\n\r\n"),
           // negative, signed, spaces inside, empty size line
           std::string("-5\r\nhello\r\n0\r\n\r\n"), std::string("+5\r\nhello\r\n0\r\n\r\n"),
           std::string("5 5\r\nhello\r\n0\r\n\r\n"), std::string("\r\nhello\r\n0\r\n\r\n"),
           // chunk data longer than its size, missing CRLF after the data
           std::string("3\r\nhello\r\n0\r\n\r\n"), std::string("5\r\nhelloXX0\r\n\r\n"),
       }) {
    ExpectRejected(absl::StrCat(head, body, kSmuggled));
  }
}

// --- Hostile overrides ---------------------------------------------------------

TEST_F(HostileHttpTest, InvalidOverridesAre400AndNeverRoute) {
  const std::string huge(400, '9');
  for (const std::string& bad :
       {std::string("/svc/a=>"),
        absl::StrCat("/svc/a=>", std::string(5'000, '('), "/srv/b", std::string(5'000, ')')), absl::StrCat("/svc/a=>", std::string(10'000, '('), "/srv/b",
                                               std::string(10'000, ')')),
        absl::StrCat("/svc/a=>", huge, "*/srv/b & /srv/a"), std::string("/svc/a=>/srv/\xff"),
        std::string("/svc/a=>/srv/b # \xff")}) {
    SCOPED_TRACE(absl::CHexEscape(bad.substr(0, 60)));
    // (The 20 KB deep one is over the 16 KiB header block: 431.)
    HttpResponse r = Get({{"l5d-dtab", bad}});
    EXPECT_THAT(r.status, ::testing::AnyOf(400, 431)) << r.status << " " << r.body.substr(0, 200);
    EXPECT_NE(r.Header("l5d-err"), nullptr);
    r = Get({{"l5d-ctx-dtab", bad}});
    EXPECT_THAT(r.status, ::testing::AnyOf(400, 431)) << r.status << " " << r.body.substr(0, 200);
  }
  EXPECT_EQ(b_->request_count(), 0u);
  HttpResponse r = Get({{"l5d-dtab", "/svc/a=>/srv/b"}});
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(b_->request_count(), 1u);
}

TEST_F(HostileHttpTest, ThousandOverrideHeadersAreAClearErrorNotASlowPath) {
  // 1,000 valid l5d-dtab fields (19 KB): over the 16 KiB header block
  // limit, so 431 before any override is parsed.
  Headers many;
  for (int i = 0; i < 1000; ++i) {
    many.emplace_back("l5d-dtab", "/svc/a=>/srv/b");
  }
  const auto start = std::chrono::steady_clock::now();
  HttpResponse r = Get(many);
  EXPECT_THAT(r.status, ::testing::AnyOf(400, 431)) << r.status << " " << r.body.substr(0, 200);
  EXPECT_NE(r.Header("l5d-err"), nullptr);
  // 1,000 short fields under the block limit ("l5d-dtab: /a=>/b", 16
  // bytes each, 16 KB): the default override policy's limits answer.
  Headers short_many;
  for (int i = 0; i < 900; ++i) {
    short_many.emplace_back("l5d-dtab", "/a=>/b");
  }
  r = Get(short_many);
  EXPECT_THAT(r.status, ::testing::AnyOf(400, 431)) << r.status << " " << r.body.substr(0, 200);
  EXPECT_NE(r.Header("l5d-err"), nullptr);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(b_->request_count(), 0u);
  // The proxy still serves.
  r = Get({});
  EXPECT_EQ(r.status, 200) << r;
}

}  // namespace
}  // namespace dtabd::proxy
