// Request metrics of the data plane. Each io thread owns a WorkerStats and
// updates it without locks or atomics; the admin server merges snapshots
// taken on each io thread (DataPlane::Stats) and renders Prometheus text.
//
// Thread-safety: none; confine each object to one thread.
#ifndef DTABD_PROXY_METRICS_H_
#define DTABD_PROXY_METRICS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "dtab/path.h"

namespace dtabd::proxy {

class EndpointState;

// Latency histogram with fixed bucket bounds in milliseconds.
struct Histogram {
  static constexpr std::array<double, 16> kBoundsMs = {
      0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

  std::array<uint64_t, kBoundsMs.size() + 1> buckets{};  // last: +Inf
  uint64_t count = 0;
  double sum_ms = 0;

  void Observe(double ms);
  void Merge(const Histogram& other);
};

struct RequestStats {
  uint64_t requests = 0;
  // Responses by status class: [1] 1xx ... [5] 5xx; [0] no response sent
  // (the connection failed mid-way).
  std::array<uint64_t, 6> status_classes{};
  Histogram latency;

  void Record(int status, double ms);
  void Merge(const RequestStats& other);
};

struct RouterStats {
  RequestStats total;
  // By logical name (at most kMaxServices names; the rest under "(other)").
  absl::flat_hash_map<dtab::Path, RequestStats> services;
  // By endpoint.
  absl::flat_hash_map<const EndpointState*, RequestStats> clients;
  // Requests carrying an override, and overrides rejected (400).
  uint64_t overrides = 0;
  uint64_t overrides_rejected = 0;
  // Parsed-override cache.
  uint64_t override_cache_hits = 0;
  uint64_t override_cache_misses = 0;

  static constexpr size_t kMaxServices = 1000;
  // The one-label name counting the services past kMaxServices.
  static constexpr char kOtherService[] = "(other)";
  RequestStats& Service(const dtab::Path& name);
  void Merge(const RouterStats& other);
};

// Everything one io thread counts, one RouterStats per router (by index).
struct WorkerStats {
  std::vector<RouterStats> routers;
  // Malformed requests answered 400 before a router was involved, by
  // listener's router index.
  uint64_t malformed = 0;
  uint64_t connections_accepted = 0;
  uint64_t upstream_connects = 0;
  uint64_t upstream_connect_failures = 0;

  void Merge(const WorkerStats& other);
};

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_METRICS_H_
