// Tests for dtab/dtab.h: Dentry and Dtab values, canonical printing,
// concatenation and simplification (shared/reference/dtab-semantics.md
// section 5).
#include "dtab/dtab.h"

#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "dtab/parser.h"
#include "gtest/gtest.h"

namespace dtabd::dtab {
namespace {

using Tree = NameTree<Path>;

Tree Leaf(std::initializer_list<absl::string_view> labels) { return Tree::Leaf(Path(labels)); }
PrefixElem Label(std::string l) { return PrefixElem{false, std::move(l)}; }
PrefixElem Any() { return PrefixElem{true, {}}; }

Dtab MustDtab(absl::string_view text) {
  absl::StatusOr<Dtab> d = ParseDtab(text);
  if (!d.ok()) {
    ADD_FAILURE() << "ParseDtab(\"" << text << "\"): " << d.status();
    return Dtab();
  }
  return *std::move(d);
}

Tree MustTree(absl::string_view text) {
  absl::StatusOr<Tree> t = ParseTree(text);
  if (!t.ok()) {
    ADD_FAILURE() << "ParseTree(\"" << text << "\"): " << t.status();
    return Tree::Neg();
  }
  return *std::move(t);
}

// ===========================================================================
// Dentry

TEST(DentryTest, ShowHasNoSpacesAroundArrow) {
  const Dentry d{Prefix(Path{"foo"}), Leaf({"bar"})};
  EXPECT_EQ(d.Show(), "/foo=>/bar");
  EXPECT_EQ(ParseDentry("/foo => /bar")->Show(), "/foo=>/bar");
}

TEST(DentryTest, ShowPrintsWildcardsAndCanonicalTree) {
  const Dentry d{Prefix({Label("a"), Any(), Label("c")}), MustTree("/d|2*/e&/f")};
  EXPECT_EQ(d.Show(), "/a/*/c=>/d | 2.00*/e & /f");
}

TEST(DentryTest, ShowOfRootPrefixIsSlash) {
  EXPECT_EQ((Dentry{Prefix(), Tree::Fail()}).Show(), "/=>!");
  EXPECT_EQ((Dentry{Prefix(), Tree::Neg()}).Show(), "/=>~");
}

TEST(DentryTest, ShowToAppendsToExistingText) {
  std::string out = "x;";
  (Dentry{Prefix(Path{"a"}), Tree::Empty()}).ShowTo(&out);
  EXPECT_EQ(out, "x;/a=>$");
}

TEST(DentryTest, EqualityComparesPrefixAndDestination) {
  const Dentry a{Prefix(Path{"a"}), Leaf({"b"})};
  EXPECT_EQ(a, (Dentry{Prefix(Path{"a"}), Leaf({"b"})}));
  EXPECT_NE(a, (Dentry{Prefix(Path{"a"}), Leaf({"c"})}));
  EXPECT_NE(a, (Dentry{Prefix(Path{"x"}), Leaf({"b"})}));
  EXPECT_NE(a, (Dentry{Prefix({Any()}), Leaf({"b"})}));
}

// ===========================================================================
// Dtab show

TEST(DtabTest, EmptyDtabShowsAsEmptyString) {
  const Dtab d;
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(d.size(), 0u);
  EXPECT_EQ(d.Show(), "");
  EXPECT_EQ(d, MustDtab(""));
}

TEST(DtabTest, ShowJoinsEntriesWithSemicolonsAndNoTrailingSemicolon) {
  EXPECT_EQ(MustDtab("/a => /b; /c => /d;").Show(), "/a=>/b;/c=>/d");
  EXPECT_EQ(MustDtab("/foo => /bar").Show(), "/foo=>/bar");
}

TEST(DtabTest, FailDtabShowsRootToFail) {
  const Dtab f = Dtab::Fail();
  EXPECT_EQ(f.Show(), "/=>!");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_TRUE(f.dentries()[0].prefix.empty());
  EXPECT_TRUE(f.dentries()[0].dst.is_fail());
  EXPECT_EQ(f, MustDtab("/=>!"));
}

TEST(DtabTest, ShowsCommentedFinagleExampleCanonically) {
  const Dtab d = MustDtab(R"(
# a comment
      /#foo => /biz  # another comment
             | ( /bliz & # yet another comment
                 /bluth ) # duh bluths
             ; #finalmente
      #/ignore=>/me;
    )");
  EXPECT_EQ(d.Show(), "/#foo=>/biz | /bliz & /bluth");
}

TEST(DtabTest, ShowKeepsDuplicatesAndOrder) {
  EXPECT_EQ(MustDtab("/a=>/c;/a=>/b;/a=>/c").Show(), "/a=>/c;/a=>/b;/a=>/c");
}

TEST(DtabTest, ShowEscapesNonShowableLabels) {
  EXPECT_EQ(MustDtab("/a\\x20b => /\\x2a").Show(), "/\\x61\\x20\\x62=>/\\x2a");
}

TEST(DtabTest, ShowNeverContainsACommaOrNewline) {
  const Dtab d = MustDtab("/a=>/b\n|\n/c;\n/d=>\n2*/e\n&\n/f");
  EXPECT_EQ(d.Show(), "/a=>/b | /c;/d=>2.00*/e & /f");
}

// ===========================================================================
// Concat and Append

TEST(DtabTest, ConcatAppendsTheOtherEntriesAfterThisOnes) {
  // Finagle DtabTest "d1 ++ d2".
  const Dtab d1 = MustDtab("/foo => /bar");
  const Dtab d2 = MustDtab("/foo=>/biz;/biz=>/$/inet/8080;/bar=>/$/inet/9090");
  EXPECT_EQ(d1.Concat(d2), MustDtab(R"(
      /foo=>/bar;
      /foo=>/biz;
      /biz=>/$/inet/8080;
      /bar=>/$/inet/9090
    )"));
  EXPECT_EQ(d2.Concat(d1).Show(), "/foo=>/biz;/biz=>/$/inet/8080;/bar=>/$/inet/9090;/foo=>/bar");
}

TEST(DtabTest, ConcatWithEmptyIsIdentity) {
  // Finagle DtabTest "d1 ++ Dtab.empty".
  const Dtab d1 = MustDtab("/foo=>/bar;/biz=>/baz");
  EXPECT_EQ(d1.Concat(Dtab()), d1);
  EXPECT_EQ(Dtab().Concat(d1), d1);
  EXPECT_EQ(Dtab().Concat(Dtab()), Dtab());
}

TEST(DtabTest, ConcatLeavesOperandsUnchanged) {
  const Dtab a = MustDtab("/a=>/b");
  const Dtab b = MustDtab("/c=>/d");
  const Dtab c = a.Concat(b);
  EXPECT_EQ(a.Show(), "/a=>/b");
  EXPECT_EQ(b.Show(), "/c=>/d");
  EXPECT_EQ(c.Show(), "/a=>/b;/c=>/d");
}

TEST(DtabTest, ConcatKeepsDuplicates) {
  const Dtab a = MustDtab("/a=>/b");
  EXPECT_EQ(a.Concat(a).Show(), "/a=>/b;/a=>/b");
}

TEST(DtabTest, AppendExtendsInPlace) {
  Dtab d = MustDtab("/a=>/b");
  d.Append(MustDtab("/c=>/d;/e=>/f"));
  EXPECT_EQ(d.Show(), "/a=>/b;/c=>/d;/e=>/f");
  d.Append(Dtab());
  EXPECT_EQ(d.size(), 3u);
}

TEST(DtabTest, AppendingADtabToItselfDuplicatesItsEntries) {
  Dtab d = MustDtab("/a=>/b;/c=>/d;/e=>/f");
  d.Append(d);
  EXPECT_EQ(d.Show(), "/a=>/b;/c=>/d;/e=>/f;/a=>/b;/c=>/d;/e=>/f");
  Dtab big;
  for (int i = 0; i < 5; ++i) {
    big.Append(big.empty() ? MustDtab("/x=>/y") : big);
  }
  EXPECT_EQ(big.size(), 16u);
  for (const Dentry& e : big.dentries()) {
    EXPECT_EQ(e.Show(), "/x=>/y");
  }
}

TEST(DtabTest, EqualityIsOrderSensitive) {
  EXPECT_NE(MustDtab("/a=>/b;/c=>/d"), MustDtab("/c=>/d;/a=>/b"));
  EXPECT_NE(MustDtab("/a=>/b"), MustDtab("/a=>/b;/a=>/b"));
  EXPECT_EQ(MustDtab("/a => /b ; /c => /d"), MustDtab("/a=>/b;/c=>/d"));
}

TEST(DtabTest, ConstructsFromDentries) {
  const Dtab d({Dentry{Prefix(Path{"a"}), Leaf({"b"})}, Dentry{Prefix(), Tree::Fail()}});
  EXPECT_EQ(d.size(), 2u);
  EXPECT_EQ(d.Show(), "/a=>/b;/=>!");
}

// ===========================================================================
// Simplified

TEST(DtabTest, SimplifiedSimplifiesEveryDestination) {
  EXPECT_EQ(MustDtab("/a=>~ | /b;/c=>/d & !;/e=>/f | ! | /g").Simplified().Show(),
            "/a=>/b;/c=>/d;/e=>/f | !");
}

TEST(DtabTest, SimplifiedDropsEntriesThatBecomeNeg) {
  const Dtab d = MustDtab("/a=>~;/b=>/c | ~;/c=>! & !;/d=>!;/e=>~ | ~;/f=>$;/g=>(~)");
  EXPECT_EQ(d.Simplified().Show(), "/b=>/c;/d=>!;/f=>$");
}

TEST(DtabTest, SimplifiedKeepsPrefixesOrderAndDuplicates) {
  const Dtab d = MustDtab("/z/*=>/y | ~;/a=>/b;/z/*=>~ | /y");
  EXPECT_EQ(d.Simplified().Show(), "/z/*=>/y;/a=>/b;/z/*=>/y");
}

TEST(DtabTest, SimplifiedLeavesTheOriginalUnchanged) {
  const Dtab d = MustDtab("/a=>~ | /b");
  const Dtab s = d.Simplified();
  EXPECT_EQ(d.Show(), "/a=>~ | /b");
  EXPECT_EQ(s.Show(), "/a=>/b");
}

TEST(DtabTest, SimplifiedOfFailDtabIsItself) {
  EXPECT_EQ(Dtab::Fail().Simplified(), Dtab::Fail());
  EXPECT_EQ(Dtab().Simplified(), Dtab());
}

TEST(DtabTest, DtabsWithEquivalentDestinationsHaveEqualSimplifiedForms) {
  EXPECT_EQ(MustDtab("/a=>/b | ~;/x=>~").Simplified(), MustDtab("/a=>/b").Simplified());
  EXPECT_NE(MustDtab("/a=>/b | ~").Simplified(), MustDtab("/a=>/c").Simplified());
}

// ===========================================================================
// Properties over random dtabs

class RandomDtabs {
 public:
  explicit RandomDtabs(uint32_t seed) : rng_(seed) {}

  Dtab Make() {
    std::vector<Dentry> entries;
    for (int n = Uniform(0, 6); n > 0; --n) {
      entries.push_back(Dentry{MakePrefix(), MakeTree(Uniform(0, 3))});
    }
    return Dtab(std::move(entries));
  }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  std::string MakeLabel() {
    static const char* const kWords[] = {"svc", "srv", "#", "$", "io.l5d.fs", "inet", "8080",
                                         "s#",  "%",   "x_y-z:1"};
    if (Uniform(0, 9) == 0) {
      std::string raw;
      for (int k = Uniform(1, 3); k > 0; --k) {
        raw.push_back(static_cast<char>(Uniform(0, 255)));
      }
      return raw;
    }
    return kWords[Uniform(0, static_cast<int>(std::size(kWords)) - 1)];
  }

  Prefix MakePrefix() {
    std::vector<PrefixElem> elems;
    for (int n = Uniform(0, 3); n > 0; --n) {
      elems.push_back(Uniform(0, 3) == 0 ? Any() : Label(MakeLabel()));
    }
    return Prefix(std::move(elems));
  }

  Path MakePath() {
    Path p;
    for (int n = Uniform(0, 3); n > 0; --n) {
      p.Append(MakeLabel());
    }
    return p;
  }

  // No singleton Alt/Union nodes; weights with at most two decimals.
  Tree MakeTree(int depth) {
    const int kind = depth == 0 ? 0 : Uniform(0, 2);
    if (kind == 0) {
      switch (Uniform(0, 5)) {
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
    std::vector<Tree> children;
    std::vector<double> weights;
    for (int n = Uniform(2, 3); n > 0; --n) {
      children.push_back(MakeTree(depth - 1));
      weights.push_back(Uniform(0, 1) == 0 ? 1.0 : Uniform(0, 500) / 100.0);
    }
    if (kind == 1) {
      return Tree::Union(std::move(children), std::move(weights));
    }
    return Tree::Alt(std::move(children));
  }

  std::mt19937 rng_;
};

TEST(DtabPropertyTest, ParseOfShowIsIdentity) {
  RandomDtabs gen(2024);
  for (int i = 0; i < 3000; ++i) {
    const Dtab d = gen.Make();
    const std::string shown = d.Show();
    const absl::StatusOr<Dtab> parsed = ParseDtab(shown);
    ASSERT_TRUE(parsed.ok()) << shown << ": " << parsed.status();
    ASSERT_EQ(*parsed, d) << shown;
    ASSERT_EQ(parsed->Show(), shown);
  }
}

TEST(DtabPropertyTest, SimplifiedIsIdempotentAndRoundTrips) {
  RandomDtabs gen(77);
  for (int i = 0; i < 3000; ++i) {
    const Dtab s = gen.Make().Simplified();
    ASSERT_EQ(s.Simplified(), s) << s.Show();
    for (const Dentry& e : s.dentries()) {
      ASSERT_FALSE(e.dst.is_neg()) << s.Show();
    }
    const absl::StatusOr<Dtab> parsed = ParseDtab(s.Show());
    ASSERT_TRUE(parsed.ok()) << s.Show();
    ASSERT_EQ(*parsed, s) << s.Show();
  }
}

TEST(DtabPropertyTest, ShowOfConcatIsJoinOfShows) {
  RandomDtabs gen(31337);
  for (int i = 0; i < 1000; ++i) {
    const Dtab a = gen.Make();
    const Dtab b = gen.Make();
    const std::string sep = a.empty() || b.empty() ? "" : ";";
    ASSERT_EQ(a.Concat(b).Show(), a.Show() + sep + b.Show());
    ASSERT_EQ(a.Concat(b).size(), a.size() + b.size());
  }
}

}  // namespace
}  // namespace dtabd::dtab
