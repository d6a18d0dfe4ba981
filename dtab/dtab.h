// Dentry and Dtab: Finagle's delegation table (shared/reference/
// dtab-semantics.md section 5), with canonical printing.
//
// Thread-safety: value types; const methods may be called concurrently.
#ifndef DTABD_DTAB_DTAB_H_
#define DTABD_DTAB_DTAB_H_

#include <string>
#include <vector>

#include "dtab/name_tree.h"
#include "dtab/path.h"

namespace dtabd::dtab {

// One rule `prefix => dst`.
struct Dentry {
  Prefix prefix;
  NameTree<Path> dst;

  // `prefix=>dst` in canonical form (no spaces around `=>`).
  std::string Show() const;
  void ShowTo(std::string* out) const;

  friend bool operator==(const Dentry& a, const Dentry& b) {
    return a.prefix == b.prefix && a.dst == b.dst;
  }
  friend bool operator!=(const Dentry& a, const Dentry& b) { return !(a == b); }
};

// An ordered list of dentries; later entries take precedence. Duplicates
// are kept.
class Dtab {
 public:
  Dtab() = default;
  explicit Dtab(std::vector<Dentry> dentries) : dentries_(std::move(dentries)) {}

  // Finagle's Dtab.fail: `/=>!`.
  static Dtab Fail();

  const std::vector<Dentry>& dentries() const { return dentries_; }
  size_t size() const { return dentries_.size(); }
  bool empty() const { return dentries_.empty(); }

  // this ++ other: other's entries after this one's.
  Dtab Concat(const Dtab& other) const;
  void Append(const Dtab& other);

  // Every destination simplified; entries whose destination becomes `~`
  // dropped.
  Dtab Simplified() const;

  // Entries' canonical forms joined by `;` (no trailing `;`); the empty dtab
  // shows as "".
  std::string Show() const;

  friend bool operator==(const Dtab& a, const Dtab& b) { return a.dentries_ == b.dentries_; }
  friend bool operator!=(const Dtab& a, const Dtab& b) { return !(a == b); }

 private:
  std::vector<Dentry> dentries_;
};

}  // namespace dtabd::dtab

#endif  // DTABD_DTAB_DTAB_H_
