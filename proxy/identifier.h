// Identifiers: how a request becomes a logical name, as linkerd 1's HTTP
// identifiers (shared/reference/linkerd-behaviour.md section 2.2); the name
// is prefixed with the router's dst_prefix.
//
// Thread-safety: Identifier is immutable after construction; Identify may
// be called concurrently.
#ifndef DTABD_PROXY_IDENTIFIER_H_
#define DTABD_PROXY_IDENTIFIER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dtab/path.h"
#include "proxy/config.h"

namespace dtabd::proxy {

// What identifiers read of a request. `header` returns the first value of a
// header (name compared case-insensitively) or nullopt.
struct RequestInfo {
  absl::string_view method;
  absl::string_view target;  // as sent, e.g. "/a/b?x=1"
  int version = 11;          // 10 or 11
  absl::FunctionRef<std::optional<absl::string_view>(absl::string_view)> header;
};

struct Identified {
  dtab::Path name;
  // io.l5d.path with consume: the target to forward instead.
  std::optional<std::string> rewritten_target;
};

class Identifier {
 public:
  // REQUIRES: `configs` non-empty and validated (ParseConfig), `dst_prefix`
  // a valid path.
  Identifier(std::vector<IdentifierConfig> configs, dtab::Path dst_prefix);

  // Tries each configured identifier in order. InvalidArgument with
  // linkerd's message when none identifies the request (answered 400):
  // "Host header is absent", "HTTP/1.1 request missing hostname",
  // "not enough segments in path", "l5d-name header is absent",
  // "l5d-name header is not a path: ...".
  absl::StatusOr<Identified> Identify(const RequestInfo& request) const;

 private:
  // A configured identifier, its kind resolved once (not per request).
  struct Compiled {
    enum class Kind { kHeaderToken, kMethodAndHost, kPath, kHeader };
    Kind kind;
    IdentifierConfig config;  // header filled with its kind's default
  };

  absl::StatusOr<Identified> IdentifyOne(const Compiled& c, const RequestInfo& request) const;

  std::vector<Compiled> identifiers_;
  dtab::Path dst_prefix_;
};

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_IDENTIFIER_H_
