#include "dtab/interpreter.h"

#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dtabd::dtab {

// One Bind call's state: the view, the limit and the ignored-error count.
class Interpreter::Binder {
 public:
  Binder(const Interpreter& interpreter, const DtabView& dtab)
      : interpreter_(interpreter), dtab_(dtab) {}

  int ignored_branch_errors() const { return ignored_branch_errors_; }

  // Equivalent to BindTree(dtab_.Lookup(path), depth + 1) when the lookup
  // does not defer to the namers, but builds the Alt of the matching
  // destinations lazily: each destination (with the residual appended) is
  // made only when the alternatives before it bound to Neg, and no Alt
  // vector is allocated (hot path; STYLE.md section 5).
  absl::StatusOr<NameTree<BoundName>> BindPath(const Path& path, int depth) {
    if (TooDeep(depth)) {
      return MaxDepthError();
    }
    // The matching dentries of the concatenated dtab, latest first, as
    // DtabView::Lookup visits them. Points into the view's layers.
    absl::InlinedVector<const Dentry*, 8> matches;
    dtab_.ForEachMatch(path, [&](const Dentry& d) { matches.push_back(&d); });
    // Lookup's result is Neg iff nothing matched or exactly one dentry did
    // and its destination is Neg (AppendResidual keeps Neg).
    if (DefersToNamers(matches.size(), matches.empty() ? nullptr : matches.front())) {
      // The namer's answer is bound at the next level, like any lookup.
      if (TooDeep(depth + 1)) {
        return MaxDepthError();
      }
      return interpreter_.LookupNamers(path);
    }
    if (matches.size() == 1) {
      return BindTree(AppendResidual(matches.front()->dst, path, matches.front()->prefix.size()),
                      depth + 1);
    }
    // BindTree(Alt, depth + 1) then BindAlt, with the children made lazily.
    if (TooDeep(depth + 1)) {
      return MaxDepthError();
    }
    for (const Dentry* d : matches) {
      absl::StatusOr<NameTree<BoundName>> r =
          BindTree(AppendResidual(d->dst, path, d->prefix.size()), depth + 1);
      if (!r.ok() || !r->is_neg()) {
        return r;
      }
    }
    return NameTree<BoundName>::Neg();
  }

  absl::StatusOr<NameTree<BoundName>> BindTree(const NameTree<Path>& tree, int depth) {
    if (TooDeep(depth)) {
      return MaxDepthError();
    }
    using Kind = NameTree<Path>::Kind;
    switch (tree.kind()) {
      case Kind::kNeg:
        return NameTree<BoundName>::Neg();
      case Kind::kFail:
        return NameTree<BoundName>::Fail();
      case Kind::kEmpty:
        return NameTree<BoundName>::Empty();
      case Kind::kLeaf:
        return BindPath(tree.leaf(), depth);
      case Kind::kAlt:
        return BindAlt(tree, depth);
      case Kind::kUnion:
        return BindUnion(tree, depth);
    }
    return absl::InternalError("unknown name tree kind");
  }

 private:
  bool TooDeep(int depth) const { return depth > interpreter_.options_.max_depth; }

  absl::Status MaxDepthError() const {
    return absl::InvalidArgumentError(absl::StrCat(
        "Max recursion level: ", interpreter_.options_.max_depth, " reached in Namer lookup"));
  }

  // Lazily, left to right: Neg tries the next; Fail stops with Fail; any
  // other result (leaf, union, Empty) is the answer; errors propagate.
  absl::StatusOr<NameTree<BoundName>> BindAlt(const NameTree<Path>& tree, int depth) {
    for (const NameTree<Path>& child : tree.children()) {
      absl::StatusOr<NameTree<BoundName>> r = BindTree(child, depth);
      if (!r.ok() || !r->is_neg()) {
        return r;
      }
    }
    return NameTree<BoundName>::Neg();
  }

  // Every branch is bound; errors are ignored when another branch bound,
  // else the first error (in branch order) is returned.
  absl::StatusOr<NameTree<BoundName>> BindUnion(const NameTree<Path>& tree, int depth) {
    if (tree.children().empty()) {
      return NameTree<BoundName>::Neg();
    }
    if (tree.children().size() == 1) {
      return BindTree(tree.children().front(), depth);
    }
    std::vector<NameTree<BoundName>> bound;
    std::vector<double> weights;
    absl::Status first_error;
    int errors = 0;
    for (size_t i = 0; i < tree.children().size(); ++i) {
      absl::StatusOr<NameTree<BoundName>> r = BindTree(tree.children()[i], depth);
      if (r.ok()) {
        bound.push_back(*std::move(r));
        weights.push_back(tree.weights()[i]);
      } else {
        if (errors == 0) {
          first_error = r.status();
        }
        ++errors;
      }
    }
    if (bound.empty()) {
      return first_error;
    }
    ignored_branch_errors_ += errors;
    return Simplify(NameTree<BoundName>::Union(std::move(bound), std::move(weights)));
  }

  const Interpreter& interpreter_;
  const DtabView& dtab_;
  int ignored_branch_errors_ = 0;
};

Interpreter::Interpreter(std::vector<NamerBinding> namers, InterpreterOptions options)
    : namers_(std::move(namers)), options_(options) {}

Interpreter Interpreter::Offline(InterpreterOptions options) {
  std::vector<NamerBinding> namers;
  namers.push_back({Path({"#"}), std::make_shared<IdentityNamer>()});
  return Interpreter(std::move(namers), options);
}

absl::StatusOr<NameTree<BoundName>> Interpreter::LookupNamers(const Path& path) const {
  for (const NamerBinding& n : namers_) {
    if (!path.StartsWith(n.prefix)) {
      continue;
    }
    absl::StatusOr<NameTree<BoundName>> r = n.namer->Lookup(path, n.prefix.size());
    if (!r.ok() || !r->is_neg()) {
      return r;
    }
  }
  return LookupSystemPath(path);
}

absl::StatusOr<BindResult> Interpreter::Bind(const DtabView& dtab, const Path& path) const {
  Binder binder(*this, dtab);
  absl::StatusOr<NameTree<BoundName>> tree = binder.BindPath(path, 0);
  if (!tree.ok()) {
    return tree.status();
  }
  return BindResult{*std::move(tree), binder.ignored_branch_errors()};
}

}  // namespace dtabd::dtab
