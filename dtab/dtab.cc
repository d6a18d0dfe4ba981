#include "dtab/dtab.h"

namespace dtabd::dtab {

std::string Dentry::Show() const {
  std::string out;
  ShowTo(&out);
  return out;
}

void Dentry::ShowTo(std::string* out) const {
  prefix.ShowTo(out);
  out->append("=>");
  ShowTreeTo(dst, [](const Path& p, std::string* o) { p.ShowTo(o); }, out);
}

Dtab Dtab::Fail() { return Dtab({Dentry{Prefix(), NameTree<Path>::Fail()}}); }

Dtab Dtab::Concat(const Dtab& other) const {
  Dtab out = *this;
  out.Append(other);
  return out;
}

void Dtab::Append(const Dtab& other) {
  if (&other == this) {  // insert() must not read from the vector it grows
    const std::vector<Dentry> copy = dentries_;
    dentries_.insert(dentries_.end(), copy.begin(), copy.end());
    return;
  }
  dentries_.insert(dentries_.end(), other.dentries_.begin(), other.dentries_.end());
}

Dtab Dtab::Simplified() const {
  std::vector<Dentry> out;
  out.reserve(dentries_.size());
  for (const Dentry& d : dentries_) {
    NameTree<Path> s = Simplify(d.dst);
    if (!s.is_neg()) {
      out.push_back(Dentry{d.prefix, std::move(s)});
    }
  }
  return Dtab(std::move(out));
}

std::string Dtab::Show() const {
  std::string out;
  for (size_t i = 0; i < dentries_.size(); ++i) {
    if (i > 0) {
      out.push_back(';');
    }
    dentries_[i].ShowTo(&out);
  }
  return out;
}

}  // namespace dtabd::dtab
