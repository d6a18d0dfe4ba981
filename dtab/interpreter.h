// Interpreter: binds names through a dtab and namers exactly as Finagle's
// DefaultInterpreter / linkerd's ConfiguredNamersInterpreter
// (shared/reference/dtab-semantics.md section 6).
//
// Thread-safety: immutable after construction; Bind and Lookup may be
// called concurrently from any number of threads. Bind takes no locks and
// does no I/O beyond what the configured namers do (they must not block).
#ifndef DTABD_DTAB_INTERPRETER_H_
#define DTABD_DTAB_INTERPRETER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "dtab/indexed_dtab.h"
#include "dtab/name_tree.h"
#include "dtab/namer.h"
#include "dtab/path.h"

namespace dtabd::dtab {

inline constexpr int kDefaultMaxDepth = 100;

struct InterpreterOptions {
  // Lookups allowed per bind (Finagle's namerMaxDepth): a name that needs k
  // lookups (dtab rewrites plus the final namer lookup) binds iff k <= this.
  int max_depth = kDefaultMaxDepth;
};

// A configured namer and the prefix it owns, e.g. /#/io.l5d.fs.
struct NamerBinding {
  Path prefix;
  std::shared_ptr<const Namer> namer;
};

struct BindResult {
  // The bound tree: no Alt nodes; leaves are bound names.
  NameTree<BoundName> tree;
  // Union branches whose error was ignored because another branch bound
  // (Finagle drops them silently; DESIGN.md decision 5 counts them).
  int ignored_branch_errors = 0;
};

class Interpreter {
 public:
  explicit Interpreter(std::vector<NamerBinding> namers = {}, InterpreterOptions options = {});

  // The interpreter of tools without configured namers (dtabctl, dtabd's
  // explain): every /#/... path binds to itself (IdentityNamer at /#).
  static Interpreter Offline(InterpreterOptions options = {});

  const InterpreterOptions& options() const { return options_; }

  // Binds `path` against `dtab` (section 6.3): dentries first, then the
  // configured namers (in order, for paths under their prefix), then the
  // system namer for /$/... Alternatives are bound lazily left to right;
  // all branches of a union are bound and the result simplified.
  // InvalidArgument: the lookup limit was reached ("Max recursion level: N
  // reached in Namer lookup"), an unknown or malformed system namer path, or
  // a namer error on the chosen route.
  absl::StatusOr<BindResult> Bind(const DtabView& dtab, const Path& path) const;

  // The namer step of one interpreter lookup, for a path that no dentry
  // rewrites: configured namers whose prefix the path starts with, in
  // order, until one answers non-Neg; then the system namer; else Neg.
  absl::StatusOr<NameTree<BoundName>> LookupNamers(const Path& path) const;

  // True when a path's matching dentries send it to the namers: none
  // matched, or exactly one did and its destination is `~` (Finagle's
  // single-`~` quirk, DESIGN.md decision 4). `first_match` is the latest
  // matching dentry (null when `match_count` is 0). Bind and Explain both
  // decide with this.
  static bool DefersToNamers(size_t match_count, const Dentry* first_match) {
    return match_count == 0 || (match_count == 1 && first_match->dst.is_neg());
  }

 private:
  class Binder;

  std::vector<NamerBinding> namers_;
  InterpreterOptions options_;
};

}  // namespace dtabd::dtab

#endif  // DTABD_DTAB_INTERPRETER_H_
