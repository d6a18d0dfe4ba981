// The standard grpc.health.v1.Health service, implemented on the generated
// code so that it is also described by server reflection.
//
// Thread-safety: thread-safe.
#ifndef DTABD_SERVER_HEALTH_SERVICE_H_
#define DTABD_SERVER_HEALTH_SERVICE_H_

#include <atomic>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"

namespace dtabd::server {

class HealthServiceImpl final : public grpc::health::v1::Health::CallbackService {
 public:
  // `services` are the names reported SERVING besides "" (the server).
  explicit HealthServiceImpl(std::vector<std::string> services);

  // From now on every service reports NOT_SERVING (graceful shutdown).
  void SetNotServing() { serving_ = false; }

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx,
                                  const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::health::v1::HealthCheckResponse* resp) override;
  // Sends the current status, then keeps the stream open until the client
  // cancels or the server shuts down.
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx,
      const grpc::health::v1::HealthCheckRequest* req) override;

 private:
  bool Known(const std::string& service) const;

  const std::vector<std::string> services_;
  std::atomic<bool> serving_{true};
};

}  // namespace dtabd::server

#endif  // DTABD_SERVER_HEALTH_SERVICE_H_
