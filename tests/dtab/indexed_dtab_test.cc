// Tests for IndexedDtab::Matches (linear scan and trie), DtabView layering
// and Finagle's one-step Dtab.lookup (dtab-semantics.md sections 3, 6.1, 7).
#include "dtab/indexed_dtab.h"

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dtab/dtab.h"
#include "dtab/name_tree.h"
#include "dtab/parser.h"
#include "dtab/path.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dtabd::dtab {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

Dtab ParseDtabOrDie(absl::string_view text) {
  absl::StatusOr<Dtab> d = ParseDtab(text);
  EXPECT_TRUE(d.ok()) << d.status() << " parsing " << text;
  return d.ok() ? *std::move(d) : Dtab();
}

Path ParsePathOrDie(absl::string_view text) {
  absl::StatusOr<Path> p = ParsePath(text);
  EXPECT_TRUE(p.ok()) << p.status() << " parsing " << text;
  return p.ok() ? *std::move(p) : Path();
}

std::unique_ptr<IndexedDtab> Indexed(absl::string_view text) {
  return std::make_unique<IndexedDtab>(ParseDtabOrDie(text));
}

std::vector<uint32_t> MatchesOf(const IndexedDtab& d, absl::string_view path) {
  const MatchList m = d.Matches(ParsePathOrDie(path));
  return std::vector<uint32_t>(m.begin(), m.end());
}

// The reference: every dentry whose prefix matches, latest first.
std::vector<uint32_t> NaiveMatches(const Dtab& d, const Path& path) {
  std::vector<uint32_t> out;
  for (size_t i = d.size(); i > 0; --i) {
    if (d.dentries()[i - 1].prefix.Matches(path)) {
      out.push_back(static_cast<uint32_t>(i - 1));
    }
  }
  return out;
}

// Appends `count` dentries that match nothing under /a, /b, /c, /s, /svc so
// that the dtab is large enough to be indexed by the trie.
std::string Padding(int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    absl::StrAppend(&out, "/pad", i, "/x=>/nowhere", i, ";");
  }
  return out;
}

std::string LookupShown(const IndexedDtab& d, absl::string_view path) {
  const DtabView view{&d};
  return Show(view.Lookup(ParsePathOrDie(path)));
}

// ---------------------------------------------------------------------------
// Matches

// The same dentries queried through a small dtab (linear scan) and through
// the same dtab after 20 non-matching padding entries (trie): the matching
// indices agree, shifted by the padding.
struct MatchCase {
  const char* dtab;
  const char* path;
  std::vector<uint32_t> expected;  // indices in `dtab`, latest first
};

class MatchesTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(MatchesTest, SmallDtabMatchesLatestFirst) {
  const MatchCase& c = GetParam();
  const auto d = Indexed(c.dtab);
  ASSERT_LE(d->dtab().size(), 8u);
  EXPECT_EQ(MatchesOf(*d, c.path), c.expected);
}

TEST_P(MatchesTest, LargeDtabIndexedByTrieGivesTheSameMatches) {
  const MatchCase& c = GetParam();
  constexpr int kPad = 20;
  const auto d = Indexed(absl::StrCat(Padding(kPad), c.dtab));
  ASSERT_GT(d->dtab().size(), 8u);
  std::vector<uint32_t> expected = c.expected;
  for (uint32_t& i : expected) {
    i += kPad;
  }
  EXPECT_EQ(MatchesOf(*d, c.path), expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MatchesTest,
    ::testing::Values(
        MatchCase{"/a=>/b", "/a", {0}},
        MatchCase{"/a=>/b", "/a/x/y", {0}},
        MatchCase{"/a=>/b", "/b", {}},
        MatchCase{"/a=>/b", "/", {}},
        // Per element, never per character.
        MatchCase{"/a=>/b", "/ab", {}},
        MatchCase{"/s=>/b", "/s#/x", {}},
        MatchCase{"/a/b=>/c", "/a", {}},
        // Order only: later dentries first regardless of prefix length.
        MatchCase{"/a=>/1;/a/b=>/2;/a=>/3;/c=>/4", "/a/b/c", {2, 1, 0}},
        MatchCase{"/a/b=>/1;/a=>/2", "/a/b", {1, 0}},
        // The empty prefix matches every path, including the empty one.
        MatchCase{"/=>/1;/a=>/2", "/", {0}},
        MatchCase{"/=>/1;/a=>/2", "/a/b", {1, 0}},
        // Wildcards.
        MatchCase{"/*=>/1;/a/*=>/2;/*/b=>/3;/*/*/*=>/4", "/a/b", {2, 1, 0}},
        MatchCase{"/*=>/1;/a/*=>/2;/*/b=>/3;/*/*/*=>/4", "/a/b/c", {3, 2, 1, 0}},
        MatchCase{"/*=>/1", "/", {}},
        MatchCase{"/svc/*/foo=>/1;/svc/bar/*=>/2", "/svc/bar/foo", {1, 0}},
        // An escaped \x2a is a literal `*` label, not a wildcard.
        MatchCase{"/\\x2a=>/1;/*=>/2", "/a", {1}},
        MatchCase{"/\\x2a=>/1;/*=>/2", "/\\x2a", {1, 0}},
        // Duplicates are kept.
        MatchCase{"/a=>/1;/a=>/1;/a=>/1", "/a", {2, 1, 0}}));

TEST(IndexedDtabTest, EmptyDtabMatchesNothing) {
  const auto d = Indexed("");
  EXPECT_THAT(d->Matches(Path()), IsEmpty());
  EXPECT_THAT(d->Matches(Path({"a"})), IsEmpty());
}

TEST(IndexedDtabTest, NineEntryDtabReturnsEveryMatchLatestFirst) {
  // The smallest dtab that uses the trie, every entry matching.
  const auto d = Indexed("/=>/0;/a=>/1;/*=>/2;/a/b=>/3;/a/*=>/4;/*/b=>/5;/*/*=>/6;/a=>/7;/=>/8");
  ASSERT_EQ(d->dtab().size(), 9u);
  EXPECT_THAT(MatchesOf(*d, "/a/b"), ElementsAre(8, 7, 6, 5, 4, 3, 2, 1, 0));
  EXPECT_THAT(MatchesOf(*d, "/a"), ElementsAre(8, 7, 2, 1, 0));
  EXPECT_THAT(MatchesOf(*d, "/"), ElementsAre(8, 0));
}

TEST(IndexedDtabTest, MoreThanEightMatchesAreAllReturned) {
  std::string text;
  for (int i = 0; i < 30; ++i) {
    absl::StrAppend(&text, i % 2 == 0 ? "/a" : "/*", "=>/d", i, ";");
  }
  const auto d = Indexed(text);
  std::vector<uint32_t> expected;
  for (uint32_t i = 30; i > 0; --i) {
    expected.push_back(i - 1);
  }
  EXPECT_THAT(MatchesOf(*d, "/a/z"), ElementsAreArray(expected));
}

// Random prefixes over a tiny alphabet (so that they collide and overlap)
// with wildcards, literal `*` labels and the empty prefix; random paths over
// the same alphabet. The trie must agree with a scan of Prefix::Matches.
TEST(IndexedDtabTest, TrieAgreesWithNaiveScanOnRandomDtabs) {
  std::mt19937 rng(20240611);  // fixed seed: reproducible
  const std::vector<std::string> labels = {"a", "b", "c", "*", "ab"};
  auto uniform = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int total_matches = 0;
  for (int round = 0; round < 200; ++round) {
    const int size = uniform(0, 60);
    std::vector<Dentry> dentries;
    for (int i = 0; i < size; ++i) {
      std::vector<PrefixElem> elems;
      const int len = uniform(0, 4);
      for (int k = 0; k < len; ++k) {
        if (uniform(0, 3) == 0) {
          elems.push_back(PrefixElem{true, ""});
        } else {
          elems.push_back(PrefixElem{false, labels[uniform(0, labels.size() - 1)]});
        }
      }
      dentries.push_back(Dentry{Prefix(std::move(elems)), NameTree<Path>::Leaf(Path({"d"}))});
    }
    const Dtab dtab(std::move(dentries));
    const IndexedDtab indexed(dtab);
    for (int q = 0; q < 50; ++q) {
      Path path;
      const int len = uniform(0, 5);
      for (int k = 0; k < len; ++k) {
        path.Append(labels[uniform(0, labels.size() - 1)]);
      }
      const MatchList got = indexed.Matches(path);
      const std::vector<uint32_t> want = NaiveMatches(dtab, path);
      total_matches += static_cast<int>(want.size());
      ASSERT_EQ(std::vector<uint32_t>(got.begin(), got.end()), want)
          << "round " << round << " dtab " << dtab.Show() << " path " << path.Show();
    }
  }
  // The generator is not degenerate: plenty of paths matched something.
  EXPECT_GT(total_matches, 10000);
}

TEST(IndexedDtabTest, DestroysVeryDeepTrieWithoutRecursing) {
  std::vector<PrefixElem> deep;
  for (int i = 0; i < 200000; ++i) {
    deep.push_back(PrefixElem{false, "x"});
  }
  std::vector<Dentry> dentries;
  for (int i = 0; i < 9; ++i) {
    dentries.push_back(Dentry{Prefix(deep), NameTree<Path>::Leaf(Path({"d"}))});
  }
  auto d = std::make_unique<IndexedDtab>(Dtab(std::move(dentries)));
  EXPECT_THAT(d->Matches(Path({"x"})), IsEmpty());
  d.reset();  // must not overflow the stack
}

// ---------------------------------------------------------------------------
// DtabView

TEST(DtabViewTest, LaterLayerIsSeenFirst) {
  const auto base = Indexed("/a=>/base1;/a=>/base2");
  const auto local = Indexed("/a=>/local1;/a=>/local2");
  const DtabView view{base.get(), local.get()};
  std::vector<std::string> seen;
  view.ForEachMatch(Path({"a"}), [&](const Dentry& d) { seen.push_back(Show(d.dst)); });
  EXPECT_THAT(seen, ElementsAre("/local2", "/local1", "/base2", "/base1"));
}

TEST(DtabViewTest, LookupThroughLayersEqualsLookupOfConcatenation) {
  const auto base = Indexed(absl::StrCat(Padding(12), "/svc=>/#/prod;/svc/foo=>/#/old"));
  const auto ctx = Indexed("/svc/*=>/#/ctx");
  const auto user = Indexed("/svc/foo=>/#/staging");
  const DtabView view{base.get(), ctx.get(), user.get()};
  const IndexedDtab flat(view.Flatten());
  for (const char* p : {"/svc/foo", "/svc/bar/baz", "/svc", "/other"}) {
    const Path path = ParsePathOrDie(p);
    EXPECT_EQ(Show(view.Lookup(path)), Show(DtabView{&flat}.Lookup(path))) << p;
  }
  EXPECT_EQ(Show(view.Lookup(ParsePathOrDie("/svc/foo"))),
            "/#/staging | /#/ctx | /#/old | /#/prod/foo");
}

TEST(DtabViewTest, PushIgnoresNullLayer) {
  const auto base = Indexed("/a=>/b");
  DtabView view;
  view.Push(nullptr);
  view.Push(base.get());
  view.Push(nullptr);
  EXPECT_EQ(view.num_layers(), 1u);
  EXPECT_EQ(Show(view.Lookup(Path({"a"}))), "/b");
}

TEST(DtabViewTest, FlattenConcatenatesLayersInOrder) {
  const auto a = Indexed("/a=>/1");
  const auto b = Indexed("");
  const auto c = Indexed("/c=>/3;/d=>/4");
  const DtabView view{a.get(), b.get(), c.get()};
  EXPECT_EQ(view.Flatten().Show(), "/a=>/1;/c=>/3;/d=>/4");
}

TEST(DtabViewTest, EmptyViewLooksUpNeg) {
  const DtabView view;
  EXPECT_TRUE(view.Lookup(Path({"a"})).is_neg());
}

// ---------------------------------------------------------------------------
// Lookup (Finagle's Dtab.lookup)

TEST(DtabLookupTest, SeveralMatchesBecomeAltLatestFirst) {
  const auto d = Indexed("/a=>/b;/a=>/c");
  EXPECT_EQ(LookupShown(*d, "/a/x"), "/c/x | /b/x");
  const NameTree<Path> t = DtabView{d.get()}.Lookup(ParsePathOrDie("/a/x"));
  ASSERT_TRUE(t.is_alt());
  EXPECT_EQ(t.children().size(), 2u);
}

TEST(DtabLookupTest, NoMatchIsNeg) {
  const auto d = Indexed("/a=>/b");
  EXPECT_TRUE(DtabView{d.get()}.Lookup(ParsePathOrDie("/b/a")).is_neg());
}

TEST(DtabLookupTest, SingleMatchIsItsDestinationUnwrapped) {
  const auto d = Indexed("/a=>/b | /c");
  const NameTree<Path> t = DtabView{d.get()}.Lookup(ParsePathOrDie("/a/x"));
  ASSERT_TRUE(t.is_alt());
  EXPECT_EQ(Show(t), "/b/x | /c/x");
}

TEST(DtabLookupTest, ResidualIsAppendedToEveryLeaf) {
  const auto d = Indexed("/a=>/b & 2*(/c | /d/e) | ~ | ! | $");
  EXPECT_EQ(LookupShown(*d, "/a/x/y"), "/b/x/y & 2.00*(/c/x/y | /d/e/x/y) | ~ | ! | $");
}

TEST(DtabLookupTest, NothingIsSimplified) {
  const auto d = Indexed("/a=>~;/a=>~");
  EXPECT_EQ(LookupShown(*d, "/a"), "~ | ~");
}

TEST(DtabLookupTest, SingleNegDestinationIsExactlyNeg) {
  const auto d = Indexed("/a=>~");
  EXPECT_TRUE(DtabView{d.get()}.Lookup(ParsePathOrDie("/a/x")).is_neg());
}

TEST(DtabLookupTest, WildcardDoesNotCapture) {
  const auto d = Indexed("/svc/*=>/x");
  EXPECT_EQ(LookupShown(*d, "/svc/dog/y"), "/x/y");
  EXPECT_EQ(LookupShown(*d, "/svc/dog"), "/x");
  EXPECT_EQ(LookupShown(*d, "/svc"), "~");
}

TEST(DtabLookupTest, PrefixDoesNotMatchLongerLabel) {
  const auto d = Indexed("/a=>/b");
  EXPECT_EQ(LookupShown(*d, "/ab"), "~");
  EXPECT_EQ(LookupShown(*d, "/a"), "/b");
}

TEST(DtabLookupTest, LaterDentryWinsRegardlessOfPrefixLength) {
  const auto d = Indexed("/svc/foo=>/#/a;/svc=>/#/b");
  EXPECT_EQ(LookupShown(*d, "/svc/foo"), "/#/b/foo | /#/a");
}

TEST(DtabLookupTest, EmptyPrefixAppendsWholePath) {
  const auto d = Indexed("/=>/root");
  EXPECT_EQ(LookupShown(*d, "/a/b"), "/root/a/b");
  EXPECT_EQ(LookupShown(*d, "/"), "/root");
}

TEST(DtabLookupTest, TrieAndLinearScanLookUpTheSameTree) {
  const char* const kDtab = "/a=>/1;/a/*=>/2 & /3;/*=>~;/a/b=>!";
  const auto small = Indexed(kDtab);
  const auto large = Indexed(absl::StrCat(Padding(16), kDtab));
  for (const char* p : {"/a/b/c", "/a", "/z", "/"}) {
    EXPECT_EQ(LookupShown(*small, p), LookupShown(*large, p)) << p;
  }
  EXPECT_EQ(LookupShown(*large, "/a/b/c"), "! | ~ | /2/c & /3/c | /1/b/c");
}

TEST(AppendResidualTest, AppendsTheElementsAfterThePrefix) {
  const NameTree<Path> dst = NameTree<Path>::Union(
      {NameTree<Path>::Leaf(Path({"x"})), NameTree<Path>::Neg()}, {0.5, 1.0});
  const NameTree<Path> out = AppendResidual(dst, Path({"p", "q", "r"}), 1);
  EXPECT_EQ(Show(out), "0.50*/x/q/r & ~");
  EXPECT_EQ(Show(AppendResidual(NameTree<Path>::Leaf(Path({"x"})), Path({"p"}), 1)), "/x");
}

}  // namespace
}  // namespace dtabd::dtab
