#include "http/server.h"

#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "http/internal/connection.h"
#include "http/internal/wire.h"

namespace dtabd::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;

//------------------------------------------------------------------------------
// Request, Response, Responder

const std::string* Request::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) {
      return &value;
    }
  }
  return nullptr;
}

const std::string* Request::Query(absl::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) {
      return &value;
    }
  }
  return nullptr;
}

Response Response::Text(int status, std::string body) {
  return Response{.status = status,
                  .headers = {{"Content-Type", "text/plain; charset=utf-8"}},
                  .body = std::move(body)};
}

Responder::Responder(std::shared_ptr<internal::ResponderState> state) : state_(std::move(state)) {}

Responder::~Responder() = default;

bool Responder::Send(Response response) const { return state_->Send(std::move(response)); }

std::shared_ptr<Stream> Responder::StartStream(int status, HeaderList headers) const {
  return state_->StartStream(status, std::move(headers));
}

//------------------------------------------------------------------------------
// Server::Impl

// Owns the io_context, the acceptor and the io threads.
//
// Invariants: after Bind() succeeded the acceptor is open and listening;
// after Shutdown() the io_context, acceptor and threads are gone.
class Server::Impl {
 public:
  Impl(const Options& options, Handler handler, std::unique_ptr<net::ssl::context> tls)
      : core_(std::make_shared<internal::Core>(options, std::move(handler), std::move(tls))),
        ioc_(std::make_unique<net::io_context>(options.threads)),
        accept_strand_(net::make_strand(*ioc_)),
        acceptor_(std::make_unique<tcp::acceptor>(*accept_strand_)),
        backoff_timer_(std::make_unique<net::steady_timer>(*accept_strand_)) {}

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() { Shutdown(); }

  // Resolves and binds the address and starts listening.
  absl::Status Bind();
  // Starts the io threads and accepting. REQUIRES: Bind() succeeded.
  void Run();
  void Shutdown() ABSL_LOCKS_EXCLUDED(shutdown_mu_);

  // Immutable after Bind().
  std::string address_;
  int port_ = 0;

 private:
  void Accept();
  void OnAccept(const error_code& ec, tcp::socket socket);

  const std::shared_ptr<internal::Core> core_;

  // Created in the constructor, destroyed by Shutdown(): everything that
  // refers to the io_context (strands included) before it. The acceptor and
  // backoff timer are used on accept_strand_ only.
  std::unique_ptr<net::io_context> ioc_;
  std::optional<net::strand<net::io_context::executor_type>> accept_strand_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<net::steady_timer> backoff_timer_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;

  absl::Mutex shutdown_mu_;  // serialises Shutdown()
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

absl::Status Server::Impl::Bind() {
  const Options& options = core_->options;
  absl::StatusOr<internal::HostPort> hp = internal::SplitHostPort(options.address);
  if (!hp.ok()) {
    return hp.status();
  }
  error_code ec;
  tcp::endpoint endpoint;
  net::ip::address ip = net::ip::make_address(hp->host.c_str(), ec);
  if (!ec) {
    endpoint = tcp::endpoint(ip, static_cast<unsigned short>(hp->port));
  } else {
    tcp::resolver resolver(*ioc_);
    tcp::resolver::results_type results =
        resolver.resolve(hp->host, std::to_string(hp->port),
                         tcp::resolver::numeric_service | tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("address '", absl::CEscape(options.address), "': cannot resolve host '",
                       absl::CEscape(hp->host), "': ", ec ? ec.message() : "no addresses"));
    }
    endpoint = results.begin()->endpoint();
  }

  auto fail = [&](absl::string_view what) {
    return absl::UnavailableError(absl::StrCat("address '", absl::CEscape(options.address),
                                               "': ", what, ": ", ec.message()));
  };
  acceptor_->open(endpoint.protocol(), ec);
  if (ec) {
    return fail("cannot open socket");
  }
  acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) {
    return fail("cannot set SO_REUSEADDR");
  }
  acceptor_->bind(endpoint, ec);
  if (ec) {
    return fail("cannot bind");
  }
  acceptor_->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail("cannot listen");
  }
  tcp::endpoint local = acceptor_->local_endpoint(ec);
  if (ec) {
    return fail("cannot read the bound address");
  }
  port_ = local.port();
  address_ = internal::FormatEndpoint(local);
  return absl::OkStatus();
}

void Server::Impl::Run() {
  work_.emplace(ioc_->get_executor());
  net::post(*accept_strand_, [this] { Accept(); });
  threads_.reserve(static_cast<size_t>(core_->options.threads));
  for (int i = 0; i < core_->options.threads; ++i) {
    threads_.emplace_back([ioc = ioc_.get()] { ioc->run(); });
  }
}

void Server::Impl::Accept() {
  acceptor_->async_accept(net::make_strand(*ioc_),
                          [this](const error_code& ec, tcp::socket socket) {
                            OnAccept(ec, std::move(socket));
                          });
}

void Server::Impl::OnAccept(const error_code& ec, tcp::socket socket) {
  if (!acceptor_->is_open() || ec == net::error::operation_aborted) {
    return;  // shutting down
  }
  if (ec) {
    // E.g. EMFILE: retry later rather than spin on the same error.
    backoff_timer_->expires_after(std::chrono::milliseconds(50));
    backoff_timer_->async_wait([this](const error_code& wait_ec) {
      if (!wait_ec && acceptor_->is_open()) {
        Accept();
      }
    });
    return;
  }
  // Not make_shared: weak_ptrs held by user code (Responder, Stream) must
  // not keep the connection's buffers allocated.
  std::shared_ptr<internal::Connection> conn(new internal::Connection(core_, std::move(socket)));
  if (core_->Register(conn)) {
    net::post(conn->executor(), [conn] { conn->Start(); });
  }
  Accept();
}

void Server::Impl::Shutdown() {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) {
    return;
  }
  shut_down_ = true;

  // 1. Stop accepting; ask every connection to wind down.
  net::post(*accept_strand_, [this] {
    error_code ec;
    acceptor_->close(ec);
    backoff_timer_->cancel();
  });
  for (const std::shared_ptr<internal::Connection>& conn : core_->Stop()) {
    net::post(conn->executor(), [conn] { conn->BeginShutdown(); });
  }

  // 2. Let in-flight responses finish. Without io threads (Start failed)
  // nothing could progress.
  if (!threads_.empty()) {
    core_->AwaitNoConnections(core_->options.shutdown_grace);
  }

  // 3. Stop the io threads.
  work_.reset();
  ioc_->stop();
  for (std::thread& t : threads_) {
    t.join();
  }
  threads_.clear();

  // 4. Close what is left (ends streams, runs their OnClose callbacks).
  for (const std::shared_ptr<internal::Connection>& conn : core_->Snapshot()) {
    conn->ForceClose();
  }

  // 5. From here on Responders and Streams held by user code do nothing.
  {
    absl::WriterMutexLock gate_lock(&core_->gate->mu);
    core_->gate->open = false;
  }

  // 6. Destroying the io_context destroys the handlers still queued, and
  // with them the last connections.
  backoff_timer_.reset();
  acceptor_.reset();
  accept_strand_.reset();
  ioc_.reset();
}

//------------------------------------------------------------------------------
// TLS

namespace {

// The OpenSSL reason for `ec`, e.g. "no start line".
std::string TlsReason(const error_code& ec) {
  std::string msg = ec.message();
  return msg.empty() ? "unknown error" : msg;
}

// A server TLS context for `options`, or null when TLS is off.
absl::StatusOr<std::unique_ptr<net::ssl::context>> MakeTlsContext(const Server::Options& options) {
  if (options.tls_cert_pem.empty() && options.tls_key_pem.empty()) {
    return std::unique_ptr<net::ssl::context>();
  }
  if (options.tls_cert_pem.empty() || options.tls_key_pem.empty()) {
    return absl::InvalidArgumentError(
        "http server: tls_cert_pem and tls_key_pem must be set together");
  }
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
  error_code ec;
  ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                       net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                       net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use,
                   ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("http server: tls options: ", TlsReason(ec)));
  }
  ctx->use_certificate_chain(net::buffer(options.tls_cert_pem), ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("http server: tls certificate: ", TlsReason(ec)));
  }
  ctx->use_private_key(net::buffer(options.tls_key_pem), net::ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("http server: tls key: ", TlsReason(ec)));
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return absl::InvalidArgumentError(
        "http server: tls key does not match the certificate");
  }
  return ctx;
}

}  // namespace

//------------------------------------------------------------------------------
// Server

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const Options& options, Handler handler) {
  if (options.threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("http server: threads must be >= 1, got ", options.threads));
  }
  if (options.max_header_bytes < 1 || options.max_header_bytes > 65536) {
    return absl::InvalidArgumentError(absl::StrCat(
        "http server: max_header_bytes must be in 1..65536, got ", options.max_header_bytes));
  }
  if (handler == nullptr) {
    return absl::InvalidArgumentError("http server: no handler");
  }
  absl::StatusOr<std::unique_ptr<net::ssl::context>> tls = MakeTlsContext(options);
  if (!tls.ok()) {
    return tls.status();
  }
  auto impl = std::make_unique<Impl>(options, std::move(handler), *std::move(tls));
  if (absl::Status s = impl->Bind(); !s.ok()) {
    return s;
  }
  impl->Run();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(); }

std::string Server::address() const { return impl_->address_; }

int Server::port() const { return impl_->port_; }

void Server::Shutdown() { impl_->Shutdown(); }

}  // namespace dtabd::http
