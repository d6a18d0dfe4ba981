#include "proxy/router.h"

#include <atomic>
#include <cstdint>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "dtab/name_tree.h"
#include "dtab/parser.h"

namespace dtabd::proxy {
namespace {

dtab::Path PrefixPath(const std::string& text) {
  absl::StatusOr<dtab::Path> p = dtab::ParsePath(text);
  return p.ok() ? *std::move(p) : dtab::Path();
}

// Bumped by every Router constructor. Router::Endpoint's per-thread memo is
// dropped when it changes: the memo holds EndpointState pointers of
// registries that may since have been destroyed (and a new registry may sit
// at a destroyed one's address), but a new registry can only be used through
// a Router constructed after it.
std::atomic<uint64_t> g_router_epoch{0};

// Picks one leaf of a bound tree: a union branch at random by weight.
// Returns null for neg, empty and fail (nothing to route to).
const dtab::NameTree<dtab::BoundName>* PickLeaf(const dtab::NameTree<dtab::BoundName>& tree,
                                                FastRandom& random) {
  const dtab::NameTree<dtab::BoundName>* t = &tree;
  while (t->is_union()) {
    const std::vector<double>& w = t->weights();
    double total = 0;
    for (double x : w) total += x;
    double r = random.NextDouble() * total;
    size_t i = 0;
    while (i + 1 < w.size() && r >= w[i]) {
      r -= w[i];
      ++i;
    }
    t = &t->children()[i];
  }
  return t->is_leaf() ? t : nullptr;
}

}  // namespace

absl::StatusOr<std::optional<InetAddress>> ParseInetId(const dtab::Path& id) {
  if (id.size() < 3 || id.label(0) != "$" || (id.label(1) != "inet" && id.label(1) != "fixedinet")) {
    return std::nullopt;
  }
  InetAddress out;
  out.host = id.size() >= 4 ? id.label(2) : absl::string_view("127.0.0.1");
  uint32_t port = 0;
  if (!absl::SimpleAtoi(id.label(id.size() >= 4 ? 3 : 2), &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad inet address ", id.Show()));
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

std::string RoutingTable::Describe() const {
  switch (state) {
    case State::kStatic:
      return "static";
    case State::kPending:
      return "no version yet";
    case State::kAbsent:
      return "namespace absent";
    case State::kCurrent:
      break;
  }
  return absl::StrCat("version ", version);
}

Router::Router(RouterConfig config, std::shared_ptr<const dtab::Interpreter> interpreter,
               std::vector<FsMount> fs_namers, EndpointRegistry* registry)
    : config_(std::move(config)),
      identifier_(config_.identifiers.empty() ? std::vector<IdentifierConfig>{IdentifierConfig{}}
                                              : config_.identifiers,
                  PrefixPath(config_.dst_prefix)),
      policy_(CompiledPolicy::From(config_.override_policy)),
      interpreter_(std::move(interpreter)),
      fs_namers_(std::move(fs_namers)),
      registry_(registry),
      table_(std::make_shared<const RoutingTable>(RoutingTable::State::kPending, dtab::Dtab())) {
  g_router_epoch.fetch_add(1, std::memory_order_relaxed);
}

absl::StatusOr<Route> Router::Bind(const dtab::Path& name, const RoutingTable& table,
                                   const Override& override, FastRandom& random,
                                   absl::Time now) const {
  if (table.state == RoutingTable::State::kPending) {
    return absl::UnavailableError(
        absl::StrCat("no dtab yet for namespace '", config_.ns.value_or(""), "'"));
  }
  dtab::DtabView view{&table.base, &override.dtab};
  absl::StatusOr<dtab::BindResult> bound = interpreter_->Bind(view, name);
  if (!bound.ok()) return bound.status();
  const dtab::NameTree<dtab::BoundName>* leaf = PickLeaf(bound->tree, random);
  if (leaf == nullptr) {
    const char* what = bound->tree.is_fail()    ? "fails (!)"
                       : bound->tree.is_empty() ? "binds to an empty set ($)"
                                                : "binds to nothing (~)";
    return absl::NotFoundError(absl::StrCat("name ", what));
  }
  return Resolve(leaf->leaf(), random, now);
}

absl::StatusOr<EndpointState*> Router::Endpoint(absl::string_view host, uint16_t port) const {
  // Per-thread memo of the registry, so the hot path takes no lock. Keyed by
  // registry too, and dropped when a Router was constructed since (see
  // g_router_epoch): it used to be keyed by host and port only, so routers
  // over different registries (tests, or a registry destroyed and another
  // created) got one another's, possibly freed, EndpointStates.
  thread_local absl::flat_hash_map<std::string, EndpointState*> memo;
  thread_local std::string key;
  thread_local uint64_t memo_epoch = 0;
  if (const uint64_t epoch = g_router_epoch.load(std::memory_order_relaxed);
      epoch != memo_epoch) {
    memo.clear();
    memo_epoch = epoch;
  }
  // registry_ and port as raw bytes (fixed sizes), then host: unambiguous,
  // and cheaper than formatting the port.
  key.clear();
  key.append(reinterpret_cast<const char*>(&registry_), sizeof registry_);
  key.append(reinterpret_cast<const char*>(&port), sizeof port);
  key.append(host.data(), host.size());
  auto it = memo.find(key);
  if (it != memo.end()) return it->second;
  absl::StatusOr<EndpointState*> state = registry_->Get(host, port);
  if (state.ok()) memo.emplace(key, *state);
  return state;
}

absl::StatusOr<Route> Router::Resolve(const dtab::BoundName& leaf, FastRandom& random,
                                      absl::Time now) const {
  Route route;
  const dtab::Path& id = leaf.id;
  absl::StatusOr<std::optional<InetAddress>> inet = ParseInetId(id);
  if (!inet.ok()) return absl::NotFoundError(inet.status().message());
  if (inet->has_value()) {
    absl::StatusOr<EndpointState*> e = Endpoint((*inet)->host, (*inet)->port);
    if (!e.ok()) return absl::NotFoundError(e.status().message());
    route.endpoint = *e;
  } else {
    const FsMount* mount = nullptr;
    for (const FsMount& m : fs_namers_) {
      if (id.StartsWith(m.prefix)) {
        mount = &m;
        break;
      }
    }
    if (mount == nullptr) {
      return absl::NotFoundError(absl::StrCat("no namer resolves ", id.Show()));
    }
    const FsNamer::Service* service = mount->namer->Find(id);
    if (service == nullptr) {
      return absl::NotFoundError(absl::StrCat("no endpoints file for ", id.Show()));
    }
    if (service->addresses.empty()) {
      return absl::NotFoundError(
          service->error.ok()
              ? absl::StrCat("no endpoints for ", id.Show())
              : absl::StrCat("no endpoints for ", id.Show(), ": ", service->error.message()));
    }
    thread_local std::vector<EndpointState*> endpoints;
    thread_local std::vector<double> weights;
    endpoints.clear();
    weights.clear();
    for (const Address& a : service->addresses) {
      absl::StatusOr<EndpointState*> e = Endpoint(a.host, a.port);
      if (!e.ok()) continue;
      endpoints.push_back(*e);
      weights.push_back(a.weight > 0 ? a.weight : 1.0);
    }
    if (endpoints.empty()) return absl::NotFoundError(absl::StrCat("no endpoints for ", id.Show()));
    route.endpoint = endpoints[PickP2C(endpoints, weights, now, random)];
  }
  route.client = id;
  route.residual = leaf.residual;
  return route;
}

}  // namespace dtabd::proxy
