#include "proxy/control_plane.h"

#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "dtab/parser.h"

namespace dtabd::proxy {

ControlPlane::~ControlPlane() {
  if (client_ != nullptr) client_->Stop();
}

absl::StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Start(const ControlPlaneConfig& config,
                                                                  std::vector<Router*> routers,
                                                                  std::string node_id) {
  std::unique_ptr<ControlPlane> cp(new ControlPlane());
  cp->routers_ = std::move(routers);
  discovery::DtabClient::Options o;
  o.target = config.address;
  o.token = config.token;
  o.cache_dir = config.cache_dir;
  o.node.set_id(std::move(node_id));
  o.node.set_user_agent("dtab-proxy");
  if (config.tls) {
    grpc::SslCredentialsOptions ssl;
    if (!config.tls_ca_file.empty()) {
      std::ifstream in(config.tls_ca_file);
      std::stringstream pem;
      pem << in.rdbuf();
      if (!in) {
        return absl::InvalidArgumentError(
            absl::StrCat("control_plane.tls.ca_file: cannot read '", config.tls_ca_file, "'"));
      }
      ssl.pem_root_certs = pem.str();
    }
    o.credentials = grpc::SslCredentials(ssl);
    o.tls_server_name = config.tls_server_name;
  }
  for (Router* r : cp->routers_) {
    if (r->config().ns.has_value()) o.namespaces.push_back(*r->config().ns);
  }
  o.logger = [](absl::string_view message) {
    std::cerr << "dtab-proxy: control plane: " << message << std::endl;
  };
  ControlPlane* self = cp.get();
  auto callback = [self](const std::string& ns,
                         const std::optional<v1::VersionedDtab>& dtab) -> absl::Status {
    std::shared_ptr<const RoutingTable> table;
    if (!dtab.has_value()) {
      table = std::make_shared<const RoutingTable>(RoutingTable::State::kAbsent, dtab::Dtab());
    } else {
      absl::StatusOr<dtab::Dtab> parsed = dtab::ParseDtab(dtab->dtab());
      if (!parsed.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("namespace '", ns, "' version ",
                                                       dtab->version(), ": dtab does not parse: ",
                                                       parsed.status().message()));
      }
      // Age counts from the version's creation in dtabd when known.
      absl::Time created = absl::Now();
      if (dtab->has_created_at()) {
        created = absl::FromUnixSeconds(dtab->created_at().seconds()) +
                  absl::Nanoseconds(dtab->created_at().nanos());
      }
      table = std::make_shared<const RoutingTable>(RoutingTable::State::kCurrent,
                                                   *std::move(parsed), dtab->version(), created);
    }
    for (Router* r : self->routers_) {
      if (r->config().ns == ns) r->table().Publish(table);
    }
    return absl::OkStatus();
  };
  absl::StatusOr<std::unique_ptr<discovery::DtabClient>> client =
      discovery::DtabClient::Start(std::move(o), std::move(callback));
  if (!client.ok()) return client.status();
  cp->client_ = *std::move(client);
  return cp;
}

}  // namespace dtabd::proxy
