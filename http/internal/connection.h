// The machinery behind http::Server: the state shared by a server and its
// connections (Core, Gate), one Connection per accepted socket, and the
// objects handed to handlers (ResponderState behind Responder, StreamImpl
// behind Stream). Private to http/; includes Asio (but not Beast, which
// only connection.cc sees).
//
// Thread-safety: a Connection's state is confined to its strand (the
// executor of its socket): every member function except the constructor,
// destructor, executor() and ForceClose() runs there. Other threads reach a
// connection only through PostToConnection(). Core, Gate, ResponderState and
// StreamImpl are thread-safe.
//
// Lifetime: a Connection is owned by the completion handlers of its pending
// operations and by the handlers posted to its strand, plus a self-reference
// (`pinned_`) while it waits for a handler's Responder or streams. Objects
// held by user code (ResponderState, StreamImpl) only hold a weak_ptr and
// the Gate: once Server::Shutdown() has closed the Gate, they never touch
// the io_context again, so they may outlive the server.
#ifndef DTABD_HTTP_INTERNAL_CONNECTION_H_
#define DTABD_HTTP_INTERNAL_CONNECTION_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "http/server.h"

namespace dtabd::http::internal {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class Connection;

// "1.2.3.4:80" or "[::1]:80" (IPv4-mapped IPv6 addresses shown as IPv4).
std::string FormatEndpoint(const tcp::endpoint& ep);

// Says whether the server's io_context may still be posted to. Closed by
// Server::Shutdown() after the io threads have stopped and before the
// io_context is destroyed.
struct Gate {
  absl::Mutex mu;
  bool open ABSL_GUARDED_BY(mu) = true;
};

// What a server shares with its connections.
class Core {
 public:
  // `tls` is null for plaintext.
  Core(Server::Options opts, Handler fn, std::unique_ptr<net::ssl::context> tls)
      : options(std::move(opts)), handler(std::move(fn)), tls_context(std::move(tls)) {}

  // Immutable after construction.
  const Server::Options options;
  const Handler handler;
  // The server's TLS setup, or null (plaintext). Shared by the connections'
  // TLS streams; outlives them (they hold core).
  const std::unique_ptr<net::ssl::context> tls_context;
  const std::shared_ptr<Gate> gate = std::make_shared<Gate>();

  // Adds `conn` to the live set; false (not added) once Stop() was called.
  bool Register(const std::shared_ptr<Connection>& conn) ABSL_LOCKS_EXCLUDED(mu_);
  // Removes `conn` (from its destructor).
  void Unregister(const Connection* conn) ABSL_LOCKS_EXCLUDED(mu_);
  // Refuses later Register() calls and returns the live connections.
  std::vector<std::shared_ptr<Connection>> Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // The live connections.
  std::vector<std::shared_ptr<Connection>> Snapshot() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until no connection is live or `timeout` passed; true if none is.
  bool AwaitNoConnections(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  bool NoConnections() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return connections_.empty(); }

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Every constructed and not yet destroyed connection; values are weak so
  // the registry never keeps one alive.
  absl::flat_hash_map<const Connection*, std::weak_ptr<Connection>> connections_
      ABSL_GUARDED_BY(mu_);
};

// The body of a streamed response; see http::Stream for the contract.
class StreamImpl final : public Stream {
 public:
  StreamImpl(std::shared_ptr<Gate> gate, std::weak_ptr<Connection> conn, uint64_t exchange)
      : gate_(std::move(gate)), conn_(std::move(conn)), exchange_(exchange) {}

  void Write(std::string chunk) override;
  void Close() override;
  bool IsOpen() const override { return open_.load(std::memory_order_acquire); }
  void OnClose(std::function<void()> fn) override ABSL_LOCKS_EXCLUDED(mu_);

  // Marks the stream ended and runs the OnClose callback if this is the
  // first call. Any thread; the caller must hold no lock `fn` may take.
  void MarkEnded() ABSL_LOCKS_EXCLUDED(mu_);

  // Which request of its connection this stream answers.
  uint64_t exchange() const { return exchange_; }

 private:
  // Immutable after construction.
  const std::shared_ptr<Gate> gate_;
  const std::weak_ptr<Connection> conn_;
  const uint64_t exchange_;

  // False once Close() was called or the stream ended; Write() checks it.
  std::atomic<bool> open_{true};

  absl::Mutex mu_;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;         // MarkEnded() ran
  std::function<void()> on_close_ ABSL_GUARDED_BY(mu_);  // not yet run
};

// The shared completion behind Responder copies.
class ResponderState {
 public:
  ResponderState(std::shared_ptr<Gate> gate, std::weak_ptr<Connection> conn, uint64_t exchange)
      : gate_(std::move(gate)), conn_(std::move(conn)), exchange_(exchange) {}
  ResponderState(const ResponderState&) = delete;
  ResponderState& operator=(const ResponderState&) = delete;
  // Sends a 500 if the request was never completed.
  ~ResponderState();

  bool Send(Response response);
  std::shared_ptr<Stream> StartStream(int status, HeaderList headers);

 private:
  // Immutable after construction.
  const std::shared_ptr<Gate> gate_;
  const std::weak_ptr<Connection> conn_;
  const uint64_t exchange_;

  std::atomic<bool> completed_{false};  // Send or StartStream happened
};

// One accepted socket: reads requests, calls the handler, writes responses.
//
// States: kReading (parsing the next request; idle/read timers run) ->
// kHandling (handler owns the Responder) -> kResponding (a whole response or
// a stream's tail is being written) or kStreaming (stream chunks are written
// as they come) -> kResponding -> kReading again (keep-alive) or kLingering
// (half-closed, discarding input so the client reads the response before
// the close) -> kClosed. While not kReading the connection keeps reading,
// to notice a client going away, buffering at most max_header_bytes of
// pipelined input.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `socket` is open and its executor is a strand.
  Connection(std::shared_ptr<Core> core, tcp::socket socket);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // The strand every member function below runs on. Thread-safe.
  const net::any_io_executor& executor() const { return executor_; }

  // Starts serving. Runs on the strand.
  void Start();
  // Server shutdown: close when idle, end the stream, close after the
  // in-flight response. Runs on the strand.
  void BeginShutdown();
  // Closes now. REQUIRES: the io threads have stopped (or on the strand).
  void ForceClose() { Close(); }

  // Completions from ResponderState and StreamImpl, posted to the strand.
  // Each ignores a completion for another request than the current one.
  void OnResponse(uint64_t exchange, Response response);
  void OnStartStream(uint64_t exchange, int status, HeaderList headers,
                     std::shared_ptr<StreamImpl> stream);
  void OnStreamWrite(uint64_t exchange, std::string chunk);
  void OnStreamClose(uint64_t exchange);

 private:
  enum class State { kReading, kHandling, kResponding, kStreaming, kLingering, kClosed };
  enum class Framing { kContentLength, kChunked, kNone };
  struct Parser;  // Beast's request parser; defined in connection.cc
  struct Tls;     // the TLS stream over socket_; defined in connection.cc

  static constexpr size_t kReadChunk = 16 << 10;

  void OnHandshake(const boost::system::error_code& ec);
  void StartReading();
  void ReadMore();
  void OnRead(const boost::system::error_code& ec, size_t n);
  void OnPeerEof();
  void NewParser();
  void ParseInput();
  void Dispatch();
  void RespondError(int status, absl::string_view detail);
  std::string BuildHead(int status, const HeaderList& headers, Framing framing,
                        size_t content_length) const;
  // True if the connection closes after the current response: asked for,
  // shutting down, or the client half-closed and sent nothing more.
  bool WillClose() const {
    return close_after_ || draining_ || !keep_alive_ || (peer_eof_ && InputSize() == 0);
  }
  void EndStream();
  void Enqueue(std::string bytes);
  void WriteMore();
  void OnWrite(const boost::system::error_code& ec);
  void FinishExchange();
  void StartLinger();
  void Close();
  void ArmReadTimer(absl::Duration d);
  void CancelReadTimer();
  void ArmWriteTimer(absl::Duration d);
  void CancelWriteTimer();
  size_t InputSize() const { return in_.size() - in_start_; }
  void ConsumeInput(size_t n);

  // Immutable after construction.
  const std::shared_ptr<Core> core_;
  const net::any_io_executor executor_;
  const std::string peer_;  // "HOST:PORT" of the client

  // Strand-confined (see the file comment).
  tcp::socket socket_;
  std::unique_ptr<Tls> tls_;  // over socket_ (declared after it); null for plaintext
  bool handshaking_ = false;  // the TLS handshake is in flight
  net::steady_timer read_timer_;   // idle, request-read and linger deadlines
  net::steady_timer write_timer_;  // write deadline
  uint64_t read_timer_gen_ = 0;    // bumped on every (re-)arm/cancel; stale waits compare it
  uint64_t write_timer_gen_ = 0;
  State state_ = State::kReading;
  std::shared_ptr<Connection> pinned_;  // self, in kHandling and kStreaming

  // Reading. `in_[in_start_..]` is received, not yet parsed input.
  std::array<char, kReadChunk> read_buf_;  // target of the one pending read
  bool read_in_flight_ = false;
  bool peer_eof_ = false;  // the client half-closed
  std::string in_;
  size_t in_start_ = 0;
  std::unique_ptr<Parser> parser_;  // the request being read (kReading)
  bool request_started_ = false;    // bytes of the next request arrived
  bool continue_sent_ = false;      // Expect: 100-continue handled

  // The current exchange (request and response).
  uint64_t exchange_ = 0;        // counts dispatched requests
  int version_ = 11;             // HTTP version of the request
  bool head_ = false;            // the request is HEAD
  bool keep_alive_ = true;       // the request allows another one
  bool close_after_ = false;     // close once this response is written
  bool draining_ = false;        // the server is shutting down
  std::shared_ptr<StreamImpl> stream_;  // in kStreaming
  bool chunked_ = false;         // stream framing (else close-delimited)

  // Writing: `out_` queues bytes behind the write in flight (`writing_`,
  // described by `write_bufs_`, which point into it).
  std::deque<std::string> out_;
  size_t out_bytes_ = 0;
  std::vector<std::string> writing_;
  std::vector<net::const_buffer> write_bufs_;
  size_t writing_bytes_ = 0;
  bool write_in_flight_ = false;
};

// Runs `fn(Connection&)` on `weak_conn`'s strand, unless the connection is
// gone or the server stopped. Returns whether `fn` was queued. Thread-safe.
template <typename Fn>
bool PostToConnection(Gate& gate, const std::weak_ptr<Connection>& weak_conn, Fn fn) {
  absl::ReaderMutexLock lock(&gate.mu);
  if (!gate.open) {
    return false;
  }
  std::shared_ptr<Connection> conn = weak_conn.lock();
  if (conn == nullptr) {
    return false;
  }
  const net::any_io_executor& ex = conn->executor();
  net::post(ex, [conn = std::move(conn), fn = std::move(fn)]() mutable { fn(*conn); });
  return true;
}

}  // namespace dtabd::http::internal

#endif  // DTABD_HTTP_INTERNAL_CONNECTION_H_
