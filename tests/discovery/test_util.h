// Helpers shared by the discovery tests: a recorder for the client's
// callback, a log capture, and a reserved loopback port. Waiting is done on
// absl::Mutex conditions with deadlines, never by sleeping.
#ifndef DTABD_TESTS_DISCOVERY_TEST_UTIL_H_
#define DTABD_TESTS_DISCOVERY_TEST_UTIL_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "discovery/dtab_client.h"

namespace dtabd::discovery::testing {

// Long enough for a loaded 2-core CI machine; only reached on failure.
inline constexpr absl::Duration kWait = absl::Seconds(20);

// One callback invocation.
struct Update {
  std::string ns;
  // nullopt: a removal.
  std::optional<int64_t> version;
  std::string dtab;
  // The callback's answer.
  bool accepted = true;
};

inline std::string ToString(const Update& u) {
  return absl::StrCat(u.ns, "@", u.version ? absl::StrCat(*u.version) : "removed",
                      u.accepted ? "" : "(rejected)");
}

inline std::string ToString(const std::vector<Update>& us) {
  std::string out;
  for (const Update& u : us) {
    absl::StrAppend(&out, out.empty() ? "" : " ", ToString(u));
  }
  return out;
}

// Records every callback invocation and answers per a policy (default:
// accept everything). Thread-safe.
class Recorder {
 public:
  using Policy = DtabClient::UpdateCallback;

  void set_policy(Policy p) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    policy_ = std::move(p);
  }

  // A callback for DtabClient::Start; `this` must outlive the client.
  DtabClient::UpdateCallback callback() {
    return [this](const std::string& ns, const std::optional<v1::VersionedDtab>& d) {
      absl::MutexLock lock(&mu_);
      absl::Status s = policy_ ? policy_(ns, d) : absl::OkStatus();
      Update u;
      u.ns = ns;
      if (d.has_value()) {
        u.version = d->version();
        u.dtab = d->dtab();
      }
      u.accepted = s.ok();
      updates_.push_back(std::move(u));
      return s;
    };
  }

  std::vector<Update> updates() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return updates_;
  }

  // The updates of `ns` only.
  std::vector<Update> updates(const std::string& ns) const ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<Update> out;
    for (Update& u : updates()) {
      if (u.ns == ns) {
        out.push_back(std::move(u));
      }
    }
    return out;
  }

  // Waits until `pred(updates())` holds; false on timeout.
  bool WaitFor(const std::function<bool(const std::vector<Update>&)>& pred,
               absl::Duration timeout = kWait) const ABSL_LOCKS_EXCLUDED(mu_) {
    struct Eval {
      const std::function<bool(const std::vector<Update>&)>* pred;
      const std::vector<Update>* updates;
      bool operator()() const { return (*pred)(*updates); }
    };
    absl::MutexLock lock(&mu_);
    const Eval eval{&pred, &updates_};
    return mu_.AwaitWithTimeout(absl::Condition(&eval), timeout);
  }

  // Waits for an update of `ns` to `version` (nullopt: a removal).
  bool WaitForUpdate(const std::string& ns, std::optional<int64_t> version,
                     absl::Duration timeout = kWait) const {
    return WaitFor(
        [&](const std::vector<Update>& us) {
          for (const Update& u : us) {
            if (u.ns == ns && u.version == version) {
              return true;
            }
          }
          return false;
        },
        timeout);
  }

 private:
  mutable absl::Mutex mu_;
  Policy policy_ ABSL_GUARDED_BY(mu_);
  std::vector<Update> updates_ ABSL_GUARDED_BY(mu_);
};

// Collects the client's log lines. Thread-safe.
class LogCapture {
 public:
  DtabClient::Logger logger() {
    return [this](absl::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    };
  }
  std::vector<std::string> lines() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return lines_;
  }
  // Waits until at least `n` lines were logged.
  bool WaitForLines(size_t n, absl::Duration timeout = kWait) const ABSL_LOCKS_EXCLUDED(mu_) {
    struct Eval {
      const std::vector<std::string>* lines;
      size_t n;
      bool operator()() const { return lines->size() >= n; }
    };
    absl::MutexLock lock(&mu_);
    const Eval eval{&lines_, n};
    return mu_.AwaitWithTimeout(absl::Condition(&eval), timeout);
  }
  // Waits until a line containing `needle` was logged.
  bool WaitForLine(absl::string_view needle, absl::Duration timeout = kWait) const
      ABSL_LOCKS_EXCLUDED(mu_) {
    struct Eval {
      const std::vector<std::string>* lines;
      absl::string_view needle;
      bool operator()() const {
        for (const std::string& l : *lines) {
          if (absl::StrContains(l, needle)) {
            return true;
          }
        }
        return false;
      }
    };
    absl::MutexLock lock(&mu_);
    const Eval eval{&lines_, needle};
    return mu_.AwaitWithTimeout(absl::Condition(&eval), timeout);
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

// A loopback port bound with SO_REUSEPORT but not listening, held until
// destruction: connecting to it is refused, and a server that also sets
// SO_REUSEPORT (gRPC does by default) can listen on it, again after a
// restart, without another process taking it meanwhile.
class ReservedPort {
 public:
  ReservedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ReservedPort(const ReservedPort&) = delete;
  ReservedPort& operator=(const ReservedPort&) = delete;
  ~ReservedPort() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  // 0 if reserving failed.
  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace dtabd::discovery::testing

#endif  // DTABD_TESTS_DISCOVERY_TEST_UTIL_H_
