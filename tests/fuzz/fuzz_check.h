// FUZZ_CHECK: the property checks of the fuzz targets. A violated property
// prints what failed (and an optional detail) and aborts, which libFuzzer
// reports as a crash and saves the input.
#ifndef DTABD_TESTS_FUZZ_FUZZ_CHECK_H_
#define DTABD_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(cond, detail)                                                    \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: property violated: %s\n  %s\n", __FILE__,        \
                   __LINE__, #cond, std::string(detail).c_str());                   \
      std::abort();                                                                 \
    }                                                                               \
  } while (false)

#endif  // DTABD_TESTS_FUZZ_FUZZ_CHECK_H_
