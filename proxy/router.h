// A router: its configuration, its current routing table (the base dtab,
// published atomically by the control plane) and the routing step of the hot
// path: bind a name against base ++ override, pick a branch of a weighted
// union, resolve the leaf to a replica set and pick an endpoint.
//
// Thread-safety: Router is thread-safe. Route() takes no lock in the steady
// state and allocates nothing that grows with the base dtab.
#ifndef DTABD_PROXY_ROUTER_H_
#define DTABD_PROXY_ROUTER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "dtab/indexed_dtab.h"
#include "dtab/interpreter.h"
#include "dtab/path.h"
#include "proxy/balancer.h"
#include "proxy/config.h"
#include "proxy/fs_namer.h"
#include "proxy/identifier.h"
#include "proxy/override.h"
#include "proxy/published.h"

namespace dtabd::proxy {

// One version of a router's base dtab.
struct RoutingTable {
  enum class State {
    kStatic,   // from the config file's `dtab:`
    kPending,  // waiting for dtabd (nothing cached): routes nothing
    kCurrent,  // a version from dtabd or the cache
    kAbsent,   // dtabd says the namespace does not exist
  };

  RoutingTable(State s, dtab::Dtab dtab, int64_t v = 0, absl::Time at = absl::Now())
      : state(s), version(v), updated(at), base(std::move(dtab)), text(base.dtab().Show()) {}

  State state;
  int64_t version;  // kCurrent only
  absl::Time updated;
  dtab::IndexedDtab base;
  std::string text;  // the base dtab, shown

  // "version 3", "static", "no version yet", "namespace absent".
  std::string Describe() const;
};

// Where a request goes.
struct Route {
  EndpointState* endpoint = nullptr;
  // The bound id (l5d-dst-client) and residual (l5d-dst-residual, empty
  // when none), shown.
  // Paths, not text: short ones stay inline (no allocation per request).
  dtab::Path client;
  dtab::Path residual;
};

// The host and port a system-namer id names: /$/inet/HOST/PORT (or
// /$/fixedinet/...), /$/inet/PORT meaning 127.0.0.1. nullopt for any other
// id; InvalidArgument for an inet id with a port outside 1-65535.
struct InetAddress {
  absl::string_view host;  // points into the id
  uint16_t port = 0;
};
absl::StatusOr<std::optional<InetAddress>> ParseInetId(const dtab::Path& id);

// An fs namer and where it is mounted (e.g. /#/io.l5d.fs).
struct FsMount {
  dtab::Path prefix;
  std::shared_ptr<const FsNamer> namer;
};

class Router {
 public:
  // `fs_namers` are the namers `interpreter` was built with; they resolve
  // leaves below their prefix to endpoints. `registry` outlives the router.
  Router(RouterConfig config, std::shared_ptr<const dtab::Interpreter> interpreter,
         std::vector<FsMount> fs_namers, EndpointRegistry* registry);
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  const RouterConfig& config() const { return config_; }
  const std::string& label() const { return config_.label; }
  const Identifier& identifier() const { return identifier_; }
  const CompiledPolicy& policy() const { return policy_; }
  const dtab::Interpreter& interpreter() const { return *interpreter_; }
  std::shared_ptr<const dtab::Interpreter> shared_interpreter() const { return interpreter_; }
  Published<RoutingTable>& table() { return table_; }
  const Published<RoutingTable>& table() const { return table_; }

  // Binds `name` against table.base ++ override.dtab and picks an endpoint.
  // Errors (answered 502 by the data path): Unavailable when the table has
  // no dtab yet; NotFound when the name binds to nothing (neg, empty, fail)
  // or the replica set has no endpoints; InvalidArgument from binding.
  absl::StatusOr<Route> Bind(const dtab::Path& name, const RoutingTable& table,
                             const Override& override, FastRandom& random,
                             absl::Time now) const;

 private:
  absl::StatusOr<Route> Resolve(const dtab::BoundName& leaf, FastRandom& random,
                                absl::Time now) const;
  absl::StatusOr<EndpointState*> Endpoint(absl::string_view host, uint16_t port) const;

  const RouterConfig config_;
  const Identifier identifier_;
  const CompiledPolicy policy_;
  const std::shared_ptr<const dtab::Interpreter> interpreter_;
  const std::vector<FsMount> fs_namers_;
  EndpointRegistry* const registry_;
  Published<RoutingTable> table_;
};

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_ROUTER_H_
