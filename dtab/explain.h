// Explain: the delegation tree of a name, with the dentry used at each step,
// in the shape of linkerd's /delegator.json (shared/reference/
// linkerd-behaviour.md section 2.8, dtab-semantics.md section 9).
//
// Unlike Bind, Explain evaluates every alternative and every union branch so
// that it can show why each one failed; errors become `exception` nodes.
//
// Thread-safety: pure functions over immutable inputs.
#ifndef DTABD_DTAB_EXPLAIN_H_
#define DTABD_DTAB_EXPLAIN_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "dtab/dtab.h"
#include "dtab/indexed_dtab.h"
#include "dtab/interpreter.h"
#include "dtab/namer.h"
#include "dtab/path.h"

namespace dtabd::dtab {

struct DelegateNode {
  enum class Kind { kDelegate, kAlt, kUnion, kLeaf, kNeg, kFail, kEmpty, kException };

  Kind kind = Kind::kNeg;
  // The name being resolved at this step, as shown (`~`, `!` or `$` for a
  // node that a dentry's destination produced literally).
  std::string path;
  // The dentry that produced this step; nullopt for the root and for steps
  // answered by a namer (linkerd's Dentry.nop, JSON null).
  std::optional<Dentry> dentry;
  // kDelegate: one child; kAlt: the alternatives in evaluation order;
  // kUnion: the branches, with `weights` parallel to them.
  std::vector<DelegateNode> children;
  std::vector<double> weights;
  BoundName bound;      // kLeaf only
  std::string message;  // kException only
};

// Explains how `path` binds against `dtab` with `interpreter`'s namers. The
// recursion limit is the interpreter's max_depth; past it the node is an
// exception "Max recursion level reached.".
DelegateNode Explain(const Interpreter& interpreter, const DtabView& dtab, const Path& path);

// Renders a bound name's address as a JSON object (e.g.
// {"type":"bound","addrs":[...],"meta":{}}), or nullopt to omit "addr".
using AddrRenderer = std::function<std::optional<std::string>(const BoundName&)>;

// The node as linkerd's delegator JSON, compact, keys in linkerd's order:
// {"type":..,"path":..,"dentry":{"prefix":..,"dst":..}|null, ...}.
// As in linkerd, a fail node's "path" is "!" unless the name is under
// /$/fail, and a neg node for the empty path shows "~".
std::string ToDelegatorJson(const DelegateNode& node, const AddrRenderer& addr = nullptr);

// Appends `s` as a JSON string literal (quotes included). Invalid UTF-8 is
// replaced by U+FFFD; control characters are escaped.
void AppendJsonString(absl::string_view s, std::string* out);

}  // namespace dtabd::dtab

#endif  // DTABD_DTAB_EXPLAIN_H_
