#include "dtab/path.h"

#include <algorithm>

namespace dtabd::dtab {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Appends `label` in canonical form (see Path::Show).
void ShowLabel(absl::string_view label, std::string* out) {
  bool showable = true;
  for (char c : label) {
    if (!IsShowableChar(c)) {
      showable = false;
      break;
    }
  }
  if (showable) {
    out->append(label.data(), label.size());
    return;
  }
  for (char c : label) {
    const auto b = static_cast<unsigned char>(c);
    out->push_back('\\');
    out->push_back('x');
    out->push_back(kHex[b >> 4]);
    out->push_back(kHex[b & 0xf]);
  }
}

}  // namespace

Path::Path(std::initializer_list<absl::string_view> labels) {
  for (absl::string_view l : labels) {
    Append(l);
  }
}

void Path::Append(absl::string_view label) {
  bytes_.insert(bytes_.end(), label.begin(), label.end());
  ends_.push_back(static_cast<uint32_t>(bytes_.size()));
}

void Path::AppendPath(const Path& other, size_t from) {
  if (from >= other.size()) {
    return;
  }
  const uint32_t begin = from == 0 ? 0 : other.ends_[from - 1];
  const uint32_t base = static_cast<uint32_t>(bytes_.size());
  // `other` may be *this: read its label count before appending.
  const size_t n = other.ends_.size();
  bytes_.insert(bytes_.end(), other.bytes_.begin() + begin, other.bytes_.end());
  for (size_t i = from; i < n; ++i) {
    ends_.push_back(base + (other.ends_[i] - begin));
  }
}

Path Path::Take(size_t n) const {
  if (n >= size()) {
    return *this;
  }
  Path p;
  if (n == 0) {
    return p;
  }
  p.bytes_.assign(bytes_.begin(), bytes_.begin() + ends_[n - 1]);
  p.ends_.assign(ends_.begin(), ends_.begin() + n);
  return p;
}

Path Path::Drop(size_t n) const {
  Path p;
  p.AppendPath(*this, n);
  return p;
}

Path Path::Concat(const Path& suffix) const {
  Path p = *this;
  p.AppendPath(suffix);
  return p;
}

bool Path::StartsWith(const Path& prefix) const {
  if (prefix.size() > size()) {
    return false;
  }
  if (prefix.empty()) {
    return true;
  }
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (ends_[i] != prefix.ends_[i]) {
      return false;
    }
  }
  return std::equal(prefix.bytes_.begin(), prefix.bytes_.end(), bytes_.begin());
}

std::string Path::Show() const {
  std::string out;
  ShowTo(&out);
  return out;
}

void Path::ShowTo(std::string* out) const {
  if (empty()) {
    out->push_back('/');
    return;
  }
  for (size_t i = 0; i < size(); ++i) {
    out->push_back('/');
    ShowLabel(label(i), out);
  }
}

Prefix::Prefix(const Path& path) {
  elems_.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    elems_.push_back(PrefixElem{false, std::string(path.label(i))});
  }
}

bool Prefix::Matches(const Path& path) const {
  if (elems_.size() > path.size()) {
    return false;
  }
  for (size_t i = 0; i < elems_.size(); ++i) {
    if (!elems_[i].wildcard && elems_[i].label != path.label(i)) {
      return false;
    }
  }
  return true;
}

std::string Prefix::Show() const {
  std::string out;
  ShowTo(&out);
  return out;
}

void Prefix::ShowTo(std::string* out) const {
  if (elems_.empty()) {
    out->push_back('/');
    return;
  }
  for (const PrefixElem& e : elems_) {
    out->push_back('/');
    if (e.wildcard) {
      out->push_back('*');
    } else {
      ShowLabel(e.label, out);
    }
  }
}

}  // namespace dtabd::dtab
