// Fuzzes every dtab parser entry point (ParsePath, ParsePrefix, ParseTree,
// ParseDentry, ParseDtab) on the same input. Properties:
//   - no crash, leak or hang on any input; nesting deeper than max_nesting
//     is an error, never a stack overflow;
//   - whatever parses re-prints (Show) to text that re-parses to the same
//     value, up to weights (shown with two decimals, as Finagle does), and
//     the re-printed text is a fixed point (show . parse . show = show);
//   - the entry points agree: a path is a literal prefix, a tree is the
//     destination of "/=>tree", a dentry is a one-entry dtab;
//   - a tight max_nesting only ever rejects more inputs;
//   - Simplify is idempotent and keeps Eval's result.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dtab/dtab.h"
#include "dtab/name_tree.h"
#include "dtab/parser.h"
#include "dtab/path.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using dtabd::dtab::Dentry;
using dtabd::dtab::Dtab;
using dtabd::dtab::NameTree;
using dtabd::dtab::ParseOptions;
using dtabd::dtab::Path;
using dtabd::dtab::Prefix;
using Tree = NameTree<Path>;

// The tree as it reads back after Show: every weight rounded as printed.
Tree RoundWeights(const Tree& t) {
  if (!t.is_alt() && !t.is_union()) {
    return t;
  }
  std::vector<Tree> children;
  for (const Tree& c : t.children()) {
    children.push_back(RoundWeights(c));
  }
  if (t.is_alt()) {
    return Tree::Alt(std::move(children));
  }
  std::vector<double> weights;
  for (double w : t.weights()) {
    weights.push_back(std::strtod(dtabd::dtab::FormatWeight(w).c_str(), nullptr));
  }
  return Tree::Union(std::move(children), std::move(weights));
}

Dentry RoundWeights(const Dentry& d) { return Dentry{d.prefix, RoundWeights(d.dst)}; }

Dtab RoundWeights(const Dtab& d) {
  std::vector<Dentry> out;
  for (const Dentry& e : d.dentries()) {
    out.push_back(RoundWeights(e));
  }
  return Dtab(std::move(out));
}

std::string ShowOf(const Path& v) { return v.Show(); }
std::string ShowOf(const Prefix& v) { return v.Show(); }
std::string ShowOf(const Tree& v) { return dtabd::dtab::Show(v); }
std::string ShowOf(const Dentry& v) { return v.Show(); }
std::string ShowOf(const Dtab& v) { return v.Show(); }

Path RoundWeights(const Path& p) { return p; }
Prefix RoundWeights(const Prefix& p) { return p; }

// parse(show(v)) == round(v), and show is a fixed point from there on.
template <typename T, typename ParseFn>
void CheckRoundTrip(const T& v, ParseFn parse, absl::string_view what) {
  const std::string shown = ShowOf(v);
  auto again = parse(shown, ParseOptions{});
  FUZZ_CHECK(again.ok(), absl::StrCat(what, ": show output '", shown,
                                      "' does not re-parse: ", again.status().message()));
  FUZZ_CHECK(*again == RoundWeights(v),
             absl::StrCat(what, ": '", shown, "' re-parses to '", ShowOf(*again), "'"));
  const std::string shown2 = ShowOf(*again);
  auto third = parse(shown2, ParseOptions{});
  FUZZ_CHECK(third.ok() && *third == *again && ShowOf(*third) == shown2,
             absl::StrCat(what, ": show is not a fixed point: '", shown, "' -> '", shown2, "'"));
}

// With a tight nesting limit a parser accepts a subset of inputs, with the
// same values; what it rejects for depth says so.
template <typename T, typename ParseFn>
void CheckNesting(absl::string_view text, const absl::StatusOr<T>& full, ParseFn parse) {
  ParseOptions tight;
  tight.max_nesting = 2;
  auto shallow = parse(text, tight);
  if (shallow.ok()) {
    FUZZ_CHECK(full.ok() && *full == *shallow, "max_nesting=2 accepts what 100 rejects");
  } else if (full.ok()) {
    FUZZ_CHECK(absl::StrContains(shallow.status().message(), "nested deeper than 2 levels"),
               absl::StrCat("max_nesting=2 rejects a valid input for another reason: ",
                            shallow.status().message()));
  }
}

void CheckTree(const Tree& t) {
  const Tree s = dtabd::dtab::Simplify(t);
  FUZZ_CHECK(dtabd::dtab::Simplify(s) == s, "Simplify is not idempotent on " + ShowOf(t));
  FUZZ_CHECK(dtabd::dtab::Eval(s) == dtabd::dtab::Eval(t), "Simplify changes Eval of " + ShowOf(t));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parse_path = [](absl::string_view s, const ParseOptions& o) {
    return dtabd::dtab::ParsePath(s, o);
  };
  const auto parse_prefix = [](absl::string_view s, const ParseOptions& o) {
    return dtabd::dtab::ParsePrefix(s, o);
  };
  const auto parse_tree = [](absl::string_view s, const ParseOptions& o) {
    return dtabd::dtab::ParseTree(s, o);
  };
  const auto parse_dentry = [](absl::string_view s, const ParseOptions& o) {
    return dtabd::dtab::ParseDentry(s, o);
  };
  const auto parse_dtab = [](absl::string_view s, const ParseOptions& o) {
    return dtabd::dtab::ParseDtab(s, o);
  };

  const absl::StatusOr<Path> path = parse_path(text, {});
  if (path.ok()) {
    CheckRoundTrip(*path, parse_path, "path");
    const absl::StatusOr<Prefix> as_prefix = parse_prefix(text, {});
    FUZZ_CHECK(as_prefix.ok() && *as_prefix == Prefix(*path), "a path is not a literal prefix");
  }

  const absl::StatusOr<Prefix> prefix = parse_prefix(text, {});
  if (prefix.ok()) {
    CheckRoundTrip(*prefix, parse_prefix, "prefix");
  }

  const absl::StatusOr<Tree> tree = parse_tree(text, {});
  CheckNesting(text, tree, parse_tree);
  if (tree.ok()) {
    CheckRoundTrip(*tree, parse_tree, "tree");
    CheckTree(*tree);
    const std::string as_dentry = absl::StrCat("/=>", text);
    const absl::StatusOr<Dentry> d = parse_dentry(as_dentry, {});
    FUZZ_CHECK(d.ok() && d->dst == *tree && d->prefix.empty(),
               "a tree is not the destination of '/=>tree'");
  }

  const absl::StatusOr<Dentry> dentry = parse_dentry(text, {});
  CheckNesting(text, dentry, parse_dentry);
  if (dentry.ok()) {
    CheckRoundTrip(*dentry, parse_dentry, "dentry");
    const absl::StatusOr<Dtab> one = parse_dtab(text, {});
    FUZZ_CHECK(one.ok() && one->size() == 1 && one->dentries()[0] == *dentry,
               "a dentry is not a one-entry dtab");
  }

  const absl::StatusOr<Dtab> dtab = parse_dtab(text, {});
  CheckNesting(text, dtab, parse_dtab);
  if (dtab.ok()) {
    CheckRoundTrip(*dtab, parse_dtab, "dtab");
    FUZZ_CHECK(dtab->Simplified().Simplified() == dtab->Simplified(),
               "Dtab::Simplified is not idempotent");
  }
  return 0;
}
