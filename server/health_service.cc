#include "server/health_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace dtabd::server {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

HealthServiceImpl::HealthServiceImpl(std::vector<std::string> services)
    : services_(std::move(services)) {}

bool HealthServiceImpl::Known(const std::string& service) const {
  return service.empty() || std::find(services_.begin(), services_.end(), service) != services_.end();
}

grpc::ServerUnaryReactor* HealthServiceImpl::Check(grpc::CallbackServerContext* ctx,
                                                   const HealthCheckRequest* req,
                                                   HealthCheckResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!Known(req->service())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 absl::StrCat("unknown service '", req->service(), "'")));
    return reactor;
  }
  resp->set_status(serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthServiceImpl::Watch(
    grpc::CallbackServerContext*, const HealthCheckRequest* req) {
  class Reactor final : public grpc::ServerWriteReactor<HealthCheckResponse> {
   public:
    explicit Reactor(HealthCheckResponse::ServingStatus status) {
      response_.set_status(status);
      StartWrite(&response_);
    }
    void OnWriteDone(bool ok) override {
      if (!ok) {
        FinishOnce();
      }
      // Otherwise stay open: the status only changes at shutdown, which
      // cancels the call.
    }
    void OnCancel() override { FinishOnce(); }
    void OnDone() override { delete this; }

   private:
    void FinishOnce() {
      if (!finished_.exchange(true)) {
        Finish(grpc::Status::CANCELLED);
      }
    }

    HealthCheckResponse response_;
    std::atomic<bool> finished_{false};
  };
  HealthCheckResponse::ServingStatus status = HealthCheckResponse::SERVICE_UNKNOWN;
  if (Known(req->service())) {
    status = serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
  }
  return new Reactor(status);
}

}  // namespace dtabd::server
