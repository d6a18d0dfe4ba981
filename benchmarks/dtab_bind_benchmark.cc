// Per-request binding cost: Interpreter::Bind of one name against a base
// dtab of the hello-world dentries plus N unrelated ones, with a one-dentry
// override layer (an l5d-dtab header), through the offline IdentityNamer at
// /#. Only Bind is timed; parsing and indexing happen once per N.
//
// Goals (issue): median Bind <= 500 ns, and N=100000 within 1.5x of N=10.
// benchmarks/run.sh checks them.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "dtab/indexed_dtab.h"
#include "dtab/interpreter.h"
#include "dtab/namer.h"
#include "dtab/parser.h"

namespace dtabd::bench {
namespace {

using dtab::BindResult;
using dtab::DtabView;
using dtab::IndexedDtab;
using dtab::Interpreter;
using dtab::Path;

// Everything a bind needs, built once per base size and kept for the whole
// run (the 100000-entry dtab takes a while to parse and index).
struct BindFixture {
  std::unique_ptr<IndexedDtab> base;
  std::unique_ptr<IndexedDtab> override_layer;
  DtabView view;
  Interpreter interpreter;
};

Interpreter OfflineInterpreter() {
  std::vector<dtab::NamerBinding> namers;
  namers.push_back({Path({"#"}), std::make_shared<dtab::IdentityNamer>()});
  return Interpreter(std::move(namers));
}

std::unique_ptr<IndexedDtab> MustIndex(absl::string_view text) {
  absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(text);
  if (!d.ok()) {
    return nullptr;
  }
  return std::make_unique<IndexedDtab>(*std::move(d));
}

// Returns the fixture for `unrelated` extra dentries, or null if the
// generated text does not parse (a bug in this file).
const BindFixture* GetFixture(int64_t unrelated) {
  static auto* cache = new std::map<int64_t, std::unique_ptr<BindFixture>>();
  auto it = cache->find(unrelated);
  if (it != cache->end()) {
    return it->second.get();
  }
  auto f = std::make_unique<BindFixture>(BindFixture{
      MustIndex(BaseDtabText(unrelated)), MustIndex(kOverrideDtab), DtabView(),
      OfflineInterpreter()});
  if (f->base == nullptr || f->override_layer == nullptr) {
    return nullptr;
  }
  f->view = DtabView{f->base.get(), f->override_layer.get()};
  return cache->emplace(unrelated, std::move(f)).first->second.get();
}

// Times Bind(view, path) and checks once, before timing, that the result
// shows as `want`.
void RunBind(benchmark::State& state, const Path& path, const std::string& want) {
  const BindFixture* f = GetFixture(state.range(0));
  if (f == nullptr) {
    state.SkipWithError("generated dtab does not parse");
    return;
  }
  absl::StatusOr<BindResult> check = f->interpreter.Bind(f->view, path);
  const std::string got = check.ok() ? dtab::Show(check->tree) : check.status().ToString();
  if (got != want) {
    state.SkipWithError(absl::StrCat(path.Show(), " bound to '", got, "', want '", want, "'")
                            .c_str());
    return;
  }
  const uint64_t allocations = AllocationCount();
  for (auto _ : state) {
    absl::StatusOr<BindResult> r = f->interpreter.Bind(f->view, path);
    benchmark::DoNotOptimize(r);
  }
  ReportAllocations(state, allocations);
  state.counters["dentries"] = static_cast<double>(f->base->dtab().size());
}

// /svc/world -> /host/world -> (override) /srv/world-v2
//            -> /#/io.l5d.fs/world-v2: four lookups, one through the
// override layer, the /svc bucket holding about N/3 unrelated dentries.
void BM_BindHelloWorld(benchmark::State& state) {
  RunBind(state, Path({"svc", "world"}), "/#/io.l5d.fs/world-v2");
}
BENCHMARK(BM_BindHelloWorld)->Arg(10)->Arg(1000)->Arg(100000);

// What /svc/app0 binds to with `unrelated` extra dentries. From 6 on, the
// whole app0 chain comes after the hello-world dentries; below, hello-world
// dentries that come later win where they match too.
std::string WantLastRule(int64_t unrelated) {
  if (unrelated == 1) {  // only /svc/app0 => /host/app0
    return "/#/io.l5d.fs/app0";
  }
  if (unrelated < 6) {  // /srv => /#/io.l5d.fs comes after /srv/app0
    return "0.90*/#/io.l5d.fs/app0 & 0.10*/#/io.l5d.fs/app0-canary";
  }
  return "0.90*/#/io.l5d.fs/app0-prod & 0.10*/#/io.l5d.fs/app0-canary";
}

// /svc/app0 matches the LAST dentry of the base (and /svc => /host):
// /svc/app0 -> /host/app0 -> 0.9 * /srv/app0 & 0.1 * /srv/app0-canary, each
// branch -> /#/io.l5d.fs/...; six lookups, two-way Alts and one Union.
// Envoy-style sweep of the table size.
void BM_BindLastRule(benchmark::State& state) {
  RunBind(state, Path({"svc", "app0"}), WantLastRule(state.range(0)));
}
BENCHMARK(BM_BindLastRule)->RangeMultiplier(4)->Range(1, 1 << 16)->Arg(100000);

// A name that no dentry and no namer matches: one lookup, result Neg.
void BM_BindNoMatch(benchmark::State& state) {
  RunBind(state, Path({"nosuch", "world"}), "~");
}
BENCHMARK(BM_BindNoMatch)->Arg(10)->Arg(1000)->Arg(100000);

// One step only (DtabView::Lookup of /host/world: override + base), to
// separate lookup cost from the rest of Bind. Informational.
void BM_LookupHostWorld(benchmark::State& state) {
  const BindFixture* f = GetFixture(state.range(0));
  if (f == nullptr) {
    state.SkipWithError("generated dtab does not parse");
    return;
  }
  const Path path({"host", "world"});
  const uint64_t allocations = AllocationCount();
  for (auto _ : state) {
    dtab::NameTree<Path> t = f->view.Lookup(path);
    benchmark::DoNotOptimize(t);
  }
  ReportAllocations(state, allocations);
}
BENCHMARK(BM_LookupHostWorld)->Arg(10)->Arg(1000)->Arg(100000);

}  // namespace
}  // namespace dtabd::bench

BENCHMARK_MAIN();
