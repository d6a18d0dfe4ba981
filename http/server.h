// A small embedded HTTP/1.1 server: Server accepts connections, parses
// requests into Request values and hands each to one Handler, which answers
// through a Responder with either a whole Response (Content-Length framing)
// or a Stream (chunked framing, written to later from any thread). It serves
// namerd's HTTP dtab API and the admin endpoints (/metrics, /ready).
//
// Supported: HTTP/1.0 and 1.1, keep-alive and pipelining, HEAD, request
// bodies with Content-Length or chunked encoding, `Expect: 100-continue`,
// IPv4 and IPv6 listeners, TLS (Options::tls_cert_pem). Not supported:
// protocol upgrades, trailers, client certificates.
//
// Protocol errors are answered by the server itself and never reach the
// handler: 400 for a malformed request (syntax, bad percent-escape in the
// target, ambiguous body framing such as Content-Length with
// Transfer-Encoding), 413 for a body over Options::max_body_bytes, 431 for a
// request line or header block over Options::max_header_bytes. Each closes
// the connection. A connection that is idle too long, or sends a request too
// slowly, is closed without a response.
//
// Every response carries `Server: dtabd` and `Date`; the server sets the
// framing headers (Content-Length, Transfer-Encoding, Connection) itself and
// ignores handler-supplied ones, except that a handler's `Connection: close`
// is honoured and a HEAD handler's explicit Content-Length is kept.
//
// Thread-safety: Server is thread-safe. Handlers run on the server's io
// threads (concurrently when Options::threads > 1) and MUST NOT block: hand
// slow work (SQLite, RPCs) to another thread and complete the Responder from
// there. Responder and Stream are safe to use from any thread, also after
// the server has shut down (then they do nothing). Request and Response are
// plain values.
#ifndef DTABD_HTTP_SERVER_H_
#define DTABD_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace dtabd::http {

namespace internal {
class Connection;
class ResponderState;
}  // namespace internal

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// One parsed request.
struct Request {
  std::string method;  // as sent, e.g. "GET" (methods are case-sensitive)
  std::string target;  // raw request target, e.g. "/api/1/dtabs/foo?watch=true"
  std::string path;    // percent-decoded path without the query, e.g. "/api/1/dtabs/foo"
  // Decoded query parameters in order ('+' is a space; "flag" gives
  // {"flag", ""}); empty `a&&b` segments are skipped.
  std::vector<std::pair<std::string, std::string>> query;
  HeaderList headers;  // in order; names lower-cased, values as sent (trimmed)
  std::string body;    // de-chunked
  std::string peer;    // client address, "127.0.0.1:54321" or "[::1]:54321"
  int version = 11;    // 10 for HTTP/1.0, 11 for HTTP/1.1

  // The first value of header `name` (compared case-insensitively), or
  // nullptr. The pointer is valid while this Request is alive and unchanged.
  const std::string* Header(absl::string_view name) const;
  // The first value of query parameter `name` (case-sensitive), or nullptr.
  // Same lifetime as Header().
  const std::string* Query(absl::string_view name) const;
};

// A whole response. The server adds Content-Length (body size), Server,
// Date and Connection. Headers with a name that is not an HTTP token or a
// value containing CR, LF or NUL are dropped. For 204 and 304 the body is
// not sent. A status outside 200..599 is replaced by 500.
struct Response {
  int status = 200;
  HeaderList headers;  // e.g. {"Content-Type", "application/json"}
  std::string body;

  // A response with Content-Type "text/plain; charset=utf-8".
  static Response Text(int status, std::string body);
};

// The body of a streamed (chunked) response. Obtained from
// Responder::StartStream; safe to use from any thread and to keep after the
// connection or the server is gone (calls then do nothing).
//
// The stream ends exactly once, whichever comes first: the handler calls
// Close(), the client disconnects (or reads too slowly, see
// Options::max_stream_buffer_bytes and write_timeout), or the server shuts
// down.
class Stream {
 public:
  virtual ~Stream() = default;

  // Queues `chunk` to be sent as one chunk after every earlier Write() of
  // this stream (writes from one thread keep their order; writes from
  // several threads are ordered as they reach the queue). Never blocks.
  // Empty chunks and writes after the stream ended are ignored.
  virtual void Write(std::string chunk) = 0;

  // Ends the stream: the queued chunks and the final zero-size chunk are
  // sent, then the connection serves its next request. Idempotent.
  virtual void Close() = 0;

  // False once the stream has ended (Close(), client gone, server
  // stopping). A true result may be stale by the time it is used.
  virtual bool IsOpen() const = 0;

  // Registers `fn` to run exactly once when the stream ends, for any of the
  // reasons above (including this side's Close()). `fn` normally runs on an
  // io thread, or on the thread calling Server::Shutdown(), and must not
  // block; if the stream has already ended, it runs on the calling thread
  // before OnClose returns. A later OnClose replaces an earlier, not yet
  // run, callback.
  virtual void OnClose(std::function<void()> fn) = 0;
};

// Completes one request, exactly once: with Send() or StartStream(). A
// cheap handle: copies share one completion, and any copy may be completed
// from any thread, also after the handler has returned (asynchronous
// handlers move it to another thread). If the last copy is destroyed
// without completing, the client gets a 500. Completing after the client or
// the server has gone does nothing.
class Responder {
 public:
  Responder(const Responder&) = default;
  Responder& operator=(const Responder&) = default;
  Responder(Responder&&) = default;
  Responder& operator=(Responder&&) = default;
  ~Responder();

  // Sends `response`. Returns false, and does nothing, if this request was
  // already completed (by Send or StartStream).
  bool Send(Response response) const;

  // Sends the status and `headers` with chunked framing (HTTP/1.1 clients;
  // an HTTP/1.0 client gets an unframed body ended by closing the
  // connection) and returns the stream to write the body to. For HEAD
  // requests only the header is sent and the stream is returned already
  // ended. If this request was already completed, returns an ended stream.
  // Never returns nullptr.
  std::shared_ptr<Stream> StartStream(int status, HeaderList headers) const;

 private:
  friend class internal::Connection;
  explicit Responder(std::shared_ptr<internal::ResponderState> state);

  std::shared_ptr<internal::ResponderState> state_;  // never null
};

// Handles one request: reads `request` (valid only during the call; copy
// what an asynchronous completion needs) and completes `responder` now or
// later. Runs on an io thread; must not block.
using Handler = std::function<void(const Request& request, Responder responder)>;

// An HTTP server listening on one address.
//
// Lifecycle: Start() binds and begins serving; Shutdown() (or the
// destructor) stops it. After Shutdown() returns the handler is never called
// again and no io thread runs.
class Server {
 public:
  struct Options {
    // "HOST:PORT": an IPv4 address ("127.0.0.1:8080", "0.0.0.0:4180"), an
    // IPv6 address in brackets ("[::1]:0", "[::]:4180") or a host name
    // ("localhost:0", first resolved address). Port 0 picks a free port.
    std::string address = "127.0.0.1:0";
    // io threads running handlers; >= 1.
    int threads = 1;
    // Largest accepted request body (after de-chunking); larger gets 413.
    size_t max_body_bytes = 1 << 20;
    // Largest request line, and largest header block; larger gets 431.
    // 1..65536 (Beast stores header fields with 16-bit offsets).
    size_t max_header_bytes = 64 << 10;
    // How long a keep-alive connection may wait for its next request.
    absl::Duration idle_timeout = absl::Seconds(60);
    // How long a client may take to send one whole request, from its first
    // byte (slow-loris protection).
    absl::Duration read_timeout = absl::Seconds(30);
    // How long one write of response bytes may take before the connection
    // is dropped (slow readers).
    absl::Duration write_timeout = absl::Seconds(30);
    // A stream whose unsent bytes exceed this is ended and its connection
    // closed (the client reads too slowly). A single larger Write() does
    // the same: split big bodies into chunks.
    size_t max_stream_buffer_bytes = 16 << 20;
    // How long Shutdown() lets in-flight responses finish before closing
    // their connections.
    absl::Duration shutdown_grace = absl::Seconds(5);
    // TLS: the server's certificate chain (leaf first) and private key,
    // PEM-encoded contents (not file names). Both empty: plaintext. Both
    // set: every connection starts with a TLS handshake (TLS 1.2 or later),
    // which must finish within read_timeout; a failed or slow handshake
    // (e.g. a plaintext client) just closes that connection.
    std::string tls_cert_pem;
    std::string tls_key_pem;
  };

  // Binds `options.address`, starts `options.threads` io threads and serves
  // every request with `handler`. InvalidArgument: malformed or unresolvable
  // address, an option out of range, or a TLS certificate or key that is
  // malformed, missing its partner, or does not match the other. Unavailable: the address cannot be
  // bound (the message names it and the OS error, e.g. "Address already in
  // use").
  static absl::StatusOr<std::unique_ptr<Server>> Start(const Options& options, Handler handler);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Calls Shutdown().
  ~Server();

  // The bound address as "HOST:PORT", e.g. "127.0.0.1:41234" or "[::1]:41234".
  std::string address() const;
  int port() const;

  // Stops accepting and closes idle connections and partly received
  // requests; ends open streams (their OnClose callbacks run); lets
  // in-flight responses finish for up to Options::shutdown_grace (each
  // connection closes after its response), then closes what is left and
  // joins the io threads. Idempotent; concurrent calls all return once the
  // server has stopped. REQUIRES: not called from a handler or an OnClose
  // callback (an io thread).
  void Shutdown();

 private:
  class Impl;
  explicit Server(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;  // never null
};

}  // namespace dtabd::http

#endif  // DTABD_HTTP_SERVER_H_
