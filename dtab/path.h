// Path and Prefix: the names that dtabs rewrite (Finagle's Path and
// Dtab.Prefix, see shared/reference/dtab-semantics.md sections 2 and 3).
//
// Thread-safety: value types. Const methods may be called concurrently;
// mutation needs external synchronisation.
#ifndef DTABD_DTAB_PATH_H_
#define DTABD_DTAB_PATH_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"

namespace dtabd::dtab {

namespace internal {
// kShowable[b] is true for the bytes that may appear unescaped in a label.
inline constexpr auto kShowable = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) {
    t[c] = true;
  }
  for (int c = 'A'; c <= 'Z'; ++c) {
    t[c] = true;
    t[c - 'A' + 'a'] = true;
  }
  for (char c : {'_', ':', '.', '#', '$', '%', '-'}) {
    t[static_cast<unsigned char>(c)] = true;
  }
  return t;
}();
}  // namespace internal

// Returns true if `c` may appear unescaped in a label: [0-9A-Za-z] and the
// seven characters `_:.#$%-`. Inline: the parser asks for every byte.
inline bool IsShowableChar(char c) { return internal::kShowable[static_cast<unsigned char>(c)]; }

// A sequence of zero or more non-empty labels of arbitrary bytes. Equality
// and matching are byte-exact. Small paths (up to 48 bytes of labels and 6
// labels) need no heap allocation: all label bytes live in one inlined
// buffer and the label boundaries in another.
//
// Invariant: ends_ is strictly increasing (no empty label) and
// ends_.back() == bytes_.size() (or both are empty).
class Path {
 public:
  // The empty path, shown as "/".
  Path() = default;
  // REQUIRES: every label is non-empty.
  Path(std::initializer_list<absl::string_view> labels);

  size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }

  // Label `i`; the view points into this path and is valid until it is
  // mutated or destroyed. REQUIRES: i < size().
  absl::string_view label(size_t i) const {
    const uint32_t begin = i == 0 ? 0 : ends_[i - 1];
    return absl::string_view(bytes_.data() + begin, ends_[i] - begin);
  }

  // Appends one label. REQUIRES: !label.empty().
  void Append(absl::string_view label);
  // Appends the labels of `other` from index `from` on (Finagle's `++`).
  void AppendPath(const Path& other, size_t from = 0);

  // The first `n` labels (all of them if n >= size()).
  Path Take(size_t n) const;
  // The labels after the first `n` (empty if n >= size()).
  Path Drop(size_t n) const;
  // this ++ suffix.
  Path Concat(const Path& suffix) const;
  // True if the first labels of this path equal `prefix`'s labels.
  bool StartsWith(const Path& prefix) const;

  // Canonical text: "/" for the empty path, else "/l1/l2". A label made only
  // of showable characters prints as is; any other label prints every byte
  // as \xHH (lowercase). The result always re-parses to an equal path.
  std::string Show() const;
  void ShowTo(std::string* out) const;

  friend bool operator==(const Path& a, const Path& b) {
    return a.ends_ == b.ends_ && a.bytes_ == b.bytes_;
  }
  friend bool operator!=(const Path& a, const Path& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const Path& p) {
    return H::combine(std::move(h), absl::string_view(p.bytes_.data(), p.bytes_.size()),
                      p.ends_.size());
  }

 private:
  absl::InlinedVector<char, 48> bytes_;      // all labels, concatenated
  absl::InlinedVector<uint32_t, 6> ends_;    // end offset of each label in bytes_
};

// One element of a dentry prefix: a literal label or the wildcard `*`.
struct PrefixElem {
  bool wildcard = false;
  std::string label;  // empty iff wildcard

  friend bool operator==(const PrefixElem& a, const PrefixElem& b) {
    return a.wildcard == b.wildcard && a.label == b.label;
  }
};

// A dentry prefix: a path whose elements may be `*` (matches any one label).
class Prefix {
 public:
  Prefix() = default;  // the empty prefix "/", which matches every path
  explicit Prefix(std::vector<PrefixElem> elems) : elems_(std::move(elems)) {}
  // A prefix of literal labels only.
  explicit Prefix(const Path& path);

  size_t size() const { return elems_.size(); }
  bool empty() const { return elems_.empty(); }
  const std::vector<PrefixElem>& elems() const { return elems_; }

  // True iff size() <= path.size() and every element is `*` or equals the
  // path's label at the same index. The residual is path.Drop(size()).
  bool Matches(const Path& path) const;

  // Canonical text, like Path::Show with wildcards printed as `*`.
  std::string Show() const;
  void ShowTo(std::string* out) const;

  friend bool operator==(const Prefix& a, const Prefix& b) { return a.elems_ == b.elems_; }
  friend bool operator!=(const Prefix& a, const Prefix& b) { return !(a == b); }

 private:
  std::vector<PrefixElem> elems_;
};

}  // namespace dtabd::dtab

#endif  // DTABD_DTAB_PATH_H_
