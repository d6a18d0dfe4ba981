// Small in-process HTTP/1.1 backends for proxy integration tests, each a
// real dtabd::http::Server on 127.0.0.1:0:
//
//   - Echo (StartEcho): answers every request with `status` and the body
//     "NAME\n", plus headers naming itself and summarizing the request
//     body (x-backend, x-body-bytes, x-body-fnv); records every request
//     (method, target, headers, body size and checksum) for assertions.
//     Options make it answer later (`delay`), stream a chunked body of N
//     pattern bytes instead (`stream_bytes`), or add response headers.
//   - Hello (StartHello): linkerd's hello-world "hello" app. For each
//     request it calls `next_hop` (a proxy) with `Host: NEXT_HOST`,
//     forwarding every incoming l5d-ctx-* header (exactly what apps behind
//     linkerd must do), and answers "NAME\n" followed by the next hop's
//     body, with the next hop's status.
//
// Handlers never block: delayed, streamed and forwarding work runs on the
// backend's own worker thread.
//
// Thread-safety: Backend's methods are thread-safe.
#ifndef DTABD_TESTS_TESTING_BACKEND_H_
#define DTABD_TESTS_TESTING_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "http/server.h"

namespace dtabd::testing {

// The deterministic bytes [offset, offset + n) of an endless test pattern
// (not periodic with any small period), for large bodies.
std::string PatternBytes(size_t offset, size_t n);

// 64-bit FNV-1a of `data`, continuing from `hash` (start with kFnvBasis).
inline constexpr uint64_t kFnvBasis = 14695981039346656037ull;
uint64_t Fnv1a(absl::string_view data, uint64_t hash = kFnvBasis);
// Fnv1a of PatternBytes(0, n), computed piecewise.
uint64_t PatternFnv(size_t n);

// A request as a backend received it.
struct ReceivedRequest {
  std::string method;
  std::string target;
  int version = 11;          // 10 or 11
  http::HeaderList headers;  // names lower-cased, in order
  size_t body_size = 0;      // after de-chunking
  uint64_t body_fnv = kFnvBasis;

  // The first value of header `lower`, or nullptr.
  const std::string* Header(absl::string_view lower) const;
  // The header's value, or "<none>".
  std::string HeaderOr(absl::string_view lower) const;
  // Every value of header `lower`, in order.
  std::vector<std::string> HeaderValues(absl::string_view lower) const;
};

class Backend {
 public:
  struct Options {
    // Names the backend in its responses ("NAME\n", x-backend: NAME).
    std::string name;
    // The status of every response (echo).
    int status = 200;
    // Added to every response (echo), e.g. {"l5d-err", "boom"}.
    http::HeaderList response_headers;
    // Answer this long after the request arrived (echo; the handler
    // returns at once and the worker thread answers).
    absl::Duration delay = absl::ZeroDuration();
    // > 0: answer with a chunked body of PatternBytes(0, stream_bytes),
    // written in `stream_chunk`-byte chunks, instead of "NAME\n" (echo).
    size_t stream_bytes = 0;
    size_t stream_chunk = 64 << 10;
    // Largest accepted request body (the server buffers bodies).
    size_t max_body_bytes = 64 << 20;
    int threads = 1;
  };

  // Starts an echo backend. Errors as http::Server::Start.
  static absl::StatusOr<std::unique_ptr<Backend>> StartEcho(Options options);

  // Starts a hello backend whose next hop is `next_hop` ("127.0.0.1:PORT",
  // normally a proxy listener), called with `Host: next_host`. A next hop
  // that cannot be reached gives 502 "NAME: next hop failed: ...".
  static absl::StatusOr<std::unique_ptr<Backend>> StartHello(Options options,
                                                             std::string next_hop,
                                                             std::string next_host = "world");

  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  // Drops pending delayed work, then shuts the server down.
  ~Backend();

  const std::string& name() const { return options_.name; }
  // "127.0.0.1:PORT".
  std::string address() const;
  int port() const;

  size_t request_count() const;
  std::vector<ReceivedRequest> requests() const;
  // The latest request; an empty ReceivedRequest when there was none.
  ReceivedRequest last_request() const;
  // Waits (without sleeping: a condition with a deadline) until at least
  // `n` requests have arrived; false on timeout.
  bool WaitForRequests(size_t n, absl::Duration timeout) const;

 private:
  class Worker;
  Backend(Options options, std::string next_hop, std::string next_host);
  absl::Status Start();
  void Handle(const http::Request& request, http::Responder responder);
  void Echo(const ReceivedRequest& got, http::Responder responder);
  void Hello(const ReceivedRequest& got, http::Responder responder);

  const Options options_;
  const std::string next_hop_;  // empty: echo
  const std::string next_host_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<http::Server> server_;

  mutable absl::Mutex mu_;
  std::vector<ReceivedRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dtabd::testing

#endif  // DTABD_TESTS_TESTING_BACKEND_H_
