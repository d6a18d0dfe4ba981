// Test helpers for TLS: a throwaway self-signed certificate made with the
// `openssl` command-line tool, and a one-shot HTTPS client on Asio's TLS
// stream that verifies the server against a given root certificate.
// Header-only; users link Boost::headers and OpenSSL::SSL.
#ifndef DTABD_TESTS_TESTING_TLS_H_
#define DTABD_TESTS_TESTING_TLS_H_

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace dtabd::tls_testing {

// A self-signed certificate for CN=localhost with subjectAltNames
// DNS:localhost and IP:127.0.0.1, in a temporary directory removed by the
// destructor.
class SelfSignedCert {
 public:
  // Internal: the directory or the openssl run failed.
  static absl::StatusOr<SelfSignedCert> Create() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dtabd-tls-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      return absl::InternalError("mkdtemp failed");
    }
    SelfSignedCert c;
    c.dir_ = tmpl;
    const std::string cmd = absl::StrCat(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2",
        " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1",
        " -keyout '", c.key_path(), "' -out '", c.cert_path(), "' 2>'", c.dir_,
        "/openssl.err'");
    if (std::system(cmd.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("openssl failed: ", Slurp(c.dir_ + "/openssl.err")));
    }
    c.cert_pem_ = Slurp(c.cert_path());
    c.key_pem_ = Slurp(c.key_path());
    if (c.cert_pem_.empty() || c.key_pem_.empty()) {
      return absl::InternalError("openssl wrote no certificate or key");
    }
    return c;
  }

  SelfSignedCert(SelfSignedCert&& o) noexcept
      : dir_(std::move(o.dir_)), cert_pem_(std::move(o.cert_pem_)), key_pem_(std::move(o.key_pem_)) {
    o.dir_.clear();
  }
  SelfSignedCert& operator=(SelfSignedCert&&) = delete;
  SelfSignedCert(const SelfSignedCert&) = delete;
  ~SelfSignedCert() {
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  std::string cert_path() const { return dir_ + "/cert.pem"; }
  std::string key_path() const { return dir_ + "/key.pem"; }
  const std::string& cert_pem() const { return cert_pem_; }
  const std::string& key_pem() const { return key_pem_; }

 private:
  SelfSignedCert() = default;

  static std::string Slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
  }

  std::string dir_;
  std::string cert_pem_;
  std::string key_pem_;
};

// Connects to 127.0.0.1:`port` over TLS, verifying the server's
// certificate for host "localhost" against `ca_pem`, sends `request`
// (which should ask for `Connection: close`) and returns everything read
// until the server closes. Unavailable on connect, handshake (including
// verification) or I/O errors. Reads are bounded by `timeout_s` seconds.
inline absl::StatusOr<std::string> HttpsExchange(int port, const std::string& ca_pem,
                                                 const std::string& request, int timeout_s = 10) {
  namespace net = boost::asio;
  using tcp = net::ip::tcp;
  boost::system::error_code ec;
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.add_certificate_authority(net::buffer(ca_pem), ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("bad ca: ", ec.message()));
  }
  ctx.set_verify_mode(net::ssl::verify_peer, ec);
  net::ssl::stream<tcp::socket> s(ioc, ctx);
  s.set_verify_callback(net::ssl::host_name_verification("localhost"), ec);
  SSL_set_tlsext_host_name(s.native_handle(), "localhost");
  s.next_layer().connect(
      tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), static_cast<unsigned short>(port)), ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("connect: ", ec.message()));
  }
  timeval tv{};
  tv.tv_sec = timeout_s;
  setsockopt(s.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  s.handshake(net::ssl::stream_base::client, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("handshake: ", ec.message()));
  }
  net::write(s, net::buffer(request), ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("write: ", ec.message()));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    size_t n = s.read_some(net::buffer(buf), ec);
    out.append(buf, n);
    if (ec == net::error::eof || ec == net::ssl::error::stream_truncated) {
      return out;
    }
    if (ec) {
      return absl::UnavailableError(absl::StrCat("read: ", ec.message(), " after '", out, "'"));
    }
  }
}

}  // namespace dtabd::tls_testing

#endif  // DTABD_TESTS_TESTING_TLS_H_
