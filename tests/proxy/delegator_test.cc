// Tests for proxy/delegator.h: /delegator.json's request forms (POST JSON,
// GET query), its errors in linkerd's shape (linkerd-behaviour.md section
// 2.8), the strict JSON body parser behind it, and the /delegator page's
// required elements.
#include "proxy/delegator.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dtab/dtab.h"
#include "dtab/explain.h"
#include "dtab/indexed_dtab.h"
#include "dtab/interpreter.h"
#include "dtab/namer.h"
#include "dtab/parser.h"
#include "dtab/path.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/server.h"

namespace dtabd::proxy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

dtab::Path P(absl::string_view text) {
  absl::StatusOr<dtab::Path> p = dtab::ParsePath(text);
  EXPECT_TRUE(p.ok()) << p.status() << " parsing " << text;
  return p.ok() ? *std::move(p) : dtab::Path();
}

std::shared_ptr<const dtab::IndexedDtab> Indexed(absl::string_view text) {
  absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(text);
  EXPECT_TRUE(d.ok()) << d.status() << " parsing " << text;
  return std::make_shared<const dtab::IndexedDtab>(d.ok() ? *std::move(d) : dtab::Dtab());
}

constexpr absl::string_view kBase = "/srv => /#/io.l5d.fs ; /host => /srv ; /svc => /host";

// The address a test namer would report for /$/inet/127.1/8080.
std::optional<std::string> TestAddr(const dtab::BoundName& b) {
  if (b.id == P("/$/inet/127.1/8080")) {
    return std::string(R"({"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080}],"meta":{}})");
  }
  return std::nullopt;
}

// One router, "outgoing", whose dtab is `base` and whose namers are the
// offline ones (/#/... binds to itself).
class DelegatorJsonTest : public ::testing::Test {
 protected:
  RouterLookup Routers() const {
    return [this](absl::string_view label) -> std::optional<DelegatorRouter> {
      if (label != "outgoing") {
        return std::nullopt;
      }
      return DelegatorRouter{"outgoing", base_, &interpreter_};
    };
  }

  http::Response Post(absl::string_view body,
                      absl::string_view content_type = "application/json") const {
    http::Request r;
    r.method = "POST";
    r.target = r.path = "/delegator.json";
    if (!content_type.empty()) {
      r.headers.emplace_back("content-type", std::string(content_type));
    }
    r.body = std::string(body);
    return DelegatorJson(r, Routers(), TestAddr);
  }

  http::Response Get(std::vector<std::pair<std::string, std::string>> query) const {
    http::Request r;
    r.method = "GET";
    r.target = r.path = "/delegator.json";
    r.query = std::move(query);
    return DelegatorJson(r, Routers(), TestAddr);
  }

  // What the endpoint must answer for router "outgoing" and `override`.
  std::string Expected(absl::string_view override_dtab, absl::string_view path) const {
    const auto local = Indexed(override_dtab);
    const dtab::DtabView view{base_.get(), local.get()};
    return dtab::ToDelegatorJson(dtab::Explain(interpreter_, view, P(path)), TestAddr);
  }

  std::shared_ptr<const dtab::IndexedDtab> base_ = Indexed(kBase);
  dtab::Interpreter interpreter_ = dtab::Interpreter::Offline();
};

const std::string* HeaderOf(const http::Response& r, absl::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (absl::EqualsIgnoreCase(k, name)) {
      return &v;
    }
  }
  return nullptr;
}

std::string Body(absl::string_view ns, absl::string_view dtab, absl::string_view path) {
  std::string out = "{";
  if (!ns.empty()) {
    out += "\"namespace\":";
    dtab::AppendJsonString(ns, &out);
    out += ",";
  }
  out += "\"dtab\":";
  dtab::AppendJsonString(dtab, &out);
  out += ",\"path\":";
  dtab::AppendJsonString(path, &out);
  out += "}";
  return out;
}

// ---------------------------------------------------------------------------
// Happy paths

TEST_F(DelegatorJsonTest, PostWithOverrideAnswersExactDelegatorJson) {
  base_ = Indexed("/svc => /srv");
  const http::Response r = Post(Body("outgoing", "/srv/world => /$/inet/127.1/8080", "/svc/world"));
  EXPECT_EQ(r.status, 200) << r.body;
  ASSERT_NE(HeaderOf(r, "Content-Type"), nullptr);
  EXPECT_EQ(*HeaderOf(r, "Content-Type"), "application/json");
  EXPECT_EQ(
      r.body,
      R"({"type":"delegate","path":"/svc/world","dentry":null,"delegate":{)"
      R"("type":"delegate","path":"/srv/world","dentry":{"prefix":"/svc","dst":"/srv"},)"
      R"("delegate":{"type":"leaf","path":"/$/inet/127.1/8080",)"
      R"("dentry":{"prefix":"/srv/world","dst":"/$/inet/127.1/8080"},)"
      R"("bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080}],"meta":{}},)"
      R"("id":"/$/inet/127.1/8080","path":"/"}}}})");
  EXPECT_EQ(r.body, Expected("/srv/world => /$/inet/127.1/8080", "/svc/world"));
}

TEST_F(DelegatorJsonTest, PostOverrideRedirectsNameAndMatchesExplain) {
  const http::Response r =
      Post(Body("outgoing", "/host/world => /srv/world-v2;", "/svc/world/hello"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, Expected("/host/world => /srv/world-v2;", "/svc/world/hello"));
  // The override is tried first: its leaf appears before the base route's.
  const size_t v2 = r.body.find(R"("type":"leaf","path":"/#/io.l5d.fs/world-v2/hello")");
  const size_t v1 = r.body.find(R"("type":"leaf","path":"/#/io.l5d.fs/world/hello")");
  ASSERT_NE(v2, std::string::npos) << r.body;
  ASSERT_NE(v1, std::string::npos) << r.body;
  EXPECT_LT(v2, v1);
  EXPECT_THAT(r.body, HasSubstr(R"("dentry":{"prefix":"/host/world","dst":"/srv/world-v2"})"));
  EXPECT_THAT(r.body, HasSubstr(R"("type":"alt","path":"/host/world/hello")"));
}

TEST_F(DelegatorJsonTest, EmptyOverrideUsesBaseDtab) {
  const http::Response r = Post(Body("outgoing", "", "/svc/world"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, Expected("", "/svc/world"));
  EXPECT_THAT(r.body, HasSubstr(R"("type":"leaf","path":"/#/io.l5d.fs/world")"));
}

TEST_F(DelegatorJsonTest, PostDoesNotChangeTheRoutersDtab) {
  const std::string before = base_->dtab().Show();
  ASSERT_EQ(Post(Body("outgoing", "/svc => /$/fail", "/svc/a")).status, 200);
  EXPECT_EQ(base_->dtab().Show(), before);
  EXPECT_EQ(Post(Body("outgoing", "", "/svc/a")).body, Expected("", "/svc/a"));
}

TEST_F(DelegatorJsonTest, GetQueryFormAnswersLikePost) {
  const http::Response get = Get({{"namespace", "outgoing"},
                                  {"path", "/svc/world"},
                                  {"dtab", "/host/world => /srv/world-v2"}});
  EXPECT_EQ(get.status, 200) << get.body;
  EXPECT_EQ(get.body, Post(Body("outgoing", "/host/world => /srv/world-v2", "/svc/world")).body);
}

TEST_F(DelegatorJsonTest, GetWithoutDtabUsesEmptyOverride) {
  const http::Response r = Get({{"namespace", "outgoing"}, {"path", "/svc/world"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, Expected("", "/svc/world"));
}

TEST_F(DelegatorJsonTest, WithoutNamespaceEvaluatesDtabAlone) {
  RouterLookup never = [](absl::string_view label) -> std::optional<DelegatorRouter> {
    ADD_FAILURE() << "router lookup for " << label;
    return std::nullopt;
  };
  http::Request req;
  req.method = "POST";
  req.headers.emplace_back("content-type", "application/json");
  req.body = R"({"dtab":"/svc => /#/io.l5d.fs","path":"/svc/cat"})";
  const http::Response r = DelegatorJson(req, never, nullptr);
  EXPECT_EQ(r.status, 200) << r.body;
  const auto alone = Indexed("/svc => /#/io.l5d.fs");
  EXPECT_EQ(r.body, dtab::ToDelegatorJson(dtab::Explain(
                        dtab::Interpreter::Offline(), dtab::DtabView{alone.get()}, P("/svc/cat"))));
  EXPECT_THAT(r.body, HasSubstr(R"("type":"leaf","path":"/#/io.l5d.fs/cat")"));
  // The router's base (/svc => /host) played no part.
  EXPECT_THAT(r.body, Not(HasSubstr("/host")));
}

TEST_F(DelegatorJsonTest, EmptyNamespaceMeansNoRouter) {
  const http::Response r = Post(Body("", "/a => /$/inet/127.1/8080", "/a"));
  EXPECT_EQ(Post(R"({"namespace":"","dtab":"/a => /$/inet/127.1/8080","path":"/a"})").body, r.body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("type":"leaf")"));
}

TEST_F(DelegatorJsonTest, LeafCarriesRenderedAddr) {
  const http::Response r = Post(Body("outgoing", "/svc/x => /$/inet/127.1/8080", "/svc/x/y"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body,
              HasSubstr(R"("bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1",)"
                        R"("port":8080}],"meta":{}},"id":"/$/inet/127.1/8080","path":"/y"})"));
  // A renderer answering nullopt leaves "addr" out.
  const http::Response other = Post(Body("outgoing", "", "/svc/x"));
  EXPECT_THAT(other.body, HasSubstr(R"("bound":{"id":"/#/io.l5d.fs/x","path":"/"})"));
}

TEST_F(DelegatorJsonTest, AcceptsJsonContentTypeWithParametersAndAnyCase) {
  EXPECT_EQ(Post(Body("outgoing", "", "/svc/a"), "application/json; charset=utf-8").status, 200);
  EXPECT_EQ(Post(Body("outgoing", "", "/svc/a"), "Application/JSON").status, 200);
}

TEST_F(DelegatorJsonTest, DecodesJsonEscapes) {
  // "\/svc\/a" is /svc/a; \n and \t are whitespace between dentries.
  const http::Response r = Post(
      R"( { "namespace" : "outgoing" , "dtab" : "\/svc\/a=>\/$\/inet\/127.1\/8080;\n\t/b=>/c" ,)"
      R"( "path" : "\u002fsvc\u002Fa" } )");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, Expected("/svc/a=>/$/inet/127.1/8080;/b=>/c", "/svc/a"));
}

TEST_F(DelegatorJsonTest, DecodesSurrogatePairsToUtf8) {
  // An invalid dtab's message quotes the decoded text: U+1F600 as UTF-8.
  const http::Response r = Post(R"({"dtab":"\ud83d\ude00","path":"/a"})");
  EXPECT_EQ(r.status, 400);
  absl::StatusOr<dtab::Dtab> expected = dtab::ParseDtab("\xF0\x9F\x98\x80");
  ASSERT_FALSE(expected.ok());
  EXPECT_EQ(r.body, absl::StrCat("Invalid dtab: ", expected.status().message()));
  // \b, \f, \r and \" decode too (and are then rejected by the dtab parser).
  absl::StatusOr<dtab::Dtab> ctl = dtab::ParseDtab("/a=>/b\b\f\r\"\\");
  ASSERT_FALSE(ctl.ok());
  EXPECT_EQ(Post(R"({"dtab":"/a=>/b\b\f\r\"\\","path":"/a"})").body,
            absl::StrCat("Invalid dtab: ", ctl.status().message()));
}

TEST_F(DelegatorJsonTest, IgnoresUnknownStringFields) {
  const http::Response r =
      Post(R"({"namespace":"outgoing","dtab":"","path":"/svc/a","comment":"hi"})");
  EXPECT_EQ(r.status, 200) << r.body;
}

// ---------------------------------------------------------------------------
// Errors

TEST_F(DelegatorJsonTest, UnknownRouterIs404) {
  const http::Response r = Post(Body("nope", "", "/svc/a"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "unknown router: nope");
  EXPECT_EQ(Get({{"namespace", "nope"}, {"path", "/svc/a"}}).status, 404);
}

TEST_F(DelegatorJsonTest, MissingRouterLookupMeansEveryRouterIsUnknown) {
  http::Request req;
  req.method = "GET";
  req.query = {{"namespace", "outgoing"}, {"path", "/a"}};
  EXPECT_EQ(DelegatorJson(req, RouterLookup(), nullptr).status, 404);
}

TEST_F(DelegatorJsonTest, RouterWithoutDtabOrInterpreterIs500) {
  RouterLookup broken = [](absl::string_view label) -> std::optional<DelegatorRouter> {
    return DelegatorRouter{std::string(label), nullptr, nullptr};
  };
  http::Request req;
  req.method = "GET";
  req.query = {{"namespace", "outgoing"}, {"path", "/a"}};
  EXPECT_EQ(DelegatorJson(req, broken, nullptr).status, 500);
}

TEST_F(DelegatorJsonTest, InvalidDtabIs400WithParserMessage) {
  constexpr absl::string_view kBad = "/foo => /bar; /baz";
  absl::StatusOr<dtab::Dtab> parsed = dtab::ParseDtab(kBad);
  ASSERT_FALSE(parsed.ok());
  const http::Response r = Post(Body("outgoing", kBad, "/svc/a"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, absl::StrCat("Invalid dtab: ", parsed.status().message()));
  const http::Response g = Get({{"path", "/svc/a"}, {"dtab", std::string(kBad)}});
  EXPECT_EQ(g.status, 400);
  EXPECT_EQ(g.body, r.body);
}

TEST_F(DelegatorJsonTest, InvalidPathIs400WithParserMessage) {
  const http::Response r = Post(Body("outgoing", "", "invalid-param"));
  EXPECT_EQ(r.status, 400);
  // linkerd's own example message.
  EXPECT_EQ(r.body, "Invalid path: '/' expected but 'i' found at '[i]nvalid-param'");
  const http::Response g = Get({{"namespace", "outgoing"}, {"path", "/a//b"}});
  absl::StatusOr<dtab::Path> parsed = dtab::ParsePath("/a//b");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(g.status, 400);
  EXPECT_EQ(g.body, absl::StrCat("Invalid path: ", parsed.status().message()));
}

TEST_F(DelegatorJsonTest, MalformedJsonBodiesAre400) {
  const std::vector<std::string> bodies = {
      "",
      "   ",
      "{",
      R"({"dtab":"","path":"/a")",                    // truncated
      R"({"dtab":"","path":"/a)",                     // unterminated string
      R"({"dtab":"","path":1})",                      // number
      R"({"dtab":null,"path":"/a"})",                 // null
      R"({"dtab":"","path":["/a"]})",                 // array
      R"({"dtab":"","path":{"p":"/a"}})",             // object
      R"({"dtab":"","path":true})",                   // boolean
      R"({"path":"/a"})",                             // missing dtab
      R"({"namespace":"outgoing","dtab":""})",        // missing path
      R"({})",                                        // missing both
      R"([{"dtab":"","path":"/a"}])",                 // not an object
      R"("/a")",                                      // not an object
      R"({"dtab":"","path":"/a"} x)",                 // trailing data
      R"({"dtab":"","path":"/a"}{})",                 // two objects
      R"({"dtab":"","path":"/a",})",                  // trailing comma
      R"({"dtab":"" "path":"/a"})",                   // missing comma
      R"({"dtab" "","path":"/a"})",                   // missing colon
      R"({dtab:"","path":"/a"})",                     // unquoted key
      R"({'dtab':'','path':'/a'})",                   // single quotes
      R"({"dtab":"","path":"/a\x"})",                 // unknown escape
      R"({"dtab":"","path":"/a\u12"})",               // short \u
      R"({"dtab":"","path":"/a\u12G4"})",             // bad hex
      R"({"dtab":"","path":"/a\ud83d"})",             // lone high surrogate
      R"({"dtab":"","path":"/a\ud83d\u0041"})",       // high + non-low
      R"({"dtab":"","path":"/a\ude00"})",             // lone low surrogate
      R"({"dtab":"","path":"/a","path":"/b"})",       // duplicate key
      "{\"dtab\":\"\",\"path\":\"/a\nb\"}",           // raw control character
      "{\"dtab\":\"\",\"path\":\"/a\"}\v",            // non-JSON whitespace
      "\xEF\xBB\xBF{\"dtab\":\"\",\"path\":\"/a\"}",  // byte order mark
  };
  for (const std::string& body : bodies) {
    const http::Response r = Post(body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(r.body, "Malformed delegation request") << body;
  }
}

TEST_F(DelegatorJsonTest, GetWithoutPathIsMalformed) {
  const http::Response r = Get({{"namespace", "outgoing"}, {"dtab", "/a=>/b"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "Malformed delegation request");
}

TEST_F(DelegatorJsonTest, PostThatIsNotJsonIs415) {
  EXPECT_EQ(Post(Body("outgoing", "", "/svc/a"), "text/plain").status, 415);
  EXPECT_EQ(Post(Body("outgoing", "", "/svc/a"), "application/x-www-form-urlencoded").status, 415);
  EXPECT_EQ(Post(Body("outgoing", "", "/svc/a"), "").status, 415);
}

TEST_F(DelegatorJsonTest, OtherMethodsAre405WithAllow) {
  for (const char* method : {"PUT", "DELETE", "PATCH", "HEAD"}) {
    http::Request req;
    req.method = method;
    req.query = {{"path", "/a"}};
    const http::Response r = DelegatorJson(req, Routers(), TestAddr);
    EXPECT_EQ(r.status, 405) << method;
    ASSERT_NE(HeaderOf(r, "Allow"), nullptr) << method;
    EXPECT_EQ(*HeaderOf(r, "Allow"), "GET, POST");
  }
}

// ---------------------------------------------------------------------------
// The page

TEST(DelegatorPageTest, IsOneSelfContainedDocument) {
  const absl::string_view page = DelegatorPageHtml();
  EXPECT_THAT(std::string(page), StartsWith("<!doctype html>"));
  EXPECT_TRUE(absl::EndsWith(absl::StripTrailingAsciiWhitespace(page), "</html>"));
  EXPECT_EQ(page.find("</html>"), page.rfind("</html>"));
  // No external assets.
  EXPECT_EQ(page.find("<script src"), absl::string_view::npos);
  EXPECT_EQ(page.find("<link"), absl::string_view::npos);
  EXPECT_EQ(page.find("http://"), absl::string_view::npos);
  EXPECT_EQ(page.find("https://"), absl::string_view::npos);
}

TEST(DelegatorPageTest, HasTheElementsBrowserTestsUse) {
  const std::string page(DelegatorPageHtml());
  for (const char* id :
       {"router", "base-dtab", "override", "path", "go", "error", "tree", "not-saved"}) {
    const std::string attr = absl::StrCat("id=\"", id, "\"");
    EXPECT_THAT(page, HasSubstr(attr)) << id;
    EXPECT_EQ(page.find(attr), page.rfind(attr)) << id << " appears twice";
  }
  EXPECT_THAT(page, HasSubstr("<select id=\"router\""));
  EXPECT_THAT(page, HasSubstr("<textarea id=\"override\""));
  EXPECT_THAT(page, HasSubstr("placeholder=\"/host/world => /srv/world-v2;\""));
  EXPECT_THAT(page, HasSubstr("<input id=\"path\" type=\"text\" value=\"/svc/\""));
  EXPECT_THAT(page, HasSubstr(">Delegate</button>"));
}

TEST(DelegatorPageTest, SaysNothingIsSaved) {
  const std::string page(DelegatorPageHtml());
  EXPECT_THAT(page, HasSubstr("Nothing typed here is saved:</strong> the override applies to "
                              "this page only; the router's dtab is unchanged."));
}

TEST(DelegatorPageTest, TalksToTheAdminEndpointsAndMarksTheChosenBranch) {
  const std::string page(DelegatorPageHtml());
  EXPECT_THAT(page, HasSubstr("fetch('dtabs')"));
  EXPECT_THAT(page, HasSubstr("fetch('delegator.json'"));
  EXPECT_THAT(page, HasSubstr("'Content-Type': 'application/json'"));
  EXPECT_THAT(page, HasSubstr("location.hash"));
  EXPECT_THAT(page, HasSubstr("' chosen'"));
  EXPECT_THAT(page, HasSubstr("'data-type'"));
  EXPECT_THAT(page, HasSubstr("'data-path'"));
  EXPECT_THAT(page, HasSubstr("class=\"legend\""));
}

}  // namespace
}  // namespace dtabd::proxy
