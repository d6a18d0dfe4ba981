#include "proxy/router.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dtab/interpreter.h"
#include "dtab/parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/balancer.h"
#include "proxy/config.h"
#include "proxy/fs_namer.h"
#include "proxy/override.h"

namespace dtabd::proxy {
namespace {

using ::testing::HasSubstr;

// A fixed instant: no wall clock in these tests.
const absl::Time kNow = absl::FromUnixSeconds(1700000000);

dtab::Dtab MustParse(absl::string_view text) {
  absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(text);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *std::move(d) : dtab::Dtab();
}

dtab::Path MustPath(absl::string_view text) {
  absl::StatusOr<dtab::Path> p = dtab::ParsePath(text);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : dtab::Path();
}

RouterConfig Config() {
  RouterConfig c;
  c.label = "test";
  c.static_dtab = "";
  return c;
}

// A router without configured namers, over its own registry.
class RouterTest : public ::testing::Test {
 protected:
  RouterTest() : router_(Config(), std::make_shared<const dtab::Interpreter>(), {}, &registry_) {}

  void Publish(absl::string_view dtab_text) {
    router_.table().Publish(
        std::make_shared<const RoutingTable>(RoutingTable::State::kStatic, MustParse(dtab_text)));
  }

  absl::StatusOr<Route> Bind(absl::string_view name, const Override& override = NoOverride()) {
    return router_.Bind(MustPath(name), router_.table().Get(), override, random_, kNow);
  }

  static const Override& NoOverride() {
    static const Override* const kNone = new Override(dtab::Dtab(), std::string());
    return *kNone;
  }

  EndpointState* EndpointOf(absl::string_view host, uint16_t port) {
    absl::StatusOr<EndpointState*> e = registry_.Get(host, port);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *e : nullptr;
  }

  EndpointRegistry registry_;
  Router router_;
  FastRandom random_{12345};
};

void ExpectError(const absl::StatusOr<Route>& r, absl::StatusCode code, absl::string_view message) {
  ASSERT_FALSE(r.ok()) << r->client.Show();
  EXPECT_EQ(r.status().code(), code) << r.status();
  EXPECT_EQ(r.status().message(), message);
}

TEST_F(RouterTest, InetLeafRoutesToItsEndpoint) {
  Publish("/svc/world => /$/inet/127.0.0.1/8081;");
  absl::StatusOr<Route> r = Bind("/svc/world");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_NE(r->endpoint, nullptr);
  EXPECT_EQ(r->endpoint->ip(), "127.0.0.1");
  EXPECT_EQ(r->endpoint->port(), 8081);
  EXPECT_EQ(r->endpoint, EndpointOf("127.0.0.1", 8081));
  EXPECT_EQ(r->client.Show(), "/$/inet/127.0.0.1/8081");
  EXPECT_TRUE(r->residual.empty());
}

TEST_F(RouterTest, ResidualIsShownSeparately) {
  Publish("/svc => /$/inet/127.1/9000;");
  absl::StatusOr<Route> r = Bind("/svc/world/a/b");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->endpoint->ip(), "127.0.0.1");
  EXPECT_EQ(r->endpoint->port(), 9000);
  EXPECT_EQ(r->client.Show(), "/$/inet/127.1/9000");
  EXPECT_EQ(r->residual.Show(), "/world/a/b");
}

TEST_F(RouterTest, InetNamesAndPortOnlyFormsResolve) {
  Publish(
      "/svc/named => /$/inet/localhost/8080; /svc/port => /$/inet/7070;"
      "/svc/fixed => /$/fixedinet/127.0.0.1/6060;");
  absl::StatusOr<Route> named = Bind("/svc/named");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->endpoint, EndpointOf("127.0.0.1", 8080));
  EXPECT_EQ(named->client.Show(), "/$/inet/localhost/8080");
  absl::StatusOr<Route> port = Bind("/svc/port");
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(port->endpoint, EndpointOf("127.0.0.1", 7070));
  EXPECT_EQ(port->client.Show(), "/$/inet/7070");
  absl::StatusOr<Route> fixed = Bind("/svc/fixed");
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ(fixed->endpoint, EndpointOf("127.0.0.1", 6060));
}

TEST_F(RouterTest, BadInetAddressesAreNotFound) {
  Publish("/svc/zero => /$/inet/127.0.0.1/0; /svc/unknown => /$/inet/no-such-host.invalid/80;");
  ExpectError(Bind("/svc/zero"), absl::StatusCode::kNotFound,
              "bad inet address /$/inet/127.0.0.1/0");
  absl::StatusOr<Route> r = Bind("/svc/unknown");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no-such-host.invalid"));
}

constexpr char kWorldDtab[] =
    "/srv/world-v1 => /$/inet/127.0.0.1/8081;"
    "/srv/world-v2 => /$/inet/127.0.0.1/8082;"
    "/host => /srv;"
    "/host/world => /srv/world-v1;"
    "/svc => /host;";

TEST_F(RouterTest, OverrideRedirectsTheRequest) {
  Publish(kWorldDtab);
  absl::StatusOr<Route> base = Bind("/svc/world");
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_EQ(base->endpoint->port(), 8081);

  const std::vector<absl::string_view> user = {"/host/world => /srv/world-v2;"};
  std::shared_ptr<const Override> o = ParseOverride({}, user, router_.policy());
  ASSERT_TRUE(o->status.ok()) << o->status;
  absl::StatusOr<Route> staged = Bind("/svc/world", *o);
  ASSERT_TRUE(staged.ok()) << staged.status();
  EXPECT_EQ(staged->endpoint->port(), 8082);
  EXPECT_EQ(staged->client.Show(), "/$/inet/127.0.0.1/8082");

  // Other names are untouched by the override.
  absl::StatusOr<Route> other = Bind("/svc/world-v1", *o);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->endpoint->port(), 8081);
}

TEST_F(RouterTest, OverrideMayRouteANameTheBaseCannot) {
  Publish(kWorldDtab);
  ExpectError(Bind("/svc/hello"), absl::StatusCode::kNotFound, "name binds to nothing (~)");
  std::shared_ptr<const Override> o = ParseOverride(
      {}, std::vector<absl::string_view>{"/srv/hello => /$/inet/127.0.0.1/7000"}, router_.policy());
  absl::StatusOr<Route> r = Bind("/svc/hello", *o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->endpoint->port(), 7000);
}

TEST_F(RouterTest, WeightedUnionSplitsByWeight) {
  Publish("/svc/world => 3 * /$/inet/127.0.0.1/8081 & 1 * /$/inet/127.0.0.1/8082;");
  EndpointState* v1 = EndpointOf("127.0.0.1", 8081);
  EndpointState* v2 = EndpointOf("127.0.0.1", 8082);
  int to_v1 = 0;
  int to_v2 = 0;
  for (int i = 0; i < 4000; ++i) {
    absl::StatusOr<Route> r = Bind("/svc/world");
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->endpoint == v1) {
      ++to_v1;
    } else if (r->endpoint == v2) {
      ++to_v2;
    } else {
      FAIL() << "unexpected endpoint " << r->endpoint->key();
    }
  }
  // Binomial: standard deviation about 27.
  EXPECT_NEAR(to_v1, 3000, 150);
  EXPECT_NEAR(to_v2, 1000, 150);
}

TEST_F(RouterTest, NestedUnionsSplitByTheProductOfWeights) {
  Publish(
      "/svc/world => 1 * /$/inet/127.0.0.1/1 & 1 * /svc/inner;"
      "/svc/inner => 1 * /$/inet/127.0.0.1/2 & 3 * /$/inet/127.0.0.1/3;");
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < 8000; ++i) {
    absl::StatusOr<Route> r = Bind("/svc/world");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_GE(r->endpoint->port(), 1);
    ASSERT_LE(r->endpoint->port(), 3);
    ++counts[r->endpoint->port()];
  }
  EXPECT_NEAR(counts[1], 4000, 200);
  EXPECT_NEAR(counts[2], 1000, 150);
  EXPECT_NEAR(counts[3], 3000, 200);
}

TEST_F(RouterTest, NamesThatBindToNothingAreNotFound) {
  Publish("/svc/fail => !; /svc/empty => $; /svc/nil => /$/nil; /svc/neg => ~;");
  ExpectError(Bind("/nosuch/world"), absl::StatusCode::kNotFound, "name binds to nothing (~)");
  ExpectError(Bind("/svc/neg"), absl::StatusCode::kNotFound, "name binds to nothing (~)");
  ExpectError(Bind("/svc/fail"), absl::StatusCode::kNotFound, "name fails (!)");
  ExpectError(Bind("/svc/empty"), absl::StatusCode::kNotFound, "name binds to an empty set ($)");
  ExpectError(Bind("/svc/nil"), absl::StatusCode::kNotFound, "name binds to an empty set ($)");
}

TEST_F(RouterTest, BindErrorsPassThrough) {
  Publish("/svc/bad => /$/nosuch;");
  absl::StatusOr<Route> r = Bind("/svc/bad");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("unknown system namer"));
}

TEST_F(RouterTest, LeafWithoutANamerIsNotFound) {
  Publish("/svc => /#/io.l5d.fs;");
  // The interpreter has no namer at /#: the name is Neg.
  ExpectError(Bind("/svc/world"), absl::StatusCode::kNotFound, "name binds to nothing (~)");
}

TEST_F(RouterTest, PendingTableIsUnavailable) {
  RouterConfig c = Config();
  c.static_dtab.reset();
  c.ns = "outgoing";
  Router router(c, std::make_shared<const dtab::Interpreter>(), {}, &registry_);
  const RoutingTable& table = router.table().Get();
  EXPECT_EQ(table.state, RoutingTable::State::kPending);
  EXPECT_EQ(table.Describe(), "no version yet");
  absl::StatusOr<Route> r =
      router.Bind(dtab::Path({"svc", "world"}), table, NoOverride(), random_, kNow);
  ExpectError(r, absl::StatusCode::kUnavailable, "no dtab yet for namespace 'outgoing'");

  // A published version is visible to the next bind.
  router.table().Publish(std::make_shared<const RoutingTable>(
      RoutingTable::State::kCurrent, MustParse("/svc => /$/inet/127.0.0.1/1"), 3, kNow));
  const RoutingTable& current = router.table().Get();
  EXPECT_EQ(current.Describe(), "version 3");
  EXPECT_EQ(current.text, "/svc=>/$/inet/127.0.0.1/1");
  EXPECT_TRUE(router.Bind(dtab::Path({"svc", "world"}), current, NoOverride(), random_, kNow).ok());
}

TEST(RoutingTableTest, DescribesEachState) {
  EXPECT_EQ(RoutingTable(RoutingTable::State::kStatic, dtab::Dtab()).Describe(), "static");
  EXPECT_EQ(RoutingTable(RoutingTable::State::kPending, dtab::Dtab()).Describe(), "no version yet");
  EXPECT_EQ(RoutingTable(RoutingTable::State::kAbsent, dtab::Dtab()).Describe(),
            "namespace absent");
  EXPECT_EQ(RoutingTable(RoutingTable::State::kCurrent, dtab::Dtab(), 7).Describe(), "version 7");
}

TEST(RouterEndpointTest, EachRegistryGetsItsOwnEndpoints) {
  // Two routers with two registries, one after the other on this thread:
  // the second must route to its own registry's state, not to a state
  // remembered from the first (destroyed) registry.
  FastRandom random(1);
  const Override none{dtab::Dtab(), std::string()};
  const dtab::Path name({"svc", "world"});
  for (int round = 0; round < 3; ++round) {
    auto registry = std::make_unique<EndpointRegistry>();
    auto router = std::make_unique<Router>(Config(), std::make_shared<const dtab::Interpreter>(),
                                           std::vector<FsMount>{}, registry.get());
    router->table().Publish(std::make_shared<const RoutingTable>(
        RoutingTable::State::kStatic, MustParse("/svc/world => /$/inet/127.0.0.1/8081")));
    absl::StatusOr<Route> r = router->Bind(name, router->table().Get(), none, random, kNow);
    ASSERT_TRUE(r.ok()) << r.status();
    const std::vector<const EndpointState*> all = registry->All();
    ASSERT_EQ(all.size(), 1u) << "round " << round;
    EXPECT_EQ(r->endpoint, all[0]) << "round " << round;
  }
}

TEST(RouterEndpointTest, TwoLiveRegistriesKeepTheirOwnEndpoints) {
  FastRandom random(1);
  const Override none{dtab::Dtab(), std::string()};
  const dtab::Path name({"svc", "world"});
  EndpointRegistry a;
  EndpointRegistry b;
  Router ra(Config(), std::make_shared<const dtab::Interpreter>(), {}, &a);
  Router rb(Config(), std::make_shared<const dtab::Interpreter>(), {}, &b);
  for (Router* r : {&ra, &rb}) {
    r->table().Publish(std::make_shared<const RoutingTable>(
        RoutingTable::State::kStatic, MustParse("/svc/world => /$/inet/127.0.0.1/8081")));
  }
  absl::StatusOr<Route> via_a = ra.Bind(name, ra.table().Get(), none, random, kNow);
  absl::StatusOr<Route> via_b = rb.Bind(name, rb.table().Get(), none, random, kNow);
  ASSERT_TRUE(via_a.ok()) << via_a.status();
  ASSERT_TRUE(via_b.ok()) << via_b.status();
  EXPECT_EQ(via_a->endpoint, *a.Get("127.0.0.1", 8081));
  EXPECT_EQ(via_b->endpoint, *b.Get("127.0.0.1", 8081));
  EXPECT_NE(via_a->endpoint, via_b->endpoint);
}

// ---------------------------------------------------------------------------
// Leaves of the io.l5d.fs namer

class FsRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/router_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    root_ = dir;
    WriteFile("world-v1", "127.0.0.1 8081\n127.0.0.1 8082\n");
    WriteFile("world-v2", "localhost 9091 * 3\n127.0.0.1 9092 * 1\n");
    WriteFile("empty", "# nothing here yet\n");
    FsNamer::Options options;
    options.root_dir = root_;
    options.prefix = mount_;
    options.logger = [](absl::string_view) {};
    absl::StatusOr<std::unique_ptr<FsNamer>> namer = FsNamer::Start(std::move(options));
    ASSERT_TRUE(namer.ok()) << namer.status();
    std::shared_ptr<const FsNamer> shared = *std::move(namer);
    auto interpreter = std::make_shared<const dtab::Interpreter>(
        std::vector<dtab::NamerBinding>{{mount_, shared}});
    router_ = std::make_unique<Router>(Config(), interpreter,
                                       std::vector<FsMount>{{mount_, shared}}, &registry_);
    router_->table().Publish(std::make_shared<const RoutingTable>(
        RoutingTable::State::kStatic,
        MustParse("/srv => /#/io.l5d.fs; /host => /srv; /svc => /host;")));
  }

  void TearDown() override {
    router_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  void WriteFile(const std::string& name, absl::string_view content) {
    const std::string path = absl::StrCat(root_, "/", name);
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ASSERT_EQ(close(fd), 0);
  }

  absl::StatusOr<Route> Bind(absl::string_view name) {
    static const Override* const kNone = new Override(dtab::Dtab(), std::string());
    return router_->Bind(MustPath(name), router_->table().Get(), *kNone, random_, kNow);
  }

  EndpointState* EndpointOf(absl::string_view host, uint16_t port) {
    absl::StatusOr<EndpointState*> e = registry_.Get(host, port);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *e : nullptr;
  }

  const dtab::Path mount_{"#", "io.l5d.fs"};
  std::string root_;
  EndpointRegistry registry_;
  std::unique_ptr<Router> router_;
  FastRandom random_{777};
};

TEST_F(FsRouterTest, FileLeafRoutesToOneOfItsEndpoints) {
  EndpointState* a = EndpointOf("127.0.0.1", 8081);
  EndpointState* b = EndpointOf("127.0.0.1", 8082);
  int to_a = 0;
  int to_b = 0;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<Route> r = Bind("/svc/world-v1");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->client.Show(), "/#/io.l5d.fs/world-v1");
    EXPECT_TRUE(r->residual.empty());
    ASSERT_TRUE(r->endpoint == a || r->endpoint == b) << r->endpoint->key();
    ++(r->endpoint == a ? to_a : to_b);
  }
  // Nothing in flight: ties go to either.
  EXPECT_GT(to_a, 0);
  EXPECT_GT(to_b, 0);
}

TEST_F(FsRouterTest, PicksTheLessLoadedEndpoint) {
  EndpointState* a = EndpointOf("127.0.0.1", 8081);
  EndpointState* b = EndpointOf("127.0.0.1", 8082);
  a->BeginRequest();
  a->BeginRequest();
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<Route> r = Bind("/svc/world-v1");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->endpoint, b);
  }
  a->EndRequest();
  a->EndRequest();
}

TEST_F(FsRouterTest, FileWeightsCountAsLoadWeights) {
  // localhost * 3 against 127.0.0.1 * 1, nothing in flight: the heavier
  // wins every pair.
  EndpointState* heavy = EndpointOf("127.0.0.1", 9091);
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<Route> r = Bind("/svc/world-v2");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->endpoint, heavy);
    EXPECT_EQ(r->client.Show(), "/#/io.l5d.fs/world-v2");
  }
}

TEST_F(FsRouterTest, LabelsAfterTheFileAreTheResidual) {
  absl::StatusOr<Route> r = Bind("/svc/world-v1/api/v2");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->client.Show(), "/#/io.l5d.fs/world-v1");
  EXPECT_EQ(r->residual.Show(), "/api/v2");
}

TEST_F(FsRouterTest, MissingOrEmptyFilesAreNotFound) {
  ExpectError(Bind("/svc/missing"), absl::StatusCode::kNotFound, "name binds to nothing (~)");
  ExpectError(Bind("/svc/empty"), absl::StatusCode::kNotFound,
              "no endpoints for /#/io.l5d.fs/empty");
}

TEST_F(FsRouterTest, UnionOfFileAndInetLeaves) {
  router_->table().Publish(std::make_shared<const RoutingTable>(
      RoutingTable::State::kStatic,
      MustParse("/svc/world => 1 * /#/io.l5d.fs/world-v2 & 1 * /$/inet/127.0.0.1/7000;")));
  int to_fs = 0;
  int to_inet = 0;
  for (int i = 0; i < 2000; ++i) {
    absl::StatusOr<Route> r = Bind("/svc/world");
    ASSERT_TRUE(r.ok()) << r.status();
    ++(r->endpoint->port() == 7000 ? to_inet : to_fs);
  }
  EXPECT_NEAR(to_fs, 1000, 120);
  EXPECT_NEAR(to_inet, 1000, 120);
}

}  // namespace
}  // namespace dtabd::proxy
