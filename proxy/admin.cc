#include "proxy/admin.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "dtab/explain.h"
#include "proxy/delegator.h"

namespace dtabd::proxy {
namespace {

// A Prometheus label value, quoted and escaped.
std::string Label(absl::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

constexpr const char* kClassNames[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

// Appends counters by status class and a latency histogram for one series.
void AppendRequestStats(const std::string& family, const std::string& labels,
                        const RequestStats& s, std::string* out) {
  for (size_t c = 0; c < s.status_classes.size(); ++c) {
    if (s.status_classes[c] == 0) continue;
    absl::StrAppend(out, family, "_requests_total{", labels, ",class=\"", kClassNames[c], "\"} ",
                    s.status_classes[c], "\n");
  }
  uint64_t cumulative = 0;
  for (size_t i = 0; i < Histogram::kBoundsMs.size(); ++i) {
    cumulative += s.latency.buckets[i];
    absl::StrAppend(out, family, "_latency_ms_bucket{", labels, ",le=\"",
                    absl::StrFormat("%g", Histogram::kBoundsMs[i]), "\"} ", cumulative, "\n");
  }
  absl::StrAppend(out, family, "_latency_ms_bucket{", labels, ",le=\"+Inf\"} ", s.latency.count,
                  "\n");
  absl::StrAppend(out, family, "_latency_ms_sum{", labels, "} ",
                  absl::StrFormat("%.3f", s.latency.sum_ms), "\n");
  absl::StrAppend(out, family, "_latency_ms_count{", labels, "} ", s.latency.count, "\n");
}

void AppendType(const std::string& family, std::string* out) {
  absl::StrAppend(out, "# TYPE ", family, "_requests_total counter\n");
  absl::StrAppend(out, "# TYPE ", family, "_latency_ms histogram\n");
}

}  // namespace

Admin::~Admin() {
  if (server_ != nullptr) server_->Shutdown();
}

absl::StatusOr<std::unique_ptr<Admin>> Admin::Start(Sources sources) {
  std::unique_ptr<Admin> admin(new Admin(std::move(sources)));
  http::Server::Options o;
  const ListenAddress& a = admin->sources_.config->admin;
  o.address = a.ip.find(':') != std::string::npos ? absl::StrCat("[", a.ip, "]:", a.port)
                                                  : absl::StrCat(a.ip, ":", a.port);
  o.max_body_bytes = 64 << 10;
  Admin* self = admin.get();
  absl::StatusOr<std::unique_ptr<http::Server>> server =
      http::Server::Start(o, [self](const http::Request& req, http::Responder resp) {
        self->Handle(req, std::move(resp));
      });
  if (!server.ok()) {
    return absl::UnavailableError(
        absl::StrCat("admin ", o.address, ": ", server.status().message()));
  }
  admin->server_ = *std::move(server);
  return admin;
}

std::optional<std::string> Admin::RenderAddr(const dtab::BoundName& name) const {
  const dtab::Path& id = name.id;
  auto bound = [](const std::vector<std::pair<std::string, int>>& addrs) {
    std::string out = "{\"type\":\"bound\",\"addrs\":[";
    for (size_t i = 0; i < addrs.size(); ++i) {
      if (i > 0) out += ",";
      out += "{\"ip\":";
      dtab::AppendJsonString(addrs[i].first, &out);
      absl::StrAppend(&out, ",\"port\":", addrs[i].second, ",\"meta\":{}}");
    }
    out += "],\"meta\":{}}";
    return out;
  };
  absl::StatusOr<std::optional<InetAddress>> inet = ParseInetId(id);
  if (!inet.ok()) {
    std::string out = "{\"type\":\"failed\",\"cause\":";
    dtab::AppendJsonString(inet.status().message(), &out);
    return out + "}";
  }
  if (inet->has_value()) return bound({{std::string((*inet)->host), (*inet)->port}});
  for (const FsMount& m : sources_.fs_namers) {
    if (!id.StartsWith(m.prefix)) continue;
    const FsNamer::Service* s = m.namer->Find(id);
    if (s == nullptr) return std::string("{\"type\":\"neg\"}");
    if (s->addresses.empty() && !s->error.ok()) {
      std::string out = "{\"type\":\"failed\",\"cause\":";
      dtab::AppendJsonString(s->error.message(), &out);
      return out + "}";
    }
    std::vector<std::pair<std::string, int>> addrs;
    for (const Address& a : s->addresses) addrs.emplace_back(a.host, a.port);
    return bound(addrs);
  }
  return std::string("{\"type\":\"neg\"}");
}

std::string Admin::DtabsJson() const {
  std::string out = "{\"routers\":[";
  for (size_t i = 0; i < sources_.routers.size(); ++i) {
    const Router& r = *sources_.routers[i];
    std::shared_ptr<const RoutingTable> t = r.table().Load();
    if (i > 0) out += ",";
    out += "{\"label\":";
    dtab::AppendJsonString(r.label(), &out);
    out += ",\"namespace\":";
    if (r.config().ns.has_value()) {
      dtab::AppendJsonString(*r.config().ns, &out);
    } else {
      out += "null";
    }
    out += ",\"version\":";
    out += t->state == RoutingTable::State::kCurrent ? absl::StrCat(t->version) : "null";
    out += ",\"state\":";
    dtab::AppendJsonString(t->Describe(), &out);
    out += ",\"dtab\":";
    dtab::AppendJsonString(t->text, &out);
    out += "}";
  }
  out += "]}";
  return out;
}

std::string Admin::MetricsText() const {
  std::string out;
  const WorkerStats stats =
      sources_.data_plane != nullptr ? sources_.data_plane->Stats() : WorkerStats{};
  AppendType("dtab_proxy_router", &out);
  for (size_t i = 0; i < sources_.routers.size() && i < stats.routers.size(); ++i) {
    AppendRequestStats("dtab_proxy_router", absl::StrCat("router=", Label(sources_.routers[i]->label())),
                       stats.routers[i].total, &out);
  }
  AppendType("dtab_proxy_service", &out);
  for (size_t i = 0; i < sources_.routers.size() && i < stats.routers.size(); ++i) {
    const std::string router = Label(sources_.routers[i]->label());
    for (const auto& [name, s] : stats.routers[i].services) {
      // The overflow bucket is shown by name, not as an escaped path.
      const std::string service =
          name == dtab::Path{RouterStats::kOtherService} ? RouterStats::kOtherService : name.Show();
      AppendRequestStats("dtab_proxy_service",
                         absl::StrCat("router=", router, ",service=", Label(service)), s, &out);
    }
  }
  AppendType("dtab_proxy_client", &out);
  for (size_t i = 0; i < sources_.routers.size() && i < stats.routers.size(); ++i) {
    const std::string router = Label(sources_.routers[i]->label());
    for (const auto& [endpoint, s] : stats.routers[i].clients) {
      AppendRequestStats("dtab_proxy_client",
                         absl::StrCat("router=", router, ",client=", Label(endpoint->key())), s,
                         &out);
    }
  }
  out += "# TYPE dtab_proxy_override_requests_total counter\n";
  out += "# TYPE dtab_proxy_override_rejected_total counter\n";
  out += "# TYPE dtab_proxy_bind_cache_hits_total counter\n";
  out += "# TYPE dtab_proxy_bind_cache_misses_total counter\n";
  for (size_t i = 0; i < sources_.routers.size() && i < stats.routers.size(); ++i) {
    const std::string l = absl::StrCat("{router=", Label(sources_.routers[i]->label()));
    const RouterStats& r = stats.routers[i];
    absl::StrAppend(&out, "dtab_proxy_override_requests_total", l, "} ", r.overrides, "\n");
    absl::StrAppend(&out, "dtab_proxy_override_rejected_total", l, "} ", r.overrides_rejected,
                    "\n");
    absl::StrAppend(&out, "dtab_proxy_bind_cache_hits_total", l, ",cache=\"override\"} ",
                    r.override_cache_hits, "\n");
    absl::StrAppend(&out, "dtab_proxy_bind_cache_misses_total", l, ",cache=\"override\"} ",
                    r.override_cache_misses, "\n");
  }
  out += "# TYPE dtab_proxy_dtab_version gauge\n# TYPE dtab_proxy_dtab_age_seconds gauge\n";
  const absl::Time now = absl::Now();
  for (const Router* r : sources_.routers) {
    std::shared_ptr<const RoutingTable> t = r->table().Load();
    const std::string l = absl::StrCat("{router=", Label(r->label()), ",namespace=",
                                       Label(r->config().ns.value_or("")), ",state=",
                                       Label(t->Describe()), "}");
    absl::StrAppend(&out, "dtab_proxy_dtab_version", l, " ",
                    t->state == RoutingTable::State::kCurrent ? t->version : 0, "\n");
    absl::StrAppend(&out, "dtab_proxy_dtab_age_seconds", l, " ",
                    absl::StrFormat("%.3f", absl::ToDoubleSeconds(now - t->updated)), "\n");
  }
  out += "# TYPE dtab_proxy_endpoint_inflight gauge\n";
  out += "# TYPE dtab_proxy_endpoint_ejections_total counter\n";
  if (sources_.endpoints != nullptr) {
    for (const EndpointState* e : sources_.endpoints->All()) {
      const std::string l = absl::StrCat("{endpoint=", Label(e->key()), "}");
      absl::StrAppend(&out, "dtab_proxy_endpoint_inflight", l, " ", e->inflight(), "\n");
      absl::StrAppend(&out, "dtab_proxy_endpoint_ejections_total", l, " ", e->ejections(), "\n");
      absl::StrAppend(&out, "dtab_proxy_endpoint_ejected", l, " ", e->Ejected(now) ? 1 : 0, "\n");
    }
  }
  absl::StrAppend(&out, "# TYPE dtab_proxy_connections_accepted_total counter\n",
                  "dtab_proxy_connections_accepted_total ", stats.connections_accepted, "\n",
                  "# TYPE dtab_proxy_malformed_requests_total counter\n",
                  "dtab_proxy_malformed_requests_total ", stats.malformed, "\n",
                  "# TYPE dtab_proxy_upstream_connects_total counter\n",
                  "dtab_proxy_upstream_connects_total ", stats.upstream_connects, "\n",
                  "# TYPE dtab_proxy_upstream_connect_failures_total counter\n",
                  "dtab_proxy_upstream_connect_failures_total ",
                  stats.upstream_connect_failures, "\n");
  if (sources_.control_plane != nullptr) {
    const discovery::DtabClient::Stats cs = sources_.control_plane->client().stats();
    out += "# TYPE dtab_proxy_control_plane_state gauge\n";
    for (auto state : {discovery::ConnectionState::kConnecting, discovery::ConnectionState::kConnected,
                       discovery::ConnectionState::kBackoff, discovery::ConnectionState::kStopped}) {
      absl::StrAppend(&out, "dtab_proxy_control_plane_state{state=",
                      Label(discovery::ConnectionStateName(state)), "} ", cs.state == state ? 1 : 0,
                      "\n");
    }
    absl::StrAppend(&out, "# TYPE dtab_proxy_control_plane_streams_total counter\n",
                    "dtab_proxy_control_plane_streams_total ", cs.streams, "\n",
                    "# TYPE dtab_proxy_control_plane_acks_total counter\n",
                    "dtab_proxy_control_plane_acks_total ", cs.acks, "\n",
                    "# TYPE dtab_proxy_control_plane_nacks_total counter\n",
                    "dtab_proxy_control_plane_nacks_total ", cs.nacks, "\n",
                    "# TYPE dtab_proxy_control_plane_consecutive_failures gauge\n",
                    "dtab_proxy_control_plane_consecutive_failures ", cs.consecutive_failures,
                    "\n");
  }
  return out;
}

void Admin::Handle(const http::Request& req, http::Responder resp) const {
  const std::string& path = req.path;
  if (path == "/delegator.json") {
    RouterLookup lookup = [this](absl::string_view label) -> std::optional<DelegatorRouter> {
      for (Router* r : sources_.routers) {
        if (r->label() != label) continue;
        std::shared_ptr<const RoutingTable> t = r->table().Load();
        // The delegator keeps the table alive through an aliasing pointer.
        return DelegatorRouter{r->label(),
                               std::shared_ptr<const dtab::IndexedDtab>(t, &t->base),
                               &r->interpreter()};
      }
      return std::nullopt;
    };
    resp.Send(DelegatorJson(req, lookup,
                            [this](const dtab::BoundName& n) { return RenderAddr(n); }));
    return;
  }
  if (req.method != "GET" && req.method != "HEAD") {
    http::Response r = http::Response::Text(405, "method not allowed\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
    resp.Send(std::move(r));
    return;
  }
  if (path == "/delegator") {
    http::Response r;
    r.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
    r.body = std::string(DelegatorPageHtml());
    resp.Send(std::move(r));
  } else if (path == "/dtabs") {
    http::Response r;
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = DtabsJson();
    resp.Send(std::move(r));
  } else if (path == "/metrics") {
    http::Response r;
    r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4");
    r.body = MetricsText();
    resp.Send(std::move(r));
  } else if (path == "/ready") {
    std::string waiting;
    for (const Router* r : sources_.routers) {
      if (r->table().Load()->state == RoutingTable::State::kPending) {
        absl::StrAppend(&waiting, waiting.empty() ? "" : ", ", r->label());
      }
    }
    resp.Send(waiting.empty()
                  ? http::Response::Text(200, "ready\n")
                  : http::Response::Text(503, absl::StrCat("waiting for dtabd: ", waiting, "\n")));
  } else if (path == "/config") {
    http::Response r;
    r.headers.emplace_back("Content-Type", "text/yaml; charset=utf-8");
    r.body = RenderConfig(*sources_.config);
    resp.Send(std::move(r));
  } else if (path == "/") {
    http::Response r;
    r.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
    r.body =
        "<!doctype html><html><head><title>dtab-proxy admin</title></head><body>"
        "<h1>dtab-proxy</h1><ul>"
        "<li><a href=\"delegator\">delegator</a>: the dtab playground</li>"
        "<li><a href=\"dtabs\">dtabs</a>: current base dtabs and versions</li>"
        "<li><a href=\"metrics\">metrics</a>: Prometheus metrics</li>"
        "<li><a href=\"ready\">ready</a>: readiness</li>"
        "<li><a href=\"config\">config</a>: effective configuration</li>"
        "</ul></body></html>\n";
    resp.Send(std::move(r));
  } else {
    resp.Send(http::Response::Text(404, absl::StrCat("no such page: ", path, "\n")));
  }
}

}  // namespace dtabd::proxy
