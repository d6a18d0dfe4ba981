// Tests for Interpreter::Bind and the system namer: dtab-semantics.md
// sections 6.2 (lookup: dtab first, then namers), 6.3 (bind), 6.4 (/$/...),
// 6.5 (worked examples) and 7 (local dtabs over a base).
#include "dtab/interpreter.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dtab/dtab.h"
#include "dtab/indexed_dtab.h"
#include "dtab/name_tree.h"
#include "dtab/namer.h"
#include "dtab/parser.h"
#include "dtab/path.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dtabd::dtab {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

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

BoundName Bound(absl::string_view id, absl::string_view residual = "/") {
  return BoundName{P(id), P(residual)};
}

// A namer for tests: records every call, and answers from a fixed table
// keyed by the full path (prefix ++ rest); anything else is `fallback`.
class FakeNamer final : public Namer {
 public:
  struct Call {
    Path prefix;
    Path rest;
  };

  explicit FakeNamer(absl::StatusOr<NameTree<BoundName>> fallback = NameTree<BoundName>::Neg())
      : fallback_(std::move(fallback)) {}

  void Answer(absl::string_view full_path, absl::StatusOr<NameTree<BoundName>> answer) {
    answers_.emplace_back(P(full_path), std::move(answer));
  }

  absl::StatusOr<NameTree<BoundName>> Lookup(const Path& full,
                                             size_t prefix_size) const override {
    calls_.push_back(Call{full.Take(prefix_size), full.Drop(prefix_size)});
    for (const auto& [path, answer] : answers_) {
      if (path == full) {
        return answer;
      }
    }
    return fallback_;
  }

  const std::vector<Call>& calls() const { return calls_; }
  std::vector<std::string> called_paths() const {
    std::vector<std::string> out;
    for (const Call& c : calls_) {
      out.push_back(c.prefix.Concat(c.rest).Show());
    }
    return out;
  }

 private:
  absl::StatusOr<NameTree<BoundName>> fallback_;
  std::vector<std::pair<Path, absl::StatusOr<NameTree<BoundName>>>> answers_;
  mutable std::vector<Call> calls_;  // single-threaded tests only
};

// An interpreter with IdentityNamer at /# (what dtabctl uses offline).
Interpreter OfflineInterpreter(int max_depth = kDefaultMaxDepth) {
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#"), std::make_shared<IdentityNamer>()});
  return Interpreter(std::move(namers), InterpreterOptions{max_depth});
}

// Binds `path` through `dtab` and shows the result, or "error: <message>".
std::string BindShown(const Interpreter& interpreter, absl::string_view dtab,
                      absl::string_view path) {
  const auto d = Indexed(dtab);
  absl::StatusOr<BindResult> r = interpreter.Bind(DtabView{d.get()}, P(path));
  if (!r.ok()) {
    return absl::StrCat("error: ", r.status().message());
  }
  return Show(r->tree);
}

std::string BindShown(absl::string_view dtab, absl::string_view path) {
  return BindShown(OfflineInterpreter(), dtab, path);
}

absl::StatusOr<BindResult> BindOffline(absl::string_view dtab, absl::string_view path) {
  const auto d = Indexed(dtab);
  return OfflineInterpreter().Bind(DtabView{d.get()}, P(path));
}

// /r0=>/r1;/r1=>/r2;...: `rewrites` dentries, the last one rewriting to
// `last`, so that binding /r0 needs `rewrites` lookups plus those of `last`.
std::string Chain(int rewrites, absl::string_view last) {
  std::string out;
  for (int i = 0; i + 1 < rewrites; ++i) {
    absl::StrAppend(&out, "/r", i, "=>/r", i + 1, ";");
  }
  absl::StrAppend(&out, "/r", rewrites - 1, "=>", last);
  return out;
}

// ---------------------------------------------------------------------------
// Lookup order (6.1, 6.2)

TEST(InterpreterTest, LaterDentryWins) {
  EXPECT_EQ(BindShown("/a=>/#/first;/a=>/#/second", "/a"), "/#/second");
}

TEST(InterpreterTest, LaterDentryWinsEvenWhenItsPrefixIsShorter) {
  EXPECT_EQ(BindShown("/svc/foo=>/#/a;/svc=>/#/b", "/svc/foo"), "/#/b/foo");
}

TEST(InterpreterTest, EarlierDentryIsFallbackWhenLaterResolvesNeg) {
  EXPECT_EQ(BindShown("/a=>/#/first;/a=>/nowhere", "/a/x"), "/#/first/x");
}

TEST(InterpreterTest, UnmatchedPathOutsideNamersBindsNeg) {
  absl::StatusOr<BindResult> r = BindOffline("/a=>/b", "/zzz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->tree.is_neg());
}

TEST(InterpreterTest, BoundLeafCarriesIdAndResidualSeparately) {
  absl::StatusOr<BindResult> r = BindOffline("/svc=>/$/inet/127.1/8080", "/svc/dog/x");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->tree.is_leaf());
  EXPECT_EQ(r->tree.leaf(), Bound("/$/inet/127.1/8080", "/dog/x"));
  EXPECT_EQ(r->ignored_branch_errors, 0);
}

// ---------------------------------------------------------------------------
// Alt (6.3)

TEST(InterpreterTest, AltNegFallsBackToNextAlternative) {
  EXPECT_EQ(BindShown("/s=>/missing | ~ | /#/b", "/s"), "/#/b");
}

TEST(InterpreterTest, AltFailStopsFallBack) {
  EXPECT_EQ(BindShown("/s=>/missing | ! | /#/b", "/s"), "!");
  EXPECT_EQ(BindShown("/s=>/$/fail | /#/b", "/s"), "!");
}

TEST(InterpreterTest, AltEmptyIsAResultAndStopsFallBack) {
  EXPECT_EQ(BindShown("/s=>$ | /#/b", "/s"), "$");
  EXPECT_EQ(BindShown("/s=>/$/nil | /#/b", "/s"), "$");
}

TEST(InterpreterTest, AltOfOnlyNegsIsNeg) {
  EXPECT_EQ(BindShown("/s=>/x | /y | ~", "/s"), "~");
}

TEST(InterpreterTest, AltDoesNotEvaluateAlternativesAfterTheChosenOne) {
  // /loop would hit the recursion limit, but it is never reached.
  EXPECT_EQ(BindShown("/loop=>/loop;/s=>/#/ok | /loop | /$/bogus", "/s"), "/#/ok");
}

TEST(InterpreterTest, AltErrorInReachedAlternativeFailsTheBind) {
  EXPECT_THAT(BindShown("/loop=>/loop;/s=>/loop | /#/ok", "/s"),
              HasSubstr("Max recursion level: 100 reached in Namer lookup"));
  EXPECT_THAT(BindShown("/s=>~ | /$/bogus | /#/ok", "/s"), HasSubstr("unknown system namer"));
}

TEST(InterpreterTest, AltNamerIsNotAskedForAlternativesAfterTheChosenOne) {
  auto namer = std::make_shared<FakeNamer>();
  namer->Answer("/#/f/b", NameTree<BoundName>::Leaf(Bound("/#/f/b")));
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#/f"), namer});
  const Interpreter interpreter(std::move(namers));
  EXPECT_EQ(BindShown(interpreter, "/s=>/#/f/a | /#/f/b | /#/f/c", "/s"), "/#/f/b");
  EXPECT_THAT(namer->called_paths(), ElementsAre("/#/f/a", "/#/f/b"));
}

TEST(InterpreterTest, BoundTreeHasNoAltNodes) {
  absl::StatusOr<BindResult> r = BindOffline("/s=>(/x | /#/a) & (/#/b | /#/c)", "/s");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Show(r->tree), "/#/a & /#/b");
  ASSERT_TRUE(r->tree.is_union());
  for (const NameTree<BoundName>& c : r->tree.children()) {
    EXPECT_TRUE(c.is_leaf());
  }
}

// ---------------------------------------------------------------------------
// Union (6.3)

TEST(InterpreterTest, UnionKeepsEveryBoundBranchWithItsWeight) {
  absl::StatusOr<BindResult> r = BindOffline("/s=>0.25*/#/a & 3*/#/b & /#/c", "/s");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Show(r->tree), "0.25*/#/a & 3.00*/#/b & /#/c");
  ASSERT_TRUE(r->tree.is_union());
  EXPECT_THAT(r->tree.weights(), ElementsAre(0.25, 3.0, 1.0));
}

TEST(InterpreterTest, UnionDropsNegAndFailBranches) {
  EXPECT_EQ(BindShown("/s=>/missing & ! & /#/a & /$/fail & 2*/#/b & ~", "/s"),
            "/#/a & 2.00*/#/b");
}

TEST(InterpreterTest, UnionWithOneSurvivorBecomesThatSurvivor) {
  EXPECT_EQ(BindShown("/s=>/missing & 5*/#/a", "/s"), "/#/a");
}

TEST(InterpreterTest, UnionOfOnlyFailBranchesIsNeg) {
  EXPECT_EQ(BindShown("/s=>! & /$/fail", "/s"), "~");
}

TEST(InterpreterTest, UnionKeepsEmptyBranches) {
  EXPECT_EQ(BindShown("/s=>$ & /#/a", "/s"), "$ & /#/a");
}

TEST(InterpreterTest, UnionIgnoresBranchErrorWhenAnotherBranchBinds) {
  absl::StatusOr<BindResult> r =
      BindOffline("/loop=>/loop;/s=>/#/a & /$/bogus & 2*/loop & /#/b", "/s");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Show(r->tree), "/#/a & /#/b");
  EXPECT_EQ(r->ignored_branch_errors, 2);
}

TEST(InterpreterTest, UnionIgnoresBranchErrorEvenWhenOtherBranchIsNeg) {
  // A Neg branch still "succeeded": the union binds to Neg, not the error.
  absl::StatusOr<BindResult> r = BindOffline("/s=>/missing & /$/bogus", "/s");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->tree.is_neg());
  EXPECT_EQ(r->ignored_branch_errors, 1);
}

TEST(InterpreterTest, UnionOfOnlyErrorsReturnsTheFirstError) {
  absl::StatusOr<BindResult> r = BindOffline("/s=>/$/first & /$/inet/notaport & /$/third", "/s");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("/$/first"));
  EXPECT_THAT(r.status().message(), Not(HasSubstr("/$/third")));
}

TEST(InterpreterTest, IgnoredBranchErrorsAreCountedAcrossNestedUnions) {
  absl::StatusOr<BindResult> r =
      BindOffline("/s=>(/#/a & /$/x) & /t;/t=>/$/y & /#/b & /$/z", "/s");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Show(r->tree), "/#/a & /#/b");
  EXPECT_EQ(r->ignored_branch_errors, 3);
}

TEST(InterpreterTest, SingleBranchUnionErrorIsNotIgnored) {
  // Only a multi-branch union drops errors; 2*/x alone is just /x.
  EXPECT_THAT(BindShown("/s=>2*/$/bogus", "/s"), HasSubstr("unknown system namer"));
}

TEST(InterpreterTest, NestedUnionsAreNotFlattened) {
  absl::StatusOr<BindResult> r = BindOffline("/s=>2*/t & /#/z;/t=>/#/a & /#/b", "/s");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Show(r->tree), "2.00*(/#/a & /#/b) & /#/z");
  ASSERT_TRUE(r->tree.is_union());
  ASSERT_EQ(r->tree.children().size(), 2u);
  EXPECT_TRUE(r->tree.children()[0].is_union());
  EXPECT_THAT(r->tree.weights(), ElementsAre(2.0, 1.0));
}

// Programmatic trees the parser cannot produce: empty and single-branch
// Alt/Union nodes.
std::string BindProgrammatic(NameTree<Path> dst) {
  const IndexedDtab d(Dtab({Dentry{Prefix(Path({"s"})), std::move(dst)}}));
  absl::StatusOr<BindResult> r = OfflineInterpreter().Bind(DtabView{&d}, P("/s"));
  if (!r.ok()) {
    return absl::StrCat("error: ", r.status().message());
  }
  return Show(r->tree);
}

TEST(InterpreterTest, EmptyUnionAndEmptyAltBindToNeg) {
  EXPECT_EQ(BindProgrammatic(NameTree<Path>::Union({}, {})), "~");
  EXPECT_EQ(BindProgrammatic(NameTree<Path>::Alt({})), "~");
}

TEST(InterpreterTest, SingleBranchUnionBindsItsBranch) {
  EXPECT_EQ(BindProgrammatic(NameTree<Path>::Union({NameTree<Path>::Leaf(P("/#/a"))}, {3.0})),
            "/#/a");
  // Its error is not dropped: there is no other branch.
  EXPECT_THAT(BindProgrammatic(NameTree<Path>::Union({NameTree<Path>::Leaf(P("/$/x"))}, {3.0})),
              HasSubstr("unknown system namer"));
}

// ---------------------------------------------------------------------------
// Recursion limit (6.3, DESIGN.md decision 6)

TEST(InterpreterTest, NinetyNineRewritesPlusNamerLookupBindAtDepth100) {
  EXPECT_EQ(BindShown(Chain(99, "/#/end"), "/r0/x"), "/#/end/x");
  EXPECT_EQ(BindShown(Chain(99, "/$/inet/1.2.3.4/80"), "/r0/x"), "/$/inet/1.2.3.4/80/x");
}

TEST(InterpreterTest, HundredRewritesPlusNamerLookupExceedDepth100) {
  absl::StatusOr<BindResult> r = BindOffline(Chain(100, "/#/end"), "/r0");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "Max recursion level: 100 reached in Namer lookup");
}

TEST(InterpreterTest, HundredRewritesEndingInFailStayWithinDepth100) {
  // A literal `!` needs no further lookup.
  EXPECT_EQ(BindShown(Chain(100, "!"), "/r0"), "!");
  EXPECT_THAT(BindShown(Chain(101, "!"), "/r0"), HasSubstr("Max recursion level: 100"));
}

TEST(InterpreterTest, ConfiguredMaxDepthIsEnforcedAndNamedInTheMessage) {
  const Interpreter shallow = OfflineInterpreter(5);
  EXPECT_EQ(shallow.options().max_depth, 5);
  EXPECT_EQ(BindShown(shallow, Chain(4, "/#/end"), "/r0"), "/#/end");
  EXPECT_EQ(BindShown(shallow, Chain(5, "/#/end"), "/r0"),
            "error: Max recursion level: 5 reached in Namer lookup");
}

TEST(InterpreterTest, ZeroMaxDepthAllowsNoLookup) {
  EXPECT_EQ(BindShown(OfflineInterpreter(0), "", "/#/a"),
            "error: Max recursion level: 0 reached in Namer lookup");
  EXPECT_EQ(BindShown(OfflineInterpreter(1), "", "/#/a"), "/#/a");
}

TEST(InterpreterTest, SelfLoopHitsMaxDepth) {
  EXPECT_EQ(BindShown("/a=>/a", "/a"),
            "error: Max recursion level: 100 reached in Namer lookup");
}

TEST(InterpreterTest, RootPrefixMatchesItsOwnOutputAndLoops) {
  EXPECT_EQ(BindShown("/=>/#/x", "/#/x"),
            "error: Max recursion level: 100 reached in Namer lookup");
  EXPECT_EQ(BindShown("/=>/a", "/b"), "error: Max recursion level: 100 reached in Namer lookup");
}

// ---------------------------------------------------------------------------
// Dtab first, then namers (6.2)

TEST(InterpreterTest, SingleNegDentryDefersToNamers) {
  // Finagle's single-`~` quirk: the namer is consulted for the original path.
  EXPECT_EQ(BindShown("/#/x=>~", "/#/x/y"), "/#/x/y");
  const Dentry neg{Prefix(P("/#/x")), NameTree<Path>::Neg()};
  EXPECT_TRUE(Interpreter::DefersToNamers(1, &neg));
  EXPECT_TRUE(Interpreter::DefersToNamers(0, nullptr));
}

TEST(InterpreterTest, TwoNegDentriesDoNotDeferToNamers) {
  EXPECT_EQ(BindShown("/#/x=>~;/#/x=>~", "/#/x/y"), "~");
  const Dentry neg{Prefix(P("/#/x")), NameTree<Path>::Neg()};
  EXPECT_FALSE(Interpreter::DefersToNamers(2, &neg));
  const Dentry leaf{Prefix(P("/#/x")), NameTree<Path>::Leaf(P("/a"))};
  EXPECT_FALSE(Interpreter::DefersToNamers(1, &leaf));
}

TEST(InterpreterTest, DentryRewritingNamerPathToNegHidesTheNamer) {
  auto namer = std::make_shared<FakeNamer>(NameTree<BoundName>::Leaf(Bound("/#/n/x")));
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#/n"), namer});
  const Interpreter interpreter(std::move(namers));
  EXPECT_EQ(BindShown(interpreter, "/#/n=>/nowhere", "/#/n/x"), "~");
  EXPECT_THAT(namer->called_paths(), IsEmpty());
}

TEST(InterpreterTest, DtabIsConsultedBeforeSystemNamer) {
  EXPECT_EQ(BindShown("/$/inet=>/#/x", "/$/inet/127.1/8080"), "/#/x/127.1/8080");
}

TEST(InterpreterTest, DtabIsConsultedBeforeConfiguredNamer) {
  EXPECT_EQ(BindShown("/#/a=>/#/b", "/#/a/c"), "/#/b/c");
}

TEST(InterpreterTest, NamerReceivesItsPrefixAndTheRest) {
  auto namer = std::make_shared<FakeNamer>();
  namer->Answer("/#/io.l5d.fs/web/v2",
                NameTree<BoundName>::Leaf(Bound("/#/io.l5d.fs/web", "/v2")));
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#/io.l5d.fs"), namer});
  const Interpreter interpreter(std::move(namers));
  const auto d = Indexed("/svc=>/#/io.l5d.fs");
  absl::StatusOr<BindResult> r = interpreter.Bind(DtabView{d.get()}, P("/svc/web/v2"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(namer->calls().size(), 1u);
  EXPECT_EQ(namer->calls()[0].prefix.Show(), "/#/io.l5d.fs");
  EXPECT_EQ(namer->calls()[0].rest.Show(), "/web/v2");
  // The namer's id/residual split is kept as is.
  ASSERT_TRUE(r->tree.is_leaf());
  EXPECT_EQ(r->tree.leaf(), Bound("/#/io.l5d.fs/web", "/v2"));
  EXPECT_EQ(Show(r->tree), "/#/io.l5d.fs/web/v2");
}

TEST(InterpreterTest, NamerOwningTheWholePathReceivesEmptyRest) {
  auto namer = std::make_shared<FakeNamer>(NameTree<BoundName>::Empty());
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#/n"), namer});
  const Interpreter interpreter(std::move(namers));
  EXPECT_EQ(BindShown(interpreter, "", "/#/n"), "$");
  ASSERT_EQ(namer->calls().size(), 1u);
  EXPECT_TRUE(namer->calls()[0].rest.empty());
}

TEST(InterpreterTest, ConfiguredNamersAreTriedInOrderAndNegMovesOn) {
  auto first = std::make_shared<FakeNamer>();  // Neg for everything
  auto other = std::make_shared<FakeNamer>(NameTree<BoundName>::Leaf(Bound("/#/other")));
  auto second = std::make_shared<FakeNamer>(NameTree<BoundName>::Leaf(Bound("/#/second")));
  auto third = std::make_shared<FakeNamer>(NameTree<BoundName>::Leaf(Bound("/#/third")));
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#/n"), first});
  namers.push_back({P("/#/other"), other});  // prefix does not match: skipped
  namers.push_back({P("/#"), second});
  namers.push_back({P("/#/n"), third});  // never reached
  const Interpreter interpreter(std::move(namers));
  EXPECT_EQ(BindShown(interpreter, "", "/#/n/x"), "/#/second");
  EXPECT_THAT(first->called_paths(), ElementsAre("/#/n/x"));
  EXPECT_THAT(other->called_paths(), IsEmpty());
  EXPECT_THAT(second->called_paths(), ElementsAre("/#/n/x"));
  EXPECT_THAT(third->called_paths(), IsEmpty());
}

TEST(InterpreterTest, NamerFailStopsFallBackToLaterNamers) {
  auto failing = std::make_shared<FakeNamer>(NameTree<BoundName>::Fail());
  auto later = std::make_shared<FakeNamer>(NameTree<BoundName>::Leaf(Bound("/#/later")));
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#/n"), failing});
  namers.push_back({P("/#/n"), later});
  const Interpreter interpreter(std::move(namers));
  EXPECT_EQ(BindShown(interpreter, "", "/#/n/x"), "!");
  EXPECT_THAT(later->called_paths(), IsEmpty());
}

TEST(InterpreterTest, NamerErrorFailsTheBind) {
  auto broken = std::make_shared<FakeNamer>(absl::UnavailableError("backend down"));
  std::vector<NamerBinding> namers;
  namers.push_back({P("/#/n"), broken});
  const Interpreter interpreter(std::move(namers));
  const auto d = Indexed("/s=>/#/n/x | /#/ok");
  absl::StatusOr<BindResult> r = interpreter.Bind(DtabView{d.get()}, P("/s"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "backend down");
}

TEST(InterpreterTest, AllNamersNegFallsThroughToSystemNamer) {
  auto neg = std::make_shared<FakeNamer>();
  std::vector<NamerBinding> namers;
  namers.push_back({P("/$"), neg});  // a configured namer may even shadow /$
  const Interpreter interpreter(std::move(namers));
  EXPECT_EQ(BindShown(interpreter, "", "/$/inet/9/x"), "/$/inet/9/x");
  EXPECT_THAT(neg->called_paths(), ElementsAre("/$/inet/9/x"));
}

TEST(InterpreterTest, WithoutConfiguredNamersHashPathsAreNeg) {
  const Interpreter bare;
  EXPECT_EQ(BindShown(bare, "", "/#/a"), "~");
  EXPECT_EQ(BindShown(bare, "", "/$/inet/80"), "/$/inet/80");
}

TEST(InterpreterTest, LookupNamersSkipsTheDtab) {
  const Interpreter interpreter = OfflineInterpreter();
  absl::StatusOr<NameTree<BoundName>> r = interpreter.LookupNamers(P("/#/a/b"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Show(*r), "/#/a/b");
  absl::StatusOr<NameTree<BoundName>> neg = interpreter.LookupNamers(P("/plain"));
  ASSERT_TRUE(neg.ok());
  EXPECT_TRUE(neg->is_neg());
}

// ---------------------------------------------------------------------------
// System namer (6.4, DESIGN.md decision 3)

struct SystemCase {
  const char* path;
  const char* id;
  const char* residual;
};

class SystemNamerInetTest : public ::testing::TestWithParam<SystemCase> {};

TEST_P(SystemNamerInetTest, BindsToConsumedPrefixAndResidual) {
  const SystemCase& c = GetParam();
  absl::StatusOr<NameTree<BoundName>> r = LookupSystemPath(P(c.path));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->is_leaf());
  EXPECT_EQ(r->leaf().id.Show(), c.id);
  EXPECT_EQ(r->leaf().residual.Show(), c.residual);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SystemNamerInetTest,
    ::testing::Values(
        SystemCase{"/$/inet/127.1/8080/rest/more", "/$/inet/127.1/8080", "/rest/more"},
        SystemCase{"/$/inet/localhost/80", "/$/inet/localhost/80", "/"},
        SystemCase{"/$/inet/8080", "/$/inet/8080", "/"},
        SystemCase{"/$/inet/8080/rest", "/$/inet/8080", "/rest"},
        // HOST/PORT is tried before PORT: a numeric host is a host.
        SystemCase{"/$/inet/8080/9090", "/$/inet/8080/9090", "/"},
        SystemCase{"/$/inet/0", "/$/inet/0", "/"},
        SystemCase{"/$/inet/h/65535", "/$/inet/h/65535", "/"},
        SystemCase{"/$/fixedinet/10.0.0.1/443/x", "/$/fixedinet/10.0.0.1/443", "/x"},
        SystemCase{"/$/fixedinet/443", "/$/fixedinet/443", "/"}));

TEST(SystemNamerTest, NilAndBelowIsEmpty) {
  for (const char* p : {"/$/nil", "/$/nil/x/y"}) {
    absl::StatusOr<NameTree<BoundName>> r = LookupSystemPath(P(p));
    ASSERT_TRUE(r.ok()) << p;
    EXPECT_TRUE(r->is_empty()) << p;
  }
}

TEST(SystemNamerTest, FailAndBelowIsFail) {
  for (const char* p : {"/$/fail", "/$/fail/x"}) {
    absl::StatusOr<NameTree<BoundName>> r = LookupSystemPath(P(p));
    ASSERT_TRUE(r.ok()) << p;
    EXPECT_TRUE(r->is_fail()) << p;
  }
}

TEST(SystemNamerTest, PathsOutsideDollarAreNeg) {
  for (const char* p : {"/", "/a", "/#/inet/80", "/x/$/inet/80"}) {
    absl::StatusOr<NameTree<BoundName>> r = LookupSystemPath(P(p));
    ASSERT_TRUE(r.ok()) << p;
    EXPECT_TRUE(r->is_neg()) << p;
  }
}

TEST(SystemNamerTest, UnknownNamerIsAnError) {
  absl::StatusOr<NameTree<BoundName>> r = LookupSystemPath(P("/$/com.twitter.Foo/x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("unknown system namer"));
  EXPECT_THAT(r.status().message(), HasSubstr("com.twitter.Foo"));
}

TEST(SystemNamerTest, BareDollarIsAnError) {
  absl::StatusOr<NameTree<BoundName>> r = LookupSystemPath(P("/$"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("unknown system namer"));
}

TEST(SystemNamerTest, InetWithoutValidPortIsAnError) {
  for (const char* p : {"/$/inet", "/$/inet/host", "/$/inet/host/http", "/$/inet/65536",
                        "/$/inet/h/99999", "/$/inet/h/-1", "/$/inet/h/80x", "/$/fixedinet/h"}) {
    absl::StatusOr<NameTree<BoundName>> r = LookupSystemPath(P(p));
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << p;
    EXPECT_THAT(r.status().message(), HasSubstr("[HOST/]PORT")) << p;
  }
}

TEST(SystemNamerTest, UnknownNamerThroughBindIsAnError) {
  EXPECT_THAT(BindShown("/s=>/$/nosuch", "/s/x"), HasSubstr("unknown system namer"));
  EXPECT_THAT(BindShown("", "/$/inet/h/notaport"), HasSubstr("[HOST/]PORT"));
}

TEST(IdentityNamerTest, BindsEveryPathToItselfWithEmptyResidual) {
  const IdentityNamer namer;
  absl::StatusOr<NameTree<BoundName>> r = namer.Lookup(P("/#/a/b"), 1);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->is_leaf());
  EXPECT_EQ(r->leaf(), Bound("/#/a/b", "/"));
}

TEST(BoundNameTest, ShowIsIdFollowedByResidual) {
  EXPECT_EQ(Bound("/$/inet/1/2", "/x/y").Show(), "/$/inet/1/2/x/y");
  EXPECT_EQ(Bound("/$/inet/1/2", "/").Show(), "/$/inet/1/2");
  EXPECT_EQ(Show(NameTree<BoundName>::Union({NameTree<BoundName>::Leaf(Bound("/a", "/r")),
                                             NameTree<BoundName>::Empty()},
                                            {2.0, 1.0})),
            "2.00*/a/r & $");
}

// ---------------------------------------------------------------------------
// Worked examples (6.5) and local dtabs (7)

TEST(InterpreterExampleTest, LaterFooDentryDecidesThePort) {
  EXPECT_EQ(BindShown("/foo=>/bar;/foo=>/biz;/biz=>/$/inet/8080;/bar=>/$/inet/9090", "/foo"),
            "/$/inet/8080");
  EXPECT_EQ(BindShown("/bar=>/$/inet/9090;/biz=>/$/inet/8080;/foo=>/biz;/foo=>/bar", "/foo"),
            "/$/inet/9090");
}

TEST(InterpreterExampleTest, SvcRewritesThroughSrvToInetWithResidual) {
  absl::StatusOr<BindResult> r = BindOffline("/srv=>/$/inet/127.1/4140;/svc=>/srv", "/svc/dog");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->tree.is_leaf());
  EXPECT_EQ(r->tree.leaf(), Bound("/$/inet/127.1/4140", "/dog"));
}

TEST(InterpreterExampleTest, DelegatorDtabBindsBooLolToFail) {
  EXPECT_EQ(BindShown("/bah/humbug=>/$/inet/127.1/8080;/foo=>/bah | /$/fail;/foo=>/bar;"
                      "/boo=>/foo;/meh=>/heh",
                      "/boo/lol"),
            "!");
  EXPECT_EQ(BindShown("/bah/humbug=>/$/inet/127.1/8080;/foo=>/bah | /$/fail;/foo=>/bar;"
                      "/boo=>/foo;/meh=>/heh",
                      "/boo/humbug"),
            "/$/inet/127.1/8080");
}

class OverrideTest : public ::testing::Test {
 protected:
  std::string BindWithLocal(absl::string_view local, absl::string_view path) {
    const auto base = Indexed("/svc=>/#/prod");
    const auto local_dtab = Indexed(local);
    absl::StatusOr<BindResult> r =
        OfflineInterpreter().Bind(DtabView{base.get(), local_dtab.get()}, P(path));
    if (!r.ok()) {
      return absl::StrCat("error: ", r.status().message());
    }
    return Show(r->tree);
  }
};

TEST_F(OverrideTest, LocalDentryOverridesBase) {
  EXPECT_EQ(BindWithLocal("/svc/foo=>/#/staging", "/svc/foo/x"), "/#/staging/x");
  EXPECT_EQ(BindWithLocal("/svc/foo=>/#/staging", "/svc/bar"), "/#/prod/bar");
}

TEST_F(OverrideTest, LocalNegFallsBackToBase) {
  EXPECT_EQ(BindWithLocal("/svc/foo=>~", "/svc/foo"), "/#/prod/foo");
}

TEST_F(OverrideTest, LocalFailBlocksBase) {
  EXPECT_EQ(BindWithLocal("/svc/foo=>!", "/svc/foo"), "!");
  EXPECT_EQ(BindWithLocal("/svc/foo=>!", "/svc/bar"), "/#/prod/bar");
}

TEST_F(OverrideTest, LocalUnresolvableFallsBackToBase) {
  EXPECT_EQ(BindWithLocal("/svc/foo=>/nowhere", "/svc/foo"), "/#/prod/foo");
}

TEST_F(OverrideTest, EmptyLocalLeavesBaseUnchanged) {
  EXPECT_EQ(BindWithLocal("", "/svc/foo"), "/#/prod/foo");
}

TEST(InterpreterTest, BindIsIndependentOfLayeringOfTheSameEntries) {
  const auto a = Indexed("/svc=>/#/a;/x=>/svc");
  const auto b = Indexed("/svc/foo=>/#/b | /svc/bar");
  const auto flat = Indexed("/svc=>/#/a;/x=>/svc;/svc/foo=>/#/b | /svc/bar");
  const Interpreter interpreter = OfflineInterpreter();
  for (const char* p : {"/x/foo", "/svc/foo/z", "/svc/q"}) {
    absl::StatusOr<BindResult> layered = interpreter.Bind(DtabView{a.get(), b.get()}, P(p));
    absl::StatusOr<BindResult> single = interpreter.Bind(DtabView{flat.get()}, P(p));
    ASSERT_TRUE(layered.ok() && single.ok()) << p;
    EXPECT_EQ(Show(layered->tree), Show(single->tree)) << p;
  }
}

}  // namespace
}  // namespace dtabd::dtab
