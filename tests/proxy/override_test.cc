#include "proxy/override.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dtab/indexed_dtab.h"
#include "dtab/parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/config.h"

namespace dtabd::proxy {
namespace {

using ::testing::IsEmpty;
using Values = std::vector<absl::string_view>;

CompiledPolicy AnyPrefix() { return CompiledPolicy::From(OverridePolicy{}); }

CompiledPolicy Allowing(std::vector<std::string> prefixes) {
  OverridePolicy p;
  p.allowed_prefixes = std::move(prefixes);
  return CompiledPolicy::From(p);
}

void ExpectRejected(const Override& o, absl::string_view message) {
  EXPECT_EQ(o.status.code(), absl::StatusCode::kInvalidArgument) << o.status;
  EXPECT_EQ(o.status.message(), message);
  EXPECT_TRUE(o.dtab.dtab().empty());
  EXPECT_THAT(o.text, IsEmpty());
}

// The parser's message for `text` (which must not parse).
std::string ParserMessage(absl::string_view text) {
  absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(text);
  EXPECT_FALSE(d.ok()) << text;
  return d.ok() ? std::string() : std::string(d.status().message());
}

// What the override alone makes of `path` (Finagle's lookup, latest first).
std::string LookupIn(const Override& o, const dtab::Path& path) {
  const dtab::DtabView view{&o.dtab};
  return dtab::Show(view.Lookup(path));
}

// ---------------------------------------------------------------------------
// CompiledPolicy

TEST(CompiledPolicyTest, CopiesLimitsAndParsesPrefixes) {
  OverridePolicy p;
  p.max_bytes = 123;
  p.max_dentries = 7;
  p.allowed_prefixes = {"/host", "/svc/a"};
  const CompiledPolicy c = CompiledPolicy::From(p);
  EXPECT_EQ(c.max_bytes, 123u);
  EXPECT_EQ(c.max_dentries, 7u);
  EXPECT_EQ(c.allowed_prefixes,
            (std::vector<dtab::Path>{dtab::Path({"host"}), dtab::Path({"svc", "a"})}));
}

// ---------------------------------------------------------------------------
// ParseOverride

TEST(ParseOverrideTest, NoHeadersIsTheEmptyOverride) {
  std::shared_ptr<const Override> o = ParseOverride({}, {}, AnyPrefix());
  ASSERT_NE(o, nullptr);
  EXPECT_TRUE(o->status.ok());
  EXPECT_TRUE(o->dtab.dtab().empty());
  EXPECT_THAT(o->text, IsEmpty());
}

TEST(ParseOverrideTest, CombinesCtxThenUserSoUserEntriesWin) {
  const Values ctx = {"/host/world => /srv/world-v1"};
  const Values user = {"/host/world => /srv/world-v2"};
  std::shared_ptr<const Override> o = ParseOverride(ctx, user, AnyPrefix());
  ASSERT_TRUE(o->status.ok()) << o->status;
  ASSERT_EQ(o->dtab.dtab().size(), 2u);
  EXPECT_EQ(o->dtab.dentry(0).Show(), "/host/world=>/srv/world-v1");
  EXPECT_EQ(o->dtab.dentry(1).Show(), "/host/world=>/srv/world-v2");
  // Later entries are looked up first: the user's wins.
  EXPECT_EQ(LookupIn(*o, dtab::Path({"host", "world"})), "/srv/world-v2 | /srv/world-v1");
  EXPECT_EQ(o->text, "/host/world=>/srv/world-v1;/host/world=>/srv/world-v2");
}

TEST(ParseOverrideTest, KeepsEveryValueOfEachHeaderInOrder) {
  const Values ctx = {"/a => /1;", "/b => /2"};
  const Values user = {"/c => /3; /d => /4;", "/e => /5"};
  std::shared_ptr<const Override> o = ParseOverride(ctx, user, AnyPrefix());
  ASSERT_TRUE(o->status.ok()) << o->status;
  EXPECT_EQ(o->text, "/a=>/1;/b=>/2;/c=>/3;/d=>/4;/e=>/5");
}

TEST(ParseOverrideTest, TextIsTheCanonicalShowOfTheCombinedDtab) {
  const Values user = {"  /host/world  =>  0.5 * /srv/a & 0.5 * /srv/b | /srv/c ; # comment\n"};
  std::shared_ptr<const Override> o = ParseOverride({}, user, AnyPrefix());
  ASSERT_TRUE(o->status.ok()) << o->status;
  EXPECT_EQ(o->text, o->dtab.dtab().Show());
  EXPECT_EQ(o->text, "/host/world=>0.50*/srv/a & 0.50*/srv/b | /srv/c");
  // And it re-parses to the same dtab (it is forwarded as l5d-ctx-dtab).
  absl::StatusOr<dtab::Dtab> again = dtab::ParseDtab(o->text);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, o->dtab.dtab());
}

TEST(ParseOverrideTest, ParseErrorsNameTheHeader) {
  ExpectRejected(*ParseOverride({}, Values{"/a =>"}, AnyPrefix()),
                 absl::StrCat("l5d-dtab: ", ParserMessage("/a =>")));
  ExpectRejected(*ParseOverride(Values{"nonsense"}, {}, AnyPrefix()),
                 absl::StrCat("l5d-ctx-dtab: ", ParserMessage("nonsense")));
  // A bad second value of a header, after good ones.
  ExpectRejected(*ParseOverride(Values{"/a=>/b"}, Values{"/c=>/d", "/e=>"}, AnyPrefix()),
                 absl::StrCat("l5d-dtab: ", ParserMessage("/e=>")));
  // The ctx header is checked first.
  ExpectRejected(*ParseOverride(Values{"x"}, Values{"y"}, AnyPrefix()),
                 absl::StrCat("l5d-ctx-dtab: ", ParserMessage("x")));
}

TEST(ParseOverrideTest, RejectsMoreBytesThanMaxBytes) {
  CompiledPolicy policy = AnyPrefix();
  policy.max_bytes = 12;
  const Values ctx = {"/a=>/b"};                                           // 6 bytes
  EXPECT_TRUE(ParseOverride(ctx, Values{"/c=>/d"}, policy)->status.ok());  // 12: at the limit
  ExpectRejected(*ParseOverride(ctx, Values{"/c=>/dd"}, policy),
                 "override is 13 bytes, over the limit of 12");
  // Counted before parsing: garbage over the limit reports the size.
  ExpectRejected(*ParseOverride({}, Values{"%%%%%%%%%%%%%"}, policy),
                 "override is 13 bytes, over the limit of 12");
}

TEST(ParseOverrideTest, RejectsMoreDentriesThanMaxDentries) {
  CompiledPolicy policy = AnyPrefix();
  policy.max_dentries = 3;
  EXPECT_TRUE(ParseOverride(Values{"/a=>/b"}, Values{"/c=>/d;/e=>/f"}, policy)->status.ok());
  ExpectRejected(*ParseOverride(Values{"/a=>/b"}, Values{"/c=>/d;/e=>/f;/g=>/h"}, policy),
                 "override has 4 dentries, over the limit of 3");
  ExpectRejected(*ParseOverride(Values{"/a=>/b;/a=>/b;/a=>/b;/a=>/b;/a=>/b"}, {}, policy),
                 "override has 5 dentries, over the limit of 3");
}

TEST(ParseOverrideTest, AllowsPrefixesWithinAnAllowedPrefix) {
  const CompiledPolicy policy = Allowing({"/host"});
  EXPECT_TRUE(ParseOverride({}, Values{"/host/world => /srv/world-v2"}, policy)->status.ok());
  EXPECT_TRUE(ParseOverride({}, Values{"/host => /srv"}, policy)->status.ok());
  EXPECT_TRUE(ParseOverride({}, Values{"/host/*/x => /srv"}, policy)->status.ok());
}

TEST(ParseOverrideTest, RejectsPrefixesOutsideTheAllowedOnes) {
  const CompiledPolicy policy = Allowing({"/host"});
  ExpectRejected(*ParseOverride({}, Values{"/srv/world => /srv/world-v2"}, policy),
                 "override dentry '/srv/world=>/srv/world-v2': prefix /srv/world is not allowed "
                 "(allowed: /host)");
  // A label that merely starts with the allowed one is outside it.
  ExpectRejected(*ParseOverride({}, Values{"/hostile => /x"}, policy),
                 "override dentry '/hostile=>/x': prefix /hostile is not allowed "
                 "(allowed: /host)");
  // A wildcard matches /host but also everything else: outside.
  ExpectRejected(*ParseOverride({}, Values{"/* => /x"}, policy),
                 "override dentry '/*=>/x': prefix /* is not allowed (allowed: /host)");
  ExpectRejected(*ParseOverride({}, Values{"/*/world => /x"}, policy),
                 "override dentry '/*/world=>/x': prefix /*/world is not allowed "
                 "(allowed: /host)");
  // The empty prefix matches every path.
  ExpectRejected(*ParseOverride({}, Values{"/ => /x"}, policy),
                 "override dentry '/=>/x': prefix / is not allowed (allowed: /host)");
  // ctx entries are checked as well; the message names the first offender.
  ExpectRejected(*ParseOverride(Values{"/svc => /x"}, Values{"/host/a => /b"}, policy),
                 "override dentry '/svc=>/x': prefix /svc is not allowed (allowed: /host)");
}

TEST(ParseOverrideTest, ListsEveryAllowedPrefixInTheMessage) {
  const CompiledPolicy policy = Allowing({"/host", "/svc/world"});
  EXPECT_TRUE(ParseOverride({}, Values{"/host/a=>/b;/svc/world/x=>/c"}, policy)->status.ok());
  ExpectRejected(*ParseOverride({}, Values{"/host/a=>/b;/svc/hello=>/c"}, policy),
                 "override dentry '/svc/hello=>/c': prefix /svc/hello is not allowed "
                 "(allowed: /host, /svc/world)");
}

// ---------------------------------------------------------------------------
// OverrideCache

TEST(OverrideCacheTest, HitsOnIdenticalBytesAndReturnsTheSameValue) {
  OverrideCache cache;
  const CompiledPolicy policy = AnyPrefix();
  const std::string first = "/host/world => /srv/world-v2;";
  std::shared_ptr<const Override> a = cache.Get({}, Values{first}, policy);
  EXPECT_EQ(cache.hits(), 0u);
  EXPECT_EQ(cache.misses(), 1u);
  ASSERT_TRUE(a->status.ok()) << a->status;
  EXPECT_EQ(a->text, "/host/world=>/srv/world-v2");

  // Same bytes in another buffer.
  const std::string second = first;
  std::shared_ptr<const Override> b = cache.Get({}, Values{second}, policy);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(b, a);
  EXPECT_EQ(cache.Get({}, Values{first}, policy), a);
  EXPECT_EQ(cache.hits(), 2u);
}

TEST(OverrideCacheTest, CachesRejectionsToo) {
  OverrideCache cache;
  const CompiledPolicy policy = AnyPrefix();
  std::shared_ptr<const Override> a = cache.Get({}, Values{"/a =>"}, policy);
  std::shared_ptr<const Override> b = cache.Get({}, Values{"/a =>"}, policy);
  EXPECT_EQ(b, a);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(a->status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(OverrideCacheTest, MissesOnDifferentBytes) {
  OverrideCache cache;
  const CompiledPolicy policy = AnyPrefix();
  std::shared_ptr<const Override> a = cache.Get({}, Values{"/a=>/b"}, policy);
  std::shared_ptr<const Override> b = cache.Get({}, Values{"/a=>/c"}, policy);
  std::shared_ptr<const Override> c = cache.Get({}, Values{"/a=>/b "}, policy);
  EXPECT_EQ(cache.hits(), 0u);
  EXPECT_EQ(cache.misses(), 3u);
  EXPECT_EQ(a->text, "/a=>/b");
  EXPECT_EQ(b->text, "/a=>/c");
  EXPECT_EQ(c->text, "/a=>/b");
  EXPECT_NE(c, a);
}

TEST(OverrideCacheTest, MissesOnADifferentSplitOfTheSameBytes) {
  OverrideCache cache;
  const CompiledPolicy policy = AnyPrefix();
  // The same concatenated bytes, split differently between the headers and
  // between values.
  std::shared_ptr<const Override> a = cache.Get(Values{"/a=>/b;"}, Values{"/c=>/d"}, policy);
  std::shared_ptr<const Override> b = cache.Get({}, Values{"/a=>/b;", "/c=>/d"}, policy);
  std::shared_ptr<const Override> c = cache.Get(Values{"/a=>/b;", "/c=>/d"}, {}, policy);
  std::shared_ptr<const Override> d = cache.Get(Values{"/a=>/b;/c"}, Values{"=>/d"}, policy);
  std::shared_ptr<const Override> e = cache.Get({}, Values{"/a=>/b;/c=>/d"}, policy);
  EXPECT_EQ(cache.hits(), 0u);
  EXPECT_EQ(cache.misses(), 5u);
  for (const auto& o : {a, b, c, e}) {
    ASSERT_TRUE(o->status.ok()) << o->status;
    EXPECT_EQ(o->text, "/a=>/b;/c=>/d");
  }
  EXPECT_FALSE(d->status.ok());

  // Where the split matters, each answer is its own: a bad value is
  // reported under the header it came from.
  std::shared_ptr<const Override> as_ctx = cache.Get(Values{"bad"}, {}, policy);
  std::shared_ptr<const Override> as_user = cache.Get({}, Values{"bad"}, policy);
  EXPECT_EQ(as_ctx->status.message(), absl::StrCat("l5d-ctx-dtab: ", ParserMessage("bad")));
  EXPECT_EQ(as_user->status.message(), absl::StrCat("l5d-dtab: ", ParserMessage("bad")));
  EXPECT_EQ(cache.hits(), 0u);
}

TEST(OverrideCacheTest, MissesOnADifferentSplitInASingleSlot) {
  // With one slot every key shares the slot: only the key comparison can
  // tell the splits apart.
  OverrideCache cache(1);
  const CompiledPolicy policy = AnyPrefix();
  EXPECT_EQ(cache.Get(Values{"bad"}, {}, policy)->status.message(),
            absl::StrCat("l5d-ctx-dtab: ", ParserMessage("bad")));
  EXPECT_EQ(cache.Get({}, Values{"bad"}, policy)->status.message(),
            absl::StrCat("l5d-dtab: ", ParserMessage("bad")));
  EXPECT_EQ(cache.Get({}, Values{"/a=>/b", "/c=>/d"}, policy)->text, "/a=>/b;/c=>/d");
  EXPECT_EQ(cache.Get(Values{"/a=>/b"}, Values{"/c=>/d"}, policy)->text, "/a=>/b;/c=>/d");
  EXPECT_EQ(cache.Get(Values{"/a=>/b", "/c=>/d"}, {}, policy)->text, "/a=>/b;/c=>/d");
  EXPECT_EQ(cache.hits(), 0u);
  EXPECT_EQ(cache.misses(), 5u);
}

TEST(OverrideCacheTest, MissesOnADifferentSplitAtANulByte) {
  // Found by tests/fuzz/override_fuzz: keys used to end each value with a
  // NUL, so a NUL inside a value could pass for a value boundary and a
  // different split of the same bytes hit another split's entry.
  OverrideCache cache(1);
  const CompiledPolicy policy = AnyPrefix();
  const std::string nuls(3, '\0');
  const absl::string_view with_nul("/a=>/b #\0#x", 11);
  std::shared_ptr<const Override> a =
      cache.Get(Values{absl::string_view(nuls)}, Values{""}, policy);
  std::shared_ptr<const Override> b =
      cache.Get(Values{""}, Values{absl::string_view(nuls)}, policy);
  EXPECT_EQ(cache.hits(), 0u);
  EXPECT_TRUE(absl::StartsWith(a->status.message(), "l5d-ctx-dtab: ")) << a->status;
  EXPECT_TRUE(absl::StartsWith(b->status.message(), "l5d-dtab: ")) << b->status;

  // Both splits valid, with different meanings: the comment ends the value.
  std::shared_ptr<const Override> c = cache.Get(Values{with_nul}, Values{"/c=>/d"}, policy);
  std::shared_ptr<const Override> d =
      cache.Get(Values{"/a=>/b #"}, Values{absl::string_view("#x\0/c=>/d", 9)}, policy);
  EXPECT_EQ(cache.hits(), 0u);
  ASSERT_TRUE(c->status.ok()) << c->status;
  ASSERT_TRUE(d->status.ok()) << d->status;
  EXPECT_EQ(c->text, "/a=>/b;/c=>/d");
  EXPECT_EQ(d->text, "/a=>/b");
}

TEST(OverrideCacheTest, MissesOnADifferentPolicyObject) {
  OverrideCache cache;
  const CompiledPolicy any = AnyPrefix();
  const CompiledPolicy same_content = AnyPrefix();
  const CompiledPolicy host_only = Allowing({"/host"});
  const Values user = {"/srv/world => /srv/world-v2"};
  std::shared_ptr<const Override> a = cache.Get({}, user, any);
  ASSERT_TRUE(a->status.ok()) << a->status;
  std::shared_ptr<const Override> b = cache.Get({}, user, same_content);
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_NE(b, a);
  std::shared_ptr<const Override> c = cache.Get({}, user, host_only);
  EXPECT_EQ(cache.misses(), 3u);
  EXPECT_EQ(c->status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.hits(), 0u);
  // Each is cached under its own policy.
  EXPECT_EQ(cache.Get({}, user, any), a);
  EXPECT_EQ(cache.Get({}, user, host_only), c);
  EXPECT_EQ(cache.hits(), 2u);
}

TEST(OverrideCacheTest, IsBoundedAndAnswersCorrectlyWithManyKeys) {
  OverrideCache cache(4);
  const CompiledPolicy policy = AnyPrefix();
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 1000; ++i) {
      const std::string value = absl::StrCat("/svc/s", i, " => /srv/s", i, ";");
      std::shared_ptr<const Override> o = cache.Get({}, Values{value}, policy);
      ASSERT_TRUE(o->status.ok()) << o->status;
      ASSERT_EQ(o->text, absl::StrCat("/svc/s", i, "=>/srv/s", i)) << "round " << round;
    }
  }
  EXPECT_EQ(cache.hits() + cache.misses(), 2000u);
  // Four slots cannot hold 1000 keys: nearly every lookup missed.
  EXPECT_GE(cache.misses(), 1900u);
  // The latest key is still there.
  const std::string last = "/svc/s999 => /srv/s999;";
  const uint64_t hits = cache.hits();
  cache.Get({}, Values{last}, policy);
  EXPECT_EQ(cache.hits(), hits + 1);
}

TEST(OverrideCacheTest, ZeroSlotsStillWorks) {
  OverrideCache cache(0);
  const CompiledPolicy policy = AnyPrefix();
  EXPECT_EQ(cache.Get({}, Values{"/a=>/b"}, policy)->text, "/a=>/b");
  EXPECT_EQ(cache.Get({}, Values{"/a=>/c"}, policy)->text, "/a=>/c");
  EXPECT_EQ(cache.Get({}, Values{"/a=>/c"}, policy)->text, "/a=>/c");
  EXPECT_EQ(cache.hits(), 1u);
}

}  // namespace
}  // namespace dtabd::proxy
