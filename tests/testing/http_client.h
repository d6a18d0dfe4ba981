// HttpClient: a small blocking HTTP/1.1 client on one TCP connection, for
// integration tests that talk to real listeners (dtabd's namerd API and
// admin, dtab-proxy, test backends). It sends whatever bytes a test asks
// for (well-formed requests shaped like namerctl's, requests with exactly
// the given headers, or raw garbage) and reads responses framed by
// Content-Length, chunked encoding or the server closing.
//
// Every read waits at most timeout() (poll with a deadline, never a sleep),
// then fails with DeadlineExceeded, so a broken server fails a test instead
// of hanging it.
//
// Thread-safety: HttpClient is not thread-safe; HttpResponse is a value.
#ifndef DTABD_TESTS_TESTING_HTTP_CLIENT_H_
#define DTABD_TESTS_TESTING_HTTP_CLIENT_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dtabd::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

// A response as read off the wire.
struct HttpResponse {
  int status = 0;
  Headers headers;   // names lower-cased, values trimmed, in order
  std::string body;  // de-chunked
  bool chunked = false;

  // The first value of header `lower`, or nullptr.
  const std::string* Header(absl::string_view lower) const;
  // The header's value, or "<none>" (for EXPECT_EQ messages).
  std::string HeaderOr(absl::string_view lower) const;
  // Every value of header `lower`, in order.
  std::vector<std::string> HeaderValues(absl::string_view lower) const;
};

// Status, headers and body, one header per line (for test failure messages).
std::ostream& operator<<(std::ostream& os, const HttpResponse& r);

class HttpClient {
 public:
  // How long each read may wait by default.
  static constexpr std::chrono::milliseconds kDefaultTimeout{10'000};

  // Connects to `address`, "HOST:PORT" with an IPv4 HOST (e.g.
  // "127.0.0.1:4140", as DtabdProcess, ProxyProcess and Backend report
  // addresses). InvalidArgument: malformed address; Internal: the socket
  // or connect call failed (e.g. "connect 127.0.0.1:1: Connection refused").
  static absl::StatusOr<std::unique_ptr<HttpClient>> Connect(absl::string_view address);

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  ~HttpClient();

  const std::string& address() const { return address_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

  // Sends a request as Go's net/http client (namerctl) does: Host (the
  // connected address), User-Agent, `headers`, Content-Length when there is
  // a body (or the method is POST or PUT), Accept-Encoding: gzip.
  absl::Status SendRequest(absl::string_view method, absl::string_view target,
                           const Headers& headers, absl::string_view body);

  // Sends "METHOD TARGET HTTP/1.1", exactly `headers` (no Host unless
  // given: tests of Host-based routing choose it), then Content-Length when
  // `body` is non-empty and `headers` has neither Content-Length nor
  // Transfer-Encoding, then `body` as is.
  absl::Status SendPlain(absl::string_view method, absl::string_view target,
                         const Headers& headers, absl::string_view body = "");

  // Sends a request with `Transfer-Encoding: chunked` and a body of
  // `total` bytes produced by `fill(offset, n)` (which returns exactly n
  // bytes), in chunks of `chunk` bytes. Blocks while the peer is not
  // reading (the peer must read concurrently, e.g. a proxy streaming on).
  absl::Status SendChunked(absl::string_view method, absl::string_view target,
                           const Headers& headers, size_t total, size_t chunk,
                           const std::function<std::string(size_t, size_t)>& fill);

  // Sends `bytes` as they are (blocking until all are sent).
  absl::Status SendBytes(absl::string_view bytes);

  // Reads a whole response. `head`: it answers a HEAD request (no body,
  // whatever Content-Length says). DataLoss: malformed response or the
  // connection closed early; DeadlineExceeded: nothing within timeout().
  absl::StatusOr<HttpResponse> ReadResponse(bool head = false);

  // Reads the status line and the header block.
  absl::StatusOr<HttpResponse> ReadHead();

  // The next newline-terminated line of a chunked body whose head ReadHead
  // returned (without the newline), reading chunks as they arrive; a line
  // may span chunks. OutOfRange: the body ended (the last chunk arrived).
  // DeadlineExceeded: no whole line within timeout().
  absl::StatusOr<std::string> ReadBodyLine();

  // True when the server has closed the connection (or reset it) and sent
  // nothing more (waits up to timeout() for that). False when bytes arrive
  // or nothing happens in time.
  bool ClosedByServer();

 private:
  HttpClient(int fd, std::string address) : fd_(fd), address_(std::move(address)) {}

  // Receives more bytes into buf_: true, or false at EOF.
  absl::StatusOr<bool> Fill();
  // A CRLF-terminated line, without the CRLF.
  absl::StatusOr<std::string> ReadLine();
  absl::StatusOr<std::string> ReadN(size_t n);
  // One chunk's data, or nullopt for the last (zero-size) chunk; trailers
  // are skipped.
  absl::StatusOr<std::optional<std::string>> ReadChunk();

  const int fd_;
  const std::string address_;  // "HOST:PORT", for SendRequest's Host header
  std::chrono::milliseconds timeout_ = kDefaultTimeout;
  std::string buf_;     // received, not yet parsed
  size_t buf_pos_ = 0;  // bytes of buf_ already consumed
  std::string stream_;  // de-chunked body bytes not yet returned by ReadBodyLine
  bool stream_ended_ = false;
};

// Connects to `address`, sends `method target` with exactly `headers` (see
// SendPlain) and reads the response: a one-shot request on a fresh
// connection.
absl::StatusOr<HttpResponse> Fetch(absl::string_view address, absl::string_view method,
                                   absl::string_view target, const Headers& headers,
                                   absl::string_view body = "");

}  // namespace dtabd::testing

#endif  // DTABD_TESTS_TESTING_HTTP_CLIENT_H_
