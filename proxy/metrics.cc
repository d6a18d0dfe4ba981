#include "proxy/metrics.h"

#include <algorithm>

namespace dtabd::proxy {

void Histogram::Observe(double ms) {
  size_t i = std::lower_bound(kBoundsMs.begin(), kBoundsMs.end(), ms) - kBoundsMs.begin();
  ++buckets[i];
  ++count;
  sum_ms += ms;
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
  count += other.count;
  sum_ms += other.sum_ms;
}

void RequestStats::Record(int status, double ms) {
  ++requests;
  int cls = status / 100;
  ++status_classes[cls >= 1 && cls <= 5 ? cls : 0];
  latency.Observe(ms);
}

void RequestStats::Merge(const RequestStats& other) {
  requests += other.requests;
  for (size_t i = 0; i < status_classes.size(); ++i) status_classes[i] += other.status_classes[i];
  latency.Merge(other.latency);
}

RequestStats& RouterStats::Service(const dtab::Path& name) {
  auto it = services.find(name);
  if (it != services.end()) return it->second;
  if (services.size() >= kMaxServices) return services[dtab::Path{kOtherService}];
  return services[name];
}

void RouterStats::Merge(const RouterStats& other) {
  total.Merge(other.total);
  // Through Service() so that merging the stats of several io threads keeps
  // the kMaxServices cap (it used to add every thread's names: up to
  // workers * kMaxServices entries).
  for (const auto& [name, s] : other.services) Service(name).Merge(s);
  for (const auto& [endpoint, s] : other.clients) clients[endpoint].Merge(s);
  overrides += other.overrides;
  overrides_rejected += other.overrides_rejected;
  override_cache_hits += other.override_cache_hits;
  override_cache_misses += other.override_cache_misses;
}

void WorkerStats::Merge(const WorkerStats& other) {
  if (routers.size() < other.routers.size()) routers.resize(other.routers.size());
  for (size_t i = 0; i < other.routers.size(); ++i) routers[i].Merge(other.routers[i]);
  malformed += other.malformed;
  connections_accepted += other.connections_accepted;
  upstream_connects += other.upstream_connects;
  upstream_connect_failures += other.upstream_connect_failures;
}

}  // namespace dtabd::proxy
