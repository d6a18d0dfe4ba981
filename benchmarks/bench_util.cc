#include "benchmarks/bench_util.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include "absl/strings/str_cat.h"

namespace dtabd::bench {
namespace {

std::atomic<uint64_t> g_allocations{0};

// The dentry `k` places from the end of the unrelated part.
void AppendUnrelated(int64_t k, std::string* out) {
  const int64_t j = k / 3;
  switch (k % 3) {
    case 0:
      absl::StrAppend(out, "/svc/app", j, " => /host/app", j, ";\n");
      break;
    case 1:
      absl::StrAppend(out, "/host/app", j, " => 0.9 * /srv/app", j, " & 0.1 * /srv/app", j,
                      "-canary;\n");
      break;
    default:
      absl::StrAppend(out, "/srv/app", j, " => /#/io.l5d.fs/app", j, "-prod | /#/io.l5d.fs/app",
                      j, ";\n");
      break;
  }
}

}  // namespace

std::string UnrelatedDtabText(int64_t n) {
  std::string out;
  for (int64_t i = 0; i < n; ++i) {
    AppendUnrelated(n - 1 - i, &out);
  }
  return out;
}

std::string BaseDtabText(int64_t unrelated) {
  std::string out;
  const int64_t middle = unrelated / 2;
  for (int64_t i = 0; i < unrelated; ++i) {
    if (i == middle) {
      out += kHelloWorldDtab;
    }
    AppendUnrelated(unrelated - 1 - i, &out);
  }
  if (unrelated == 0) {
    out += kHelloWorldDtab;
  }
  return out;
}

uint64_t AllocationCount() { return g_allocations.load(std::memory_order_relaxed); }

}  // namespace dtabd::bench

// Counting replacements of the global allocation functions. libstdc++'s
// array and nothrow forms call these; aligned forms are left alone (they
// free through std::free too, so the plain delete below stays compatible).
void* operator new(std::size_t size) {
  dtabd::bench::g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) {
    size = 1;
  }
  void* p = std::malloc(size);
  if (p == nullptr) {
    std::abort();  // out of memory; the style guide forbids throwing
  }
  return p;
}

void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
