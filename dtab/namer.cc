#include "dtab/namer.h"

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace dtabd::dtab {
namespace {

bool IsPort(absl::string_view s) {
  if (s.empty() || s.size() > 5) {
    return false;
  }
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  int port = 0;
  return absl::SimpleAtoi(s, &port) && port <= 65535;
}

}  // namespace

std::string Show(const NameTree<BoundName>& tree) {
  std::string out;
  ShowTreeTo(
      tree,
      [](const BoundName& b, std::string* o) {
        if (b.residual.empty()) {
          b.id.ShowTo(o);
        } else {
          b.id.Concat(b.residual).ShowTo(o);
        }
      },
      &out);
  return out;
}

absl::StatusOr<NameTree<BoundName>> IdentityNamer::Lookup(const Path& path,
                                                          size_t /*prefix_size*/) const {
  return NameTree<BoundName>::Leaf(BoundName{path, Path()});
}

absl::StatusOr<NameTree<BoundName>> LookupSystemPath(const Path& path) {
  if (path.empty() || path.label(0) != "$") {
    return NameTree<BoundName>::Neg();
  }
  if (path.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown system namer: '", path.Show(), "' names no namer"));
  }
  const absl::string_view namer = path.label(1);
  if (namer == "nil") {
    return NameTree<BoundName>::Empty();
  }
  if (namer == "fail") {
    return NameTree<BoundName>::Fail();
  }
  if (namer == "inet" || namer == "fixedinet") {
    // /$/inet/HOST/PORT/rest is tried before /$/inet/PORT/rest.
    size_t consumed = 0;
    if (path.size() >= 4 && IsPort(path.label(3))) {
      consumed = 4;
    } else if (path.size() >= 3 && IsPort(path.label(2))) {
      consumed = 3;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "system namer /$/", namer, ": expected /$/", namer, "/[HOST/]PORT[/rest] with PORT in ",
          "0-65535, got '", path.Show(), "'"));
    }
    return NameTree<BoundName>::Leaf(BoundName{path.Take(consumed), path.Drop(consumed)});
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown system namer: /$/",
                                                 Path({namer}).Show().substr(1),
                                                 " (known: inet, fixedinet, nil, fail) in '",
                                                 path.Show(), "'"));
}

}  // namespace dtabd::dtab
