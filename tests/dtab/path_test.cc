// Tests for dtab/path.h: Path and Prefix values, canonical printing
// (shared/reference/dtab-semantics.md sections 2 and 3).
#include "dtab/path.h"

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "dtab/parser.h"
#include "gtest/gtest.h"

namespace dtabd::dtab {
namespace {

// The label made of the bytes in `s`, including embedded NULs.
std::string Bytes(std::initializer_list<unsigned char> bytes) {
  std::string s;
  for (unsigned char b : bytes) {
    s.push_back(static_cast<char>(b));
  }
  return s;
}

Path PathOf(const std::vector<std::string>& labels) {
  Path p;
  for (const std::string& l : labels) {
    p.Append(l);
  }
  return p;
}

PrefixElem Label(std::string l) { return PrefixElem{false, std::move(l)}; }
PrefixElem Any() { return PrefixElem{true, {}}; }

// ---------------------------------------------------------------------------
// Construction and accessors

TEST(PathTest, DefaultPathIsEmptyAndShowsAsSlash) {
  const Path p;
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.size(), 0u);
  EXPECT_EQ(p.Show(), "/");
  EXPECT_EQ(p, Path({}));
}

TEST(PathTest, InitializerListKeepsLabelsInOrder) {
  const Path p{"foo", "bar", "baz"};
  ASSERT_EQ(p.size(), 3u);
  EXPECT_FALSE(p.empty());
  EXPECT_EQ(p.label(0), "foo");
  EXPECT_EQ(p.label(1), "bar");
  EXPECT_EQ(p.label(2), "baz");
}

TEST(PathTest, AppendAddsOneLabelAtTheEnd) {
  Path p;
  p.Append("a");
  p.Append("bc");
  EXPECT_EQ(p, (Path{"a", "bc"}));
  EXPECT_EQ(p.Show(), "/a/bc");
}

TEST(PathTest, LabelsMayContainArbitraryBytesIncludingNul) {
  const std::string weird = Bytes({0x00, 0x2f, 0xff, 0x80});
  Path p;
  p.Append(weird);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p.label(0), weird);
  EXPECT_EQ(p.label(0).size(), 4u);
}

TEST(PathTest, ManyLabelsBeyondTheInlineCapacityAreKept) {
  Path p;
  for (int i = 0; i < 50; ++i) {
    p.Append(std::to_string(i));
  }
  ASSERT_EQ(p.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(p.label(static_cast<size_t>(i)), std::to_string(i));
  }
}

// ---------------------------------------------------------------------------
// Equality and hashing

TEST(PathTest, EqualityIsLabelWiseAndByteExact) {
  EXPECT_EQ((Path{"foo", "bar"}), (Path{"foo", "bar"}));
  EXPECT_NE((Path{"a", "b"}), (Path{"ab"}));
  EXPECT_NE((Path{"ab", "c"}), (Path{"a", "bc"}));
  EXPECT_NE((Path{"Foo"}), (Path{"foo"}));  // case-sensitive
  EXPECT_NE((Path{"foo"}), (Path{"foo", "bar"}));
  EXPECT_NE(Path(), (Path{"a"}));
}

TEST(PathTest, DotAndDotDotAreOrdinaryLabels) {
  const Path p{".", ".."};
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(p.Show(), "/./..");
  EXPECT_NE(p, Path());
  EXPECT_NE(p.Drop(1), Path());
}

TEST(PathTest, EqualPathsHashEquallyAndDistinctSplitsAreDistinctKeys) {
  EXPECT_EQ(absl::Hash<Path>()(Path{"a", "b"}), absl::Hash<Path>()(Path{"a", "b"}));
  absl::flat_hash_set<Path> set;
  set.insert(Path{"a", "b"});
  set.insert(Path{"ab"});
  set.insert(Path{"a", "b"});
  set.insert(Path());
  EXPECT_EQ(set.size(), 3u);
  EXPECT_TRUE(set.contains((Path{"ab"})));
  EXPECT_TRUE(set.contains(Path()));
}

// ---------------------------------------------------------------------------
// Show

TEST(PathTest, ShowJoinsLabelsWithSlashes) {
  // Finagle PathTest: parsePath("/foo/bar").show == "/foo/bar".
  EXPECT_EQ((Path{"foo", "bar"}).Show(), "/foo/bar");
  EXPECT_EQ((Path{"$", "inet", "127.1", "8080"}).Show(), "/$/inet/127.1/8080");
}

TEST(PathTest, IsShowableCharAcceptsExactlyAlnumAndSevenPunctuationChars) {
  std::string showable;
  for (int c = 0; c < 256; ++c) {
    if (IsShowableChar(static_cast<char>(c))) {
      showable.push_back(static_cast<char>(c));
    }
  }
  EXPECT_EQ(showable,
            "#$%-.0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz");
}

TEST(PathTest, ShowPrintsShowableLabelsAsIs) {
  EXPECT_EQ((Path{"aZ09_:.#$%-"}).Show(), "/aZ09_:.#$%-");
  EXPECT_EQ((Path{"#", "io.l5d.fs"}).Show(), "/#/io.l5d.fs");
}

TEST(PathTest, ShowEscapesEveryByteOfALabelWithAnyNonShowableByte) {
  EXPECT_EQ((Path{"foo bar"}).Show(), "/\\x66\\x6f\\x6f\\x20\\x62\\x61\\x72");
}

TEST(PathTest, ShowEscapesOnlyTheLabelsThatNeedIt) {
  EXPECT_EQ((Path{"a", "b c", "d"}).Show(), "/a/\\x62\\x20\\x63/d");
}

TEST(PathTest, ShowEscapesWithLowercaseHex) {
  Path p;
  p.Append(Bytes({0xff, 0xab, 0x0a}));
  EXPECT_EQ(p.Show(), "/\\xff\\xab\\x0a");
}

TEST(PathTest, ShowEscapesNulSlashAndStar) {
  Path p;
  p.Append(Bytes({0x00}));
  p.Append("a/b");
  p.Append("*");
  EXPECT_EQ(p.Show(), "/\\x00/\\x61\\x2f\\x62/\\x2a");
}

TEST(PathTest, ShowEscapesRawUtf8) {
  EXPECT_EQ((Path{"caf\xc3\xa9"}).Show(), "/\\x63\\x61\\x66\\xc3\\xa9");
}

TEST(PathTest, ShowToAppendsToExistingText) {
  std::string out = "x=";
  (Path{"a", "b"}).ShowTo(&out);
  Path().ShowTo(&out);
  EXPECT_EQ(out, "x=/a/b/");
}

// ---------------------------------------------------------------------------
// StartsWith, Take, Drop, Concat, AppendPath

TEST(PathTest, EveryPathStartsWithTheEmptyPath) {
  EXPECT_TRUE(Path().StartsWith(Path()));
  EXPECT_TRUE((Path{"a"}).StartsWith(Path()));
}

TEST(PathTest, StartsWithComparesWholeLabels) {
  const Path p{"a", "b", "c"};
  EXPECT_TRUE(p.StartsWith(Path{"a"}));
  EXPECT_TRUE(p.StartsWith(Path{"a", "b"}));
  EXPECT_TRUE(p.StartsWith(p));
  EXPECT_FALSE(p.StartsWith(Path{"b"}));
  EXPECT_FALSE(p.StartsWith(Path{"a", "b", "c", "d"}));
  EXPECT_FALSE((Path{"ab"}).StartsWith(Path{"a"}));
  EXPECT_FALSE((Path{"a", "bc"}).StartsWith(Path{"a", "b"}));
  // Same bytes, different label boundaries.
  EXPECT_FALSE((Path{"ab", "c"}).StartsWith(Path{"a", "bc"}));
  EXPECT_FALSE((Path{"a", "bc"}).StartsWith(Path{"ab"}));
  EXPECT_FALSE(Path().StartsWith(Path{"a"}));
  EXPECT_FALSE((Path{"s#", "x"}).StartsWith(Path{"s"}));
}

TEST(PathTest, TakeReturnsTheFirstLabels) {
  const Path p{"a", "b", "c"};
  EXPECT_EQ(p.Take(0), Path());
  EXPECT_EQ(p.Take(1), (Path{"a"}));
  EXPECT_EQ(p.Take(2), (Path{"a", "b"}));
  EXPECT_EQ(p.Take(3), p);
  EXPECT_EQ(p.Take(100), p);
  EXPECT_EQ(Path().Take(2), Path());
}

TEST(PathTest, DropReturnsTheLabelsAfterTheFirst) {
  const Path p{"a", "b", "c"};
  EXPECT_EQ(p.Drop(0), p);
  EXPECT_EQ(p.Drop(1), (Path{"b", "c"}));
  EXPECT_EQ(p.Drop(2), (Path{"c"}));
  EXPECT_EQ(p.Drop(3), Path());
  EXPECT_EQ(p.Drop(100), Path());
  EXPECT_EQ(Path().Drop(1), Path());
}

TEST(PathTest, TakeThenDropReassembleThePath) {
  const Path p{"svc", "x", "yy", "zzz", "0"};
  for (size_t n = 0; n <= p.size() + 1; ++n) {
    EXPECT_EQ(p.Take(n).Concat(p.Drop(n)), p) << n;
    EXPECT_EQ(p.Take(n).size() + p.Drop(n).size(), p.size()) << n;
  }
}

TEST(PathTest, DropKeepsLabelBoundariesAndContents) {
  const Path p{"first", "x", "third"};
  const Path d = p.Drop(1);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d.label(0), "x");
  EXPECT_EQ(d.label(1), "third");
  EXPECT_EQ(d.Show(), "/x/third");
}

TEST(PathTest, ConcatAppendsLabels) {
  EXPECT_EQ((Path{"a", "b"}).Concat(Path{"c", "d"}), (Path{"a", "b", "c", "d"}));
  EXPECT_EQ(Path().Concat(Path{"c"}), (Path{"c"}));
  EXPECT_EQ((Path{"a"}).Concat(Path()), (Path{"a"}));
  EXPECT_EQ(Path().Concat(Path()), Path());
  // Label boundaries are kept: /a ++ /b is not /ab.
  EXPECT_NE((Path{"a"}).Concat(Path{"b"}), (Path{"ab"}));
}

TEST(PathTest, ConcatLeavesOperandsUnchanged) {
  const Path a{"a"};
  const Path b{"b"};
  const Path c = a.Concat(b);
  EXPECT_EQ(a, (Path{"a"}));
  EXPECT_EQ(b, (Path{"b"}));
  EXPECT_EQ(c, (Path{"a", "b"}));
}

TEST(PathTest, AppendPathFromIndexSkipsLeadingLabels) {
  Path p{"x"};
  p.AppendPath(Path{"a", "b", "c"}, 1);
  EXPECT_EQ(p, (Path{"x", "b", "c"}));
  p.AppendPath(Path{"a"}, 5);
  EXPECT_EQ(p, (Path{"x", "b", "c"}));
}

TEST(PathTest, AppendPathToItselfDoublesTheLabels) {
  Path p{"a", "bc"};
  p.AppendPath(p);
  EXPECT_EQ(p, (Path{"a", "bc", "a", "bc"}));
  Path q{"a", "b", "c", "d", "e", "f"};  // fills the inline storage
  q.AppendPath(q, 4);
  EXPECT_EQ(q, (Path{"a", "b", "c", "d", "e", "f", "e", "f"}));
}

// ---------------------------------------------------------------------------
// Show/parse round trip

TEST(PathTest, ShowOfRandomByteLabelsReparsesToTheSamePath) {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> n_labels(0, 6);
  std::uniform_int_distribution<int> label_len(1, 8);
  std::uniform_int_distribution<int> coin(0, 3);
  std::uniform_int_distribution<int> any_byte(0, 255);
  const std::string showable = "abcXYZ019_:.#$%-";
  std::uniform_int_distribution<size_t> pick(0, showable.size() - 1);
  for (int iter = 0; iter < 2000; ++iter) {
    Path p;
    const int n = n_labels(rng);
    for (int i = 0; i < n; ++i) {
      std::string label;
      const int len = label_len(rng);
      const bool raw = coin(rng) == 0;  // a quarter of labels may hold any byte
      for (int k = 0; k < len; ++k) {
        label.push_back(raw ? static_cast<char>(any_byte(rng)) : showable[pick(rng)]);
      }
      p.Append(label);
    }
    const std::string shown = p.Show();
    absl::StatusOr<Path> parsed = ParsePath(shown);
    ASSERT_TRUE(parsed.ok()) << shown << ": " << parsed.status();
    EXPECT_EQ(*parsed, p) << shown;
    EXPECT_EQ(parsed->Show(), shown);
  }
}

// ---------------------------------------------------------------------------
// Prefix

TEST(PrefixTest, DefaultPrefixIsEmptyAndShowsAsSlash) {
  const Prefix x;
  EXPECT_TRUE(x.empty());
  EXPECT_EQ(x.size(), 0u);
  EXPECT_EQ(x.Show(), "/");
}

TEST(PrefixTest, EmptyPrefixMatchesEveryPath) {
  const Prefix x;
  EXPECT_TRUE(x.Matches(Path()));
  EXPECT_TRUE(x.Matches(Path{"a"}));
  EXPECT_TRUE(x.Matches(Path{"a", "b", "c"}));
}

TEST(PrefixTest, PrefixFromPathHasLiteralLabels) {
  const Prefix x(Path{"foo", "*", "bar"});
  ASSERT_EQ(x.size(), 3u);
  EXPECT_EQ(x.elems()[0], Label("foo"));
  EXPECT_EQ(x.elems()[1], Label("*"));  // a literal star, not a wildcard
  EXPECT_FALSE(x.elems()[1].wildcard);
  EXPECT_EQ(x.elems()[2], Label("bar"));
  EXPECT_EQ(x.Show(), "/foo/\\x2a/bar");
}

TEST(PrefixTest, ShowPrintsWildcardsAsStar) {
  EXPECT_EQ(Prefix({Label("a"), Any(), Label("c")}).Show(), "/a/*/c");
  EXPECT_EQ(Prefix({Any()}).Show(), "/*");
  EXPECT_EQ(Prefix({Any(), Any()}).Show(), "/*/*");
}

TEST(PrefixTest, ShowEscapesNonShowableLabels) {
  EXPECT_EQ(Prefix({Label("a b"), Any()}).Show(), "/\\x61\\x20\\x62/*");
}

TEST(PrefixTest, ShowToAppendsToExistingText) {
  std::string out = ">";
  Prefix({Label("a"), Any()}).ShowTo(&out);
  EXPECT_EQ(out, ">/a/*");
}

TEST(PrefixTest, WildcardDiffersFromLiteralStarLabel) {
  EXPECT_NE(Prefix({Any()}), Prefix({Label("*")}));
  EXPECT_EQ(Prefix({Any()}), Prefix({Any()}));
  EXPECT_EQ(Prefix(Path{"a", "b"}), Prefix({Label("a"), Label("b")}));
  EXPECT_NE(Prefix(Path{"a", "b"}), Prefix({Label("a")}));
}

TEST(PrefixTest, MatchesEqualAndLongerPaths) {
  const Prefix x(Path{"svc", "dog"});
  EXPECT_TRUE(x.Matches(Path{"svc", "dog"}));
  EXPECT_TRUE(x.Matches(Path{"svc", "dog", "x", "y"}));
  EXPECT_FALSE(x.Matches(Path{"svc"}));
  EXPECT_FALSE(x.Matches(Path()));
  EXPECT_FALSE(x.Matches(Path{"svc", "cat"}));
  EXPECT_FALSE(x.Matches(Path{"dog", "svc"}));
}

TEST(PrefixTest, MatchesPerElementNeverPerCharacter) {
  EXPECT_FALSE(Prefix(Path{"a"}).Matches(Path{"ab"}));
  EXPECT_FALSE(Prefix(Path{"ab"}).Matches(Path{"a"}));
  EXPECT_FALSE(Prefix(Path{"s"}).Matches(Path{"s#", "x"}));
  EXPECT_FALSE(Prefix(Path{"a", "b"}).Matches(Path{"ab"}));
  EXPECT_FALSE(Prefix(Path{"ab"}).Matches(Path{"a", "b"}));
}

TEST(PrefixTest, MatchingIsCaseSensitiveAndByteExact) {
  EXPECT_FALSE(Prefix(Path{"Svc"}).Matches(Path{"svc"}));
  EXPECT_TRUE(Prefix(Path{"caf\xc3\xa9"}).Matches(Path{"caf\xc3\xa9", "x"}));
  EXPECT_FALSE(Prefix(Path{"cafe"}).Matches(Path{"caf\xc3\xa9"}));
}

TEST(PrefixTest, WildcardMatchesExactlyOneArbitraryLabel) {
  const Prefix x({Label("svc"), Any()});
  EXPECT_TRUE(x.Matches(Path{"svc", "dog"}));
  EXPECT_TRUE(x.Matches(Path{"svc", "cat", "y"}));
  EXPECT_TRUE(x.Matches(Path{"svc", "*"}));
  EXPECT_FALSE(x.Matches(Path{"svc"}));  // the wildcard needs a label
  EXPECT_FALSE(x.Matches(Path{"srv", "dog"}));
  EXPECT_FALSE(Prefix({Any()}).Matches(Path()));
  EXPECT_TRUE(Prefix({Any()}).Matches(Path{"anything"}));
}

TEST(PrefixTest, WildcardInTheMiddleMatchesAnyLabelThere) {
  // Finagle DtabTest: /a/*/c matches /a/b/c/e/f.
  const Prefix x({Label("a"), Any(), Label("c")});
  EXPECT_TRUE(x.Matches(Path{"a", "b", "c", "e", "f"}));
  EXPECT_TRUE(x.Matches(Path{"a", "zzz", "c"}));
  EXPECT_FALSE(x.Matches(Path{"a", "b", "d"}));
  EXPECT_FALSE(x.Matches(Path{"a", "b"}));
}

TEST(PrefixTest, LiteralStarLabelMatchesOnlyAStarLabel) {
  const Prefix x(Path{"*"});
  EXPECT_TRUE(x.Matches(Path{"*"}));
  EXPECT_FALSE(x.Matches(Path{"x"}));
}

TEST(PrefixTest, ResidualIsThePathWithoutTheMatchedElements) {
  const Prefix x({Label("svc"), Any()});
  const Path p{"svc", "dog", "y"};
  ASSERT_TRUE(x.Matches(p));
  EXPECT_EQ(p.Drop(x.size()), (Path{"y"}));
  const Path q{"svc", "dog"};
  ASSERT_TRUE(x.Matches(q));
  EXPECT_EQ(q.Drop(x.size()), Path());
}

TEST(PrefixTest, PrefixMatchesPathIffPathStartsWithIt) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> len(0, 4);
  std::uniform_int_distribution<int> letter(0, 2);
  auto random_path = [&] {
    Path p;
    const int n = len(rng);
    for (int i = 0; i < n; ++i) {
      p.Append(std::string(1, static_cast<char>('a' + letter(rng))));
    }
    return p;
  };
  for (int iter = 0; iter < 2000; ++iter) {
    const Path prefix = random_path();
    const Path p = random_path();
    EXPECT_EQ(Prefix(prefix).Matches(p), p.StartsWith(prefix))
        << prefix.Show() << " vs " << p.Show();
  }
}

TEST(PrefixTest, ShowOfPrefixReparsesToTheSamePrefix) {
  const std::vector<Prefix> cases = {
      Prefix(),
      Prefix({Any()}),
      Prefix({Label("a"), Any(), Label("c")}),
      Prefix({Label("*")}),
      Prefix({Label("a b"), Any(), Label(Bytes({0x00, 0xff}))}),
      Prefix(PathOf({"#", "io.l5d.fs"})),
  };
  for (const Prefix& x : cases) {
    absl::StatusOr<Prefix> parsed = ParsePrefix(x.Show());
    ASSERT_TRUE(parsed.ok()) << x.Show() << ": " << parsed.status();
    EXPECT_EQ(*parsed, x) << x.Show();
  }
}

}  // namespace
}  // namespace dtabd::dtab
