#include "dtab/explain.h"

#include <charconv>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace dtabd::dtab {
namespace {

using Kind = DelegateNode::Kind;

DelegateNode MakeNode(Kind kind, std::string path, const std::optional<Dentry>& dentry) {
  DelegateNode n;
  n.kind = kind;
  n.path = std::move(path);
  n.dentry = dentry;
  return n;
}

// linkerd's DelegateTree simplification: a delegate step whose child
// resolves the same path collapses into the child (keeping the step's
// dentry); an alternative that is itself an alternative over the same path
// is spliced in; single-branch alternatives and unions become delegate
// steps; empty ones become neg.
DelegateNode Simplified(DelegateNode n) {
  for (DelegateNode& c : n.children) {
    c = Simplified(std::move(c));
  }
  switch (n.kind) {
    case Kind::kDelegate: {
      DelegateNode child = std::move(n.children.front());
      if (child.path == n.path) {
        child.dentry = std::move(n.dentry);
        return child;
      }
      n.children.front() = std::move(child);
      return n;
    }
    case Kind::kAlt: {
      std::vector<DelegateNode> flat;
      for (DelegateNode& c : n.children) {
        if (c.kind == Kind::kAlt && c.path == n.path) {
          for (DelegateNode& g : c.children) {
            flat.push_back(std::move(g));
          }
        } else {
          flat.push_back(std::move(c));
        }
      }
      n.children = std::move(flat);
      [[fallthrough]];
    }
    case Kind::kUnion:
      if (n.children.empty()) {
        return MakeNode(Kind::kNeg, n.path, n.dentry);
      }
      if (n.children.size() == 1) {
        n.kind = Kind::kDelegate;
        n.weights.clear();
        return Simplified(std::move(n));
      }
      return n;
    default:
      return n;
  }
}

class Explainer {
 public:
  Explainer(const Interpreter& interpreter, const DtabView& dtab)
      : interpreter_(interpreter), dtab_(dtab) {}

  // The step resolving `path`, reached through `dentry`.
  DelegateNode ExplainPath(const Path& path, const std::optional<Dentry>& dentry, int depth) {
    const std::string shown = path.Show();
    if (depth > interpreter_.options().max_depth) {
      DelegateNode n = MakeNode(Kind::kException, shown, dentry);
      n.message = "Max recursion level reached.";
      return n;
    }
    std::vector<std::pair<const Dentry*, NameTree<Path>>> matches;
    dtab_.ForEachMatch(path, [&](const Dentry& d) {
      matches.emplace_back(&d, AppendResidual(d.dst, path, d.prefix.size()));
    });
    DelegateNode step = MakeNode(Kind::kDelegate, shown, dentry);
    if (Interpreter::DefersToNamers(matches.size(),
                                    matches.empty() ? nullptr : matches.front().first)) {
      // Like Bind, the namer lookup is one more level.
      if (depth + 1 > interpreter_.options().max_depth) {
        DelegateNode n = MakeNode(Kind::kException, shown, std::nullopt);
        n.message = "Max recursion level reached.";
        step.children.push_back(std::move(n));
        return step;
      }
      step.children.push_back(FromNamers(path, shown));
    } else if (matches.size() == 1) {
      step.children.push_back(FromTree(shown, *matches.front().first, matches.front().second,
                                       depth));
    } else {
      DelegateNode alt = MakeNode(Kind::kAlt, shown, std::nullopt);
      for (const auto& [d, tree] : matches) {
        alt.children.push_back(FromTree(shown, *d, tree, depth));
      }
      step.children.push_back(std::move(alt));
    }
    return step;
  }

 private:
  // The nodes for a dentry's rewritten destination.
  DelegateNode FromTree(const std::string& path, const Dentry& dentry,
                        const NameTree<Path>& tree, int depth) {
    using TK = NameTree<Path>::Kind;
    switch (tree.kind()) {
      case TK::kNeg:
        return MakeNode(Kind::kNeg, "~", dentry);
      case TK::kFail:
        return MakeNode(Kind::kFail, "!", dentry);
      case TK::kEmpty:
        return MakeNode(Kind::kEmpty, "$", dentry);
      case TK::kLeaf:
        return ExplainPath(tree.leaf(), dentry, depth + 1);
      case TK::kAlt:
      case TK::kUnion:
        break;
    }
    DelegateNode n = MakeNode(tree.is_alt() ? Kind::kAlt : Kind::kUnion, path, dentry);
    for (const NameTree<Path>& c : tree.children()) {
      n.children.push_back(FromTree(path, dentry, c, depth));
    }
    n.weights = tree.weights();
    return n;
  }

  DelegateNode FromNamers(const Path& path, const std::string& shown) {
    absl::StatusOr<NameTree<BoundName>> r = interpreter_.LookupNamers(path);
    if (!r.ok()) {
      DelegateNode n = MakeNode(Kind::kException, shown, std::nullopt);
      n.message = std::string(r.status().message());
      return n;
    }
    return FromBound(shown, *r);
  }

  DelegateNode FromBound(const std::string& shown, const NameTree<BoundName>& tree) {
    using TK = NameTree<BoundName>::Kind;
    switch (tree.kind()) {
      case TK::kNeg:
        return MakeNode(Kind::kNeg, shown, std::nullopt);
      case TK::kFail:
        return MakeNode(Kind::kFail, shown, std::nullopt);
      case TK::kEmpty:
        return MakeNode(Kind::kEmpty, shown, std::nullopt);
      case TK::kLeaf: {
        DelegateNode n = MakeNode(Kind::kLeaf, shown, std::nullopt);
        n.bound = tree.leaf();
        return n;
      }
      case TK::kAlt:
      case TK::kUnion:
        break;
    }
    DelegateNode n = MakeNode(tree.is_alt() ? Kind::kAlt : Kind::kUnion, shown, std::nullopt);
    for (const NameTree<BoundName>& c : tree.children()) {
      n.children.push_back(FromBound(shown, c));
    }
    n.weights = tree.weights();
    return n;
  }

  const Interpreter& interpreter_;
  const DtabView& dtab_;
};

void AppendWeight(double w, std::string* out) {
  // Like Jackson: shortest round-trip digits, always with a fraction.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), w);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".en") == std::string::npos) {
    s += ".0";
  }
  out->append(s);
}

// linkerd's JSON path of a node: a fail node shows "!" unless its name is
// under /$/fail, and a neg node for the empty path shows "~".
absl::string_view JsonPath(const DelegateNode& n) {
  const absl::string_view path = n.path;
  if (n.kind == Kind::kFail && !(absl::StartsWith(path, "/$/fail") &&
                                 (path.size() == 7 || path[7] == '/'))) {
    return "!";
  }
  if (n.kind == Kind::kNeg && path == "/") {
    return "~";
  }
  return path;
}

void AppendNode(const DelegateNode& n, const AddrRenderer& addr, std::string* out) {
  static constexpr const char* kTypes[] = {"delegate", "alt",  "union", "leaf",
                                           "neg",      "fail", "empty", "exception"};
  out->append("{\"type\":\"");
  out->append(kTypes[static_cast<int>(n.kind)]);
  out->append("\",\"path\":");
  AppendJsonString(JsonPath(n), out);
  out->append(",\"dentry\":");
  if (n.dentry) {
    out->append("{\"prefix\":");
    AppendJsonString(n.dentry->prefix.Show(), out);
    out->append(",\"dst\":");
    AppendJsonString(Show(n.dentry->dst), out);
    out->append("}");
  } else {
    out->append("null");
  }
  switch (n.kind) {
    case Kind::kDelegate:
      out->append(",\"delegate\":");
      AppendNode(n.children.front(), addr, out);
      break;
    case Kind::kAlt:
      out->append(",\"alt\":[");
      for (size_t i = 0; i < n.children.size(); ++i) {
        if (i > 0) {
          out->push_back(',');
        }
        AppendNode(n.children[i], addr, out);
      }
      out->append("]");
      break;
    case Kind::kUnion:
      out->append(",\"union\":[");
      for (size_t i = 0; i < n.children.size(); ++i) {
        if (i > 0) {
          out->push_back(',');
        }
        out->append("{\"weight\":");
        AppendWeight(n.weights[i], out);
        out->append(",\"tree\":");
        AppendNode(n.children[i], addr, out);
        out->append("}");
      }
      out->append("]");
      break;
    case Kind::kLeaf: {
      out->append(",\"bound\":{");
      if (addr) {
        if (std::optional<std::string> a = addr(n.bound)) {
          out->append("\"addr\":");
          out->append(*a);
          out->push_back(',');
        }
      }
      out->append("\"id\":");
      AppendJsonString(n.bound.id.Show(), out);
      out->append(",\"path\":");
      AppendJsonString(n.bound.residual.Show(), out);
      out->append("}");
      break;
    }
    case Kind::kException:
      out->append(",\"message\":");
      AppendJsonString(n.message, out);
      break;
    case Kind::kNeg:
    case Kind::kFail:
    case Kind::kEmpty:
      break;
  }
  out->push_back('}');
}

}  // namespace

DelegateNode Explain(const Interpreter& interpreter, const DtabView& dtab, const Path& path) {
  Explainer e(interpreter, dtab);
  DelegateNode root = e.ExplainPath(path, std::nullopt, 0);
  // The root keeps its delegate wrapper (linkerd shows it with dentry null)
  // unless its child resolves the same path.
  return Simplified(std::move(root));
}

std::string ToDelegatorJson(const DelegateNode& node, const AddrRenderer& addr) {
  std::string out;
  AppendNode(node, addr, &out);
  return out;
}

void AppendJsonString(absl::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20) {
      switch (c) {
        case '\n':
          out->append("\\n");
          break;
        case '\t':
          out->append("\\t");
          break;
        case '\r':
          out->append("\\r");
          break;
        default:
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xf]);
      }
      ++i;
    } else if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      ++i;
    } else {
      // Copy a well-formed UTF-8 sequence; replace anything else.
      size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
      if (c >= 0xf5) {
        n = 0;
      }
      bool ok = n > 0 && i + n <= s.size();
      if (ok) {
        // The second byte's range excludes overlongs (E0, F0), UTF-16
        // surrogates (ED) and code points above U+10FFFF (F4).
        const auto c1 = static_cast<unsigned char>(s[i + 1]);
        const unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
        const unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
        ok = c1 >= lo && c1 <= hi;
      }
      for (size_t k = 1; ok && k < n; ++k) {
        ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
      }
      if (ok) {
        out->append(s.data() + i, n);
        i += n;
      } else {
        out->append("\\ufffd");
        ++i;
      }
    }
  }
  out->push_back('"');
}

}  // namespace dtabd::dtab
