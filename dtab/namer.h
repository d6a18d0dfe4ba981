// Bound names and the Namer interface through which configured `/#/...`
// namers (io.l5d.fs, ...) plug into binding, plus the system namer for
// `/$/...` paths (DESIGN.md decision 3).
//
// Thread-safety: Namer implementations must be safe to call concurrently
// and must not block (they answer from their current state).
#ifndef DTABD_DTAB_NAMER_H_
#define DTABD_DTAB_NAMER_H_

#include <string>

#include "absl/status/statusor.h"
#include "dtab/name_tree.h"
#include "dtab/path.h"

namespace dtabd::dtab {

// A name resolved by a namer: `id` names the replica set (e.g.
// /$/inet/127.1/8080) and `residual` is the rest of the request's path that
// the namer did not consume.
struct BoundName {
  Path id;
  Path residual;

  // id ++ residual, the form `dtabctl delegate` prints.
  std::string Show() const { return id.Concat(residual).Show(); }

  friend bool operator==(const BoundName& a, const BoundName& b) {
    return a.id == b.id && a.residual == b.residual;
  }
  friend bool operator!=(const BoundName& a, const BoundName& b) { return !(a == b); }
};

// Canonical text of a bound tree, each leaf shown as id ++ residual.
std::string Show(const NameTree<BoundName>& tree);

class Namer {
 public:
  virtual ~Namer() = default;

  // Resolves `path`, whose first `prefix_size` labels are this namer's
  // prefix (e.g. /#/io.l5d.fs) and the rest the name below it. Returns a
  // tree of bound names; Neg when the namer does not know the name (binding
  // then falls back to the next namer); Empty when it exists without
  // endpoints; Fail to stop fall-back. An error fails the bind (or is
  // ignored in a union where another branch binds). Called on the proxy's
  // hot path: answer from memory, without blocking.
  virtual absl::StatusOr<NameTree<BoundName>> Lookup(const Path& path,
                                                     size_t prefix_size) const = 0;
};

// Binds every path below its prefix to a leaf equal to that path (id = the
// whole path, empty residual). dtabctl uses it for `/#` offline, where
// no real namer is configured.
class IdentityNamer final : public Namer {
 public:
  absl::StatusOr<NameTree<BoundName>> Lookup(const Path& path,
                                             size_t prefix_size) const override;
};

// The system namer for `/$/...` (Finagle's global namer, restricted):
//   /$/inet/[HOST/]PORT[/rest] and /$/fixedinet/... -> leaf, id the consumed
//       prefix, residual `rest`; PORT is an integer 0-65535;
//   /$/nil[/...] -> Empty;  /$/fail[/...] -> Fail;
//   any other /$/<name> -> InvalidArgument "unknown system namer";
//   paths not under /$ -> Neg.
absl::StatusOr<NameTree<BoundName>> LookupSystemPath(const Path& path);

}  // namespace dtabd::dtab

#endif  // DTABD_DTAB_NAMER_H_
