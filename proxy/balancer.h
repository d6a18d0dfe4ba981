// Endpoints and load balancing: every upstream endpoint the proxy talks to
// has one EndpointState (load, failure accrual) in an EndpointRegistry;
// within a replica set the proxy picks with power-of-two-choices
// least-loaded (shared/reference/linkerd-behaviour.md section 2.10), skipping
// endpoints ejected after consecutive connection failures.
//
// Thread-safety: EndpointRegistry and EndpointState are thread-safe;
// EndpointState is updated with atomics only.
#ifndef DTABD_PROXY_BALANCER_H_
#define DTABD_PROXY_BALANCER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "proxy/config.h"
#include "proxy/fs_namer.h"

namespace dtabd::proxy {

// A small fast PRNG for the hot path (xorshift64*); one per io thread.
class FastRandom {
 public:
  explicit FastRandom(uint64_t seed) : state_(seed == 0 ? 0x9E3779B97F4A7C15ull : seed) {}
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1Dull;
  }
  // Uniform in [0, 1).
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n). REQUIRES: n > 0.
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }

 private:
  uint64_t state_;
};

// One upstream endpoint: numeric address, load and failure accrual.
class EndpointState {
 public:
  EndpointState(std::string ip, uint16_t port);

  const std::string& ip() const { return ip_; }
  uint16_t port() const { return port_; }
  // "ip:port" ("[v6]:port" for IPv6), as shown in metrics and headers.
  const std::string& key() const { return key_; }

  // Requests in flight to this endpoint.
  int inflight() const { return inflight_.load(std::memory_order_relaxed); }
  void BeginRequest() { inflight_.fetch_add(1, std::memory_order_relaxed); }
  void EndRequest() { inflight_.fetch_sub(1, std::memory_order_relaxed); }

  // A connection (or a request on it) succeeded: resets the failure count.
  void RecordSuccess();
  // A connection attempt failed. After `config.failures_to_eject`
  // consecutive failures the endpoint is ejected for ejection_backoff,
  // doubled per consecutive ejection up to ejection_backoff_max.
  void RecordFailure(const ClientConfig& config, absl::Time now);
  bool Ejected(absl::Time now) const;
  int64_t ejections() const { return ejections_total_.load(std::memory_order_relaxed); }

 private:
  const std::string ip_;
  const uint16_t port_;
  const std::string key_;
  std::atomic<int> inflight_{0};
  std::atomic<int> consecutive_failures_{0};
  std::atomic<int> consecutive_ejections_{0};
  std::atomic<int64_t> ejected_until_ns_{0};
  std::atomic<int64_t> ejections_total_{0};
};

// Every endpoint ever used, by address. Entries are never removed, so an
// EndpointState* stays valid for the registry's life.
class EndpointRegistry {
 public:
  // The state of ip:port. `host` may be an IP literal (IPv4 shorthand such
  // as 127.1 is accepted) or a name, resolved with getaddrinfo the first
  // time it is seen (this blocks the calling thread once per name).
  // InvalidArgument when the name does not resolve.
  absl::StatusOr<EndpointState*> Get(absl::string_view host, uint16_t port)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Every endpoint, for metrics.
  std::vector<const EndpointState*> All() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  // Owned, keyed by numeric address ("ip:port").
  absl::flat_hash_map<std::string, std::unique_ptr<EndpointState>> by_address_
      ABSL_GUARDED_BY(mu_);
  // Keyed by "host|port" as asked (names and literals alike).
  absl::flat_hash_map<std::string, EndpointState*> by_name_ ABSL_GUARDED_BY(mu_);
};

// Power of two choices: two distinct random endpoints, the one with fewer
// requests in flight per unit of weight wins; ejected endpoints are skipped
// unless all are ejected (then the least loaded of all is tried: better a
// likely failure than a certain one). REQUIRES: !endpoints.empty(),
// weights parallel to endpoints, every weight > 0.
size_t PickP2C(absl::Span<EndpointState* const> endpoints, absl::Span<const double> weights,
               absl::Time now, FastRandom& random);

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_BALANCER_H_
