// Tests for dtab/name_tree.h: canonical printing (with weights), Simplify
// and Eval (shared/reference/dtab-semantics.md section 4).
#include "dtab/name_tree.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dtab/parser.h"
#include "dtab/path.h"
#include "gtest/gtest.h"

namespace dtabd::dtab {
namespace {

using Tree = NameTree<Path>;

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

Tree MustTree(absl::string_view text) {
  absl::StatusOr<Tree> t = ParseTree(text);
  if (!t.ok()) {
    ADD_FAILURE() << "ParseTree(\"" << text << "\"): " << t.status();
    return Tree::Neg();
  }
  return *std::move(t);
}

// Show(Simplify(parse(text))).
std::string Simplified(absl::string_view text) { return Show(Simplify(MustTree(text))); }

// Eval's result as shown paths, or "None".
std::string EvalText(const Tree& t) {
  const std::optional<std::vector<Path>> r = Eval(t);
  if (!r) {
    return "None";
  }
  std::vector<std::string> shown;
  for (const Path& p : *r) {
    shown.push_back(p.Show());
  }
  std::sort(shown.begin(), shown.end());
  shown.erase(std::unique(shown.begin(), shown.end()), shown.end());
  std::string out = "{";
  for (size_t i = 0; i < shown.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", shown[i]);
  }
  return out + "}";
}

// ===========================================================================
// Construction and equality

TEST(NameTreeTest, DefaultTreeIsNeg) {
  const Tree t;
  EXPECT_TRUE(t.is_neg());
  EXPECT_EQ(t.kind(), Tree::Kind::kNeg);
  EXPECT_EQ(t, Tree::Neg());
}

TEST(NameTreeTest, FactoriesMakeTheirKinds) {
  EXPECT_TRUE(Tree::Fail().is_fail());
  EXPECT_TRUE(Tree::Empty().is_empty());
  EXPECT_TRUE(Leaf({"a"}).is_leaf());
  EXPECT_EQ(Leaf({"a"}).leaf(), (Path{"a"}));
  EXPECT_TRUE(Alt({Leaf({"a"}), Leaf({"b"})}).is_alt());
  const Tree u = Union({{2.0, Leaf({"a"})}, {1.0, Tree::Neg()}});
  EXPECT_TRUE(u.is_union());
  EXPECT_EQ(u.children().size(), 2u);
  EXPECT_EQ(u.weights(), (std::vector<double>{2.0, 1.0}));
  EXPECT_TRUE(Leaf({"a"}).children().empty());
  EXPECT_TRUE(Alt({Leaf({"a"})}).weights().empty());
}

TEST(NameTreeTest, EqualityComparesKindsLeavesChildrenAndWeights) {
  EXPECT_EQ(Leaf({"a"}), Leaf({"a"}));
  EXPECT_NE(Leaf({"a"}), Leaf({"b"}));
  EXPECT_NE(Tree::Neg(), Tree::Fail());
  EXPECT_NE(Tree::Empty(), Tree::Leaf(Path()));
  EXPECT_NE(Alt({Leaf({"a"}), Leaf({"b"})}), Alt({Leaf({"b"}), Leaf({"a"})}));
  EXPECT_NE(Alt({Leaf({"a"}), Leaf({"b"})}), Union({{1.0, Leaf({"a"})}, {1.0, Leaf({"b"})}}));
  EXPECT_NE(Union({{1.0, Leaf({"a"})}, {2.0, Leaf({"b"})}}),
            Union({{2.0, Leaf({"a"})}, {1.0, Leaf({"b"})}}));
  EXPECT_EQ(Union({{0.5, Leaf({"a"})}, {2.0, Leaf({"b"})}}),
            Union({{0.5, Leaf({"a"})}, {2.0, Leaf({"b"})}}));
}

TEST(NameTreeTest, MapReplacesLeavesAndKeepsStructureAndWeights) {
  const Tree t = MustTree("/a | 2*/b & ~ | ! | $");
  const NameTree<std::string> m = t.Map([](const Path& p) { return p.Show() + "!"; });
  ASSERT_TRUE(m.is_alt());
  ASSERT_EQ(m.children().size(), 4u);
  EXPECT_EQ(m.children()[0], NameTree<std::string>::Leaf("/a!"));
  EXPECT_EQ(m.children()[1],
            NameTree<std::string>::Union(
                {NameTree<std::string>::Leaf("/b!"), NameTree<std::string>::Neg()}, {2.0, 1.0}));
  EXPECT_TRUE(m.children()[2].is_fail());
  EXPECT_TRUE(m.children()[3].is_empty());
  // Mapping back restores the original tree.
  const Tree back = m.Map([](const std::string& s) {
    return *ParsePath(absl::string_view(s).substr(0, s.size() - 1));
  });
  EXPECT_EQ(back, t);
}

// ===========================================================================
// FormatWeight

TEST(FormatWeightTest, AlwaysPrintsTwoDecimals) {
  EXPECT_EQ(FormatWeight(2.0), "2.00");
  EXPECT_EQ(FormatWeight(0.5), "0.50");
  EXPECT_EQ(FormatWeight(10.0), "10.00");
  EXPECT_EQ(FormatWeight(0.0), "0.00");
  EXPECT_EQ(FormatWeight(1.0), "1.00");
  EXPECT_EQ(FormatWeight(123.0), "123.00");
  EXPECT_EQ(FormatWeight(0.25), "0.25");
  EXPECT_EQ(FormatWeight(1e20), "100000000000000000000.00");
}

TEST(FormatWeightTest, RoundsHalfUpOnTheShortestDecimal) {
  // C's printf("%.2f") gives 0.12, 1.00 and 2.67 for these: Java does not.
  EXPECT_EQ(FormatWeight(0.125), "0.13");
  EXPECT_EQ(FormatWeight(1.005), "1.01");
  EXPECT_EQ(FormatWeight(2.675), "2.68");
  EXPECT_EQ(FormatWeight(0.015), "0.02");
  EXPECT_EQ(FormatWeight(1.115), "1.12");
  EXPECT_EQ(FormatWeight(0.005), "0.01");
  EXPECT_EQ(FormatWeight(123456.785), "123456.79");
}

TEST(FormatWeightTest, TruncatesBelowHalf) {
  EXPECT_EQ(FormatWeight(1.234), "1.23");
  EXPECT_EQ(FormatWeight(0.994), "0.99");
  EXPECT_EQ(FormatWeight(0.0049), "0.00");
  EXPECT_EQ(FormatWeight(1e-7), "0.00");
  EXPECT_EQ(FormatWeight(std::numeric_limits<double>::denorm_min()), "0.00");
  EXPECT_EQ(FormatWeight(0.1 + 0.2), "0.30");  // 0.30000000000000004
  EXPECT_EQ(FormatWeight(1.0 / 3), "0.33");
}

TEST(FormatWeightTest, CarriesIntoTheIntegerPart) {
  EXPECT_EQ(FormatWeight(0.995), "1.00");
  EXPECT_EQ(FormatWeight(9.995), "10.00");
  EXPECT_EQ(FormatWeight(99.999), "100.00");
  EXPECT_EQ(FormatWeight(2.0 / 3), "0.67");
}

TEST(FormatWeightTest, LargeWeightsPrintShortestDigitsPaddedWithZeros) {
  // Java lays out the shortest digits ("1.0E23", "2.0E30"), not the double's
  // exact integer value (99999999999999991611392, 2000000000000000039769249677312).
  EXPECT_EQ(FormatWeight(1e23), "100000000000000000000000.00");
  EXPECT_EQ(FormatWeight(2e30), "2000000000000000000000000000000.00");
  EXPECT_EQ(FormatWeight(123456789012345678.0), "123456789012345680.00");
  EXPECT_EQ(FormatWeight(std::numeric_limits<double>::max()),
            absl::StrCat("17976931348623157", std::string(292, '0'), ".00"));
  // And they still re-parse to the same double.
  const absl::StatusOr<Tree> t = ParseTree(Show(Union({{2e30, Leaf({"a"})}, {1e23, Leaf({"b"})}})));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->weights(), (std::vector<double>{2e30, 1e23}));
}

TEST(FormatWeightTest, NegativeWeightsRoundAwayFromZero) {
  EXPECT_EQ(FormatWeight(-0.5), "-0.50");
  EXPECT_EQ(FormatWeight(-1.005), "-1.01");
  EXPECT_EQ(FormatWeight(-2.0), "-2.00");
}

TEST(FormatWeightTest, PrintsNonFiniteValuesLikeJava) {
  EXPECT_EQ(FormatWeight(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatWeight(std::numeric_limits<double>::infinity()), "Infinity");
  EXPECT_EQ(FormatWeight(-std::numeric_limits<double>::infinity()), "-Infinity");
}

TEST(FormatWeightTest, TwoDecimalWeightsPrintExactly) {
  for (int k = 0; k <= 100000; ++k) {
    const double w = k / 100.0;
    const std::string expected = absl::StrCat(k / 100, ".", k % 100 < 10 ? "0" : "", k % 100);
    ASSERT_EQ(FormatWeight(w), expected) << k;
  }
}

// ===========================================================================
// Show

TEST(NameTreeShowTest, ShowsTerminals) {
  EXPECT_EQ(Show(Tree::Neg()), "~");
  EXPECT_EQ(Show(Tree::Fail()), "!");
  EXPECT_EQ(Show(Tree::Empty()), "$");
  EXPECT_EQ(Show(Leaf({"foo", "bar"})), "/foo/bar");
  EXPECT_EQ(Show(Tree::Leaf(Path())), "/");
  EXPECT_EQ(Show(Leaf({"a b"})), "/\\x61\\x20\\x62");
}

TEST(NameTreeShowTest, JoinsAlternativesWithBars) {
  EXPECT_EQ(Show(Alt({Leaf({"a"}), Leaf({"b"}), Leaf({"c"})})), "/a | /b | /c");
  EXPECT_EQ(Show(Alt({Tree::Fail(), Tree::Neg(), Tree::Empty()})), "! | ~ | $");
}

TEST(NameTreeShowTest, ParenthesisesAltInsideAlt) {
  EXPECT_EQ(Show(Alt({Leaf({"a"}), Alt({Leaf({"b"}), Leaf({"c"})})})), "/a | (/b | /c)");
  EXPECT_EQ(Show(Alt({Alt({Leaf({"a"}), Leaf({"b"})}), Leaf({"c"})})), "(/a | /b) | /c");
}

TEST(NameTreeShowTest, DoesNotParenthesiseUnionInsideAlt) {
  EXPECT_EQ(Show(Alt({Leaf({"a"}), Union({{1.0, Leaf({"b"})}, {1.0, Leaf({"c"})}})})),
            "/a | /b & /c");
  EXPECT_EQ(Show(MustTree("/foo & /bar | /bar & /baz")), "/foo & /bar | /bar & /baz");
}

TEST(NameTreeShowTest, ParenthesisesAltAndUnionInsideUnion) {
  EXPECT_EQ(Show(Union({{1.0, Alt({Leaf({"a"}), Leaf({"b"})})}, {1.0, Leaf({"c"})}})),
            "(/a | /b) & /c");
  EXPECT_EQ(
      Show(Union({{1.0, Union({{1.0, Leaf({"a"})}, {1.0, Leaf({"b"})}})}, {1.0, Leaf({"c"})}})),
      "(/a & /b) & /c");
}

TEST(NameTreeShowTest, PrintsWeightsWithTwoDecimalsAndNoSpacesAroundStar) {
  EXPECT_EQ(Show(Union({{2.0, Leaf({"a"})}, {1.0, Leaf({"b"})}})), "2.00*/a & /b");
  EXPECT_EQ(Show(Union({{0.5, Leaf({"a"})}, {10.0, Leaf({"b"})}})), "0.50*/a & 10.00*/b");
  EXPECT_EQ(Show(Union({{0.0, Leaf({"a"})}, {0.125, Leaf({"b"})}})), "0.00*/a & 0.13*/b");
  EXPECT_EQ(Show(Union({{1.005, Leaf({"a"})}, {2.675, Leaf({"b"})}})), "1.01*/a & 2.68*/b");
  EXPECT_EQ(Show(Union({{2.0, Tree::Neg()}, {3.0, Tree::Fail()}, {0.5, Tree::Empty()}})),
            "2.00*~ & 3.00*! & 0.50*$");
}

TEST(NameTreeShowTest, PutsWeightBeforeParenthesisedBranch) {
  EXPECT_EQ(Show(Union({{0.5, Alt({Leaf({"a"}), Leaf({"b"})})}, {1.0, Leaf({"c"})}})),
            "0.50*(/a | /b) & /c");
  EXPECT_EQ(Show(Union({{2.0, Union({{1.0, Leaf({"a"})}, {3.0, Leaf({"b"})}})},
                        {1.0, Leaf({"c"})}})),
            "2.00*(/a & 3.00*/b) & /c");
}

TEST(NameTreeShowTest, OmitsWeightExactlyOne) {
  EXPECT_EQ(Show(Union({{1.0, Leaf({"a"})}, {1.0, Leaf({"b"})}})), "/a & /b");
  // Not exactly one: printed, even though it rounds to 1.00.
  EXPECT_EQ(Show(Union({{1.001, Leaf({"a"})}, {1.0, Leaf({"b"})}})), "1.00*/a & /b");
}

TEST(NameTreeShowTest, SingletonNodesPrintAsTheirOnlyChild) {
  EXPECT_EQ(Show(Alt({Leaf({"a"})})), "/a");
  EXPECT_EQ(Show(Union({{2.0, Leaf({"a"})}})), "/a");  // the weight is discarded
  EXPECT_EQ(Show(Alt({Alt({Union({{3.0, Tree::Fail()}})})})), "!");
  EXPECT_EQ(Show(Union({{2.0, Union({{1.0, Leaf({"a"})}, {1.0, Leaf({"b"})}})}})), "/a & /b");
  EXPECT_EQ(Show(Alt({Alt({Leaf({"a"}), Leaf({"b"})})})), "/a | /b");
}

TEST(NameTreeShowTest, SingletonWrapperKeepsParenthesesOfItsChild) {
  // The singleton prints as its child, so the child's parentheses must stay:
  // otherwise the text would re-parse as a different tree.
  const Tree alt_in_union =
      Union({{1.0, Alt({Alt({Leaf({"a"}), Leaf({"b"})})})}, {1.0, Leaf({"c"})}});
  EXPECT_EQ(Show(alt_in_union), "(/a | /b) & /c");
  const Tree alt_in_alt =
      Alt({Leaf({"a"}), Union({{3.0, Alt({Leaf({"b"}), Leaf({"c"})})}})});
  EXPECT_EQ(Show(alt_in_alt), "/a | (/b | /c)");
  const Tree union_in_union = Union(
      {{2.0, Union({{5.0, Union({{1.0, Leaf({"a"})}, {1.0, Leaf({"b"})}})}})}, {1.0, Leaf({"c"})}});
  EXPECT_EQ(Show(union_in_union), "2.00*(/a & /b) & /c");
  for (const Tree* t : {&alt_in_union, &alt_in_alt, &union_in_union}) {
    EXPECT_EQ(MustTree(Show(*t)), Simplify(*t)) << Show(*t);
  }
}

TEST(NameTreeShowTest, ShowsChildlessAltAndUnionAsNeg) {
  // Only constructible programmatically; both simplify to Neg.
  EXPECT_EQ(Show(Alt({})), "~");
  EXPECT_EQ(Show(Union({})), "~");
  EXPECT_EQ(Show(Alt({Leaf({"a"}), Alt({})})), "/a | ~");
}

TEST(NameTreeShowTest, ShowTreeToUsesTheGivenLeafPrinter) {
  using STree = NameTree<std::string>;
  const STree t = STree::Alt(
      {STree::Leaf("x"), STree::Union({STree::Leaf("y"), STree::Empty()}, {2.0, 1.0})});
  std::string out = "tree: ";
  ShowTreeTo(t, [](const std::string& s, std::string* o) { absl::StrAppend(o, "<", s, ">"); },
             &out);
  EXPECT_EQ(out, "tree: <x> | 2.00*<y> & $");
}

TEST(NameTreeShowTest, ShowIsTheCanonicalFormOfParsedText) {
  EXPECT_EQ(Show(MustTree("  /foo   |/bar&   2 * /baz ")), "/foo | /bar & 2.00*/baz");
  EXPECT_EQ(Show(MustTree("((/a | /b)) & ((/c))")), "(/a | /b) & /c");
  EXPECT_EQ(Show(MustTree("1 * /foo & 2 * /bar | .5 * /bar & .5 * /baz")),
            "/foo & 2.00*/bar | 0.50*/bar & 0.50*/baz");
  EXPECT_EQ(Show(MustTree("2 * /foo")), "/foo");
  EXPECT_EQ(Show(MustTree("/\\x66\\x6f\\x6F | /a\\x20")), "/foo | /\\x61\\x20");
}

// ===========================================================================
// Simplify

TEST(NameTreeSimplifyTest, LeavesTerminalsUnchanged) {
  EXPECT_EQ(Simplify(Tree::Neg()), Tree::Neg());
  EXPECT_EQ(Simplify(Tree::Fail()), Tree::Fail());
  EXPECT_EQ(Simplify(Tree::Empty()), Tree::Empty());
  EXPECT_EQ(Simplify(Leaf({"a"})), Leaf({"a"}));
}

TEST(NameTreeSimplifyTest, AltDropsNegChildren) {
  EXPECT_EQ(Simplified("~ | /a"), "/a");
  EXPECT_EQ(Simplified("/a | ~ | /b | ~"), "/a | /b");
  EXPECT_EQ(Simplified("~ | ~"), "~");
}

TEST(NameTreeSimplifyTest, AltKeepsFirstFailAndDropsEverythingAfterIt) {
  EXPECT_EQ(Simplified("/a | ! | /b"), "/a | !");
  EXPECT_EQ(Simplified("! | /a"), "!");
  EXPECT_EQ(Simplified("~ | ! | /a"), "!");
  EXPECT_EQ(Simplified("/a | ! | !"), "/a | !");
  EXPECT_EQ(Simplified("(~ | !) | /a"), "!");
}

TEST(NameTreeSimplifyTest, LeafOrEmptyDoesNotTruncateAlt) {
  EXPECT_EQ(Simplified("/a | $"), "/a | $");
  EXPECT_EQ(Simplified("$ | /a"), "$ | /a");
  EXPECT_EQ(Simplified("/a | /b | /c"), "/a | /b | /c");
}

TEST(NameTreeSimplifyTest, AltWhoseChildOnlyContainsFailIsNotTruncated) {
  // (/a | !) is an Alt, not Fail, so the alternatives after it stay.
  EXPECT_EQ(Simplified("(/a | !) | /b"), "(/a | !) | /b");
}

TEST(NameTreeSimplifyTest, DoesNotFlattenNestedAlts) {
  EXPECT_EQ(Simplified("/a | (/b | /c)"), "/a | (/b | /c)");
  EXPECT_EQ(Simplified("(~ | /a) | /b"), "/a | /b");
  EXPECT_EQ(Simplified("(~ | ~) | /b"), "/b");
}

TEST(NameTreeSimplifyTest, UnionDropsNegAndFailBranches) {
  EXPECT_EQ(Simplified("/a & ~"), "/a");
  EXPECT_EQ(Simplified("/a & !"), "/a");
  EXPECT_EQ(Simplified("2*/a & 3*/b & ! & ~"), "2.00*/a & 3.00*/b");
  EXPECT_EQ(Simplified("(! | /a) & /b"), "/b");
  EXPECT_EQ(Simplified("(~ | /a) & 2*/b"), "/a & 2.00*/b");
}

TEST(NameTreeSimplifyTest, UnionOfOnlyFailsIsNegNotFail) {
  EXPECT_EQ(Simplified("! & !"), "~");
  EXPECT_EQ(Simplified("! & ~"), "~");
  EXPECT_EQ(Simplified("~ & ~"), "~");
  EXPECT_EQ(Simplify(MustTree("! & !")), Tree::Neg());
}

TEST(NameTreeSimplifyTest, SingleSurvivingBranchLosesItsWeight) {
  EXPECT_EQ(Simplify(MustTree("2*/a & ~")), Leaf({"a"}));
  EXPECT_EQ(Simplify(MustTree("2*(~ | /a) & !")), Leaf({"a"}));
}

TEST(NameTreeSimplifyTest, UnionKeepsEmptyAndDuplicatesAndNesting) {
  EXPECT_EQ(Simplified("$ & /a"), "$ & /a");
  EXPECT_EQ(Simplified("$ & ~"), "$");
  EXPECT_EQ(Simplified("/a & /a"), "/a & /a");
  EXPECT_EQ(Simplified("(/a & /b) & /c"), "(/a & /b) & /c");
  EXPECT_EQ(Simplified("3*(~ | /a & /b) & /c"), "3.00*(/a & /b) & /c");
}

TEST(NameTreeSimplifyTest, ChildlessNodesBecomeNeg) {
  EXPECT_EQ(Simplify(Alt({})), Tree::Neg());
  EXPECT_EQ(Simplify(Union({})), Tree::Neg());
}

TEST(NameTreeSimplifyTest, SingletonNodesBecomeTheirSimplifiedChild) {
  EXPECT_EQ(Simplify(Alt({Leaf({"a"})})), Leaf({"a"}));
  EXPECT_EQ(Simplify(Union({{5.0, Leaf({"a"})}})), Leaf({"a"}));
  EXPECT_EQ(Simplify(Union({{5.0, MustTree("~ | /a")}})), Leaf({"a"}));
  EXPECT_EQ(Simplify(Alt({Tree::Fail()})), Tree::Fail());
  EXPECT_EQ(Simplify(Union({{5.0, Tree::Fail()}})), Tree::Neg());
}

TEST(NameTreeSimplifyTest, IsIdempotentOnExamples) {
  for (const char* text : {"~", "/a | ~ | /b", "/a | ! | /b", "! & !", "(/a | !) | /b",
                           "3*(~ | /a & /b) & /c", "(~ | (~ | (/a & ~))) | $"}) {
    const Tree once = Simplify(MustTree(text));
    EXPECT_EQ(Simplify(once), once) << text;
  }
}

// ===========================================================================
// Eval

TEST(NameTreeEvalTest, EvaluatesFinagleCases) {
  // Restated from Finagle's NameTreeTest "NameTree.eval/simplified".
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"~", "None"},
      {"/ok", "{/ok}"},
      {"/ok & /ok1", "{/ok,/ok1}"},
      {"/ok & ~ & /blah & $", "{/blah,/ok}"},
      {"$ & $ & $", "{}"},
      {"~ & ~ & (~ | ~)", "None"},
      {"~ | /foo | /bar", "{/foo}"},
      {"~ | $ | /blah", "{}"},
      {"~ | (~ | $) | /blah", "{}"},
      {"(~|$|/foo) & (/bar|/blah) & ~ & /FOO", "{/FOO,/bar}"},
      {"! | /ok", "None"},
      {"/ok & !", "{/ok}"},
      {"! & ! & !", "None"},
      {"~ | /ok | !", "{/ok}"},
  };
  for (const auto& [text, expected] : cases) {
    const Tree t = MustTree(text);
    EXPECT_EQ(EvalText(t), expected) << text;
    EXPECT_EQ(EvalText(Simplify(t)), expected) << text;
  }
}

TEST(NameTreeEvalTest, EmptyIsPresentButHasNoLeaves) {
  const std::optional<std::vector<Path>> r = Eval(Tree::Empty());
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->empty());
}

TEST(NameTreeEvalTest, NegAndFailEvaluateToNothing) {
  EXPECT_FALSE(Eval(Tree::Neg()).has_value());
  EXPECT_FALSE(Eval(Tree::Fail()).has_value());
  EXPECT_FALSE(Eval(Alt({})).has_value());
  EXPECT_FALSE(Eval(Union({})).has_value());
}

TEST(NameTreeEvalTest, AltStopsAtFailAndAtTheFirstSet) {
  EXPECT_EQ(EvalText(MustTree("~ | ! | /a")), "None");
  EXPECT_EQ(EvalText(MustTree("$ | /a")), "{}");
  EXPECT_EQ(EvalText(MustTree("/a | !")), "{/a}");
  EXPECT_EQ(EvalText(MustTree("(~ | ~) | /b")), "{/b}");
}

TEST(NameTreeEvalTest, UnionIgnoresWeightsAndSkipsNegAndFail) {
  EXPECT_EQ(EvalText(MustTree("0*/a & 5*/b & ! & ~")), "{/a,/b}");
  EXPECT_EQ(EvalText(MustTree("! & ~")), "None");
  EXPECT_EQ(EvalText(MustTree("(! | /a) & $")), "{}");
}

TEST(NameTreeEvalTest, ReturnsLeavesInTreeOrder) {
  const std::optional<std::vector<Path>> r = Eval(MustTree("/c & (/a | /z) & /b"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, (std::vector<Path>{Path{"c"}, Path{"a"}, Path{"b"}}));
}

// ===========================================================================
// Properties over random trees

class RandomTrees {
 public:
  explicit RandomTrees(uint32_t seed) : rng_(seed) {}

  // A tree without singleton Alt/Union nodes and with weights of at most two
  // decimals (Finagle's randomized read/show test, with fractional weights).
  Tree Make(int depth) {
    const int kind = depth == 0 ? 0 : Uniform(0, 2);
    if (kind == 0) {
      switch (Uniform(0, 4)) {
        case 0:
          return Tree::Fail();
        case 1:
          return Tree::Empty();
        case 2:
          return Tree::Neg();
        default:
          return Tree::Leaf(MakePath());
      }
    }
    const int n = Uniform(2, 4);
    std::vector<Tree> children;
    std::vector<double> weights;
    for (int i = 0; i < n; ++i) {
      children.push_back(Make(depth - 1));
      weights.push_back(MakeWeight());
    }
    if (kind == 1) {
      return Tree::Union(std::move(children), std::move(weights));
    }
    return Tree::Alt(std::move(children));
  }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  Path MakePath() {
    static const char* const kWords[] = {"Lorem", "ipsum", "dolor", "sit", "amet", "#",
                                         "$",     "io.l5d.fs", "a-b_c:d%e"};
    Path p;
    const int n = Uniform(0, 4);
    for (int i = 0; i < n; ++i) {
      if (Uniform(0, 9) == 0) {
        std::string raw;
        for (int k = Uniform(1, 4); k > 0; --k) {
          raw.push_back(static_cast<char>(Uniform(0, 255)));
        }
        p.Append(raw);
      } else {
        p.Append(kWords[Uniform(0, std::size(kWords) - 1)]);
      }
    }
    return p;
  }

  double MakeWeight() {
    if (Uniform(0, 2) == 0) {
      return Tree::kDefaultWeight;
    }
    return Uniform(0, 1000) / 100.0;
  }

  std::mt19937 rng_;
};

TEST(NameTreePropertyTest, ParseOfShowIsIdentity) {
  RandomTrees gen(1234);
  for (int i = 0; i < 3000; ++i) {
    const Tree t = gen.Make(i % 5);
    const std::string shown = Show(t);
    const absl::StatusOr<Tree> parsed = ParseTree(shown);
    ASSERT_TRUE(parsed.ok()) << shown << ": " << parsed.status();
    ASSERT_EQ(*parsed, t) << shown;
  }
}

TEST(NameTreePropertyTest, SimplifyIsIdempotent) {
  RandomTrees gen(99);
  for (int i = 0; i < 3000; ++i) {
    const Tree t = gen.Make(i % 6);
    const Tree once = Simplify(t);
    ASSERT_EQ(Simplify(once), once) << Show(t);
  }
}

// A simplified tree has no Neg below the root, no Fail inside a union, no
// Fail before the last alternative and no node with fewer than two children.
bool IsInNormalForm(const Tree& t, bool root) {
  if (t.is_neg()) {
    return root;
  }
  if (!t.is_alt() && !t.is_union()) {
    return true;
  }
  if (t.children().size() < 2) {
    return false;
  }
  for (size_t i = 0; i < t.children().size(); ++i) {
    const Tree& c = t.children()[i];
    if (c.is_fail() && (t.is_union() || i + 1 != t.children().size())) {
      return false;
    }
    if (!IsInNormalForm(c, /*root=*/false)) {
      return false;
    }
  }
  return true;
}

TEST(NameTreePropertyTest, SimplifyReachesNormalFormAndPreservesEval) {
  RandomTrees gen(4321);
  for (int i = 0; i < 3000; ++i) {
    const Tree t = gen.Make(i % 6);
    const Tree s = Simplify(t);
    ASSERT_TRUE(IsInNormalForm(s, /*root=*/true)) << Show(t) << " -> " << Show(s);
    ASSERT_EQ(Eval(s), Eval(t)) << Show(t) << " -> " << Show(s);
  }
}

TEST(NameTreePropertyTest, ShowOfSimplifiedTreeReparsesToIt) {
  RandomTrees gen(5);
  for (int i = 0; i < 2000; ++i) {
    const Tree s = Simplify(gen.Make(i % 6));
    const absl::StatusOr<Tree> parsed = ParseTree(Show(s));
    ASSERT_TRUE(parsed.ok()) << Show(s);
    ASSERT_EQ(*parsed, s) << Show(s);
  }
}

}  // namespace
}  // namespace dtabd::dtab
