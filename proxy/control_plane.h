// The proxy's link to dtabd: subscribes to every router's namespace with
// the streaming client (discovery::DtabClient), parses each new version once
// into a RoutingTable and publishes it to the routers of that namespace.
// A version that does not parse is NACKed and the previous table stays; a
// namespace dtabd reports absent gets an empty table. The client's on-disk
// cache lets a restarted proxy route before dtabd answers, and the last
// accepted table stays through any control-plane outage.
//
// Thread-safety: the accessors are thread-safe.
#ifndef DTABD_PROXY_CONTROL_PLANE_H_
#define DTABD_PROXY_CONTROL_PLANE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "discovery/dtab_client.h"
#include "proxy/config.h"
#include "proxy/router.h"

namespace dtabd::proxy {

class ControlPlane {
 public:
  // Starts the subscription for the routers with a namespace (delivering
  // cached versions before returning). `routers` outlive the ControlPlane.
  // `node_id` names this proxy in dtabd's rollout status.
  // InvalidArgument/FailedPrecondition: bad settings, unreadable CA file,
  // cache directory that cannot be created.
  static absl::StatusOr<std::unique_ptr<ControlPlane>> Start(const ControlPlaneConfig& config,
                                                             std::vector<Router*> routers,
                                                             std::string node_id);
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;
  ~ControlPlane();

  const discovery::DtabClient& client() const { return *client_; }

 private:
  ControlPlane() = default;
  std::vector<Router*> routers_;
  std::unique_ptr<discovery::DtabClient> client_;
};

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_CONTROL_PLANE_H_
