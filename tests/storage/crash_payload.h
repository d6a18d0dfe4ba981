// The deterministic dtab text that tests/storage/crash_writer.cc writes as
// version `version` of namespace `ns`, shared with crash_test.cc so the test
// can check every stored version, acknowledged or not.
//
// Thread-safety: a pure function.
#ifndef DTABD_TESTS_STORAGE_CRASH_PAYLOAD_H_
#define DTABD_TESTS_STORAGE_CRASH_PAYLOAD_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace dtabd::storage::testing {

// The namespaces the crash writer writes to.
inline constexpr const char* kCrashNamespaces[] = {"crash-a", "crash-b", "crash_c", "crash-D"};

// A valid dtab naming `ns` and `version`, with 0..23 extra dentries so
// versions differ in size (pages split, the WAL grows unevenly). Contains
// no spaces or newlines.
inline std::string CrashPayload(absl::string_view ns, int64_t version) {
  std::string out = absl::StrCat("/svc=>/srv/", ns, "/v", version);
  const int64_t extra = (version * 7919 + static_cast<int64_t>(ns.size()) * 31) % 24;
  for (int64_t i = 0; i < extra; ++i) {
    absl::StrAppend(&out, ";/x", i, "=>/y/", ns, "/", version, "/", i * version);
  }
  return out;
}

}  // namespace dtabd::storage::testing

#endif  // DTABD_TESTS_STORAGE_CRASH_PAYLOAD_H_
