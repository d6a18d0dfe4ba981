// Bearer-token authentication and scopes for dtabd's APIs.
//
// The tokens file has one token per line: `TOKEN IDENTITY SCOPE`, where
// SCOPE is `read` or `write` (write implies read); blank lines and lines
// starting with `#` are ignored. The identity becomes the author of writes.
//
// Thread-safety: immutable after Load; Authorize may be called concurrently.
#ifndef DTABD_SERVER_AUTH_H_
#define DTABD_SERVER_AUTH_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dtabd::server {

enum class Scope { kRead, kWrite };

struct Identity {
  std::string name;  // e.g. "ci-deployer"; "anonymous" when auth is off
  Scope scope = Scope::kRead;
};

class Authenticator {
 public:
  // Auth off: every caller is "anonymous" with write scope. Only for
  // listeners on loopback (the caller checks).
  static std::unique_ptr<Authenticator> AllowAll();
  // Reads a tokens file. InvalidArgument: a malformed line (file:line and
  // why), a duplicate token, or no token at all. NotFound: no such file.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Load(const std::string& path);
  // Builds from file contents (tests, and Load). `source` names the input
  // in error messages.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Parse(absl::string_view contents,
                                                              absl::string_view source);

  bool enabled() const { return enabled_; }

  // Checks an `authorization` header value ("Bearer TOKEN") for `needed`.
  // Unauthenticated: missing, malformed or unknown token. PermissionDenied:
  // a read token used to write.
  absl::StatusOr<Identity> Authorize(absl::string_view authorization, Scope needed) const;

 private:
  Authenticator() = default;

  bool enabled_ = false;
  absl::flat_hash_map<std::string, Identity> tokens_;
};

}  // namespace dtabd::server

#endif  // DTABD_SERVER_AUTH_H_
