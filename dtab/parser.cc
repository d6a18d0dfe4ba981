#include "dtab/parser.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace dtabd::dtab {
namespace {

constexpr int kEndOfInput = -1;

bool IsWhitespace(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' ||
         (c >= 0x1c && c <= 0x1f);
}
bool IsLabelChar(int c) { return c >= 0 && (IsShowableChar(static_cast<char>(c)) || c == '\\'); }
bool IsNumberChar(int c) { return (c >= '0' && c <= '9') || c == '.'; }
bool IsHexChar(int c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int HexValue(int c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return c - 'A' + 10;
}

// Length of the UTF-8 sequence starting at text[i] when it is well formed,
// else 1, so that error messages quote whole characters.
size_t CharLength(absl::string_view text, size_t i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  size_t n = 1;
  if (lead >= 0xc2 && lead <= 0xdf) {
    n = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    n = 3;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    n = 4;
  }
  if (i + n > text.size()) {
    return 1;
  }
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) {
      return 1;
    }
  }
  return n;
}

// Length of the well-formed UTF-8 sequence starting at text[i] (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF), or 0 when the
// bytes there are not one.
size_t Utf8Length(absl::string_view text, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char lead = at(0);
  if (lead < 0x80) {
    return 1;
  }
  size_t n = 0;
  unsigned char lo = 0x80;  // bounds of the second byte
  unsigned char hi = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    n = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    n = 3;
    lo = lead == 0xe0 ? 0xa0 : 0x80;
    hi = lead == 0xed ? 0x9f : 0xbf;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    n = 4;
    lo = lead == 0xf0 ? 0x90 : 0x80;
    hi = lead == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (i + n > text.size() || at(1) < lo || at(1) > hi) {
    return 0;
  }
  for (size_t k = 2; k < n; ++k) {
    if ((at(k) & 0xc0) != 0x80) {
      return 0;
    }
  }
  return n;
}

// Recursive-descent parser over one input. The first error is kept in
// error_; after it every method returns std::nullopt.
class Parser {
 public:
  Parser(absl::string_view text, const ParseOptions& options) : text_(text), options_(options) {}

  std::optional<Path> ParsePath() {
    EatWhitespace();
    if (!Eat('/')) {
      return std::nullopt;
    }
    Path path;
    if (!IsLabelChar(Peek())) {
      return path;
    }
    do {
      std::optional<std::string> label = ParseLabel();
      if (!label) {
        return std::nullopt;
      }
      path.Append(*label);
    } while (MaybeEat('/'));
    return path;
  }

  std::optional<Prefix> ParsePrefix() {
    EatWhitespace();
    if (!Eat('/')) {
      return std::nullopt;
    }
    std::vector<PrefixElem> elems;
    if (!IsLabelChar(Peek()) && Peek() != '*') {
      return Prefix();
    }
    do {
      if (MaybeEat('*')) {
        elems.push_back(PrefixElem{true, {}});
      } else {
        std::optional<std::string> label = ParseLabel();
        if (!label) {
          return std::nullopt;
        }
        elems.push_back(PrefixElem{false, std::move(*label)});
      }
    } while (MaybeEat('/'));
    return Prefix(std::move(elems));
  }

  // tree := union ('|' union)*
  std::optional<NameTree<Path>> ParseTree(int nesting) {
    std::vector<NameTree<Path>> alts;
    do {
      std::optional<NameTree<Path>> t = ParseUnion(nesting);
      if (!t) {
        return std::nullopt;
      }
      alts.push_back(std::move(*t));
    } while (MaybeEat('|'));
    if (alts.size() == 1) {
      return std::move(alts.front());
    }
    return NameTree<Path>::Alt(std::move(alts));
  }

  std::optional<Dentry> ParseDentry() {
    std::optional<Prefix> prefix = ParsePrefix();
    if (!prefix) {
      return std::nullopt;
    }
    EatWhitespace();
    if (!Eat('=') || !Eat('>')) {
      return std::nullopt;
    }
    std::optional<NameTree<Path>> dst = ParseTree(0);
    if (!dst) {
      return std::nullopt;
    }
    return Dentry{std::move(*prefix), std::move(*dst)};
  }

  std::optional<Dtab> ParseDtab() {
    std::vector<Dentry> dentries;
    EatWhitespace();
    if (AtEnd()) {
      return Dtab();
    }
    while (true) {
      std::optional<Dentry> d = ParseDentry();
      if (!d) {
        return std::nullopt;
      }
      dentries.push_back(std::move(*d));
      EatWhitespace();
      if (!MaybeEat(';')) {
        break;
      }
      EatWhitespace();
      if (AtEnd()) {
        break;  // one trailing ';' is allowed
      }
    }
    return Dtab(std::move(dentries));
  }

  // Skips trailing whitespace and comments, then demands the end of input.
  bool EnsureEnd() {
    if (!error_.ok()) {
      return false;
    }
    EatWhitespace();
    if (!AtEnd()) {
      Illegal("end of input", Peek());
      return false;
    }
    return true;
  }

  absl::Status error() const { return error_; }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  int Peek() const { return AtEnd() ? kEndOfInput : static_cast<unsigned char>(text_[pos_]); }
  void Next() { ++pos_; }
  bool MaybeEat(char c) {
    if (Peek() != static_cast<unsigned char>(c)) {
      return false;
    }
    Next();
    return true;
  }
  bool Eat(char c) {
    if (MaybeEat(c)) {
      return true;
    }
    Illegal(Quote(c), Peek());
    return false;
  }

  void EatWhitespace() {
    bool in_comment = false;
    while (!AtEnd()) {
      const int c = Peek();
      if (in_comment) {
        if (c == '\n') {
          in_comment = false;
        }
        // Comments are stored and served as written, in protobuf strings
        // and JSON: they must be UTF-8 (paths are ASCII already).
        const size_t len = Utf8Length(text_, pos_);
        if (len == 0) {
          if (error_.ok()) {
            error_ = absl::InvalidArgumentError(
                absl::StrCat("comment is not valid UTF-8 at byte ", pos_));
          }
          pos_ = text_.size();
          return;
        }
        pos_ += len;
      } else if (c == '#') {
        in_comment = true;
        Next();
      } else if (IsWhitespace(c)) {
        Next();
      } else {
        return;
      }
    }
  }

  std::optional<std::string> ParseLabel() {
    std::string label;
    do {
      const int c = Peek();
      if (c >= 0 && IsShowableChar(static_cast<char>(c))) {
        label.push_back(static_cast<char>(c));
        Next();
      } else if (c == '\\') {
        Next();
        if (!Eat('x')) {
          return std::nullopt;
        }
        const int hi = Peek();
        if (!IsHexChar(hi)) {
          Illegal("hex char", hi);
          return std::nullopt;
        }
        Next();
        const int lo = Peek();
        if (!IsHexChar(lo)) {
          Illegal("hex char", lo);
          return std::nullopt;
        }
        Next();
        label.push_back(static_cast<char>(HexValue(hi) << 4 | HexValue(lo)));
      } else {
        Illegal("label char", c);
        return std::nullopt;
      }
    } while (IsLabelChar(Peek()));
    return label;
  }

  // union := weighted ('&' weighted)*
  std::optional<NameTree<Path>> ParseUnion(int nesting) {
    std::vector<NameTree<Path>> branches;
    std::vector<double> weights;
    do {
      std::optional<double> weight = ParseWeight();
      if (!weight) {
        return std::nullopt;
      }
      std::optional<NameTree<Path>> t = ParseSimple(nesting);
      if (!t) {
        return std::nullopt;
      }
      EatWhitespace();
      branches.push_back(std::move(*t));
      weights.push_back(*weight);
    } while (MaybeEat('&'));
    if (branches.size() == 1) {
      return std::move(branches.front());  // a lone weight is discarded (QUIRK)
    }
    return NameTree<Path>::Union(std::move(branches), std::move(weights));
  }

  // [number '*'], with the whitespace around it; the default weight is 1.
  std::optional<double> ParseWeight() {
    EatWhitespace();
    if (!IsNumberChar(Peek())) {
      return NameTree<Path>::kDefaultWeight;
    }
    const size_t start = pos_;
    bool seen_dot = false;
    while (IsNumberChar(Peek())) {
      if (Peek() == '.') {
        if (seen_dot) {
          Illegal("number char", Peek());
          return std::nullopt;
        }
        seen_dot = true;
      }
      Next();
    }
    const absl::string_view number = text_.substr(start, pos_ - start);
    if (number == ".") {
      Illegal("weight", '.');  // QUIRK: marks the character after the dot
      return std::nullopt;
    }
    const double weight = ToDouble(number);
    if (!std::isfinite(weight)) {
      // Would print as "Infinity", which no parser reads back.
      pos_ = start;
      Illegal(absl::StrCat("weight of ", number.size(), " digits is out of range"), Peek(),
              /*custom=*/true);
      return std::nullopt;
    }
    EatWhitespace();
    if (!Eat('*')) {
      return std::nullopt;
    }
    EatWhitespace();
    return weight;
  }

  // Digits with at most one '.', e.g. "1.", ".5", "00.50" (checked by the
  // caller), converted exactly and independently of the locale.
  static double ToDouble(absl::string_view number) {
    std::string literal(number);
    if (literal.front() == '.') {
      literal.insert(literal.begin(), '0');
    }
    if (literal.back() == '.') {
      literal.push_back('0');
    }
    double value = 0;
    if (!absl::SimpleAtod(literal, &value)) {
      return 0;  // unreachable for digit strings; overflow gives inf, not failure
    }
    return value;
  }

  // term := '(' tree ')' | path | '!' | '~' | '$'
  std::optional<NameTree<Path>> ParseSimple(int nesting) {
    EatWhitespace();
    switch (Peek()) {
      case '(': {
        if (nesting >= options_.max_nesting) {
          Illegal(absl::StrCat("tree nested deeper than ", options_.max_nesting, " levels"),
                  Peek(), /*custom=*/true);
          return std::nullopt;
        }
        Next();
        std::optional<NameTree<Path>> t = ParseTree(nesting + 1);
        if (!t) {
          return std::nullopt;
        }
        EatWhitespace();
        if (!Eat(')')) {
          return std::nullopt;
        }
        return t;
      }
      case '~':
        Next();
        return NameTree<Path>::Neg();
      case '!':
        Next();
        return NameTree<Path>::Fail();
      case '$':
        Next();
        return NameTree<Path>::Empty();
      case '/': {
        std::optional<Path> p = ParsePath();
        if (!p) {
          return std::nullopt;
        }
        return NameTree<Path>::Leaf(std::move(*p));
      }
      default:
        Illegal("simple", Peek());
        return std::nullopt;
    }
  }

  static std::string Quote(char c) { return std::string("'") + c + "'"; }

  // Records "<expected> expected but <found> found at '<marked input>'",
  // marking the character at pos_ (or appending "[]" at the end).
  // `found` is normally Peek(); the weight QUIRK passes '.'. With `custom`,
  // `expected` is a whole phrase: "<expected> at '<marked input>'".
  void Illegal(absl::string_view expected, int found, bool custom = false) {
    if (!error_.ok()) {
      return;
    }
    const size_t len = AtEnd() ? 0 : CharLength(text_, pos_);
    std::string found_text;
    if (found == kEndOfInput) {
      found_text = "end of input";
    } else if (found == Peek()) {
      found_text = absl::StrCat("'", text_.substr(pos_, len), "'");
    } else {
      found_text = std::string("'") + static_cast<char>(found) + "'";
    }
    // Long inputs are quoted around the error position only.
    const size_t keep = options_.max_quoted_input / 2;
    const bool whole = text_.size() <= options_.max_quoted_input;
    const size_t before_begin = whole || pos_ <= keep ? 0 : pos_ - keep;
    const size_t after_begin = pos_ + len;
    const size_t after_end =
        whole ? text_.size() : std::min(text_.size(), after_begin + keep);
    const std::string marked = absl::StrCat(
        before_begin > 0 ? "..." : "", text_.substr(before_begin, pos_ - before_begin), "[",
        text_.substr(pos_, len), "]", text_.substr(after_begin, after_end - after_begin),
        after_end < text_.size() ? "..." : "");
    if (custom) {
      error_ = absl::InvalidArgumentError(absl::StrCat(expected, " at '", marked, "'"));
      return;
    }
    error_ = absl::InvalidArgumentError(
        absl::StrCat(expected, " expected but ", found_text, " found at '", marked, "'"));
  }

  absl::string_view text_;
  const ParseOptions& options_;
  size_t pos_ = 0;
  absl::Status error_;
};

template <typename T, typename F>
absl::StatusOr<T> Run(absl::string_view text, const ParseOptions& options, F parse) {
  Parser p(text, options);
  std::optional<T> v = parse(p);
  if (!v || !p.EnsureEnd()) {
    return p.error();
  }
  return std::move(*v);
}

}  // namespace

absl::StatusOr<Path> ParsePath(absl::string_view text, const ParseOptions& options) {
  return Run<Path>(text, options, [](Parser& p) { return p.ParsePath(); });
}

absl::StatusOr<Prefix> ParsePrefix(absl::string_view text, const ParseOptions& options) {
  return Run<Prefix>(text, options, [](Parser& p) { return p.ParsePrefix(); });
}

absl::StatusOr<NameTree<Path>> ParseTree(absl::string_view text, const ParseOptions& options) {
  return Run<NameTree<Path>>(text, options, [](Parser& p) { return p.ParseTree(0); });
}

absl::StatusOr<Dentry> ParseDentry(absl::string_view text, const ParseOptions& options) {
  return Run<Dentry>(text, options, [](Parser& p) { return p.ParseDentry(); });
}

absl::StatusOr<Dtab> ParseDtab(absl::string_view text, const ParseOptions& options) {
  return Run<Dtab>(text, options, [](Parser& p) { return p.ParseDtab(); });
}

}  // namespace dtabd::dtab
