// The proxy's per-request routing work without network I/O: what
// DataPlane's Handle() does between reading a request header and connecting
// upstream (proxy/data_plane.cc):
//   identify (Host: world -> /svc/world), collect the l5d-ctx-dtab and
//   l5d-dtab values, OverrideCache::Get (warm: a hit), router.table().Get(),
//   absl::Now(), Router::Bind (bind against base ++ override, pick a union
//   branch, resolve the io.l5d.fs leaf, p2c over its endpoints).
// The router has a static base dtab of N dentries (linkerd's hello-world
// dtab spliced into N - 3 unrelated ones, as in dtab_bind_benchmark) and an
// io.l5d.fs namer on a temporary directory holding world and world-v2, two
// endpoints each. Setup happens once per N, outside the timing.
//
// Goals (issue): median BM_Route <= 1 us at every N, and allocations per
// request independent of N. benchmarks/run.sh checks them.
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "dtab/interpreter.h"
#include "dtab/parser.h"
#include "proxy/balancer.h"
#include "proxy/config.h"
#include "proxy/fs_namer.h"
#include "proxy/identifier.h"
#include "proxy/override.h"
#include "proxy/router.h"

namespace dtabd::bench {
namespace {

using proxy::EndpointRegistry;
using proxy::FastRandom;
using proxy::FsMount;
using proxy::FsNamer;
using proxy::Identified;
using proxy::Override;
using proxy::OverrideCache;
using proxy::RequestInfo;
using proxy::Route;
using proxy::Router;
using proxy::RoutingTable;

// The request's header fields as a parser would hold them (names as sent).
using Header = std::pair<absl::string_view, absl::string_view>;
// const, not constexpr: GCC 12 with -fsanitize=undefined (make test-asan) cannot evaluate
// string_view(kOverrideDtab) as a constant (its null check on the address of an array).
const std::array<Header, 5> kWithOverride = {{
    {"Host", "world"},
    {"User-Agent", "curl/7.88.1"},
    {"Accept", "*/*"},
    {"l5d-dtab", kOverrideDtab},
    {"Content-Length", "0"},
}};
const std::array<Header, 4> kWithoutOverride = {{
    {"Host", "world"},
    {"User-Agent", "curl/7.88.1"},
    {"Accept", "*/*"},
    {"Content-Length", "0"},
}};

// The endpoint files' directory, made once and removed at exit.
const std::string& EndpointDir() {
  static const std::string* const dir = [] {
    char tmpl[] = "/tmp/proxy_route_benchmark.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      return new std::string();
    }
    std::ofstream(absl::StrCat(tmpl, "/world")) << "127.0.0.1 8081\n127.0.0.1 8082\n";
    std::ofstream(absl::StrCat(tmpl, "/world-v2")) << "127.0.0.1 9091\n127.0.0.1 9092\n";
    return new std::string(tmpl);
  }();
  return *dir;
}

// Everything one request's routing needs, built once per base size and kept
// for the whole run (the 100000-entry dtab takes a while to parse and index).
struct RouteFixture {
  EndpointRegistry registry;
  std::unique_ptr<Router> router;
  OverrideCache overrides;  // as each io thread owns one
  FastRandom random{0x5eed};
};

// Returns the fixture for a base dtab of `dentries` entries, or null (with
// `error` set) if it cannot be built.
RouteFixture* GetFixture(int64_t dentries, std::string* error) {
  static auto* cache = new std::map<int64_t, std::unique_ptr<RouteFixture>>();
  auto it = cache->find(dentries);
  if (it != cache->end()) {
    return it->second.get();
  }
  static std::shared_ptr<const FsNamer> namer = [error]() -> std::shared_ptr<const FsNamer> {
    FsNamer::Options options;
    options.root_dir = EndpointDir();
    options.prefix = dtab::Path({"#", "io.l5d.fs"});
    options.logger = [](absl::string_view) {};
    absl::StatusOr<std::unique_ptr<FsNamer>> started = FsNamer::Start(std::move(options));
    if (!started.ok()) {
      *error = absl::StrCat("fs namer: ", started.status().message());
      return nullptr;
    }
    return std::shared_ptr<const FsNamer>(*std::move(started));
  }();
  if (namer == nullptr) {
    if (error->empty()) {
      *error = "fs namer did not start";
    }
    return nullptr;
  }
  const dtab::Path mount({"#", "io.l5d.fs"});
  auto interpreter =
      std::make_shared<const dtab::Interpreter>(std::vector<dtab::NamerBinding>{{mount, namer}});

  const std::string text = BaseDtabText(dentries - 3);
  absl::StatusOr<dtab::Dtab> base = dtab::ParseDtab(text);
  if (!base.ok() || static_cast<int64_t>(base->size()) != dentries) {
    *error = "generated dtab does not parse to the expected size";
    return nullptr;
  }
  proxy::RouterConfig config;
  config.label = "bench";
  config.static_dtab = text;
  auto f = std::make_unique<RouteFixture>();
  f->router = std::make_unique<Router>(std::move(config), interpreter,
                                       std::vector<FsMount>{{mount, namer}}, &f->registry);
  f->router->table().Publish(
      std::make_shared<const RoutingTable>(RoutingTable::State::kStatic, *std::move(base)));
  return cache->emplace(dentries, std::move(f)).first->second.get();
}

// The per-request work. Returns the route (or the first error).
template <size_t kHeaders>
absl::StatusOr<Route> RouteOnce(RouteFixture& f, const std::array<Header, kHeaders>& headers) {
  static const Override* const kNone = new Override(dtab::Dtab(), std::string());
  const Router& router = *f.router;
  auto header = [&headers](absl::string_view name) -> std::optional<absl::string_view> {
    for (const Header& h : headers) {
      if (absl::EqualsIgnoreCase(h.first, name)) {
        return h.second;
      }
    }
    return std::nullopt;
  };
  const RequestInfo info{"GET", "/greeting", 11, header};
  absl::StatusOr<Identified> id = router.identifier().Identify(info);
  if (!id.ok()) {
    return id.status();
  }
  absl::InlinedVector<absl::string_view, 2> ctx;
  absl::InlinedVector<absl::string_view, 2> user;
  for (const Header& h : headers) {
    if (absl::EqualsIgnoreCase(h.first, "l5d-ctx-dtab")) {
      ctx.push_back(h.second);
    } else if (absl::EqualsIgnoreCase(h.first, "l5d-dtab")) {
      user.push_back(h.second);
    }
  }
  std::shared_ptr<const Override> ovr;
  if (ctx.empty() && user.empty()) {
    ovr = std::shared_ptr<const Override>(std::shared_ptr<const Override>(), kNone);
  } else {
    ovr = f.overrides.Get(ctx, user, router.policy());
  }
  if (!ovr->status.ok()) {
    return ovr->status;
  }
  return f.router->Bind(id->name, f.router->table().Get(), *ovr, f.random, absl::Now());
}

template <size_t kHeaders>
void RunRoute(benchmark::State& state, const std::array<Header, kHeaders>& headers,
              absl::string_view want_client) {
  std::string error;
  RouteFixture* f = GetFixture(state.range(0), &error);
  if (f == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  // Checked once before timing; this also warms the override cache, the
  // endpoint memo and the per-thread snapshots.
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Route> check = RouteOnce(*f, headers);
    if (!check.ok() || check->client.Show() != want_client) {
      state.SkipWithError(absl::StrCat("/svc/world routed to '",
                                       check.ok() ? check->client.Show() : check.status().ToString(),
                                       "', want '", want_client, "'")
                              .c_str());
      return;
    }
  }
  const uint64_t hits = f->overrides.hits();
  const uint64_t allocations = AllocationCount();
  for (auto _ : state) {
    absl::StatusOr<Route> r = RouteOnce(*f, headers);
    benchmark::DoNotOptimize(r);
  }
  ReportAllocations(state, allocations);
  state.counters["dentries"] = static_cast<double>(state.range(0));
  state.counters["cache_hit_rate"] = benchmark::Counter(
      static_cast<double>(f->overrides.hits() - hits), benchmark::Counter::kAvgIterations);
}

// The goal: a request for world carrying the staging override
// `l5d-dtab: /host/world => /srv/world-v2;` (the override cache hits):
// /svc/world -> /host/world -> (override) /srv/world-v2
//            -> /#/io.l5d.fs/world-v2 -> p2c over its two endpoints.
void BM_Route(benchmark::State& state) { RunRoute(state, kWithOverride, "/#/io.l5d.fs/world-v2"); }
BENCHMARK(BM_Route)->Arg(10)->Arg(1000)->Arg(100000);

// The same request without the header (no override: the cache is skipped).
// Informational.
void BM_RouteNoOverride(benchmark::State& state) {
  RunRoute(state, kWithoutOverride, "/#/io.l5d.fs/world");
}
BENCHMARK(BM_RouteNoOverride)->Arg(10)->Arg(1000)->Arg(100000);

}  // namespace
}  // namespace dtabd::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ignored;
  std::filesystem::remove_all(dtabd::bench::EndpointDir(), ignored);
  return 0;
}
