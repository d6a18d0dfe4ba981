// Tests for dtab/parser.h: the grammar and error messages of paths,
// prefixes, name trees, dentries and dtabs (shared/reference/
// dtab-semantics.md sections 1-5 and the parsing items of section 11).
#include "dtab/parser.h"

#include <cstddef>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

namespace dtabd::dtab {
namespace {

using Tree = NameTree<Path>;

// The error message of a failed parse; "<parsed ok>" when it succeeded.
// Every parse failure must be InvalidArgument.
template <typename T>
std::string ErrorOf(const absl::StatusOr<T>& r) {
  if (r.ok()) {
    return "<parsed ok>";
  }
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  return std::string(r.status().message());
}

Tree Leaf(std::initializer_list<absl::string_view> labels) { return Tree::Leaf(Path(labels)); }
Tree Alt(std::vector<Tree> children) { return Tree::Alt(std::move(children)); }
Tree Union(std::vector<std::pair<double, Tree>> branches) {
  std::vector<Tree> children;
  std::vector<double> weights;
  for (auto& [w, t] : branches) {
    weights.push_back(w);
    children.push_back(std::move(t));
  }
  return Tree::Union(std::move(children), std::move(weights));
}
PrefixElem Label(std::string l) { return PrefixElem{false, std::move(l)}; }
PrefixElem Any() { return PrefixElem{true, {}}; }

// Parses or records a failure (and returns Neg / an empty value).
Tree MustTree(absl::string_view text) {
  absl::StatusOr<Tree> t = ParseTree(text);
  if (!t.ok()) {
    ADD_FAILURE() << "ParseTree(\"" << text << "\"): " << t.status();
    return Tree::Neg();
  }
  return *std::move(t);
}
Dtab MustDtab(absl::string_view text) {
  absl::StatusOr<Dtab> d = ParseDtab(text);
  if (!d.ok()) {
    ADD_FAILURE() << "ParseDtab(\"" << text << "\"): " << d.status();
    return Dtab();
  }
  return *std::move(d);
}

// ===========================================================================
// Section 1: whitespace, comments, error shape

TEST(ParserTest, AcceptsEveryAsciiWhitespaceCharacterAroundTokens) {
  const std::string ws = " \t\n\v\f\r\x1c\x1d\x1e\x1f";
  for (char c : ws) {
    const std::string s(1, c);
    EXPECT_EQ(ErrorOf(ParsePath(s + "/a" + s)), "<parsed ok>") << int{c};
    absl::StatusOr<Dtab> d = ParseDtab(s + "/a" + s + "=>" + s + "/b" + s + "|" + s + "/c" + s +
                                       ";" + s + "/d=>2" + s + "*" + s + "/e" + s + "&" + s +
                                       "(" + s + "/f" + s + ")" + s);
    ASSERT_TRUE(d.ok()) << int{c} << ": " << d.status();
    EXPECT_EQ(d->Show(), "/a=>/b | /c;/d=>2.00*/e & /f") << int{c};
  }
}

TEST(ParserTest, RejectsNonBreakingSpace) {
  EXPECT_EQ(ErrorOf(ParsePath("/foo\xc2\xa0")),
            "end of input expected but '\xc2\xa0' found at '/foo[\xc2\xa0]'");
}

TEST(ParserTest, RejectsUnicodeSpacesAsWhitespace) {
  // DESIGN.md decision 2: ASCII whitespace only (U+2003 EM SPACE here).
  EXPECT_EQ(ErrorOf(ParsePath("\xe2\x80\x83/a")),
            "'/' expected but '\xe2\x80\x83' found at '[\xe2\x80\x83]/a'");
}

TEST(ParserTest, RejectsOtherControlCharactersAsWhitespace) {
  EXPECT_EQ(ErrorOf(ParsePath("/a\x1b")), "end of input expected but '\x1b' found at '/a[\x1b]'");
  const std::string nul(1, '\0');
  EXPECT_EQ(ErrorOf(ParsePath("/a" + nul)),
            absl::StrCat("end of input expected but '", nul, "' found at '/a[", nul, "]'"));
}

TEST(ParserTest, ErrorMarksTheOffendingCharacterInBrackets) {
  EXPECT_EQ(ErrorOf(ParsePath("invalid-param")),
            "'/' expected but 'i' found at '[i]nvalid-param'");
  EXPECT_EQ(ErrorOf(ParsePath("/foo^bar")),
            "end of input expected but '^' found at '/foo[^]bar'");
}

TEST(ParserTest, ErrorAtEndOfInputAppendsEmptyBrackets) {
  EXPECT_EQ(ErrorOf(ParsePath("/foo/bar/")),
            "label char expected but end of input found at '/foo/bar/[]'");
}

TEST(ParserTest, ErrorQuotesWholeUtf8Characters) {
  EXPECT_EQ(ErrorOf(ParsePath("/caf\xc3\xa9")),
            "end of input expected but '\xc3\xa9' found at '/caf[\xc3\xa9]'");
}

TEST(ParserTest, CommentRunsToEndOfLine) {
  EXPECT_EQ(*ParsePath("# leading comment\n/foo # trailing comment"), (Path{"foo"}));
  EXPECT_EQ(*ParsePath("/foo #c\n  #d\n"), (Path{"foo"}));
  EXPECT_EQ(*ParsePath("/foo #"), (Path{"foo"}));
}

TEST(ParserTest, HashDirectlyAfterALabelCharIsPartOfTheLabel) {
  EXPECT_EQ(*ParsePath("/s#/foo"), (Path{"s#", "foo"}));
  EXPECT_EQ(*ParsePath("/#/io.l5d.fs"), (Path{"#", "io.l5d.fs"}));
  EXPECT_EQ(*ParsePath("/foo#bar"), (Path{"foo#bar"}));
  EXPECT_EQ(*ParsePath("/foo #bar"), (Path{"foo"}));
}

TEST(ParserTest, HashAfterSlashOfEmptyPathStartsALabel) {
  EXPECT_EQ(*ParsePath("/#"), (Path{"#"}));
  EXPECT_EQ(*ParsePath("/ #"), Path());  // after whitespace it is a comment
}

TEST(ParserTest, CommentAfterEveryDelimiterIsSkipped) {
  EXPECT_EQ(MustTree("/a |#c\n/b"), Alt({Leaf({"a"}), Leaf({"b"})}));
  EXPECT_EQ(MustTree("/a &#c\n/b"), Union({{1.0, Leaf({"a"})}, {1.0, Leaf({"b"})}}));
  EXPECT_EQ(MustTree("(#c\n/a #d\n)"), Leaf({"a"}));
  EXPECT_EQ(MustTree("2 #c\n* #d\n/a & /b"), Union({{2.0, Leaf({"a"})}, {1.0, Leaf({"b"})}}));
  EXPECT_EQ(MustDtab("/a #c\n=> #d\n/b ; #e\n/c=>/d #f"), MustDtab("/a=>/b;/c=>/d"));
}

TEST(ParserTest, CommentIsAllowedDirectlyAfterArrow) {
  EXPECT_EQ(MustDtab("/a=>#c\n/b"), MustDtab("/a=>/b"));
}

TEST(ParserTest, CommentSwallowsTheRestOfTheLine) {
  const Dtab d = MustDtab("/a=>/b #c;/c=>/d");
  EXPECT_EQ(d.size(), 1u);
  EXPECT_EQ(d.Show(), "/a=>/b");
}

TEST(ParserTest, HashInsideATreeLeafIsALabelChar) {
  EXPECT_EQ(MustTree("/b#c"), Leaf({"b#c"}));
  EXPECT_EQ(MustDtab("/a=>/b#c").Show(), "/a=>/b#c");
  EXPECT_EQ(MustTree("/a|/b#c"), Alt({Leaf({"a"}), Leaf({"b#c"})}));
}

// ===========================================================================
// Section 2: paths

TEST(ParserTest, ParsesSlashAsTheEmptyPath) {
  EXPECT_EQ(*ParsePath("/"), Path());
  EXPECT_EQ(*ParsePath("  /  "), Path());
}

TEST(ParserTest, ParsesLabelsSeparatedBySlashes) {
  EXPECT_EQ(*ParsePath("/foo/bar"), (Path{"foo", "bar"}));
  EXPECT_EQ(*ParsePath("  /foo/bar  "), (Path{"foo", "bar"}));
  EXPECT_EQ(*ParsePath("/$/inet/127.0.0.1/8080"), (Path{"$", "inet", "127.0.0.1", "8080"}));
  EXPECT_EQ(*ParsePath("/aZ09_:.#$%-"), (Path{"aZ09_:.#$%-"}));
  EXPECT_EQ(*ParsePath("/./.."), (Path{".", ".."}));
}

TEST(ParserTest, RejectsEmptyInputAsPath) {
  EXPECT_EQ(ErrorOf(ParsePath("")), "'/' expected but end of input found at '[]'");
  EXPECT_EQ(ErrorOf(ParsePath("   ")), "'/' expected but end of input found at '   []'");
  EXPECT_EQ(ErrorOf(ParsePath("# c")), "'/' expected but end of input found at '# c[]'");
}

TEST(ParserTest, RejectsTrailingSlash) {
  EXPECT_EQ(ErrorOf(ParsePath("/foo/")), "label char expected but end of input found at '/foo/[]'");
  EXPECT_EQ(ErrorOf(ParsePath("/foo/ ")), "label char expected but ' ' found at '/foo/[ ]'");
}

TEST(ParserTest, RejectsEmptyLabels) {
  EXPECT_EQ(ErrorOf(ParsePath("//a")), "end of input expected but '/' found at '/[/]a'");
  EXPECT_EQ(ErrorOf(ParsePath("/a//b")), "label char expected but '/' found at '/a/[/]b'");
  EXPECT_EQ(ErrorOf(ParsePath("//")), "end of input expected but '/' found at '/[/]'");
}

TEST(ParserTest, RejectsWhitespaceInsideAPath) {
  EXPECT_EQ(ErrorOf(ParsePath("/foo bar")), "end of input expected but 'b' found at '/foo [b]ar'");
  EXPECT_EQ(ErrorOf(ParsePath("/ foo")), "end of input expected but 'f' found at '/ [f]oo'");
  EXPECT_EQ(ErrorOf(ParsePath("/foo/ bar")), "label char expected but ' ' found at '/foo/[ ]bar'");
}

TEST(ParserTest, RejectsNonLabelCharacters) {
  for (char c : std::string("*~!,=@+{}[]()&|;<>?^'\"`")) {
    const std::string text = absl::StrCat("/a", std::string(1, c), "b");
    EXPECT_EQ(ErrorOf(ParsePath(text)),
              absl::StrCat("end of input expected but '", std::string(1, c), "' found at '/a[",
                           std::string(1, c), "]b'"))
        << c;
  }
  EXPECT_EQ(ErrorOf(ParsePath("/{}")), "end of input expected but '{' found at '/[{]}'");
}

TEST(ParserTest, RejectsPathWithoutLeadingSlash) {
  EXPECT_EQ(ErrorOf(ParsePath("foo")), "'/' expected but 'f' found at '[f]oo'");
  EXPECT_EQ(ErrorOf(ParsePath("  foo")), "'/' expected but 'f' found at '  [f]oo'");
}

TEST(ParserTest, RejectsWildcardInAPath) {
  EXPECT_EQ(ErrorOf(ParsePath("/*")), "end of input expected but '*' found at '/[*]'");
}

TEST(ParserTest, RejectsTreeSyntaxInAPath) {
  EXPECT_EQ(ErrorOf(ParsePath("/a | /b")), "end of input expected but '|' found at '/a [|] /b'");
}

// --- escapes ---------------------------------------------------------------

TEST(ParserTest, HexEscapeContributesOneByte) {
  EXPECT_EQ(*ParsePath("/\\x66\\x6f\\x6F"), (Path{"foo"}));
  EXPECT_EQ(*ParsePath("/foo\\x20bar"), (Path{"foo bar"}));
  EXPECT_EQ(*ParsePath("/a\\x2fb"), (Path{"a/b"}));  // one label, not two
  EXPECT_EQ(*ParsePath("/\\x2a"), (Path{"*"}));
  EXPECT_EQ(*ParsePath("/\\xFF\\xfe"), (Path{"\xff\xfe"}));
  const absl::StatusOr<Path> nul = ParsePath("/\\x00");
  ASSERT_TRUE(nul.ok());
  EXPECT_EQ(nul->label(0), absl::string_view("\0", 1));
}

TEST(ParserTest, EscapedShowableCharactersNormaliseToPlainText) {
  EXPECT_EQ(ParsePath("/\\x66\\x6f\\x6F")->Show(), "/foo");
  EXPECT_EQ(ParsePath("/\\x23\\x24/x\\x2e")->Show(), "/#$/x.");
}

TEST(ParserTest, AnyNonShowableByteEscapesTheWholeLabelOnShow) {
  EXPECT_EQ(ParsePath("/foo\\x20bar/baz")->Show(), "/\\x66\\x6f\\x6f\\x20\\x62\\x61\\x72/baz");
  EXPECT_EQ(ParsePath("/\\x2A")->Show(), "/\\x2a");
}

TEST(ParserTest, EscapeRequiresLowercaseX) {
  EXPECT_EQ(ErrorOf(ParsePath("/\\X41")), "'x' expected but 'X' found at '/\\[X]41'");
}

TEST(ParserTest, EscapeRequiresTwoHexDigits) {
  EXPECT_EQ(ErrorOf(ParsePath("/\\?")), "'x' expected but '?' found at '/\\[?]'");
  EXPECT_EQ(ErrorOf(ParsePath("/\\x?")), "hex char expected but '?' found at '/\\x[?]'");
  EXPECT_EQ(ErrorOf(ParsePath("/\\x0?")), "hex char expected but '?' found at '/\\x0[?]'");
  EXPECT_EQ(ErrorOf(ParsePath("/\\x4")), "hex char expected but end of input found at '/\\x4[]'");
  EXPECT_EQ(ErrorOf(ParsePath("/\\xg0")), "hex char expected but 'g' found at '/\\x[g]0'");
  EXPECT_EQ(ErrorOf(ParsePath("/\\")), "'x' expected but end of input found at '/\\[]'");
  EXPECT_EQ(ErrorOf(ParsePath("/a\\")), "'x' expected but end of input found at '/a\\[]'");
}

TEST(ParserTest, EscapeMayStartOrContinueALabel) {
  EXPECT_EQ(*ParsePath("/\\x41bc/d\\x45"), (Path{"Abc", "dE"}));
  EXPECT_EQ(*ParsePath("/\\x41\\x42"), (Path{"AB"}));
  EXPECT_EQ(*ParsePath("/\\x412"), (Path{"A2"}));  // exactly two hex digits
}

// ===========================================================================
// Section 3: dentry prefixes

TEST(ParserTest, ParsesEmptyPrefix) {
  EXPECT_EQ(*ParsePrefix("/"), Prefix());
  EXPECT_EQ(*ParsePrefix("  /  # c"), Prefix());
}

TEST(ParserTest, ParsesPrefixWithWildcards) {
  EXPECT_EQ(*ParsePrefix("/foo/*/bar"), Prefix({Label("foo"), Any(), Label("bar")}));
  EXPECT_EQ(*ParsePrefix("/*"), Prefix({Any()}));
  EXPECT_EQ(*ParsePrefix("/*/*"), Prefix({Any(), Any()}));
  EXPECT_EQ(*ParsePrefix(" /a/* "), Prefix({Label("a"), Any()}));
  EXPECT_EQ(ParsePrefix("/a/*/c")->Show(), "/a/*/c");
}

TEST(ParserTest, EscapedStarIsALiteralLabelNotAWildcard) {
  const absl::StatusOr<Prefix> x = ParsePrefix("/\\x2a");
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(*x, Prefix({Label("*")}));
  EXPECT_FALSE(x->elems()[0].wildcard);
  EXPECT_EQ(x->Show(), "/\\x2a");
  EXPECT_FALSE(x->Matches(Path{"foo"}));
}

TEST(ParserTest, RejectsStarGluedToOtherCharacters) {
  EXPECT_EQ(ErrorOf(ParsePrefix("/foo*")), "end of input expected but '*' found at '/foo[*]'");
  EXPECT_EQ(ErrorOf(ParsePrefix("/*bar")), "end of input expected but 'b' found at '/*[b]ar'");
  EXPECT_EQ(ErrorOf(ParsePrefix("/**")), "end of input expected but '*' found at '/*[*]'");
  EXPECT_EQ(ErrorOf(ParseDentry("/foo/*bar/baz => !")),
            "'=' expected but 'b' found at '/foo/*[b]ar/baz => !'");
}

TEST(ParserTest, RejectsPrefixWithEmptyElementsOrTrailingSlash) {
  EXPECT_EQ(ErrorOf(ParsePrefix("/a/")), "label char expected but end of input found at '/a/[]'");
  EXPECT_EQ(ErrorOf(ParsePrefix("/*/")), "label char expected but end of input found at '/*/[]'");
  EXPECT_EQ(ErrorOf(ParsePrefix("")), "'/' expected but end of input found at '[]'");
}

// ===========================================================================
// Section 4.2: name trees

TEST(ParserTest, ParsesTerminalTrees) {
  EXPECT_EQ(MustTree("~"), Tree::Neg());
  EXPECT_EQ(MustTree("!"), Tree::Fail());
  EXPECT_EQ(MustTree("$"), Tree::Empty());
  EXPECT_EQ(MustTree("/"), Tree::Leaf(Path()));
  EXPECT_EQ(MustTree("/foo/bar"), Leaf({"foo", "bar"}));
  EXPECT_EQ(MustTree("/$/nil"), Leaf({"$", "nil"}));
}

TEST(ParserTest, ParsesFinagleNameTreeExamples) {
  // Restated from Finagle's NameTreeParsersTest.
  EXPECT_EQ(MustTree("! | ~ | $"), Alt({Tree::Fail(), Tree::Neg(), Tree::Empty()}));
  EXPECT_EQ(MustTree("  /foo & /bar  "), Union({{1.0, Leaf({"foo"})}, {1.0, Leaf({"bar"})}}));
  EXPECT_EQ(MustTree("  /foo | /bar  "), Alt({Leaf({"foo"}), Leaf({"bar"})}));
  EXPECT_EQ(MustTree("/foo & /bar | /bar & /baz"),
            Alt({Union({{1.0, Leaf({"foo"})}, {1.0, Leaf({"bar"})}}),
                 Union({{1.0, Leaf({"bar"})}, {1.0, Leaf({"baz"})}})}));
  EXPECT_EQ(MustTree("1 * /foo & 2 * /bar | .5 * /bar & .5 * /baz"),
            Alt({Union({{1.0, Leaf({"foo"})}, {2.0, Leaf({"bar"})}}),
                 Union({{0.5, Leaf({"bar"})}, {0.5, Leaf({"baz"})}})}));
}

TEST(ParserTest, UnionBindsTighterThanAlt) {
  EXPECT_EQ(MustTree("/a | /b & /c"),
            Alt({Leaf({"a"}), Union({{1.0, Leaf({"b"})}, {1.0, Leaf({"c"})}})}));
  EXPECT_EQ(MustTree("/a & /b | /c"),
            Alt({Union({{1.0, Leaf({"a"})}, {1.0, Leaf({"b"})}}), Leaf({"c"})}));
  EXPECT_EQ(MustTree("(/a | /b) & /c"),
            Union({{1.0, Alt({Leaf({"a"}), Leaf({"b"})})}, {1.0, Leaf({"c"})}}));
}

TEST(ParserTest, NeverFlattensOrSimplifies) {
  EXPECT_EQ(MustTree("/a | (/b | /c)"), Alt({Leaf({"a"}), Alt({Leaf({"b"}), Leaf({"c"})})}));
  EXPECT_EQ(MustTree("(/a | /b) | /c"), Alt({Alt({Leaf({"a"}), Leaf({"b"})}), Leaf({"c"})}));
  EXPECT_EQ(MustTree("(/a & /b) & /c"),
            Union({{1.0, Union({{1.0, Leaf({"a"})}, {1.0, Leaf({"b"})}})}, {1.0, Leaf({"c"})}}));
  EXPECT_EQ(MustTree("/a & ~"), Union({{1.0, Leaf({"a"})}, {1.0, Tree::Neg()}}));
  EXPECT_EQ(MustTree("~ | ~"), Alt({Tree::Neg(), Tree::Neg()}));
  EXPECT_EQ(MustTree("! | /a"), Alt({Tree::Fail(), Leaf({"a"})}));
  EXPECT_EQ(MustTree("/a | /a"), Alt({Leaf({"a"}), Leaf({"a"})}));
}

TEST(ParserTest, RedundantParenthesesDisappear) {
  EXPECT_EQ(MustTree("((/a))"), Leaf({"a"}));
  EXPECT_EQ(MustTree("( ~ )"), Tree::Neg());
  EXPECT_EQ(MustTree("(/a) | ((/b))"), Alt({Leaf({"a"}), Leaf({"b"})}));
}

TEST(ParserTest, ParsesWeightsInTheirAcceptedForms) {
  auto weight_of_first = [](absl::string_view text) {
    const absl::StatusOr<Tree> t = ParseTree(text);
    EXPECT_TRUE(t.ok()) << text << ": " << t.status();
    if (!t.ok() || !t->is_union()) {
      ADD_FAILURE() << text << " is not a union";
      return -1.0;
    }
    return t->weights()[0];
  };
  EXPECT_EQ(weight_of_first("2 * /a & /b"), 2.0);
  EXPECT_EQ(weight_of_first("2*/a&/b"), 2.0);
  EXPECT_EQ(weight_of_first("1.*/a & /b"), 1.0);
  EXPECT_EQ(weight_of_first(".5*/a & /b"), 0.5);
  EXPECT_EQ(weight_of_first("00.50*/a & /b"), 0.5);
  EXPECT_EQ(weight_of_first("0*/a & /b"), 0.0);
  EXPECT_EQ(weight_of_first("0.1*/a & /b"), 0.1);
  EXPECT_EQ(weight_of_first("0.125*/a & /b"), 0.125);  // kept at full precision
  EXPECT_EQ(weight_of_first("2.675*/a & /b"), 2.675);
  EXPECT_EQ(weight_of_first("10 * /a & /b"), 10.0);
  EXPECT_EQ(weight_of_first("123456789012345678901234567890*/a & /b"), 1.2345678901234568e29);
  EXPECT_EQ(weight_of_first("2\n*\n/a & /b"), 2.0);
}

TEST(ParserTest, WeightsApplyToEveryKindOfTerm) {
  EXPECT_EQ(MustTree("2*~ & 3*! & 0.5*$ & 4*(/a | /b)"),
            Union({{2.0, Tree::Neg()},
                   {3.0, Tree::Fail()},
                   {0.5, Tree::Empty()},
                   {4.0, Alt({Leaf({"a"}), Leaf({"b"})})}}));
}

TEST(ParserTest, DefaultWeightIsOne) {
  const Tree t = MustTree("/a & /b");
  ASSERT_TRUE(t.is_union());
  EXPECT_EQ(t.weights(), (std::vector<double>{1.0, 1.0}));
  EXPECT_EQ(Tree::kDefaultWeight, 1.0);
}

TEST(ParserTest, DiscardsWeightOutsideAMultiBranchUnion) {
  EXPECT_EQ(MustTree("2 * /foo"), Leaf({"foo"}));
  EXPECT_EQ(MustTree("1 * (2*/a & /b)"), Union({{2.0, Leaf({"a"})}, {1.0, Leaf({"b"})}}));
  EXPECT_EQ(MustTree("(3*/a)"), Leaf({"a"}));
  EXPECT_EQ(MustTree("3*/a | /b"), Alt({Leaf({"a"}), Leaf({"b"})}));
  EXPECT_EQ(MustTree("3*(/a) & /b"), Union({{3.0, Leaf({"a"})}, {1.0, Leaf({"b"})}}));
}

TEST(ParserTest, RejectsSignedOrExponentWeights) {
  EXPECT_EQ(ErrorOf(ParseTree("-1*/a & /b")), "simple expected but '-' found at '[-]1*/a & /b'");
  EXPECT_EQ(ErrorOf(ParseTree("+1*/a & /b")), "simple expected but '+' found at '[+]1*/a & /b'");
  EXPECT_EQ(ErrorOf(ParseTree("1e3*/a & /b")), "'*' expected but 'e' found at '1[e]3*/a & /b'");
}

TEST(ParserTest, RejectsTwoDotsInAWeight) {
  EXPECT_EQ(ErrorOf(ParseTree("/foo & 0.1.2 * /bar")),
            "number char expected but '.' found at '/foo & 0.1[.]2 * /bar'");
  EXPECT_EQ(ErrorOf(ParseTree("..5*/a")), "number char expected but '.' found at '.[.]5*/a'");
}

TEST(ParserTest, LoneDotWeightErrorMarksTheCharacterAfterTheDot) {
  // QUIRK (spec section 1): the bracket is one character after the dot.
  EXPECT_EQ(ErrorOf(ParseTree("/foo & . * /bar")),
            "weight expected but '.' found at '/foo & .[ ]* /bar'");
  EXPECT_EQ(ErrorOf(ParseTree(".*/a")), "weight expected but '.' found at '.[*]/a'");
  EXPECT_EQ(ErrorOf(ParseTree("/foo & .")), "weight expected but '.' found at '/foo & .[]'");
}

TEST(ParserTest, RejectsTwoWeightsOnOneTerm) {
  EXPECT_EQ(ErrorOf(ParseTree("1 * 2 * /a")), "simple expected but '2' found at '1 * [2] * /a'");
}

TEST(ParserTest, RejectsWeightWithoutStar) {
  EXPECT_EQ(ErrorOf(ParseTree("2 /a & /b")), "'*' expected but '/' found at '2 [/]a & /b'");
  EXPECT_EQ(ErrorOf(ParseTree("/a & 2")), "'*' expected but end of input found at '/a & 2[]'");
}

TEST(ParserTest, RejectsNonAsciiDigitsInWeights) {
  // DESIGN.md decision 2: only 0-9 are number characters (U+0663 here).
  EXPECT_EQ(ErrorOf(ParseTree("\xd9\xa3*/a & /b")),
            "simple expected but '\xd9\xa3' found at '[\xd9\xa3]*/a & /b'");
}

TEST(ParserTest, RejectsEmptyOrCommentOnlyTree) {
  EXPECT_EQ(ErrorOf(ParseTree("")), "simple expected but end of input found at '[]'");
  EXPECT_EQ(ErrorOf(ParseTree("#")), "simple expected but end of input found at '#[]'");
  EXPECT_EQ(ErrorOf(ParseTree("  # c\n")), "simple expected but end of input found at '  # c\n[]'");
}

TEST(ParserTest, RejectsDanglingOperators) {
  EXPECT_EQ(ErrorOf(ParseTree("/foo &")), "simple expected but end of input found at '/foo &[]'");
  EXPECT_EQ(ErrorOf(ParseTree("/foo |")), "simple expected but end of input found at '/foo |[]'");
  EXPECT_EQ(ErrorOf(ParseTree("/a | | /b")), "simple expected but '|' found at '/a | [|] /b'");
  EXPECT_EQ(ErrorOf(ParseTree("&/a")), "simple expected but '&' found at '[&]/a'");
  EXPECT_EQ(ErrorOf(ParseTree("/a & * /b")), "simple expected but '*' found at '/a & [*] /b'");
  EXPECT_EQ(ErrorOf(ParseTree("/a|#c")), "simple expected but end of input found at '/a|#c[]'");
}

TEST(ParserTest, RejectsUnbalancedParentheses) {
  EXPECT_EQ(ErrorOf(ParseTree("(/a")), "')' expected but end of input found at '(/a[]'");
  EXPECT_EQ(ErrorOf(ParseTree("(/a | /b & /c")),
            "')' expected but end of input found at '(/a | /b & /c[]'");
  EXPECT_EQ(ErrorOf(ParseTree("/a)")), "end of input expected but ')' found at '/a[)]'");
  EXPECT_EQ(ErrorOf(ParseTree("()")), "simple expected but ')' found at '([)]'");
}

TEST(ParserTest, RejectsJuxtaposedTerms) {
  EXPECT_EQ(ErrorOf(ParseTree("/a /b")), "end of input expected but '/' found at '/a [/]b'");
  EXPECT_EQ(ErrorOf(ParseTree("~/a")), "end of input expected but '/' found at '~[/]a'");
  EXPECT_EQ(ErrorOf(ParseTree("/a,/b")), "end of input expected but ',' found at '/a[,]/b'");
}

TEST(ParserTest, RejectsWildcardInATreeLeaf) {
  EXPECT_EQ(ErrorOf(ParseTree("/*")), "end of input expected but '*' found at '/[*]'");
  EXPECT_EQ(ErrorOf(ParseDentry("/a=>/*")), "end of input expected but '*' found at '/a=>/[*]'");
}

TEST(ParserTest, RejectsDentryTextAsATree) {
  EXPECT_EQ(ErrorOf(ParseTree("/a=>/b")), "end of input expected but '=' found at '/a[=]>/b'");
}

// --- nesting limit ---------------------------------------------------------

std::string Nested(size_t depth, absl::string_view inner = "/a") {
  return absl::StrCat(std::string(depth, '('), inner, std::string(depth, ')'));
}

TEST(ParserTest, AcceptsParenthesesNestedUpToTheLimit) {
  const absl::StatusOr<Tree> t = ParseTree(Nested(100));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, Leaf({"a"}));
  ParseOptions options;
  options.max_nesting = 2;
  EXPECT_TRUE(ParseTree("((/a)) | (/b & (/c))", options).ok());
}

TEST(ParserTest, RejectsParenthesesNestedDeeperThanTheLimit) {
  const std::string text = Nested(101);
  EXPECT_EQ(ErrorOf(ParseTree(text)),
            absl::StrCat("tree nested deeper than 100 levels at '", std::string(100, '('), "[(]/a",
                         std::string(101, ')'), "'"));
  ParseOptions options;
  options.max_nesting = 2;
  EXPECT_EQ(ErrorOf(ParseTree("(((/a)))", options)),
            "tree nested deeper than 2 levels at '(([(]/a)))'");
  EXPECT_EQ(ErrorOf(ParseTree("/x | ((/b & (/c | (/d))))", options)),
            "tree nested deeper than 2 levels at '/x | ((/b & [(]/c | (/d))))'");
  options.max_nesting = 0;
  EXPECT_EQ(ErrorOf(ParseTree("(/a)", options)), "tree nested deeper than 0 levels at '[(]/a)'");
  EXPECT_TRUE(ParseTree("/a | /b", options).ok());
}

TEST(ParserTest, NestingLimitAppliesInsideDentriesAndDtabs) {
  ParseOptions options;
  options.max_nesting = 1;
  EXPECT_TRUE(ParseDtab("/a=>(/b);/c=>(/d)", options).ok());
  EXPECT_EQ(ErrorOf(ParseDentry("/a=>((/b))", options)),
            "tree nested deeper than 1 levels at '/a=>([(]/b))'");
  EXPECT_EQ(ErrorOf(ParseDtab("/x=>/y;/a=>((/b))", options)),
            "tree nested deeper than 1 levels at '/x=>/y;/a=>([(]/b))'");
}

TEST(ParserTest, DeeplyNestedInputFailsWithoutStackOverflow) {
  const std::string text = Nested(1'000'000);
  const std::string error = ErrorOf(ParseTree(text));
  EXPECT_EQ(error, absl::StrCat("tree nested deeper than 100 levels at '", std::string(100, '('),
                                "[(]", std::string(512, '('), "...'"));
  EXPECT_EQ(ErrorOf(ParseDtab("/a=>" + text)).substr(0, 42),
            "tree nested deeper than 100 levels at '/a=");
}

// --- huge inputs -----------------------------------------------------------

TEST(ParserTest, ParsesAMegabyteOfAlternatives) {
  std::vector<std::string> alts;
  size_t size = 0;
  for (int i = 0; size < (1u << 20); ++i) {
    alts.push_back(absl::StrCat("/svc", i));
    size += alts.back().size() + 3;
  }
  const std::string text = absl::StrJoin(alts, " | ");
  const absl::StatusOr<Tree> t = ParseTree(text);
  ASSERT_TRUE(t.ok()) << t.status().message().substr(0, 200);
  ASSERT_TRUE(t->is_alt());
  EXPECT_EQ(t->children().size(), alts.size());
  EXPECT_EQ(t->children().back(), Tree::Leaf(Path{alts.back().substr(1)}));
  EXPECT_EQ(Show(*t), text);
}

TEST(ParserTest, ParsesAMegabyteOfUnionBranches) {
  std::vector<std::string> branches;
  for (int i = 0; i < 80000; ++i) {
    branches.push_back(absl::StrCat("0.5*/b", i));
  }
  const std::string text = absl::StrJoin(branches, " & ");
  ASSERT_GE(text.size(), 1u << 20);
  const absl::StatusOr<Tree> t = ParseTree(text);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t->is_union());
  EXPECT_EQ(t->children().size(), 80000u);
  EXPECT_EQ(Show(*t), absl::StrReplaceAll(text, {{"0.5*", "0.50*"}}));
}

TEST(ParserTest, ParsesAHundredThousandDentries) {
  std::vector<std::string> entries;
  for (int i = 0; i < 100000; ++i) {
    entries.push_back(absl::StrCat("/svc/", i, "=>/#/io.l5d.fs/", i));
  }
  const std::string text = absl::StrJoin(entries, ";");
  const absl::StatusOr<Dtab> d = ParseDtab(text + ";\n");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->size(), 100000u);
  EXPECT_EQ(d->dentries()[99999].prefix, Prefix(Path{"svc", "99999"}));
  EXPECT_EQ(d->Show(), text);
}

TEST(ParserTest, ParsesAMegabyteLabel) {
  const std::string label(1 << 20, 'x');
  const absl::StatusOr<Path> p = ParsePath("/" + label + "/y");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ(p->label(0), label);
}

// --- long-input error messages ----------------------------------------------

TEST(ParserTest, LongInputIsQuotedOnlyAroundTheError) {
  std::vector<std::string> entries;
  for (int i = 0; i < 10000; ++i) {
    entries.push_back(absl::StrCat("/svc/", i, "=>/x/", i));
  }
  entries[5000] = "/svc/5000=>/x/5000 /oops";
  const std::string text = absl::StrJoin(entries, ";");
  const std::string error = ErrorOf(ParseDtab(text));
  const std::string head = "end of input expected but '/' found at '...";
  ASSERT_EQ(error.substr(0, head.size()), head);
  EXPECT_EQ(error.substr(error.size() - 4), "...'");
  EXPECT_LE(error.size(), head.size() + 1024 + 3 + 4);
  EXPECT_NE(error.find("/svc/5000=>/x/5000 [/]oops;/svc/5001=>/x/5001;"), std::string::npos)
      << error;
}

TEST(ParserTest, QuotedWindowIsConfigurable) {
  ParseOptions options;
  options.max_quoted_input = 16;  // 8 bytes either side of the error
  const std::string a12(12, 'a');
  EXPECT_EQ(ErrorOf(ParsePath("/" + a12 + "/bbbbbbbbbbbb^cccccccccccc", options)),
            "end of input expected but '^' found at '...bbbbbbbb[^]cccccccc...'");
  // Near the start: no leading ellipsis.
  EXPECT_EQ(ErrorOf(ParsePath("^" + std::string(40, 'a'), options)),
            "'/' expected but '^' found at '[^]aaaaaaaa...'");
  // Near the end: no trailing ellipsis.
  EXPECT_EQ(ErrorOf(ParsePath("/" + std::string(40, 'a') + "^", options)),
            "end of input expected but '^' found at '...aaaaaaaa[^]'");
  EXPECT_EQ(ErrorOf(ParsePath("/" + std::string(40, 'a') + "/", options)),
            "label char expected but end of input found at '...aaaaaaa/[]'");
  // An input of exactly max_quoted_input bytes is quoted whole.
  EXPECT_EQ(ErrorOf(ParsePath("/" + std::string(14, 'a') + "^", options)),
            "end of input expected but '^' found at '/aaaaaaaaaaaaaa[^]'");
}

TEST(ParserTest, ShortInputIsQuotedWhole) {
  const std::string text = "/" + std::string(1000, 'a') + "^" + std::string(20, 'b');
  ASSERT_LE(text.size(), ParseOptions().max_quoted_input);
  EXPECT_EQ(ErrorOf(ParsePath(text)),
            absl::StrCat("end of input expected but '^' found at '/", std::string(1000, 'a'),
                         "[^]", std::string(20, 'b'), "'"));
}

// ===========================================================================
// Section 5: dentries and dtabs

TEST(ParserTest, ParsesFinagleDentryExamples) {
  EXPECT_EQ(*ParseDentry("/=>!"), (Dentry{Prefix(), Tree::Fail()}));
  EXPECT_EQ(*ParseDentry("/ => !"), (Dentry{Prefix(), Tree::Fail()}));
  EXPECT_EQ(*ParseDentry("/foo/*/bar => !"),
            (Dentry{Prefix({Label("foo"), Any(), Label("bar")}), Tree::Fail()}));
  EXPECT_EQ(*ParseDentry("/foo/bar/baz => !"),
            (Dentry{Prefix(Path{"foo", "bar", "baz"}), Tree::Fail()}));
  EXPECT_EQ(*ParseDentry("/foo=>/bar"), (Dentry{Prefix(Path{"foo"}), Leaf({"bar"})}));
}

TEST(ParserTest, RejectsRuleWithoutArrow) {
  EXPECT_EQ(ErrorOf(ParseDentry("/a /b")), "'=' expected but '/' found at '/a [/]b'");
  EXPECT_EQ(ErrorOf(ParseDentry("/a")), "'=' expected but end of input found at '/a[]'");
  EXPECT_EQ(ErrorOf(ParseDentry("/&!")), "'=' expected but '&' found at '/[&]!'");
  EXPECT_EQ(ErrorOf(ParseDtab("/a=/b")), "'>' expected but '/' found at '/a=[/]b'");
  EXPECT_EQ(ErrorOf(ParseDtab("/a->/b")), "'=' expected but '>' found at '/a-[>]/b'");
}

TEST(ParserTest, RejectsArrowWithSpaceInside) {
  EXPECT_EQ(ErrorOf(ParseDentry("/a = > /b")), "'>' expected but ' ' found at '/a =[ ]> /b'");
  EXPECT_EQ(ErrorOf(ParseDentry("/a=#c\n>/b")), "'>' expected but '#' found at '/a=[#]c\n>/b'");
}

TEST(ParserTest, RejectsRuleWithoutDestination) {
  EXPECT_EQ(ErrorOf(ParseDentry("/a=>")), "simple expected but end of input found at '/a=>[]'");
  EXPECT_EQ(ErrorOf(ParseDtab("/a=>;/b=>/c")),
            "simple expected but ';' found at '/a=>[;]/b=>/c'");
}

TEST(ParserTest, RejectsPrefixThatIsNotAPath) {
  EXPECT_EQ(ErrorOf(ParseDentry("a=>/b")), "'/' expected but 'a' found at '[a]=>/b'");
  EXPECT_EQ(ErrorOf(ParseDentry("~=>/b")), "'/' expected but '~' found at '[~]=>/b'");
}

TEST(ParserTest, DentryParserRejectsSemicolon) {
  EXPECT_EQ(ErrorOf(ParseDentry("/a=>/b;")), "end of input expected but ';' found at '/a=>/b[;]'");
}

TEST(ParserTest, ParsesEmptyDtabFromBlankInput) {
  EXPECT_EQ(*ParseDtab(""), Dtab());
  EXPECT_EQ(*ParseDtab("   \n\t "), Dtab());
  EXPECT_EQ(*ParseDtab("# only a comment"), Dtab());
  EXPECT_EQ(*ParseDtab("# one\n  # two\n"), Dtab());
}

TEST(ParserTest, ParsesFinagleDtabExamples) {
  EXPECT_EQ(*ParseDtab("  /=>!  "), Dtab({Dentry{Prefix(), Tree::Fail()}}));
  EXPECT_EQ(*ParseDtab("/=>!;"), Dtab({Dentry{Prefix(), Tree::Fail()}}));
  EXPECT_EQ(*ParseDtab("/=>!;/foo=>/bar"),
            Dtab({Dentry{Prefix(), Tree::Fail()}, Dentry{Prefix(Path{"foo"}), Leaf({"bar"})}}));
}

TEST(ParserTest, AllowsOneTrailingSemicolonFollowedByWhitespaceAndComments) {
  // Finagle DtabTest "Allows trailing semicolon".
  const Dtab d = MustDtab("\n          /b => /c;\n          /a => /b;\n          ");
  EXPECT_EQ(d.size(), 2u);
  EXPECT_EQ(MustDtab("/a=>/b ; # the end\n").size(), 1u);
  EXPECT_EQ(MustDtab("/a=>/b;#c").size(), 1u);
}

TEST(ParserTest, RejectsEmptyEntries) {
  EXPECT_EQ(ErrorOf(ParseDtab(";")), "'/' expected but ';' found at '[;]'");
  EXPECT_EQ(ErrorOf(ParseDtab(" ; ")), "'/' expected but ';' found at ' [;] '");
  EXPECT_EQ(ErrorOf(ParseDtab(";/a=>/b")), "'/' expected but ';' found at '[;]/a=>/b'");
  EXPECT_EQ(ErrorOf(ParseDtab("/a=>/b;;/c=>/d")),
            "'/' expected but ';' found at '/a=>/b;[;]/c=>/d'");
  EXPECT_EQ(ErrorOf(ParseDtab("/a=>/b;;")), "'/' expected but ';' found at '/a=>/b;[;]'");
  EXPECT_EQ(ErrorOf(ParseDtab("/a=>/b; ;")), "'/' expected but ';' found at '/a=>/b; [;]'");
  EXPECT_EQ(ErrorOf(ParseDtab("/a=>/b;x")), "'/' expected but 'x' found at '/a=>/b;[x]'");
}

TEST(ParserTest, NewlineIsNotASeparator) {
  EXPECT_EQ(ErrorOf(ParseDtab("/a=>/b\n/c=>/d")),
            "end of input expected but '/' found at '/a=>/b\n[/]c=>/d'");
}

TEST(ParserTest, CommaIsNotASeparator) {
  EXPECT_EQ(ErrorOf(ParseDtab("/a=>/b,/c=>/d")),
            "end of input expected but ',' found at '/a=>/b[,]/c=>/d'");
  EXPECT_EQ(ErrorOf(ParseDtab("/a=>/b, /c=>/d")),
            "end of input expected but ',' found at '/a=>/b[,] /c=>/d'");
}

TEST(ParserTest, KeepsDuplicateEntriesInOrder) {
  const Dtab d = MustDtab("/a=>/c;/a=>/b;/a=>/c");
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d.dentries()[0].dst, Leaf({"c"}));
  EXPECT_EQ(d.dentries()[1].dst, Leaf({"b"}));
  EXPECT_EQ(d.dentries()[2].dst, Leaf({"c"}));
  EXPECT_NE(d, MustDtab("/a=>/b;/a=>/c;/a=>/c"));
}

TEST(ParserTest, ParsesCommentedDtabFromFinagle) {
  // Finagle DtabTest "Dtab.read ignores comment lines with #".
  const Dtab d = MustDtab(R"(
# a comment
      /#foo => /biz  # another comment
             | ( /bliz & # yet another comment
                 /bluth ) # duh bluths
             ; #finalmente
      #/ignore=>/me;
    )");
  EXPECT_EQ(d, Dtab({Dentry{Prefix(Path{"#foo"}),
                            Alt({Leaf({"biz"}), Union({{1.0, Leaf({"bliz"})},
                                                       {1.0, Leaf({"bluth"})}})})}}));
}

TEST(ParserTest, ParsesMultiLineDtabWithSemicolonsAtLineEnds) {
  // Finagle DtabTest "d1 ++ d2".
  const Dtab d = MustDtab(R"(
      /foo=>/bar;
      /foo=>/biz;
      /biz=>/$/inet/8080;
      /bar=>/$/inet/9090
    )");
  EXPECT_EQ(d.Show(), "/foo=>/bar;/foo=>/biz;/biz=>/$/inet/8080;/bar=>/$/inet/9090");
}

TEST(ParserTest, ParsesWildcardRules) {
  const Dtab d = MustDtab("/a/*/c => /d");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d.dentries()[0].prefix, Prefix({Label("a"), Any(), Label("c")}));
  EXPECT_EQ(d.Show(), "/a/*/c=>/d");
  EXPECT_EQ(MustDtab("/*=>/x;/svc/*/*=>/y").Show(), "/*=>/x;/svc/*/*=>/y");
}

// ===========================================================================
// Round trips and robustness

TEST(ParserTest, ShowOfParsedTextReparsesToTheSameValue) {
  const std::vector<std::string> dtabs = {
      "",
      "/=>!",
      "/foo => /bar",
      "/a/*/c => /d",
      "/s#/x => /#/io.l5d.fs/x ; /svc => /$/inet/127.1/8080",
      "/a => 1 * /foo & 2 * /bar | .5 * /bar & .5 * /baz",
      "/a => (/b | /c) & 0.125*(/d & /e) | ~ | ! | $",
      "/\\x2a/* => /foo\\x20bar | /\\x66oo",
      "/a => ((/b)) | (/c | (/d | /e))",
      "/a=>2*/b;/a=>/c;/a=>/c",
      "\n# a comment\n/#foo => /biz # c\n | ( /bliz & # c\n /bluth ) # c\n ; #c\n #/x=>/y;\n",
  };
  for (const std::string& text : dtabs) {
    const absl::StatusOr<Dtab> d = ParseDtab(text);
    ASSERT_TRUE(d.ok()) << text << ": " << d.status();
    const std::string shown = d->Show();
    const absl::StatusOr<Dtab> again = ParseDtab(shown);
    ASSERT_TRUE(again.ok()) << shown << ": " << again.status();
    EXPECT_EQ(again->Show(), shown);
    // Weights with at most two decimals survive exactly.
    if (text.find("0.125") == std::string::npos) {
      EXPECT_EQ(*again, *d) << text;
    }
  }
}

TEST(ParserTest, LossyWeightIsRoundedOnShow) {
  const Dtab d = MustDtab("/a=>0.125*/b & /c");
  EXPECT_EQ(d.Show(), "/a=>0.13*/b & /c");
  EXPECT_EQ(MustDtab(d.Show()).dentries()[0].dst.weights()[0], 0.13);
}

// Random strings over dtab tokens: every input either parses to a value whose
// Show re-parses to the same value, or fails with Finagle's message shape
// quoting the whole input with one marker.
TEST(ParserTest, RandomTokenSoupParsesOrFailsWithAWellFormedMessage) {
  const std::vector<std::string> tokens = {
      "/", "a", "b", "*", "&", "|", "(", ")", "~", "!", "$", " ", "#", "\n", ";",
      "=>", "=", ">", "1", "2.5", ".", "\\x41", "\\", "/a", "/b/c", "=>/x", "2*", ",", "\xc3\xa9"};
  std::mt19937 rng(1234);
  std::uniform_int_distribution<size_t> pick(0, tokens.size() - 1);
  std::uniform_int_distribution<int> length(0, 12);
  int parsed = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) {
      text += tokens[pick(rng)];
    }
    const absl::StatusOr<Dtab> d = ParseDtab(text);
    const absl::StatusOr<Tree> t = ParseTree(text);
    const absl::StatusOr<Path> p = ParsePath(text);
    if (d.ok()) {
      ++parsed;
      const absl::StatusOr<Dtab> again = ParseDtab(d->Show());
      ASSERT_TRUE(again.ok()) << text;
      EXPECT_EQ(again->Show(), d->Show()) << text;
    }
    if (t.ok()) {
      // Weights with more than two decimals are rounded once by Show; after
      // that, show and parse are inverse.
      const std::string shown = Show(*t);
      const absl::StatusOr<Tree> again = ParseTree(shown);
      ASSERT_TRUE(again.ok()) << text;
      EXPECT_EQ(Show(*again), shown) << text;
      EXPECT_EQ(*ParseTree(Show(*again)), *again) << text;
    }
    if (p.ok()) {
      EXPECT_EQ(*ParsePath(p->Show()), *p) << text;
    }
    for (const absl::Status& s : {d.status(), t.status(), p.status()}) {
      if (s.ok()) {
        continue;
      }
      const std::string msg(s.message());
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
      const size_t at = msg.find(" found at '");
      ASSERT_NE(at, std::string::npos) << msg;
      ASSERT_NE(msg.find(" expected but "), std::string::npos) << msg;
      ASSERT_EQ(msg.back(), '\'') << msg;
      std::string quoted = msg.substr(at + 11, msg.size() - at - 12);
      const size_t open = quoted.find('[');
      ASSERT_NE(open, std::string::npos) << msg;
      const size_t close = quoted.find(']', open);
      ASSERT_NE(close, std::string::npos) << msg;
      EXPECT_LE(close - open - 1, 2u) << msg;  // one character (or "" at the end)
      quoted.erase(close, 1);
      quoted.erase(open, 1);
      EXPECT_EQ(quoted, text) << msg;
    }
  }
  EXPECT_GT(parsed, 100);  // the soup is not all garbage
}

// Hostile input (issue 8): a weight that overflows a double would print as
// "Infinity", which nothing parses back, so it is rejected.
TEST(ParserTest, RejectsWeightThatOverflows) {
  const std::string huge(400, '9');
  EXPECT_EQ(ErrorOf(ParseTree(absl::StrCat(huge, "*/a & /b"))),
            absl::StrCat("weight of 400 digits is out of range at '[9]", huge.substr(1),
                         "*/a & /b'"));
  EXPECT_FALSE(ParseDtab(absl::StrCat("/x=>/a & ", huge, ".5*/b")).ok());
  // The largest finite weights still parse.
  EXPECT_TRUE(ParseTree(absl::StrCat(std::string(308, '9'), "*/a & /b")).ok());
}

// Comments are kept with the dtab and served in protobuf strings and JSON,
// so bytes that are not UTF-8 are rejected; UTF-8 text is fine.
TEST(ParserTest, RejectsCommentThatIsNotUtf8) {
  EXPECT_TRUE(ParseDtab("# caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n/a=>/b").ok());
  EXPECT_EQ(ErrorOf(ParseDtab("/a=>/b # \xff\n")), "comment is not valid UTF-8 at byte 9");
  EXPECT_EQ(ErrorOf(ParseDtab("# \xc3\x28\n/a=>/b")), "comment is not valid UTF-8 at byte 2");
  // Overlong form, surrogate, above U+10FFFF, truncated at the end.
  for (const char* bad : {"# \xc0\xaf", "# \xe0\x80\xaf", "# \xed\xa0\x80", "# \xf4\x90\x80\x80",
                          "# \xe2\x82"}) {
    EXPECT_FALSE(ParseDtab(bad).ok()) << absl::CHexEscape(bad);
  }
  // Outside comments non-ASCII bytes were already label errors.
  EXPECT_FALSE(ParseDtab("/a=>/\xff").ok());
}

}  // namespace
}  // namespace dtabd::dtab
