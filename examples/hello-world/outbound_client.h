// OutboundClient: how the hello example calls world. Like linkerd's
// hello-world app behind linkerd (http_proxy=NODE:4140), it sends every
// call to the local proxy's outgoing router, naming the service in the
// Host header: `GET / HTTP/1.1`, `Host: world`, plus the headers it is
// given (the caller's l5d-ctx-* context).
//
// Calls run asynchronously on the client's own io thread, never on the
// calling thread, so an http::Server handler (which must not block) can
// start one and complete its Responder from the callback. Each call uses a
// fresh connection and must finish, connect to last body byte, within
// Options::timeout.
//
// Thread-safety: Get() may be called from any thread, concurrently.
// Callbacks run on the client's io thread, one at a time, and must not
// block.
#ifndef DTABD_EXAMPLES_HELLO_WORLD_OUTBOUND_CLIENT_H_
#define DTABD_EXAMPLES_HELLO_WORLD_OUTBOUND_CLIENT_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "http/server.h"

namespace dtabd::examples {

// What the next hop answered.
struct OutboundResponse {
  int status = 0;
  std::string body;
};

class OutboundClient {
 public:
  struct Options {
    // Where every call goes: "IP:PORT" with a numeric IPv4 address or a
    // bracketed IPv6 one, e.g. "127.0.0.1:4140".
    std::string address;
    // Deadline of each whole call.
    absl::Duration timeout = absl::Seconds(10);
    // Longest accepted response body.
    size_t max_body_bytes = 1 << 20;
  };

  // The result of one call: the response (any status), or Unavailable
  // (cannot connect, connection reset, malformed response: the message
  // says which, naming the address) or DeadlineExceeded (the timeout
  // passed).
  using Callback = std::function<void(absl::StatusOr<OutboundResponse>)>;

  // Starts the io thread. InvalidArgument: malformed address.
  static absl::StatusOr<std::unique_ptr<OutboundClient>> Start(Options options);

  OutboundClient(const OutboundClient&) = delete;
  OutboundClient& operator=(const OutboundClient&) = delete;
  // Stops the io thread. Calls still in flight are abandoned: their
  // callbacks are destroyed without running.
  ~OutboundClient();

  // Sends `GET / HTTP/1.1` with `Host: host` and `headers` (added as
  // given), and calls `done` with the outcome. Never blocks.
  void Get(std::string host, http::HeaderList headers, Callback done);

  const std::string& address() const;

 private:
  class Impl;
  explicit OutboundClient(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;  // never null
};

}  // namespace dtabd::examples

#endif  // DTABD_EXAMPLES_HELLO_WORLD_OUTBOUND_CLIENT_H_
