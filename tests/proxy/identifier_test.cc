#include "proxy/identifier.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dtab/parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/config.h"

namespace dtabd::proxy {
namespace {

using ::testing::HasSubstr;

// A request for the identifiers: headers in a std::map keyed by lower-cased
// name (RequestInfo::header compares names case-insensitively).
class FakeRequest {
 public:
  FakeRequest(std::string method, std::string target, int version,
              std::map<std::string, std::string> headers)
      : method_(std::move(method)), target_(std::move(target)), version_(version) {
    for (auto& [name, value] : headers) headers_[absl::AsciiStrToLower(name)] = std::move(value);
  }

  std::optional<absl::string_view> Header(absl::string_view name) const {
    auto it = headers_.find(absl::AsciiStrToLower(name));
    if (it == headers_.end()) {
      return std::nullopt;
    }
    return absl::string_view(it->second);
  }

  // Runs `identifier` on this request. The RequestInfo (and its
  // FunctionRef) lives only for the call.
  absl::StatusOr<Identified> IdentifyWith(const Identifier& identifier) const {
    auto header = [this](absl::string_view name) { return Header(name); };
    const RequestInfo info{method_, target_, version_, header};
    return identifier.Identify(info);
  }

 private:
  std::string method_;
  std::string target_;
  int version_;
  std::map<std::string, std::string> headers_;
};

IdentifierConfig Config(std::string kind) {
  IdentifierConfig c;
  c.kind = std::move(kind);
  return c;
}

Identifier Make(std::vector<IdentifierConfig> configs, dtab::Path prefix = dtab::Path({"svc"})) {
  return Identifier(std::move(configs), std::move(prefix));
}

// The identified name, shown, or the error status as text.
std::string NameOf(const absl::StatusOr<Identified>& id) {
  return id.ok() ? id->name.Show() : id.status().ToString();
}

void ExpectInvalid(const absl::StatusOr<Identified>& id, absl::string_view message) {
  ASSERT_FALSE(id.ok()) << id->name.Show();
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(id.status().message(), message);
}

// ---------------------------------------------------------------------------
// io.l5d.header.token

TEST(HeaderTokenIdentifierTest, DefaultsToHostVerbatimAsOneLabel) {
  const Identifier id = Make({IdentifierConfig{}});
  EXPECT_EQ(NameOf(FakeRequest("GET", "/", 11, {{"Host", "world"}}).IdentifyWith(id)),
            "/svc/world");
  // The port stays and case is kept: one label, not lower-cased.
  absl::StatusOr<Identified> with_port =
      FakeRequest("GET", "/a/b", 11, {{"host", "World.Example:8080"}}).IdentifyWith(id);
  ASSERT_TRUE(with_port.ok()) << with_port.status();
  ASSERT_EQ(with_port->name.size(), 2u);
  EXPECT_EQ(with_port->name.label(1), "World.Example:8080");
  EXPECT_EQ(with_port->name.Show(), "/svc/World.Example:8080");
  EXPECT_FALSE(with_port->rewritten_target.has_value());
}

TEST(HeaderTokenIdentifierTest, KeepsNonShowableBytesInTheLabel) {
  const Identifier id = Make({IdentifierConfig{}});
  absl::StatusOr<Identified> r = FakeRequest("GET", "/", 11, {{"Host", "a/b c"}}).IdentifyWith(id);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->name.size(), 2u);
  EXPECT_EQ(r->name.label(1), "a/b c");
}

TEST(HeaderTokenIdentifierTest, ReadsACustomHeader) {
  IdentifierConfig c;
  c.header = "X-Service";
  const Identifier id = Make({c});
  EXPECT_EQ(NameOf(FakeRequest("GET", "/", 11, {{"Host", "world"}, {"x-service", "hello"}})
                       .IdentifyWith(id)),
            "/svc/hello");
  ExpectInvalid(FakeRequest("GET", "/", 11, {{"Host", "world"}}).IdentifyWith(id),
                "X-Service header is absent");
}

TEST(HeaderTokenIdentifierTest, AbsentOrEmptyHostIsInvalidArgument) {
  const Identifier id = Make({IdentifierConfig{}});
  ExpectInvalid(FakeRequest("GET", "/", 11, {}).IdentifyWith(id), "Host header is absent");
  ExpectInvalid(FakeRequest("GET", "/", 11, {{"Host", ""}}).IdentifyWith(id),
                "Host header is absent");
}

// ---------------------------------------------------------------------------
// io.l5d.methodAndHost

TEST(MethodAndHostIdentifierTest, Http11UsesMethodAndLowerCasedHost) {
  const Identifier id = Make({Config("io.l5d.methodAndHost")});
  EXPECT_EQ(NameOf(FakeRequest("GET", "/a?x=1", 11, {{"Host", "World.Example"}}).IdentifyWith(id)),
            "/svc/1.1/GET/world.example");
  EXPECT_EQ(NameOf(FakeRequest("POST", "/", 11, {{"host", "world"}}).IdentifyWith(id)),
            "/svc/1.1/POST/world");
}

TEST(MethodAndHostIdentifierTest, Http10UsesMethodOnly) {
  const Identifier id = Make({Config("io.l5d.methodAndHost")});
  EXPECT_EQ(NameOf(FakeRequest("GET", "/", 10, {}).IdentifyWith(id)), "/svc/1.0/GET");
  EXPECT_EQ(NameOf(FakeRequest("HEAD", "/", 10, {{"Host", "world"}}).IdentifyWith(id)),
            "/svc/1.0/HEAD");
}

TEST(MethodAndHostIdentifierTest, Http11WithoutHostIsInvalidArgument) {
  const Identifier id = Make({Config("io.l5d.methodAndHost")});
  ExpectInvalid(FakeRequest("GET", "/", 11, {}).IdentifyWith(id),
                "HTTP/1.1 request missing hostname");
  ExpectInvalid(FakeRequest("GET", "/", 11, {{"Host", ""}}).IdentifyWith(id),
                "HTTP/1.1 request missing hostname");
}

// ---------------------------------------------------------------------------
// io.l5d.path

IdentifierConfig PathConfig(int segments, bool consume) {
  IdentifierConfig c = Config("io.l5d.path");
  c.segments = segments;
  c.consume = consume;
  return c;
}

TEST(PathIdentifierTest, TakesOneSegmentByDefault) {
  const Identifier id = Make({Config("io.l5d.path")});
  absl::StatusOr<Identified> r =
      FakeRequest("GET", "/world/greeting?lang=en", 11, {}).IdentifyWith(id);
  EXPECT_EQ(NameOf(r), "/svc/world");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->rewritten_target.has_value());
}

TEST(PathIdentifierTest, TakesTwoSegmentsAndStopsAtTheQuery) {
  const Identifier id = Make({PathConfig(2, false)});
  EXPECT_EQ(NameOf(FakeRequest("GET", "/a/b/c", 11, {}).IdentifyWith(id)), "/svc/a/b");
  EXPECT_EQ(NameOf(FakeRequest("GET", "/a/b?c/d", 11, {}).IdentifyWith(id)), "/svc/a/b");
}

TEST(PathIdentifierTest, ConsumeRewritesTheTargetKeepingTheQuery) {
  const Identifier one = Make({PathConfig(1, true)});
  absl::StatusOr<Identified> r =
      FakeRequest("GET", "/world/greeting?lang=en", 11, {}).IdentifyWith(one);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name.Show(), "/svc/world");
  EXPECT_EQ(r->rewritten_target, "/greeting?lang=en");

  const Identifier two = Make({PathConfig(2, true)});
  r = FakeRequest("GET", "/a/b/c/d?x=1&y=2", 11, {}).IdentifyWith(two);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name.Show(), "/svc/a/b");
  EXPECT_EQ(r->rewritten_target, "/c/d?x=1&y=2");

  // Every segment consumed: the root, still with the query.
  r = FakeRequest("GET", "/world?lang=en", 11, {}).IdentifyWith(one);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rewritten_target, "/?lang=en");
  r = FakeRequest("GET", "/world", 11, {}).IdentifyWith(one);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rewritten_target, "/");
}

TEST(PathIdentifierTest, TooFewSegmentsIsInvalidArgument) {
  const Identifier two = Make({PathConfig(2, false)});
  ExpectInvalid(FakeRequest("GET", "/a", 11, {}).IdentifyWith(two), "not enough segments in path");
  ExpectInvalid(FakeRequest("GET", "/a?b/c", 11, {}).IdentifyWith(two),
                "not enough segments in path");
  const Identifier one = Make({PathConfig(1, false)});
  ExpectInvalid(FakeRequest("GET", "/", 11, {}).IdentifyWith(one), "not enough segments in path");
  ExpectInvalid(FakeRequest("GET", "/?x=1", 11, {}).IdentifyWith(one),
                "not enough segments in path");
}

// ---------------------------------------------------------------------------
// io.l5d.header

TEST(HeaderPathIdentifierTest, ParsesTheDefaultHeaderAsAPath) {
  const Identifier id = Make({Config("io.l5d.header")});
  EXPECT_EQ(NameOf(FakeRequest("GET", "/", 11, {{"l5d-name", "/world/v1"}}).IdentifyWith(id)),
            "/svc/world/v1");
  ExpectInvalid(FakeRequest("GET", "/", 11, {{"Host", "world"}}).IdentifyWith(id),
                "l5d-name header is absent");
}

TEST(HeaderPathIdentifierTest, RejectsAValueThatIsNotAPath) {
  const Identifier id = Make({Config("io.l5d.header")});
  absl::StatusOr<Identified> r =
      FakeRequest("GET", "/", 11, {{"l5d-name", "world"}}).IdentifyWith(id);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  // The parser's message follows, quoting the input.
  const absl::StatusOr<dtab::Path> parsed = dtab::ParsePath("world");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(r.status().message(),
            absl::StrCat("l5d-name header is not a path: ", parsed.status().message()));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("orld'"));
}

TEST(HeaderPathIdentifierTest, ReadsACustomHeader) {
  IdentifierConfig c = Config("io.l5d.header");
  c.header = "X-Dst";
  const Identifier id = Make({c});
  EXPECT_EQ(NameOf(FakeRequest("GET", "/", 11, {{"x-dst", "/a"}}).IdentifyWith(id)), "/svc/a");
  ExpectInvalid(FakeRequest("GET", "/", 11, {{"l5d-name", "/a"}}).IdentifyWith(id),
                "X-Dst header is absent");
}

// ---------------------------------------------------------------------------
// Lists and dst_prefix

TEST(IdentifierListTest, TriesEachInOrder) {
  const Identifier id = Make({Config("io.l5d.header"), IdentifierConfig{}});
  // The first identifies: it wins even though the second would too.
  EXPECT_EQ(
      NameOf(
          FakeRequest("GET", "/", 11, {{"l5d-name", "/a/b"}, {"Host", "world"}}).IdentifyWith(id)),
      "/svc/a/b");
  // The first fails: the second is used.
  EXPECT_EQ(NameOf(FakeRequest("GET", "/", 11, {{"Host", "world"}}).IdentifyWith(id)),
            "/svc/world");
  // A first that fails with a bad value also falls through.
  EXPECT_EQ(
      NameOf(
          FakeRequest("GET", "/", 11, {{"l5d-name", "bad"}, {"Host", "world"}}).IdentifyWith(id)),
      "/svc/world");
}

TEST(IdentifierListTest, AllFailingReportsTheFirstError) {
  const Identifier id = Make({PathConfig(2, false), IdentifierConfig{}});
  ExpectInvalid(FakeRequest("GET", "/a", 11, {}).IdentifyWith(id), "not enough segments in path");
}

TEST(IdentifierListTest, ConsumeAppliesOnlyWhenThePathIdentifierWins) {
  const Identifier id = Make({PathConfig(2, true), IdentifierConfig{}});
  absl::StatusOr<Identified> r =
      FakeRequest("GET", "/a?x", 11, {{"Host", "world"}}).IdentifyWith(id);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name.Show(), "/svc/world");
  EXPECT_FALSE(r->rewritten_target.has_value());
}

TEST(IdentifierTest, UsesTheConfiguredDstPrefix) {
  const Identifier token = Make({IdentifierConfig{}}, dtab::Path({"http", "1.1"}));
  EXPECT_EQ(NameOf(FakeRequest("GET", "/", 11, {{"Host", "world"}}).IdentifyWith(token)),
            "/http/1.1/world");
  const Identifier path = Make({Config("io.l5d.path")}, dtab::Path());
  EXPECT_EQ(NameOf(FakeRequest("GET", "/world", 11, {}).IdentifyWith(path)), "/world");
  const Identifier header = Make({Config("io.l5d.header")}, dtab::Path({"x"}));
  EXPECT_EQ(NameOf(FakeRequest("GET", "/", 11, {{"l5d-name", "/y/z"}}).IdentifyWith(header)),
            "/x/y/z");
}

}  // namespace
}  // namespace dtabd::proxy
