// DtabdServer: the assembled dtabd daemon: the SQLite store, the hub of
// latest versions, the gRPC server (DtabService, health, reflection), and
// graceful shutdown.
//
// Thread-safety: Start, then Shutdown from one thread (e.g. the signal
// waiter); the accessors are safe after Start.
#ifndef DTABD_SERVER_DTABD_SERVER_H_
#define DTABD_SERVER_DTABD_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace dtabd::server {

struct DtabdOptions {
  std::string db_path = "var/dtabd.db";
  bool synchronous_full = true;
  std::string grpc_addr = "127.0.0.1:4321";
  std::string http_addr = "127.0.0.1:4180";
  std::string admin_addr = "127.0.0.1:9991";
  std::string tokens_file;  // empty: no auth, loopback listeners only
  std::string tls_cert_file;
  std::string tls_key_file;
  int storage_threads = 4;
  // DiscoveryService admission limits: concurrent streams, and new streams
  // per second with a burst (token bucket). Past them a stream ends with
  // RESOURCE_EXHAUSTED and a retry hint.
  int max_streams = 50'000;
  double new_streams_per_s = 1000;
  int new_streams_burst = 2000;
};

class DtabdServer {
 public:
  // Opens the database (creating it and its directory if missing), seeds
  // the hub, binds every listener (port 0 allowed) and starts serving.
  // InvalidArgument: bad flags (e.g. a non-loopback address without
  // --tokens, TLS cert without key). FailedPrecondition: database newer
  // than this binary. Unavailable: a port cannot be bound.
  static absl::StatusOr<std::unique_ptr<DtabdServer>> Start(const DtabdOptions& options);

  virtual ~DtabdServer() = default;

  // Bound addresses, "HOST:PORT".
  virtual std::string grpc_address() const = 0;
  virtual std::string http_address() const = 0;
  virtual std::string admin_address() const = 0;

  // Graceful: health turns NOT_SERVING, watch streams are told to
  // reconnect (UNAVAILABLE), in-flight calls get `grace` to finish, then
  // the store is closed. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace dtabd::server

#endif  // DTABD_SERVER_DTABD_SERVER_H_
