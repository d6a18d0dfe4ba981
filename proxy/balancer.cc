#include "proxy/balancer.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace dtabd::proxy {
namespace {

std::string KeyOf(absl::string_view ip, uint16_t port) {
  return ip.find(':') != absl::string_view::npos ? absl::StrCat("[", ip, "]:", port)
                                                 : absl::StrCat(ip, ":", port);
}

// A numeric form of `host`: IPv6 and IPv4 literals (with inet_aton's
// shorthands, e.g. 127.1) directly, names through getaddrinfo.
absl::StatusOr<std::string> Resolve(const std::string& host) {
  char buf[INET6_ADDRSTRLEN];
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    inet_ntop(AF_INET6, &v6, buf, sizeof buf);
    return std::string(buf);
  }
  in_addr v4;
  if (inet_aton(host.c_str(), &v4) != 0) {
    inet_ntop(AF_INET, &v4, buf, sizeof buf);
    return std::string(buf);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("host '", host, "' does not resolve: ", gai_strerror(rc)));
  }
  std::string out;
  // Prefer IPv4, like the fs namer.
  for (addrinfo* a = res; a != nullptr && out.empty(); a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, buf, sizeof buf);
      out = buf;
    }
  }
  for (addrinfo* a = res; a != nullptr && out.empty(); a = a->ai_next) {
    if (a->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, buf,
                sizeof buf);
      out = buf;
    }
  }
  freeaddrinfo(res);
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat("host '", host, "' has no address"));
  return out;
}

int64_t ToNanos(absl::Time t) { return absl::ToUnixNanos(t); }

}  // namespace

EndpointState::EndpointState(std::string ip, uint16_t port)
    : ip_(std::move(ip)), port_(port), key_(KeyOf(ip_, port)) {}

void EndpointState::RecordSuccess() {
  consecutive_failures_.store(0, std::memory_order_relaxed);
  consecutive_ejections_.store(0, std::memory_order_relaxed);
}

void EndpointState::RecordFailure(const ClientConfig& config, absl::Time now) {
  int failures = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (failures < config.failures_to_eject) return;
  consecutive_failures_.store(0, std::memory_order_relaxed);
  int n = consecutive_ejections_.fetch_add(1, std::memory_order_relaxed);
  absl::Duration backoff = config.ejection_backoff;
  for (int i = 0; i < n && backoff < config.ejection_backoff_max; ++i) backoff *= 2;
  backoff = std::min(backoff, config.ejection_backoff_max);
  ejected_until_ns_.store(ToNanos(now + backoff), std::memory_order_relaxed);
  ejections_total_.fetch_add(1, std::memory_order_relaxed);
}

bool EndpointState::Ejected(absl::Time now) const {
  return ejected_until_ns_.load(std::memory_order_relaxed) > ToNanos(now);
}

absl::StatusOr<EndpointState*> EndpointRegistry::Get(absl::string_view host, uint16_t port) {
  std::string name_key = absl::StrCat(host, "|", port);
  {
    absl::MutexLock lock(&mu_);
    auto it = by_name_.find(name_key);
    if (it != by_name_.end()) return it->second;
  }
  // Resolve outside the lock: getaddrinfo may take a while.
  absl::StatusOr<std::string> ip = Resolve(std::string(host));
  if (!ip.ok()) return ip.status();
  absl::MutexLock lock(&mu_);
  std::unique_ptr<EndpointState>& owned = by_address_[KeyOf(*ip, port)];
  if (owned == nullptr) owned = std::make_unique<EndpointState>(*ip, port);
  by_name_[name_key] = owned.get();
  return owned.get();
}

std::vector<const EndpointState*> EndpointRegistry::All() const {
  absl::MutexLock lock(&mu_);
  std::vector<const EndpointState*> out;
  out.reserve(by_address_.size());
  for (const auto& [key, state] : by_address_) out.push_back(state.get());
  std::sort(out.begin(), out.end(),
            [](const EndpointState* a, const EndpointState* b) { return a->key() < b->key(); });
  return out;
}

size_t PickP2C(absl::Span<EndpointState* const> endpoints, absl::Span<const double> weights,
               absl::Time now, FastRandom& random) {
  const size_t n = endpoints.size();
  if (n == 1) return 0;
  auto load = [&](size_t i) { return (endpoints[i]->inflight() + 1) / weights[i]; };
  size_t a = random.Below(n);
  size_t b = random.Below(n - 1);
  if (b >= a) ++b;
  bool a_ok = !endpoints[a]->Ejected(now);
  bool b_ok = !endpoints[b]->Ejected(now);
  if (a_ok && b_ok) return load(b) < load(a) ? b : a;
  if (a_ok) return a;
  if (b_ok) return b;
  // Both ejected: look for any healthy one (max effort), else the least
  // loaded of all.
  size_t best = n;
  for (size_t i = 0; i < n; ++i) {
    if (endpoints[i]->Ejected(now)) continue;
    if (best == n || load(i) < load(best)) best = i;
  }
  if (best != n) return best;
  best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (load(i) < load(best)) best = i;
  }
  return best;
}

}  // namespace dtabd::proxy
