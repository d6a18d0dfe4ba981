#include "server/admin.h"

#include "absl/strings/str_cat.h"

namespace dtabd::server {

void AdminApi::Handle(const http::Request& request, http::Responder responder) const {
  http::Response r;
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  if (request.path == "/ready") {
    r.status = ready_ ? 200 : 503;
    r.body = ready_ ? "ready\n" : "shutting down\n";
  } else if (request.path == "/metrics") {
    r.headers.front().second = "text/plain; version=0.0.4";
    r.body = absl::StrCat(
        "# HELP dtabd_namespaces Live namespaces.\n"
        "# TYPE dtabd_namespaces gauge\n"
        "dtabd_namespaces ", hub_->LiveNamespaces().size(), "\n",
        "# HELP dtabd_watchers Open watch streams (gRPC and HTTP).\n"
        "# TYPE dtabd_watchers gauge\n"
        "dtabd_watchers ", hub_->subscriber_count(), "\n",
        "# HELP dtabd_ready 1 while serving, 0 once shutting down.\n"
        "# TYPE dtabd_ready gauge\n"
        "dtabd_ready ", ready_ ? 1 : 0, "\n");
  } else {
    r.status = 404;
    r.body = absl::StrCat("no admin endpoint ", request.path, " (try /ready, /metrics)\n");
  }
  responder.Send(std::move(r));
}

}  // namespace dtabd::server
