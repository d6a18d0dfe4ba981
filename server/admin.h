// dtabd's admin endpoints: /ready (200 while serving, 503 once shutting
// down) and /metrics (Prometheus text format).
//
// Thread-safety: thread-safe.
#ifndef DTABD_SERVER_ADMIN_H_
#define DTABD_SERVER_ADMIN_H_

#include <atomic>

#include "http/server.h"
#include "server/dtab_hub.h"

namespace dtabd::server {

class AdminApi {
 public:
  // `hub` must outlive the HTTP server using this API.
  explicit AdminApi(const DtabHub* hub) : hub_(hub) {}

  void SetNotReady() { ready_ = false; }
  void Handle(const http::Request& request, http::Responder responder) const;

 private:
  const DtabHub* const hub_;
  std::atomic<bool> ready_{true};
};

}  // namespace dtabd::server

#endif  // DTABD_SERVER_ADMIN_H_
