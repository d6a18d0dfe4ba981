#include "examples/hello-world/outbound_client.h"

#include <chrono>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace dtabd::examples {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

beast::string_view ToBeast(absl::string_view s) { return beast::string_view(s.data(), s.size()); }

// Parses "IP:PORT" ("[IPv6]:PORT" too).
absl::StatusOr<tcp::endpoint> ParseEndpoint(absl::string_view address) {
  const size_t colon = address.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port == 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "': expected IP:PORT, e.g. 127.0.0.1:4140"));
  }
  absl::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code ec;
  const net::ip::address ip = net::ip::make_address(std::string(host), ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "': '", host, "' is not an IP address"));
  }
  return tcp::endpoint(ip, static_cast<unsigned short>(port));
}

// One call: connect, write the request, read the response, then `done_`.
// Kept alive by the shared_from_this() in its pending handlers; all of its
// handlers run on the client's io thread.
class Call : public std::enable_shared_from_this<Call> {
 public:
  Call(net::io_context& ioc, const OutboundClient::Options& options, tcp::endpoint endpoint,
       bhttp::request<bhttp::empty_body> request, OutboundClient::Callback done)
      : options_(options),
        endpoint_(endpoint),
        stream_(ioc),
        request_(std::move(request)),
        done_(std::move(done)) {
    parser_.body_limit(options_.max_body_bytes);
  }

  void Start() {
    stream_.expires_after(std::chrono::microseconds(absl::ToInt64Microseconds(options_.timeout)));
    stream_.async_connect(
        endpoint_, [self = shared_from_this()](beast::error_code ec) { self->OnConnect(ec); });
  }

 private:
  void OnConnect(beast::error_code ec) {
    if (ec) {
      return Fail("connect", ec);
    }
    bhttp::async_write(
        stream_, request_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) {
      return Fail("send request", ec);
    }
    bhttp::async_read(
        stream_, buffer_, parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) {
      return Fail("read response", ec);
    }
    OutboundResponse response;
    response.status = static_cast<int>(parser_.get().result_int());
    response.body = std::move(parser_.get().body());
    Finish(std::move(response));
  }

  void Fail(absl::string_view what, beast::error_code ec) {
    if (ec == beast::error::timeout) {
      return Finish(absl::DeadlineExceededError(
          absl::StrCat(what, " ", options_.address, ": no answer within ",
                       absl::FormatDuration(options_.timeout))));
    }
    Finish(absl::UnavailableError(absl::StrCat(what, " ", options_.address, ": ", ec.message())));
  }

  void Finish(absl::StatusOr<OutboundResponse> result) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    done_(std::move(result));
  }

  const OutboundClient::Options& options_;  // owned by the client, which outlives every call
  const tcp::endpoint endpoint_;
  beast::tcp_stream stream_;
  bhttp::request<bhttp::empty_body> request_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
  OutboundClient::Callback done_;
};

}  // namespace

class OutboundClient::Impl {
 public:
  Impl(Options options, tcp::endpoint endpoint)
      : options_(std::move(options)),
        endpoint_(endpoint),
        work_(net::make_work_guard(ioc_)),
        thread_([this] { ioc_.run(); }) {}

  ~Impl() {
    // Pending calls are destroyed with ioc_, their callbacks unrun.
    ioc_.stop();
    thread_.join();
  }

  void Get(std::string host, http::HeaderList headers, Callback done) {
    bhttp::request<bhttp::empty_body> request(bhttp::verb::get, "/", 11);
    request.set(bhttp::field::host, ToBeast(host));
    request.set(bhttp::field::user_agent, "dtabd-hello-world-example");
    for (const auto& [name, value] : headers) {
      request.insert(ToBeast(name), ToBeast(value));
    }
    net::post(ioc_, [this, request = std::move(request), done = std::move(done)]() mutable {
      std::make_shared<Call>(ioc_, options_, endpoint_, std::move(request), std::move(done))
          ->Start();
    });
  }

  const std::string& address() const { return options_.address; }

 private:
  // Immutable after construction.
  const Options options_;
  const tcp::endpoint endpoint_;
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;  // keeps run() going
  std::thread thread_;  // last: starts after the members above exist
};

absl::StatusOr<std::unique_ptr<OutboundClient>> OutboundClient::Start(Options options) {
  absl::StatusOr<tcp::endpoint> endpoint = ParseEndpoint(options.address);
  if (!endpoint.ok()) {
    return endpoint.status();
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be positive");
  }
  return std::unique_ptr<OutboundClient>(
      new OutboundClient(std::make_unique<Impl>(std::move(options), *endpoint)));
}

OutboundClient::OutboundClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

OutboundClient::~OutboundClient() = default;

void OutboundClient::Get(std::string host, http::HeaderList headers, Callback done) {
  impl_->Get(std::move(host), std::move(headers), std::move(done));
}

const std::string& OutboundClient::address() const { return impl_->address(); }

}  // namespace dtabd::examples
