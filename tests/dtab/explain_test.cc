// Tests for Explain and its delegator JSON (dtab-semantics.md section 9,
// linkerd-behaviour.md section 2.8): node shapes, dentries, simplification,
// errors as exception nodes, and JSON string escaping.
#include "dtab/explain.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dtab/dtab.h"
#include "dtab/indexed_dtab.h"
#include "dtab/interpreter.h"
#include "dtab/name_tree.h"
#include "dtab/namer.h"
#include "dtab/parser.h"
#include "dtab/path.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dtabd::dtab {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Kind = DelegateNode::Kind;

Path P(absl::string_view text) {
  absl::StatusOr<Path> p = ParsePath(text);
  EXPECT_TRUE(p.ok()) << p.status() << " parsing " << text;
  return p.ok() ? *std::move(p) : Path();
}

std::unique_ptr<IndexedDtab> Indexed(absl::string_view text) {
  absl::StatusOr<Dtab> d = ParseDtab(text);
  EXPECT_TRUE(d.ok()) << d.status() << " parsing " << text;
  return std::make_unique<IndexedDtab>(d.ok() ? *std::move(d) : Dtab());
}

// linkerd's ErrorNamer (io.buoyant.namer.ErrorNamerInitializer): every
// lookup fails with "error naming <path>".
class ErrorNamer final : public Namer {
 public:
  absl::StatusOr<NameTree<BoundName>> Lookup(const Path& path, size_t) const override {
    return absl::UnknownError(absl::StrCat("error naming ", path.Show()));
  }
};

// Answers one fixed tree for every path.
class ConstNamer final : public Namer {
 public:
  explicit ConstNamer(NameTree<BoundName> answer) : answer_(std::move(answer)) {}
  absl::StatusOr<NameTree<BoundName>> Lookup(const Path&, size_t) const override {
    return answer_;
  }

 private:
  NameTree<BoundName> answer_;
};

Interpreter OfflineInterpreter(int max_depth = kDefaultMaxDepth) {
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#"), std::make_shared<IdentityNamer>()});
  return Interpreter(std::move(namers), InterpreterOptions{max_depth});
}

// The address linkerd's test shows for /$/inet/127.1/8080.
std::optional<std::string> TestAddr(const BoundName& b) {
  if (b.id == P("/$/inet/127.1/8080")) {
    return std::string(R"({"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080}],"meta":{}})");
  }
  return std::nullopt;
}

std::string ExplainJson(const Interpreter& interpreter, absl::string_view dtab,
                        absl::string_view path, const AddrRenderer& addr = nullptr) {
  const auto d = Indexed(dtab);
  return ToDelegatorJson(Explain(interpreter, DtabView{d.get()}, P(path)), addr);
}

std::string ExplainJson(absl::string_view dtab, absl::string_view path) {
  return ExplainJson(OfflineInterpreter(), dtab, path);
}

std::string Json(absl::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

// ---------------------------------------------------------------------------
// linkerd's DelegateApiHandlerTest

constexpr char kLinkerdDtab[] =
    "/beh => /#/error ;"
    "/bah/humbug => /$/inet/127.1/8080 ;"
    "/foo => /bah | /beh | /$/fail ;"
    "/foo => /bar ;"
    "/boo => /foo ;"
    "/meh => /heh ;";

TEST(ExplainJsonTest, MatchesLinkerdDelegateApiHandlerExample) {
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#/error"), std::make_shared<ErrorNamer>()});
  const Interpreter interpreter(std::move(namers));
  EXPECT_EQ(
      ExplainJson(interpreter, kLinkerdDtab, "/boo/humbug", TestAddr),
      R"({"type":"delegate","path":"/boo/humbug","dentry":null,"delegate":{)"
      R"("type":"alt","path":"/foo/humbug","dentry":{"prefix":"/boo","dst":"/foo"},"alt":[)"
      R"({"type":"neg","path":"/bar/humbug","dentry":{"prefix":"/foo","dst":"/bar"}},)"
      R"({"type":"delegate","path":"/bah/humbug",)"
      R"("dentry":{"prefix":"/foo","dst":"/bah | /beh | /$/fail"},"delegate":{)"
      R"("type":"leaf","path":"/$/inet/127.1/8080","dentry":{"prefix":"/bah/humbug",)"
      R"("dst":"/$/inet/127.1/8080"},)"
      R"("bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080}],"meta":{}},)"
      R"("id":"/$/inet/127.1/8080","path":"/"}}},)"
      R"({"type":"delegate","path":"/beh/humbug",)"
      R"("dentry":{"prefix":"/foo","dst":"/bah | /beh | /$/fail"},"delegate":{)"
      R"("type":"exception","path":"/#/error/humbug","dentry":{"prefix":"/beh","dst":"/#/error"},)"
      R"("message":"error naming /#/error/humbug"}},)"
      R"({"type":"fail","path":"/$/fail/humbug",)"
      R"("dentry":{"prefix":"/foo","dst":"/bah | /beh | /$/fail"}}]}})");
}

TEST(ExplainTest, LinkerdExampleSplicesNestedAltIntoParent) {
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#/error"), std::make_shared<ErrorNamer>()});
  const Interpreter interpreter(std::move(namers));
  const auto d = Indexed(kLinkerdDtab);
  const DelegateNode root = Explain(interpreter, DtabView{d.get()}, P("/boo/humbug"));
  EXPECT_EQ(root.kind, Kind::kDelegate);
  EXPECT_FALSE(root.dentry.has_value());
  ASSERT_EQ(root.children.size(), 1u);
  const DelegateNode& alt = root.children[0];
  EXPECT_EQ(alt.kind, Kind::kAlt);
  // The nested Alt from `/bah | /beh | /$/fail` is spliced into the parent.
  ASSERT_EQ(alt.children.size(), 4u);
  EXPECT_EQ(alt.children[0].kind, Kind::kNeg);
  EXPECT_EQ(alt.children[1].kind, Kind::kDelegate);
  EXPECT_EQ(alt.children[1].children[0].kind, Kind::kLeaf);
  EXPECT_EQ(alt.children[1].children[0].bound.id.Show(), "/$/inet/127.1/8080");
  EXPECT_EQ(alt.children[1].children[0].bound.residual.Show(), "/");
  EXPECT_EQ(alt.children[2].children[0].kind, Kind::kException);
  EXPECT_EQ(alt.children[3].kind, Kind::kFail);
}

TEST(ExplainJsonTest, MatchesLinkerdWebDelegatorExample) {
  EXPECT_EQ(
      ExplainJson(OfflineInterpreter(),
                  "/bah/humbug => /$/inet/127.1/8080 ; /foo => /bah | /$/fail ;"
                  "/foo => /bar ; /boo => /foo ; /meh => /heh",
                  "/boo/humbug", TestAddr),
      R"({"type":"delegate","path":"/boo/humbug","dentry":null,"delegate":{)"
      R"("type":"alt","path":"/foo/humbug","dentry":{"prefix":"/boo","dst":"/foo"},"alt":[)"
      R"({"type":"neg","path":"/bar/humbug","dentry":{"prefix":"/foo","dst":"/bar"}},)"
      R"({"type":"delegate","path":"/bah/humbug","dentry":{"prefix":"/foo","dst":"/bah | /$/fail"},)"
      R"("delegate":{"type":"leaf","path":"/$/inet/127.1/8080",)"
      R"("dentry":{"prefix":"/bah/humbug","dst":"/$/inet/127.1/8080"},"bound":{)"
      R"("addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080}],"meta":{}},)"
      R"("id":"/$/inet/127.1/8080","path":"/"}}},)"
      R"({"type":"fail","path":"/$/fail/humbug","dentry":{"prefix":"/foo","dst":"/bah | /$/fail"}}]}})");
}

// ---------------------------------------------------------------------------
// Node shapes

TEST(ExplainJsonTest, UnionShowsEveryBranchWithItsWeight) {
  EXPECT_EQ(ExplainJson("/s=>0.5*/#/a & /#/b & 2*/t;/t=>/#/c", "/s"),
            R"({"type":"union","path":"/s","dentry":null,"union":[)"
            R"({"weight":0.5,"tree":{"type":"leaf","path":"/#/a",)"
            R"("dentry":{"prefix":"/s","dst":"0.50*/#/a & /#/b & 2.00*/t"},)"
            R"("bound":{"id":"/#/a","path":"/"}}},)"
            R"({"weight":1.0,"tree":{"type":"leaf","path":"/#/b",)"
            R"("dentry":{"prefix":"/s","dst":"0.50*/#/a & /#/b & 2.00*/t"},)"
            R"("bound":{"id":"/#/b","path":"/"}}},)"
            R"({"weight":2.0,"tree":{"type":"delegate","path":"/t",)"
            R"("dentry":{"prefix":"/s","dst":"0.50*/#/a & /#/b & 2.00*/t"},)"
            R"("delegate":{"type":"leaf","path":"/#/c","dentry":{"prefix":"/t","dst":"/#/c"},)"
            R"("bound":{"id":"/#/c","path":"/"}}}}]})");
}

TEST(ExplainJsonTest, UnionWeightKeepsFullPrecision) {
  EXPECT_THAT(ExplainJson("/s=>0.125*/#/a & /#/b", "/s"), HasSubstr(R"("weight":0.125,)"));
}

TEST(ExplainJsonTest, UnionBranchErrorIsShownAsException) {
  const std::string json = ExplainJson("/s=>/#/a & /$/bogus", "/s");
  EXPECT_THAT(json, HasSubstr(R"({"type":"exception","path":"/$/bogus",)"
                              R"("dentry":{"prefix":"/s","dst":"/#/a & /$/bogus"},)"
                              R"("message":"unknown system namer)"));
  EXPECT_THAT(json, HasSubstr(R"("type":"leaf","path":"/#/a")"));
}

TEST(ExplainJsonTest, ExplainEvaluatesAlternativesAfterTheChosenOne) {
  // Bind stops at /#/a; explain also shows /$/bogus failing.
  const std::string json = ExplainJson("/s=>/#/a | /$/bogus", "/s");
  EXPECT_THAT(json, HasSubstr(R"("type":"leaf","path":"/#/a")"));
  EXPECT_THAT(json, HasSubstr(R"("type":"exception","path":"/$/bogus")"));
}

TEST(ExplainJsonTest, NegDestinationShowsTildePath) {
  EXPECT_EQ(ExplainJson("/a=>/#/x;/a=>~", "/a"),
            R"({"type":"alt","path":"/a","dentry":null,"alt":[)"
            R"({"type":"neg","path":"~","dentry":{"prefix":"/a","dst":"~"}},)"
            R"({"type":"leaf","path":"/#/x","dentry":{"prefix":"/a","dst":"/#/x"},)"
            R"("bound":{"id":"/#/x","path":"/"}}]})");
}

TEST(ExplainJsonTest, FailDestinationShowsBangPath) {
  EXPECT_EQ(ExplainJson("/a=>!", "/a/b"),
            R"({"type":"delegate","path":"/a/b","dentry":null,"delegate":)"
            R"({"type":"fail","path":"!","dentry":{"prefix":"/a","dst":"!"}}})");
}

TEST(ExplainJsonTest, NamerFailOutsideDollarFailShowsBangPath) {
  // linkerd prints a fail node's path as "!" unless it is under /$/fail.
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#/blocked"), std::make_shared<ConstNamer>(NameTree<BoundName>::Fail())});
  const Interpreter interpreter(std::move(namers));
  EXPECT_EQ(ExplainJson(interpreter, "", "/#/blocked/x"),
            R"({"type":"fail","path":"!","dentry":null})");
  EXPECT_EQ(ExplainJson(interpreter, "/s=>/#/blocked", "/s/x"),
            R"({"type":"delegate","path":"/s/x","dentry":null,"delegate":)"
            R"({"type":"fail","path":"!","dentry":{"prefix":"/s","dst":"/#/blocked"}}})");
}

TEST(ExplainJsonTest, SystemFailKeepsItsPath) {
  EXPECT_EQ(ExplainJson("", "/$/fail/x"), R"({"type":"fail","path":"/$/fail/x","dentry":null})");
}

TEST(ExplainJsonTest, EmptyAndNilAreEmptyNodes) {
  EXPECT_THAT(ExplainJson("/a=>$", "/a"), HasSubstr(R"({"type":"empty",)"));
  EXPECT_EQ(ExplainJson("", "/$/nil/x"), R"({"type":"empty","path":"/$/nil/x","dentry":null})");
}

TEST(ExplainJsonTest, UnknownNameIsNegWithItsPath) {
  EXPECT_EQ(ExplainJson("/a=>/b", "/zzz"), R"({"type":"neg","path":"/zzz","dentry":null})");
}

TEST(ExplainJsonTest, UnknownEmptyPathIsNegWithTildePath) {
  // linkerd: "neg: the path is "~" when empty".
  EXPECT_EQ(ExplainJson("", "/"), R"({"type":"neg","path":"~","dentry":null})");
}

TEST(ExplainJsonTest, SingleNegDentryConsultsNamers) {
  EXPECT_EQ(ExplainJson("/#/x=>~", "/#/x/y"),
            R"({"type":"leaf","path":"/#/x/y","dentry":null,"bound":{"id":"/#/x/y","path":"/"}})");
}

TEST(ExplainJsonTest, LeafShowsNamerIdAndResidualWithoutAddrRenderer) {
  EXPECT_EQ(ExplainJson("/srv=>/$/inet/127.1/4140;/svc=>/srv", "/svc/dog"),
            R"({"type":"delegate","path":"/svc/dog","dentry":null,"delegate":)"
            R"({"type":"delegate","path":"/srv/dog","dentry":{"prefix":"/svc","dst":"/srv"},)"
            R"("delegate":{"type":"leaf","path":"/$/inet/127.1/4140/dog",)"
            R"("dentry":{"prefix":"/srv","dst":"/$/inet/127.1/4140"},)"
            R"("bound":{"id":"/$/inet/127.1/4140","path":"/dog"}}}})");
}

TEST(ExplainJsonTest, AddrRendererReturningNulloptOmitsAddr) {
  EXPECT_THAT(ExplainJson(OfflineInterpreter(), "", "/#/a", TestAddr),
              HasSubstr(R"("bound":{"id":"/#/a","path":"/"})"));
}

TEST(ExplainJsonTest, NonShowablePathBytesAreEscapedInJson) {
  EXPECT_EQ(ExplainJson("", "/a\\x20b"),
            R"({"type":"neg","path":"/\\x61\\x20\\x62","dentry":null})");
}

// ---------------------------------------------------------------------------
// Recursion limit

TEST(ExplainJsonTest, SelfLoopBecomesMaxRecursionException) {
  EXPECT_EQ(ExplainJson("/a=>/a", "/a"),
            R"({"type":"exception","path":"/a","dentry":null,)"
            R"("message":"Max recursion level reached."})");
}

TEST(ExplainJsonTest, AlternatingLoopEndsInMaxRecursionException) {
  const std::string json = ExplainJson("/a=>/b;/b=>/a", "/a");
  EXPECT_THAT(json, HasSubstr(R"("type":"exception")"));
  EXPECT_THAT(json, HasSubstr(R"("message":"Max recursion level reached.")"));
}

// /r0=>/r1;...: `rewrites` dentries ending in `last`.
std::string Chain(int rewrites, absl::string_view last) {
  std::string out;
  for (int i = 0; i + 1 < rewrites; ++i) {
    absl::StrAppend(&out, "/r", i, "=>/r", i + 1, ";");
  }
  absl::StrAppend(&out, "/r", rewrites - 1, "=>", last);
  return out;
}

TEST(ExplainTest, AgreesWithBindAtTheDepthLimit) {
  for (int max_depth : {1, 5, 100}) {
    const Interpreter interpreter = OfflineInterpreter(max_depth);
    for (int rewrites : {max_depth - 1, max_depth}) {
      if (rewrites < 1) {
        continue;
      }
      const auto d = Indexed(Chain(rewrites, "/#/end"));
      const DtabView view{d.get()};
      const bool binds = interpreter.Bind(view, P("/r0")).ok();
      EXPECT_EQ(binds, rewrites < max_depth) << max_depth << " " << rewrites;
      const std::string json = ToDelegatorJson(Explain(interpreter, view, P("/r0")));
      EXPECT_EQ(json.find("Max recursion level reached.") == std::string::npos, binds)
          << "max_depth " << max_depth << " rewrites " << rewrites << ": " << json;
    }
  }
}

TEST(ExplainTest, ZeroMaxDepthExplainsTheRootAsException) {
  const std::string json = ExplainJson(OfflineInterpreter(0), "", "/#/a");
  EXPECT_EQ(json,
            R"({"type":"exception","path":"/#/a","dentry":null,)"
            R"("message":"Max recursion level reached."})");
}

// ---------------------------------------------------------------------------
// AppendJsonString

TEST(AppendJsonStringTest, QuotesAndBackslashesAreEscaped) {
  EXPECT_EQ(Json(R"(a"b\c)"), R"("a\"b\\c")");
  EXPECT_EQ(Json(""), R"("")");
}

TEST(AppendJsonStringTest, ControlCharactersAreEscaped) {
  EXPECT_EQ(Json("\n\t\r"), R"("\n\t\r")");
  EXPECT_EQ(Json(absl::string_view("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(Json("\b\f"), R"("\u0008\u000c")");
}

TEST(AppendJsonStringTest, PrintableAsciiIsCopied) {
  EXPECT_EQ(Json("/$/inet/127.1/8080 ~!*&|"), R"("/$/inet/127.1/8080 ~!*&|")");
}

TEST(AppendJsonStringTest, AppendsToExistingContent) {
  std::string out = "x=";
  AppendJsonString("y", &out);
  EXPECT_EQ(out, R"(x="y")");
}

TEST(AppendJsonStringTest, ValidUtf8IsCopied) {
  EXPECT_EQ(Json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
  EXPECT_EQ(Json("\xed\x9f\xbf \xee\x80\x80"), "\"\xed\x9f\xbf \xee\x80\x80\"");
}

TEST(AppendJsonStringTest, InvalidBytesBecomeReplacementCharacter) {
  EXPECT_EQ(Json("a\x80z"), R"("a\ufffdz")");
  EXPECT_EQ(Json("a\xffz"), R"("a\ufffdz")");
  EXPECT_EQ(Json("a\xc3"), R"("a\ufffd")");  // truncated at the end
  EXPECT_EQ(Json("\xc3z"), R"("\ufffdz")");  // missing continuation
}

// True iff `s` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF).
bool IsWellFormedUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 3;
      lo = c == 0xe0 ? 0xa0 : 0x80;
      hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4;
      lo = c == 0xf0 ? 0x90 : 0x80;
      hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
      return false;
    }
    if (i + n > s.size()) {
      return false;
    }
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) {
      return false;
    }
    for (size_t k = 2; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) {
        return false;
      }
    }
    i += n;
  }
  return true;
}

TEST(AppendJsonStringTest, IllFormedSequencesAreReplaced) {
  for (const char* bad : {
           "\xc0\xaf",          // overlong '/'
           "\xc1\xbf",          // overlong
           "\xe0\x80\xaf",      // overlong 3-byte
           "\xed\xa0\x80",      // UTF-16 surrogate U+D800
           "\xed\xbf\xbf",      // surrogate U+DFFF
           "\xf0\x80\x80\xaf",  // overlong 4-byte
           "\xf4\x90\x80\x80",  // above U+10FFFF
           "\xf5\x80\x80\x80",  // invalid lead byte
           "\xe2\x82",          // truncated 3-byte
       }) {
    const std::string out = Json(absl::StrCat("<", bad, ">"));
    EXPECT_TRUE(IsWellFormedUtf8(out)) << out;
    EXPECT_THAT(out, HasSubstr("\\ufffd")) << out;
    EXPECT_EQ(out.front(), '"');
    EXPECT_EQ(out.substr(0, 2), "\"<") << out;
    EXPECT_EQ(out.substr(out.size() - 2), ">\"") << out;
  }
}

TEST(AppendJsonStringTest, RandomBytesAlwaysGiveWellFormedOutput) {
  // Seeded xorshift: reproducible.
  uint64_t state = 0x9e3779b97f4a7c15ULL;
  for (int round = 0; round < 2000; ++round) {
    std::string in;
    const int len = static_cast<int>(state % 12);
    for (int k = 0; k < len; ++k) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      in.push_back(static_cast<char>(state & 0xff));
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    const std::string out = Json(in);
    ASSERT_TRUE(IsWellFormedUtf8(out)) << absl::CEscape(in);
    for (char c : out) {
      ASSERT_GE(static_cast<unsigned char>(c), 0x20) << absl::CEscape(in);
    }
  }
}

}  // namespace
}  // namespace dtabd::dtab
