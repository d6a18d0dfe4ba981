#include "dtab/indexed_dtab.h"

#include <algorithm>
#include <functional>
#include <utility>

namespace dtabd::dtab {

IndexedDtab::IndexedDtab(Dtab dtab) : dtab_(std::move(dtab)) {
  if (dtab_.size() <= kLinearScanMax) {
    return;
  }
  root_ = std::make_unique<Node>();
  for (uint32_t i = 0; i < dtab_.size(); ++i) {
    Node* node = root_.get();
    for (const PrefixElem& e : dtab_.dentries()[i].prefix.elems()) {
      std::unique_ptr<Node>& next = e.wildcard ? node->wildcard : node->children[e.label];
      if (next == nullptr) {
        next = std::make_unique<Node>();
      }
      node = next.get();
    }
    node->terminal.push_back(i);
  }
}

IndexedDtab::~IndexedDtab() {
  // Free deep tries iteratively so a long prefix chain cannot exhaust the
  // stack through recursive unique_ptr destructors.
  if (root_ == nullptr) {
    return;
  }
  std::vector<std::unique_ptr<Node>> pending;
  pending.push_back(std::move(root_));
  while (!pending.empty()) {
    std::unique_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    for (auto& [label, child] : n->children) {
      pending.push_back(std::move(child));
    }
    if (n->wildcard != nullptr) {
      pending.push_back(std::move(n->wildcard));
    }
  }
}

MatchList IndexedDtab::Matches(const Path& path) const {
  MatchList out;
  if (root_ == nullptr) {
    for (uint32_t i = static_cast<uint32_t>(dtab_.size()); i > 0; --i) {
      if (dtab_.dentries()[i - 1].prefix.Matches(path)) {
        out.push_back(i - 1);
      }
    }
    return out;
  }
  // Walk every trie route the path can take (literal and wildcard), collect
  // the terminal dentries met on the way, then order them latest first.
  absl::InlinedVector<std::pair<const Node*, size_t>, 8> stack;
  stack.emplace_back(root_.get(), 0);
  while (!stack.empty()) {
    const auto [node, depth] = stack.back();
    stack.pop_back();
    out.insert(out.end(), node->terminal.begin(), node->terminal.end());
    if (depth == path.size()) {
      continue;
    }
    if (auto it = node->children.find(path.label(depth)); it != node->children.end()) {
      stack.emplace_back(it->second.get(), depth + 1);
    }
    if (node->wildcard != nullptr) {
      stack.emplace_back(node->wildcard.get(), depth + 1);
    }
  }
  if (out.size() > 1) {
    std::sort(out.begin(), out.end(), std::greater<uint32_t>());
  }
  return out;
}

DtabView::DtabView(std::initializer_list<const IndexedDtab*> layers) {
  for (const IndexedDtab* l : layers) {
    Push(l);
  }
}

void DtabView::Push(const IndexedDtab* layer) {
  if (layer != nullptr) {
    layers_.push_back(layer);
  }
}

NameTree<Path> AppendResidual(const NameTree<Path>& dst, const Path& path, size_t prefix_size) {
  if (dst.is_leaf()) {  // the common case, without Map's recursion
    Path p = dst.leaf();
    p.AppendPath(path, prefix_size);
    return NameTree<Path>::Leaf(std::move(p));
  }
  return dst.Map([&](const Path& leaf) {
    Path p = leaf;
    p.AppendPath(path, prefix_size);
    return p;
  });
}

NameTree<Path> DtabView::Lookup(const Path& path) const {
  // Collect the matches first so that the Alt's vector is allocated once,
  // at its final size. The pointers point into the layers.
  absl::InlinedVector<const Dentry*, 8> matches;
  ForEachMatch(path, [&](const Dentry& d) { matches.push_back(&d); });
  if (matches.empty()) {
    return NameTree<Path>::Neg();
  }
  if (matches.size() == 1) {
    return AppendResidual(matches.front()->dst, path, matches.front()->prefix.size());
  }
  std::vector<NameTree<Path>> alts;
  alts.reserve(matches.size());
  for (const Dentry* d : matches) {
    alts.push_back(AppendResidual(d->dst, path, d->prefix.size()));
  }
  return NameTree<Path>::Alt(std::move(alts));
}

Dtab DtabView::Flatten() const {
  Dtab out;
  for (const IndexedDtab* l : layers_) {
    out.Append(l->dtab());
  }
  return out;
}

}  // namespace dtabd::dtab
