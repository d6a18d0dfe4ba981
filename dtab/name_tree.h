// NameTree<T>: Finagle's tree of names (Leaf, Alt, weighted Union, Neg `~`,
// Fail `!`, Empty `$`), with simplify, eval and canonical printing
// (shared/reference/dtab-semantics.md section 4).
//
// NameTree<Path> is what dentries rewrite to; NameTree<BoundName> is the
// result of binding (see binder.h).
//
// Thread-safety: value types; const methods may be called concurrently.
#ifndef DTABD_DTAB_NAME_TREE_H_
#define DTABD_DTAB_NAME_TREE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "dtab/path.h"

namespace dtabd::dtab {

// Weight printing exactly as Java's String.format("%.2f", w): the shortest
// decimal that round-trips the double, rounded half-up to two decimals
// ("0.13" for 0.125, "2.68" for 2.675). Never prints a decimal comma.
std::string FormatWeight(double w);

template <typename T>
class NameTree {
 public:
  enum class Kind : uint8_t { kNeg, kFail, kEmpty, kLeaf, kAlt, kUnion };

  static constexpr double kDefaultWeight = 1.0;

  NameTree() = default;  // Neg
  static NameTree Neg() { return NameTree(Kind::kNeg); }
  static NameTree Fail() { return NameTree(Kind::kFail); }
  static NameTree Empty() { return NameTree(Kind::kEmpty); }
  static NameTree Leaf(T value) {
    NameTree t(Kind::kLeaf);
    t.leaf_ = std::move(value);
    return t;
  }
  // Alternatives, tried in order. Zero or one child is allowed (only
  // programmatically; the parser never makes them).
  static NameTree Alt(std::vector<NameTree> children) {
    NameTree t(Kind::kAlt);
    t.children_ = std::move(children);
    return t;
  }
  // Weighted branches. REQUIRES: weights.size() == children.size().
  static NameTree Union(std::vector<NameTree> children, std::vector<double> weights) {
    NameTree t(Kind::kUnion);
    t.children_ = std::move(children);
    t.weights_ = std::move(weights);
    return t;
  }

  Kind kind() const { return kind_; }
  bool is_neg() const { return kind_ == Kind::kNeg; }
  bool is_fail() const { return kind_ == Kind::kFail; }
  bool is_empty() const { return kind_ == Kind::kEmpty; }
  bool is_leaf() const { return kind_ == Kind::kLeaf; }
  bool is_alt() const { return kind_ == Kind::kAlt; }
  bool is_union() const { return kind_ == Kind::kUnion; }

  // REQUIRES: is_leaf().
  const T& leaf() const { return leaf_; }
  T& mutable_leaf() { return leaf_; }
  // Alt alternatives or Union branches (empty for other kinds).
  const std::vector<NameTree>& children() const { return children_; }
  std::vector<NameTree>& mutable_children() { return children_; }
  // Union weights, parallel to children() (empty for other kinds).
  const std::vector<double>& weights() const { return weights_; }

  // Returns the same tree with every leaf replaced by f(leaf).
  template <typename F>
  auto Map(const F& f) const -> NameTree<decltype(f(std::declval<const T&>()))> {
    using U = decltype(f(std::declval<const T&>()));
    switch (kind_) {
      case Kind::kNeg:
        return NameTree<U>::Neg();
      case Kind::kFail:
        return NameTree<U>::Fail();
      case Kind::kEmpty:
        return NameTree<U>::Empty();
      case Kind::kLeaf:
        return NameTree<U>::Leaf(f(leaf_));
      case Kind::kAlt:
      case Kind::kUnion:
        break;
    }
    std::vector<NameTree<U>> mapped;
    mapped.reserve(children_.size());
    for (const NameTree& c : children_) {
      mapped.push_back(c.Map(f));
    }
    if (kind_ == Kind::kAlt) {
      return NameTree<U>::Alt(std::move(mapped));
    }
    return NameTree<U>::Union(std::move(mapped), weights_);
  }

  friend bool operator==(const NameTree& a, const NameTree& b) {
    return a.kind_ == b.kind_ && a.leaf_ == b.leaf_ && a.children_ == b.children_ &&
           a.weights_ == b.weights_;
  }
  friend bool operator!=(const NameTree& a, const NameTree& b) { return !(a == b); }

 private:
  explicit NameTree(Kind k) : kind_(k) {}

  Kind kind_ = Kind::kNeg;
  T leaf_{};                         // meaningful iff kind_ == kLeaf
  std::vector<NameTree> children_;   // Alt alternatives or Union branches
  std::vector<double> weights_;      // Union only; parallel to children_
};

// Evaluation-equivalent normal form (section 4.4); idempotent.
// Alt: drops Neg children, keeps the first Fail and drops what follows it;
// Union: drops Neg and Fail branches. No children left -> Neg; one -> that
// child. Nested Alts/Unions are not flattened.
template <typename T>
NameTree<T> Simplify(const NameTree<T>& tree) {
  using Tree = NameTree<T>;
  if (tree.is_alt()) {
    std::vector<Tree> kept;
    for (const Tree& c : tree.children()) {
      Tree s = Simplify(c);
      if (s.is_neg()) {
        continue;
      }
      const bool stop = s.is_fail();
      kept.push_back(std::move(s));
      if (stop) {
        break;
      }
    }
    if (kept.empty()) {
      return Tree::Neg();
    }
    if (kept.size() == 1) {
      return std::move(kept.front());
    }
    return Tree::Alt(std::move(kept));
  }
  if (tree.is_union()) {
    std::vector<Tree> kept;
    std::vector<double> weights;
    for (size_t i = 0; i < tree.children().size(); ++i) {
      Tree s = Simplify(tree.children()[i]);
      if (s.is_neg() || s.is_fail()) {
        continue;
      }
      kept.push_back(std::move(s));
      weights.push_back(tree.weights()[i]);
    }
    if (kept.empty()) {
      return Tree::Neg();
    }
    if (kept.size() == 1) {
      return std::move(kept.front());
    }
    return Tree::Union(std::move(kept), std::move(weights));
  }
  return tree;
}

namespace internal {

enum class EvalOutcome : uint8_t { kNeg, kFail, kSet };

// Appends the leaves of `tree` to `out` when the outcome is kSet.
template <typename T>
EvalOutcome EvalInto(const NameTree<T>& tree, std::vector<T>* out) {
  using Kind = typename NameTree<T>::Kind;
  switch (tree.kind()) {
    case Kind::kNeg:
      return EvalOutcome::kNeg;
    case Kind::kFail:
      return EvalOutcome::kFail;
    case Kind::kEmpty:
      return EvalOutcome::kSet;
    case Kind::kLeaf:
      out->push_back(tree.leaf());
      return EvalOutcome::kSet;
    case Kind::kAlt:
      for (const auto& c : tree.children()) {
        const EvalOutcome r = EvalInto(c, out);
        if (r != EvalOutcome::kNeg) {
          return r;
        }
      }
      return EvalOutcome::kNeg;
    case Kind::kUnion: {
      bool any = false;
      for (const auto& c : tree.children()) {
        std::vector<T> branch;
        if (EvalInto(c, &branch) == EvalOutcome::kSet) {
          any = true;
          out->insert(out->end(), branch.begin(), branch.end());
        }
      }
      return any ? EvalOutcome::kSet : EvalOutcome::kNeg;
    }
  }
  return EvalOutcome::kNeg;
}

}  // namespace internal

// Evaluates a tree to the set of leaves it denotes (section 4.5), in tree
// order, or nullopt for Neg and Fail. Empty evaluates to an empty set. Alt
// takes the first child that is not Neg (a Fail stops it); Union joins the
// branches that evaluate to sets and is Neg when none does.
template <typename T>
std::optional<std::vector<T>> Eval(const NameTree<T>& tree) {
  std::vector<T> out;
  if (internal::EvalInto(tree, &out) != internal::EvalOutcome::kSet) {
    return std::nullopt;
  }
  return out;
}

// Canonical printing (section 4.3) with a caller-supplied leaf printer
// `show_leaf(const T&, std::string* out)`.
template <typename T, typename ShowLeaf>
void ShowTreeTo(const NameTree<T>& tree, const ShowLeaf& show_leaf, std::string* out) {
  using Tree = NameTree<T>;
  // Singleton Alt/Union nodes print as their only child.
  if ((tree.is_alt() || tree.is_union()) && tree.children().size() == 1) {
    ShowTreeTo(tree.children().front(), show_leaf, out);
    return;
  }
  // A child is parenthesised according to the node that actually prints:
  // singleton wrappers print as their only child (so `(/a | /b)` keeps its
  // parentheses inside a singleton Union), and childless nodes print as `~`.
  const auto is_multi = [](const Tree& t, typename Tree::Kind k) {
    const Tree* shown = &t;
    while ((shown->is_alt() || shown->is_union()) && shown->children().size() == 1) {
      shown = &shown->children().front();
    }
    return shown->kind() == k && shown->children().size() >= 2;
  };
  switch (tree.kind()) {
    case Tree::Kind::kNeg:
      out->push_back('~');
      return;
    case Tree::Kind::kFail:
      out->push_back('!');
      return;
    case Tree::Kind::kEmpty:
      out->push_back('$');
      return;
    case Tree::Kind::kLeaf:
      show_leaf(tree.leaf(), out);
      return;
    case Tree::Kind::kAlt:
      if (tree.children().empty()) {  // only constructible programmatically
        out->push_back('~');
        return;
      }
      for (size_t i = 0; i < tree.children().size(); ++i) {
        if (i > 0) {
          out->append(" | ");
        }
        const Tree& c = tree.children()[i];
        const bool parens = is_multi(c, Tree::Kind::kAlt);
        if (parens) {
          out->push_back('(');
        }
        ShowTreeTo(c, show_leaf, out);
        if (parens) {
          out->push_back(')');
        }
      }
      return;
    case Tree::Kind::kUnion:
      if (tree.children().empty()) {
        out->push_back('~');
        return;
      }
      for (size_t i = 0; i < tree.children().size(); ++i) {
        if (i > 0) {
          out->append(" & ");
        }
        if (tree.weights()[i] != Tree::kDefaultWeight) {
          out->append(FormatWeight(tree.weights()[i]));
          out->push_back('*');
        }
        const Tree& c = tree.children()[i];
        const bool parens = is_multi(c, Tree::Kind::kAlt) || is_multi(c, Tree::Kind::kUnion);
        if (parens) {
          out->push_back('(');
        }
        ShowTreeTo(c, show_leaf, out);
        if (parens) {
          out->push_back(')');
        }
      }
      return;
  }
}

// Canonical text of a tree of paths: `/a | 2.00*/b & /c`.
std::string Show(const NameTree<Path>& tree);

}  // namespace dtabd::dtab

#endif  // DTABD_DTAB_NAME_TREE_H_
