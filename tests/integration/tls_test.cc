// dtabd with --tls-cert/--tls-key: TLS on every listener. gRPC through
// grpc::SslCredentials trusting the (self-signed, made at test time)
// certificate, the namerd HTTP API and the admin endpoints over HTTPS, and
// dtabctl --tls-ca against the gRPC listener.
#include <grpcpp/grpcpp.h>
#include <stdio.h>
#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "dtabd/v1/dtab.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/dtabd_process.h"
#include "tests/testing/tls.h"

namespace dtabd::integration {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr auto kRpcDeadline = std::chrono::seconds(10);

int PortOf(const std::string& address) {
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) << address;
  return port;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<tls_testing::SelfSignedCert> cert = tls_testing::SelfSignedCert::Create();
    ASSERT_TRUE(cert.ok()) << cert.status();
    cert_ = std::make_unique<tls_testing::SelfSignedCert>(*std::move(cert));
    DtabdProcess::Options options;
    options.extra_args = {"--tls-cert", cert_->cert_path(), "--tls-key", cert_->key_path()};
    absl::StatusOr<std::unique_ptr<DtabdProcess>> dtabd = DtabdProcess::Start(options);
    ASSERT_TRUE(dtabd.ok()) << dtabd.status();
    dtabd_ = *std::move(dtabd);
  }

  // A stub over TLS trusting the test certificate; the channel targets
  // "localhost:PORT" so the certificate's name matches.
  std::unique_ptr<v1::DtabService::Stub> TlsStub() {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = cert_->cert_pem();
    auto channel = grpc::CreateChannel(
        absl::StrCat("localhost:", PortOf(dtabd_->grpc_address())), grpc::SslCredentials(ssl));
    return v1::DtabService::NewStub(channel);
  }

  std::unique_ptr<tls_testing::SelfSignedCert> cert_;
  std::unique_ptr<DtabdProcess> dtabd_;
};

TEST_F(TlsTest, GrpcWorksOverTls) {
  auto stub = TlsStub();
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    v1::CreateDtabRequest req;
    req.set_namespace_("tls");
    req.set_dtab("/a => /b;");
    v1::VersionedDtab out;
    grpc::Status s = stub->CreateDtab(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(out.version(), 1);
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    v1::GetDtabRequest req;
    req.set_namespace_("tls");
    v1::VersionedDtab out;
    grpc::Status s = stub->GetDtab(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(out.namespace_(), "tls");
    EXPECT_EQ(out.version(), 1);
  }
}

TEST_F(TlsTest, PlaintextGrpcClientIsRefused) {
  auto stub = v1::DtabService::NewStub(
      grpc::CreateChannel(dtabd_->grpc_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::GetDtabRequest req;
  req.set_namespace_("tls");
  v1::VersionedDtab out;
  EXPECT_FALSE(stub->GetDtab(&ctx, req, &out).ok());
}

TEST_F(TlsTest, NamerdHttpApiAndAdminServeHttps) {
  {
    auto stub = TlsStub();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    v1::CreateDtabRequest req;
    req.set_namespace_("over-https");
    req.set_dtab("/a => /b;");
    v1::VersionedDtab out;
    grpc::Status s = stub->CreateDtab(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  absl::StatusOr<std::string> got = tls_testing::HttpsExchange(
      PortOf(dtabd_->http_address()), cert_->cert_pem(),
      "GET /api/1/dtabs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, StartsWith("HTTP/1.1 200 "));
  EXPECT_THAT(*got, HasSubstr("over-https"));

  absl::StatusOr<std::string> ready = tls_testing::HttpsExchange(
      PortOf(dtabd_->admin_address()), cert_->cert_pem(),
      "GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_THAT(*ready, StartsWith("HTTP/1.1 200 "));
}

// Runs dtabctl with `args` (shell-quoted by the caller); returns its exit
// code and stdout+stderr.
std::pair<int, std::string> RunDtabctl(const std::string& args, const std::string& env = "") {
  const std::string cmd = absl::StrCat(env, " '", DTABCTL_PATH, "' ", args, " 2>&1");
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) {
    return {-1, "popen failed"};
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
    out.append(buf, n);
  }
  int status = pclose(f);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_F(TlsTest, DtabctlWithTlsCaListsNamespaces) {
  {
    auto stub = TlsStub();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    v1::CreateDtabRequest req;
    req.set_namespace_("ctl");
    req.set_dtab("/a => /b;");
    v1::VersionedDtab out;
    grpc::Status s = stub->CreateDtab(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const std::string server = absl::StrCat("localhost:", PortOf(dtabd_->grpc_address()));
  auto [code, out] =
      RunDtabctl(absl::StrCat("--server ", server, " --tls-ca '", cert_->cert_path(), "' list"));
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("ctl"));

  // The environment variable, and the server-name override with an IP.
  std::tie(code, out) = RunDtabctl(
      absl::StrCat("--server ", dtabd_->grpc_address(), " --tls-server-name localhost list"),
      absl::StrCat("DTABD_TLS_CA='", cert_->cert_path(), "'"));
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("ctl"));

  // Without --tls-ca the plaintext channel cannot talk to a TLS server.
  std::tie(code, out) = RunDtabctl(absl::StrCat("--server ", server, " --timeout 2s list"));
  EXPECT_EQ(code, 6) << out;
}

TEST(TlsStartupTest, KeyThatDoesNotMatchTheCertificateIsReportedPrecisely) {
  absl::StatusOr<tls_testing::SelfSignedCert> a = tls_testing::SelfSignedCert::Create();
  absl::StatusOr<tls_testing::SelfSignedCert> b = tls_testing::SelfSignedCert::Create();
  ASSERT_TRUE(a.ok() && b.ok());
  DtabdProcess::Options options;
  options.extra_args = {"--tls-cert", a->cert_path(), "--tls-key", b->key_path()};
  absl::StatusOr<std::unique_ptr<DtabdProcess>> dtabd = DtabdProcess::Start(options);
  ASSERT_FALSE(dtabd.ok());
  EXPECT_NE(dtabd.status().message().find("tls key: key values mismatch"),
            std::string::npos)
      << dtabd.status();
}

}  // namespace
}  // namespace dtabd::integration
