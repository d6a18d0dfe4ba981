// dtab-proxy's admin server (default 127.0.0.1:9990):
//   /            an index of the pages below
//   /delegator   the dtab playground (DelegatorPageHtml) and
//   /delegator.json  its API (DelegatorJson)
//   /dtabs       JSON: every router's current base dtab, namespace, version
//   /metrics     Prometheus text: per router, service and endpoint request
//                counts by status class and latency histograms; override
//                cache hits; dtab version and age per namespace;
//                control-plane connection state
//   /ready       200 once every router has a dtab (static, cached or from
//                dtabd), else 503 naming the routers still waiting
//   /config      the effective configuration (YAML, token redacted)
//
// Thread-safety: Admin is thread-safe.
#ifndef DTABD_PROXY_ADMIN_H_
#define DTABD_PROXY_ADMIN_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "http/server.h"
#include "proxy/balancer.h"
#include "proxy/config.h"
#include "proxy/control_plane.h"
#include "proxy/data_plane.h"
#include "proxy/router.h"

namespace dtabd::proxy {

class Admin {
 public:
  // Everything the pages read. All pointers outlive the Admin;
  // `control_plane` may be null (static dtabs only).
  struct Sources {
    const ProxyConfig* config = nullptr;
    std::vector<Router*> routers;
    const DataPlane* data_plane = nullptr;
    const ControlPlane* control_plane = nullptr;
    const EndpointRegistry* endpoints = nullptr;
    std::vector<FsMount> fs_namers;
  };

  // Listens on config->admin. Unavailable naming the address on failure.
  static absl::StatusOr<std::unique_ptr<Admin>> Start(Sources sources);
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;
  ~Admin();

  std::string address() const { return server_->address(); }

  // The bodies of the pages, for tests.
  std::string MetricsText() const;
  std::string DtabsJson() const;

 private:
  explicit Admin(Sources sources) : sources_(std::move(sources)) {}
  void Handle(const http::Request& request, http::Responder responder) const;
  std::optional<std::string> RenderAddr(const dtab::BoundName& name) const;

  Sources sources_;
  std::unique_ptr<http::Server> server_;
};

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_ADMIN_H_
