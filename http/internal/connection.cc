#include "http/internal/connection.h"

#include <arpa/inet.h>

#include <chrono>

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "http/internal/wire.h"

namespace dtabd::http::internal {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

struct Connection::Parser {
  bhttp::request_parser<bhttp::string_body> p;
};

struct Connection::Tls {
  Tls(tcp::socket& socket, net::ssl::context& ctx) : s(socket, ctx) {}
  net::ssl::stream<tcp::socket&> s;
};

namespace {

// How long a closing connection keeps discarding input after its last
// response, so that the client reads the response before seeing a reset.
constexpr absl::Duration kLingerTime = absl::Seconds(2);

// Beast uses boost::string_view; absl::string_view is not std's on Debian 12.
absl::string_view ToAbsl(beast::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string PeerOf(const tcp::socket& socket) {
  error_code ec;
  tcp::endpoint ep = socket.remote_endpoint(ec);
  if (ec) {
    return "?";
  }
  return FormatEndpoint(ep);
}

int StatusForParseError(const error_code& ec) {
  if (ec == bhttp::error::body_limit) {
    return 413;
  }
  if (ec == bhttp::error::header_limit) {
    return 431;
  }
  return 400;
}

bool ValidStatus(int status) { return status >= 200 && status <= 599; }

// True if `headers` has a Connection header with the token "close".
bool AsksToClose(const HeaderList& headers) {
  for (const auto& [name, value] : headers) {
    if (absl::EqualsIgnoreCase(name, "connection")) {
      for (absl::string_view token : absl::StrSplit(value, ',')) {
        if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(token), "close")) {
          return true;
        }
      }
    }
  }
  return false;
}

bool IsFramingOrFixed(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "content-length") ||
         absl::EqualsIgnoreCase(name, "transfer-encoding") ||
         absl::EqualsIgnoreCase(name, "connection") || absl::EqualsIgnoreCase(name, "server") ||
         absl::EqualsIgnoreCase(name, "date");
}

}  // namespace

std::string FormatEndpoint(const tcp::endpoint& ep) {
  char buf[INET6_ADDRSTRLEN] = {};
  net::ip::address addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = net::ip::make_address_v4(net::ip::v4_mapped, addr.to_v6());
  }
  if (addr.is_v4()) {
    net::ip::address_v4::bytes_type b = addr.to_v4().to_bytes();
    if (inet_ntop(AF_INET, b.data(), buf, sizeof(buf)) == nullptr) {
      return "?";
    }
    return absl::StrCat(buf, ":", ep.port());
  }
  net::ip::address_v6::bytes_type b = addr.to_v6().to_bytes();
  if (inet_ntop(AF_INET6, b.data(), buf, sizeof(buf)) == nullptr) {
    return "?";
  }
  return absl::StrCat("[", buf, "]:", ep.port());
}

//------------------------------------------------------------------------------
// Core

bool Core::Register(const std::shared_ptr<Connection>& conn) {
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return false;
  }
  connections_.emplace(conn.get(), conn);
  return true;
}

void Core::Unregister(const Connection* conn) {
  absl::MutexLock lock(&mu_);
  connections_.erase(conn);
}

std::vector<std::shared_ptr<Connection>> Core::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  return Snapshot();
}

std::vector<std::shared_ptr<Connection>> Core::Snapshot() {
  std::vector<std::shared_ptr<Connection>> live;
  absl::MutexLock lock(&mu_);
  live.reserve(connections_.size());
  for (const auto& [ptr, weak] : connections_) {
    if (std::shared_ptr<Connection> conn = weak.lock()) {
      live.push_back(std::move(conn));
    }
  }
  return live;
}

bool Core::AwaitNoConnections(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(this, &Core::NoConnections), timeout);
}

//------------------------------------------------------------------------------
// StreamImpl

void StreamImpl::Write(std::string chunk) {
  if (chunk.empty() || !IsOpen()) {
    return;
  }
  PostToConnection(*gate_, conn_, [exchange = exchange_, chunk = std::move(chunk)](
                                      Connection& c) mutable {
    c.OnStreamWrite(exchange, std::move(chunk));
  });
}

void StreamImpl::Close() {
  if (!open_.exchange(false, std::memory_order_acq_rel)) {
    return;
  }
  if (!PostToConnection(*gate_, conn_,
                        [exchange = exchange_](Connection& c) { c.OnStreamClose(exchange); })) {
    MarkEnded();
  }
}

void StreamImpl::OnClose(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (!ended_) {
      on_close_ = std::move(fn);
      return;
    }
  }
  if (fn) {
    fn();
  }
}

void StreamImpl::MarkEnded() {
  open_.store(false, std::memory_order_release);
  std::function<void()> fn;
  {
    absl::MutexLock lock(&mu_);
    if (ended_) {
      return;
    }
    ended_ = true;
    fn = std::move(on_close_);
  }
  if (fn) {
    fn();
  }
}

//------------------------------------------------------------------------------
// ResponderState

ResponderState::~ResponderState() {
  if (!completed_.load(std::memory_order_acquire)) {
    Send(Response{.status = 500,
                  .headers = {{"Content-Type", "text/plain; charset=utf-8"}},
                  .body = "internal error: the handler dropped the request\n"});
  }
}

bool ResponderState::Send(Response response) {
  if (completed_.exchange(true, std::memory_order_acq_rel)) {
    return false;
  }
  PostToConnection(*gate_, conn_,
                   [exchange = exchange_, response = std::move(response)](Connection& c) mutable {
                     c.OnResponse(exchange, std::move(response));
                   });
  return true;
}

std::shared_ptr<Stream> ResponderState::StartStream(int status, HeaderList headers) {
  auto stream = std::make_shared<StreamImpl>(gate_, conn_, exchange_);
  if (completed_.exchange(true, std::memory_order_acq_rel)) {
    stream->MarkEnded();
    return stream;
  }
  if (!PostToConnection(*gate_, conn_,
                        [exchange = exchange_, status, headers = std::move(headers),
                         stream](Connection& c) mutable {
                          c.OnStartStream(exchange, status, std::move(headers), std::move(stream));
                        })) {
    stream->MarkEnded();
  }
  return stream;
}

//------------------------------------------------------------------------------
// Connection

Connection::Connection(std::shared_ptr<Core> core, tcp::socket socket)
    : core_(std::move(core)),
      executor_(socket.get_executor()),
      peer_(PeerOf(socket)),
      socket_(std::move(socket)),
      read_timer_(executor_),
      write_timer_(executor_) {
  if (core_->tls_context != nullptr) {
    tls_ = std::make_unique<Tls>(socket_, *core_->tls_context);
  }
}

Connection::~Connection() {
  if (stream_ != nullptr) {
    stream_->MarkEnded();
  }
  core_->Unregister(this);
}

void Connection::Start() {
  error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);  // best effort: small responses, stream chunks
  if (tls_ == nullptr) {
    StartReading();
    return;
  }
  // The handshake is bounded by the read timeout (state_ is kReading, so
  // the timer closes the connection).
  handshaking_ = true;
  ArmReadTimer(core_->options.read_timeout);
  tls_->s.async_handshake(net::ssl::stream_base::server,
                          [self = shared_from_this()](const error_code& hs_ec) {
                            self->OnHandshake(hs_ec);
                          });
}

void Connection::OnHandshake(const error_code& ec) {
  handshaking_ = false;
  if (state_ == State::kClosed) {
    return;
  }
  if (ec) {
    Close();  // not TLS, bad client hello, or cancelled by Close()
    return;
  }
  StartReading();
}

void Connection::StartReading() {
  NewParser();
  ArmReadTimer(core_->options.idle_timeout);
  ReadMore();
}

void Connection::BeginShutdown() {
  draining_ = true;
  switch (state_) {
    case State::kReading:
    case State::kLingering:
      Close();  // also during a TLS handshake
      break;
    case State::kStreaming:
      EndStream();
      break;
    case State::kHandling:
    case State::kResponding:
    case State::kClosed:
      break;  // kHandling/kResponding close after the response
  }
}

//------------------------------------------------------------------------------
// Reading

void Connection::ReadMore() {
  if (read_in_flight_ || handshaking_ || peer_eof_ || state_ == State::kClosed) {
    return;
  }
  // While a request is being handled, buffer a bounded amount of pipelined
  // input; reading resumes once the connection is back in kReading.
  if (state_ != State::kReading && state_ != State::kLingering &&
      InputSize() >= core_->options.max_header_bytes) {
    return;
  }
  read_in_flight_ = true;
  auto on_read = [self = shared_from_this()](const error_code& ec, size_t n) {
    self->OnRead(ec, n);
  };
  if (tls_ != nullptr) {
    tls_->s.async_read_some(net::buffer(read_buf_), std::move(on_read));
  } else {
    socket_.async_read_some(net::buffer(read_buf_), std::move(on_read));
  }
}

void Connection::OnRead(const error_code& ec, size_t n) {
  read_in_flight_ = false;
  if (state_ == State::kClosed) {
    return;
  }
  if (ec) {
    // A TLS client may close without close_notify (stream_truncated);
    // treat that like a TCP half-close.
    if (ec == net::error::eof || ec == net::ssl::error::stream_truncated) {
      OnPeerEof();
    } else {
      Close();  // reset, or cancelled by Close()
    }
    return;
  }
  if (state_ != State::kLingering) {
    if (in_start_ > 0 && in_start_ == in_.size()) {
      in_.clear();
      in_start_ = 0;
    } else if (in_start_ > (64 << 10) && in_start_ > in_.size() / 2) {
      in_.erase(0, in_start_);
      in_start_ = 0;
    }
    in_.append(read_buf_.data(), n);
    if (state_ == State::kReading) {
      ParseInput();
    }
  }
  ReadMore();
}

void Connection::OnPeerEof() {
  peer_eof_ = true;
  switch (state_) {
    case State::kReading:
      ParseInput();  // serves what is buffered, then closes
      break;
    case State::kHandling:
    case State::kResponding:
      break;  // the client may still read: answer, then close
    case State::kStreaming:
    case State::kLingering:
      Close();
      break;
    case State::kClosed:
      break;
  }
}

void Connection::ConsumeInput(size_t n) {
  in_start_ += n;
  if (in_start_ == in_.size()) {
    in_.clear();
    in_start_ = 0;
  }
}

void Connection::NewParser() {
  parser_ = std::make_unique<Parser>();
  parser_->p.header_limit(static_cast<std::uint32_t>(core_->options.max_header_bytes));
  parser_->p.body_limit(static_cast<std::uint64_t>(core_->options.max_body_bytes));
  parser_->p.eager(true);
  request_started_ = false;
  continue_sent_ = false;
}

void Connection::ParseInput() {
  while (state_ == State::kReading && InputSize() > 0) {
    if (!request_started_) {
      request_started_ = true;
      ArmReadTimer(core_->options.read_timeout);
    }
    error_code ec;
    size_t used = parser_->p.put(net::const_buffer(in_.data() + in_start_, InputSize()), ec);
    ConsumeInput(used);
    if (ec == bhttp::error::need_more) {
      break;
    }
    if (ec) {
      RespondError(StatusForParseError(ec), ec.message());
      return;
    }
    if (parser_->p.is_done()) {
      Dispatch();
      return;
    }
    if (used == 0) {
      break;
    }
  }
  if (state_ != State::kReading) {
    return;
  }
  if (parser_->p.is_header_done() && !continue_sent_) {
    continue_sent_ = true;
    const auto& req = parser_->p.get();
    auto expect = req.find(bhttp::field::expect);
    if (req.version() >= 11 && expect != req.end() &&
        beast::iequals(expect->value(), "100-continue")) {
      Enqueue("HTTP/1.1 100 Continue\r\n\r\n");
      WriteMore();
    }
  }
  if (peer_eof_) {
    Close();  // nothing more will come: drop a partial request
  }
}

void Connection::Dispatch() {
  CancelReadTimer();
  const bool chunked = parser_->p.chunked();
  bhttp::request<bhttp::string_body> msg = parser_->p.release();
  if (!chunked && msg.find(bhttp::field::transfer_encoding) != msg.end()) {
    // The body length is unknowable (RFC 9112 section 6.3): Beast read no
    // body, so what follows must not be taken for the next request.
    RespondError(400, "transfer-encoding without final chunked");
    return;
  }
  parser_.reset();
  version_ = static_cast<int>(msg.version());
  keep_alive_ = msg.keep_alive();
  head_ = msg.method() == bhttp::verb::head;
  close_after_ = false;

  Request request;
  request.method = std::string(ToAbsl(msg.method_string()));
  request.target = std::string(ToAbsl(msg.target()));
  absl::StatusOr<ParsedTarget> parsed = ParseTarget(request.target);
  if (!parsed.ok()) {
    RespondError(400, parsed.status().message());
    return;
  }
  request.path = std::move(parsed->path);
  request.query = std::move(parsed->query);
  request.headers.reserve(static_cast<size_t>(std::distance(msg.begin(), msg.end())));
  for (const auto& field : msg) {
    request.headers.emplace_back(absl::AsciiStrToLower(ToAbsl(field.name_string())),
                                 std::string(ToAbsl(field.value())));
  }
  request.body = std::move(msg.body());
  request.peer = peer_;
  request.version = version_;

  state_ = State::kHandling;
  pinned_ = shared_from_this();
  ++exchange_;
  core_->handler(request, Responder(std::make_shared<ResponderState>(core_->gate,
                                                                      weak_from_this(), exchange_)));
}

//------------------------------------------------------------------------------
// Responding

std::string Connection::BuildHead(int status, const HeaderList& headers, Framing framing,
                                  size_t content_length) const {
  std::string head = absl::StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status),
                                  "\r\nServer: dtabd\r\nDate: ", HttpDate(absl::Now()), "\r\n");
  for (const auto& [name, value] : headers) {
    if (!IsToken(name) || !IsSafeHeaderValue(value) || IsFramingOrFixed(name)) {
      continue;
    }
    absl::StrAppend(&head, name, ": ", value, "\r\n");
  }
  switch (framing) {
    case Framing::kContentLength:
      absl::StrAppend(&head, "Content-Length: ", content_length, "\r\n");
      break;
    case Framing::kChunked:
      head.append("Transfer-Encoding: chunked\r\n");
      break;
    case Framing::kNone:
      break;
  }
  if (WillClose()) {
    head.append("Connection: close\r\n");
  } else if (version_ < 11) {
    head.append("Connection: keep-alive\r\n");
  }
  head.append("\r\n");
  return head;
}

void Connection::RespondError(int status, absl::string_view detail) {
  CancelReadTimer();
  parser_.reset();
  version_ = 11;
  head_ = false;
  close_after_ = true;
  state_ = State::kResponding;
  std::string body = absl::StrCat(status, " ", ReasonPhrase(status), ": ", detail, "\n");
  Enqueue(BuildHead(status, {{"Content-Type", "text/plain; charset=utf-8"}},
                    Framing::kContentLength, body.size()));
  Enqueue(std::move(body));
  WriteMore();
}

void Connection::OnResponse(uint64_t exchange, Response response) {
  if (state_ != State::kHandling || exchange != exchange_) {
    return;
  }
  if (!ValidStatus(response.status)) {
    response = Response{.status = 500,
                        .headers = {{"Content-Type", "text/plain; charset=utf-8"}},
                        .body = absl::StrCat("internal error: the handler returned status ",
                                             response.status, "\n")};
  }
  if (AsksToClose(response.headers)) {
    close_after_ = true;
  }
  const int status = response.status;
  const bool bodiless = status == 204 || status == 304;
  size_t length = response.body.size();
  if (head_) {
    // A HEAD handler may state the length of the GET body it did not build.
    for (const auto& [name, value] : response.headers) {
      size_t n = 0;
      if (absl::EqualsIgnoreCase(name, "content-length") && absl::SimpleAtoi(value, &n)) {
        length = n;
        break;
      }
    }
  }
  state_ = State::kResponding;
  Enqueue(BuildHead(status, response.headers,
                    bodiless ? Framing::kNone : Framing::kContentLength, length));
  if (!bodiless && !head_ && !response.body.empty()) {
    Enqueue(std::move(response.body));
  }
  WriteMore();
}

void Connection::OnStartStream(uint64_t exchange, int status, HeaderList headers,
                               std::shared_ptr<StreamImpl> stream) {
  if (state_ != State::kHandling || exchange != exchange_) {
    stream->MarkEnded();
    return;
  }
  if (!ValidStatus(status)) {
    status = 500;
    headers.clear();
  }
  if (AsksToClose(headers)) {
    close_after_ = true;
  }
  const bool bodiless = head_ || status == 204 || status == 304;
  chunked_ = version_ >= 11;
  if (!chunked_ && !bodiless) {
    close_after_ = true;  // HTTP/1.0: the close ends the body
  }
  Framing framing = chunked_ && status != 204 && status != 304 ? Framing::kChunked : Framing::kNone;
  Enqueue(BuildHead(status, headers, framing, 0));
  if (bodiless) {
    state_ = State::kResponding;
    WriteMore();
    stream->MarkEnded();
    return;
  }
  state_ = State::kStreaming;
  stream_ = std::move(stream);
  WriteMore();
  if (draining_) {
    EndStream();
  }
}

void Connection::OnStreamWrite(uint64_t exchange, std::string chunk) {
  if (state_ != State::kStreaming || stream_ == nullptr || stream_->exchange() != exchange) {
    return;
  }
  if (chunked_) {
    Enqueue(absl::StrCat(absl::Hex(chunk.size()), "\r\n"));
    Enqueue(std::move(chunk));
    Enqueue("\r\n");
  } else {
    Enqueue(std::move(chunk));
  }
  if (out_bytes_ + writing_bytes_ > core_->options.max_stream_buffer_bytes) {
    Close();  // the client reads too slowly
    return;
  }
  WriteMore();
}

void Connection::OnStreamClose(uint64_t exchange) {
  if (state_ != State::kStreaming || stream_ == nullptr || stream_->exchange() != exchange) {
    return;
  }
  EndStream();
}

void Connection::EndStream() {
  std::shared_ptr<StreamImpl> stream = std::move(stream_);
  stream_ = nullptr;
  if (chunked_) {
    Enqueue("0\r\n\r\n");
  }
  state_ = State::kResponding;
  // The callback runs before the next request can be dispatched.
  if (stream != nullptr) {
    stream->MarkEnded();
  }
  if (state_ != State::kResponding) {
    return;
  }
  if (!write_in_flight_ && out_.empty()) {
    FinishExchange();
  } else {
    WriteMore();
  }
}

//------------------------------------------------------------------------------
// Writing

void Connection::Enqueue(std::string bytes) {
  out_bytes_ += bytes.size();
  out_.push_back(std::move(bytes));
}

void Connection::WriteMore() {
  if (write_in_flight_ || out_.empty() || state_ == State::kClosed) {
    return;
  }
  writing_.clear();
  write_bufs_.clear();
  while (!out_.empty()) {
    writing_.push_back(std::move(out_.front()));
    out_.pop_front();
  }
  // Built after all moves: moving a short string changes its data().
  for (const std::string& s : writing_) {
    write_bufs_.push_back(net::buffer(s));
  }
  writing_bytes_ = out_bytes_;
  out_bytes_ = 0;
  write_in_flight_ = true;
  ArmWriteTimer(core_->options.write_timeout);
  auto on_write = [self = shared_from_this()](const error_code& ec, size_t /*n*/) {
    self->OnWrite(ec);
  };
  // Asio's TLS stream allows one read and one write in flight at once.
  if (tls_ != nullptr) {
    net::async_write(tls_->s, write_bufs_, std::move(on_write));
  } else {
    net::async_write(socket_, write_bufs_, std::move(on_write));
  }
}

void Connection::OnWrite(const error_code& ec) {
  write_in_flight_ = false;
  writing_bytes_ = 0;
  CancelWriteTimer();
  if (state_ == State::kClosed) {
    return;
  }
  if (ec) {
    Close();
    return;
  }
  writing_.clear();
  write_bufs_.clear();
  if (!out_.empty()) {
    WriteMore();
    return;
  }
  if (state_ == State::kResponding) {
    FinishExchange();
  }
}

void Connection::FinishExchange() {
  if (draining_) {
    Close();
    return;
  }
  if (WillClose()) {
    StartLinger();
    return;
  }
  state_ = State::kReading;
  pinned_ = nullptr;  // the caller's handler holds a reference
  head_ = false;
  NewParser();
  ArmReadTimer(core_->options.idle_timeout);
  ParseInput();  // pipelined requests; re-arms the timer for a started one
  ReadMore();
}

void Connection::StartLinger() {
  state_ = State::kLingering;
  pinned_ = nullptr;
  parser_.reset();
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec || peer_eof_) {
    Close();
    return;
  }
  in_.clear();
  in_start_ = 0;
  ArmReadTimer(kLingerTime);
  ReadMore();
}

void Connection::Close() {
  if (state_ == State::kClosed) {
    return;
  }
  state_ = State::kClosed;
  CancelReadTimer();
  CancelWriteTimer();
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  parser_.reset();
  out_.clear();
  out_bytes_ = 0;
  std::shared_ptr<StreamImpl> stream = std::move(stream_);
  stream_ = nullptr;
  // Released when this function returns; every caller holds its own
  // reference.
  std::shared_ptr<Connection> pin = std::move(pinned_);
  pinned_ = nullptr;
  if (stream != nullptr) {
    stream->MarkEnded();
  }
}

//------------------------------------------------------------------------------
// Timers

void Connection::ArmReadTimer(absl::Duration d) {
  CancelReadTimer();
  if (d == absl::InfiniteDuration()) {
    return;
  }
  read_timer_.expires_after(absl::ToChronoNanoseconds(d));
  read_timer_.async_wait(
      [self = shared_from_this(), gen = read_timer_gen_](const error_code& ec) {
        if (ec || gen != self->read_timer_gen_) {
          return;
        }
        if (self->state_ == State::kReading || self->state_ == State::kLingering) {
          self->Close();  // idle, too slow, or done lingering
        }
      });
}

void Connection::CancelReadTimer() {
  ++read_timer_gen_;
  read_timer_.cancel();
}

void Connection::ArmWriteTimer(absl::Duration d) {
  CancelWriteTimer();
  if (d == absl::InfiniteDuration()) {
    return;
  }
  write_timer_.expires_after(absl::ToChronoNanoseconds(d));
  write_timer_.async_wait(
      [self = shared_from_this(), gen = write_timer_gen_](const error_code& ec) {
        if (ec || gen != self->write_timer_gen_) {
          return;
        }
        if (self->write_in_flight_) {
          self->Close();  // the client does not read
        }
      });
}

void Connection::CancelWriteTimer() {
  ++write_timer_gen_;
  write_timer_.cancel();
}

}  // namespace dtabd::http::internal
