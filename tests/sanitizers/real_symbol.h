// ThreadSanitizer build only: the lookup both interposing shims use to reach the
// library's own definition of a symbol they define in the executable.
#ifndef DTABD_TESTS_SANITIZERS_REAL_SYMBOL_H_
#define DTABD_TESTS_SANITIZERS_REAL_SYMBOL_H_

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

namespace dtabd::tsan {

// The next definition of `symbol` after the executable's (dlsym RTLD_NEXT). Aborts, naming
// `shim`, when there is none, so that a library that changed (another abseil inline
// namespace, another gRPC) fails loudly rather than running silently unannotated.
template <typename Fn>
Fn RealSymbol(const char* shim, const char* symbol) {
  void* f = dlsym(RTLD_NEXT, symbol);
  if (f == nullptr) {
    std::fprintf(stderr, "%s: %s not found: %s\n", shim, symbol, dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(f);
}

}  // namespace dtabd::tsan

#endif  // DTABD_TESTS_SANITIZERS_REAL_SYMBOL_H_
