// Parsing cost of dtab text with ParseDtab: the one-dentry override a
// request carries in its l5d-dtab header (parsed per request, so it is on
// the hot path), and a 1000-entry base dtab (control thread; informational).
//
// Goal (issue): median override parse <= 1 us. benchmarks/run.sh checks it.
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "dtab/parser.h"

namespace dtabd::bench {
namespace {

void ParseLoop(benchmark::State& state, absl::string_view text, size_t want_size) {
  absl::StatusOr<dtab::Dtab> check = dtab::ParseDtab(text);
  if (!check.ok() || check->size() != want_size) {
    state.SkipWithError("benchmark input does not parse to the expected size");
    return;
  }
  const uint64_t allocations = AllocationCount();
  for (auto _ : state) {
    absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(text);
    benchmark::DoNotOptimize(d);
  }
  ReportAllocations(state, allocations);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(text.size()));
}

// `/host/world => /srv/world-v2;`: a typical per-request override.
void BM_ParseOverrideHeader(benchmark::State& state) { ParseLoop(state, kOverrideDtab, 1); }
BENCHMARK(BM_ParseOverrideHeader);

// The base dtab of the bind benchmark with 1000 unrelated dentries (1003
// in all, alternatives and weighted unions included).
void BM_ParseBaseDtab(benchmark::State& state) {
  const std::string text = BaseDtabText(state.range(0));
  ParseLoop(state, text, static_cast<size_t>(state.range(0)) + 3);
  state.counters["dentries"] = static_cast<double>(state.range(0) + 3);
}
BENCHMARK(BM_ParseBaseDtab)->Arg(1000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dtabd::bench

BENCHMARK_MAIN();
