// The data plane: dtab-proxy's HTTP/1.1 listeners and the forwarding path.
//
// One io thread per worker, each running its own event loop; connections
// are accepted and spread over the workers round-robin and stay on one
// worker for life. Per request (DESIGN.md "The proxy's hot path"):
//   1. read the request header (the body is streamed later);
//   2. clear_context listeners drop every inbound l5d-* header;
//      the Via chain is checked against max_call_depth;
//   3. identify the name (Router::identifier);
//   4. take l5d-ctx-dtab and l5d-dtab off the request and get the parsed,
//      policy-checked override from this worker's cache;
//   5. bind against the router's current table ++ override and pick an
//      endpoint (Router::Bind); connection failures are retried on another
//      pick (the request was not sent);
//   6. forward over a pooled keep-alive upstream connection, with
//      l5d-ctx-dtab (the combined override, when non-empty),
//      l5d-dst-service, l5d-dst-client, l5d-dst-residual, l5d-reqid and Via
//      added; bodies are streamed in both directions, never buffered whole.
// Errors are answered as linkerd 1 does (linkerd-behaviour.md section 2.4):
// 400 unidentified request, malformed or disallowed override, call depth
// exceeded; 502 name binds to nothing, no endpoints, connection failure;
// 503 timeouts; each with `l5d-err` (URL-encoded) and a text/plain body
// naming the service, the base dtab version and the override.
// Malformed HTTP gets 400 and the connection is closed.
//
// Thread-safety: the public methods are thread-safe.
#ifndef DTABD_PROXY_DATA_PLANE_H_
#define DTABD_PROXY_DATA_PLANE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/metrics.h"
#include "proxy/router.h"

namespace dtabd::proxy {

class DataPlane {
 public:
  struct Options {
    // io threads (>= 1).
    int workers = 1;
    // Request header limit (request line + headers), bytes.
    uint32_t max_header_bytes = 16 * 1024;
  };

  // Binds every server of every router and starts serving. `routers`
  // outlive the DataPlane. InvalidArgument/Unavailable naming the address
  // that cannot be bound.
  static absl::StatusOr<std::unique_ptr<DataPlane>> Start(std::vector<Router*> routers,
                                                          Options options);
  DataPlane(const DataPlane&) = delete;
  DataPlane& operator=(const DataPlane&) = delete;
  ~DataPlane();  // Drain(absl::ZeroDuration())

  // The bound "ip:port" of each router's servers, in configuration order.
  const std::vector<std::vector<std::string>>& addresses() const;

  // The request metrics of every worker, merged. Waits briefly for each io
  // thread; REQUIRES: not called from one of them.
  WorkerStats Stats() const;

  // Stops accepting; requests in flight finish (their connections close
  // after the response); idle connections close now. Returns when all
  // connections are closed or `timeout` passed (then closes the rest) and
  // the io threads have stopped. Idempotent.
  void Drain(absl::Duration timeout);

 private:
  class Impl;
  explicit DataPlane(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_DATA_PLANE_H_
