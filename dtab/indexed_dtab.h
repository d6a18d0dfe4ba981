// IndexedDtab: an immutable dtab with an index over its prefixes, so that
// finding the dentries that match a path costs the same for 10 or 100,000
// entries. DtabView: several dtabs read as their concatenation
// (base ++ l5d-ctx-dtab ++ l5d-dtab) without copying any of them.
//
// Thread-safety: IndexedDtab is immutable after construction and safe to
// share between threads (typically as shared_ptr<const IndexedDtab>).
// DtabView is a small value holding pointers; it does not own the dtabs.
#ifndef DTABD_DTAB_INDEXED_DTAB_H_
#define DTABD_DTAB_INDEXED_DTAB_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "dtab/dtab.h"
#include "dtab/path.h"

namespace dtabd::dtab {

// Indices of matching dentries, in lookup order (last dentry first).
using MatchList = absl::InlinedVector<uint32_t, 8>;

class IndexedDtab {
 public:
  explicit IndexedDtab(Dtab dtab);
  IndexedDtab(const IndexedDtab&) = delete;
  IndexedDtab& operator=(const IndexedDtab&) = delete;
  ~IndexedDtab();

  const Dtab& dtab() const { return dtab_; }
  const Dentry& dentry(uint32_t i) const { return dtab_.dentries()[i]; }

  // Indices of the dentries whose prefix matches `path`, highest index
  // (latest dentry) first. Allocates nothing when at most 8 match.
  MatchList Matches(const Path& path) const;

 private:
  // A trie over prefix elements. Node at depth d holds the dentries whose
  // prefix has exactly d elements along this route.
  struct Node {
    absl::flat_hash_map<std::string, std::unique_ptr<Node>> children;
    std::unique_ptr<Node> wildcard;  // child for a `*` element
    std::vector<uint32_t> terminal;  // dentries ending here, ascending
  };

  // Small dtabs are scanned linearly; the trie exists only above this size.
  static constexpr size_t kLinearScanMax = 8;

  // Immutable after construction.
  Dtab dtab_;
  std::unique_ptr<Node> root_;  // null when dtab_.size() <= kLinearScanMax
};

// An ordered sequence of dtabs read as their concatenation: lookups see the
// entries of the last layer first. Holds raw pointers; REQUIRES: every
// layer outlives the view.
class DtabView {
 public:
  DtabView() = default;
  DtabView(std::initializer_list<const IndexedDtab*> layers);

  // Appends a layer after the existing ones. A null layer is ignored.
  void Push(const IndexedDtab* layer);

  size_t num_layers() const { return layers_.size(); }
  const IndexedDtab& layer(size_t i) const { return *layers_[i]; }

  // Calls visit(const Dentry&) for every matching dentry of the
  // concatenated dtab, latest first.
  template <typename F>
  void ForEachMatch(const Path& path, const F& visit) const {
    for (size_t l = layers_.size(); l > 0; --l) {
      const IndexedDtab& layer = *layers_[l - 1];
      for (uint32_t i : layer.Matches(path)) {
        visit(layer.dentry(i));
      }
    }
  }

  // Finagle's Dtab.lookup (section 6.1): the destinations of the matching
  // dentries, latest first, with the residual appended to every leaf; Neg
  // for no match, the tree itself for one, an Alt for several. Nothing is
  // simplified.
  NameTree<Path> Lookup(const Path& path) const;

  // The concatenation as one Dtab value (copies; for display and tests).
  Dtab Flatten() const;

 private:
  absl::InlinedVector<const IndexedDtab*, 4> layers_;
};

// Returns `dst` with `residual` appended to every leaf path.
NameTree<Path> AppendResidual(const NameTree<Path>& dst, const Path& path, size_t prefix_size);

}  // namespace dtabd::dtab

#endif  // DTABD_DTAB_INDEXED_DTAB_H_
