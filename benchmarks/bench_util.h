// Helpers shared by the dtab micro-benchmarks: realistic dtab text and a
// heap-allocation counter reported as a per-iteration benchmark counter.
//
// Thread-safety: the benchmarks run single-threaded; the allocation counter
// is a relaxed atomic, so counts from other threads would be included.
#ifndef DTABD_BENCHMARKS_BENCH_UTIL_H_
#define DTABD_BENCHMARKS_BENCH_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "benchmark/benchmark.h"

namespace dtabd::bench {

// linkerd's hello-world dtab (its linkerd.yaml example), in this order.
inline constexpr char kHelloWorldDtab[] =
    "/srv => /#/io.l5d.fs;\n"
    "/host => /srv;\n"
    "/svc => /host;\n";

// The per-request override (an l5d-dtab header) used with the base dtab.
inline constexpr char kOverrideDtab[] = "/host/world => /srv/world-v2;";

// Text of a base dtab: `unrelated` dentries for other services with the
// three hello-world dentries spliced in at the middle. The unrelated
// dentries come in per-application chains, counted from the end so that the
// LAST dentry is always `/svc/app0 => ...`:
//   /srv/appJ  => /#/io.l5d.fs/appJ-prod | /#/io.l5d.fs/appJ        (k%3 == 2)
//   /host/appJ => 0.9 * /srv/appJ & 0.1 * /srv/appJ-canary         (k%3 == 1)
//   /svc/appJ  => /host/appJ                                        (k%3 == 0)
// where k is the distance from the end and J = k/3. The /svc, /host and
// /srv buckets thus each hold about unrelated/3 dentries.
std::string BaseDtabText(int64_t unrelated);

// A dtab of `n` dentries of the shapes above (no hello-world part).
std::string UnrelatedDtabText(int64_t n);

// Number of operator new calls (all sizes, this process) since start.
uint64_t AllocationCount();

// Reports allocations per iteration as the counter "allocs" (a
// kAvgIterations counter). Call with the count read before the timing loop.
inline void ReportAllocations(benchmark::State& state, uint64_t allocations_before) {
  state.counters["allocs"] =
      benchmark::Counter(static_cast<double>(AllocationCount() - allocations_before),
                         benchmark::Counter::kAvgIterations);
}

}  // namespace dtabd::bench

#endif  // DTABD_BENCHMARKS_BENCH_UTIL_H_
