// Per-request dtab overrides: the values of `l5d-ctx-dtab` and `l5d-dtab`
// (shared/reference/linkerd-behaviour.md section 2.3), combined as all
// l5d-ctx-dtab entries then all l5d-dtab entries (user entries win), checked
// against the router's OverridePolicy, parsed once and cached by their bytes.
//
// Thread-safety: OverrideCache is NOT thread-safe: each io thread owns one
// (so the hot path takes no lock). Override values are immutable and
// shareable.
#ifndef DTABD_PROXY_OVERRIDE_H_
#define DTABD_PROXY_OVERRIDE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "dtab/indexed_dtab.h"
#include "dtab/path.h"
#include "proxy/config.h"

namespace dtabd::proxy {

// A checked, parsed override. When `status` is not OK the request is
// answered 400 with its message and `dtab` is empty.
struct Override {
  explicit Override(absl::Status rejected) : status(std::move(rejected)), dtab(dtab::Dtab()) {}
  Override(dtab::Dtab combined, std::string shown)
      : dtab(std::move(combined)), text(std::move(shown)) {}

  absl::Status status;
  dtab::IndexedDtab dtab;
  // The combined dtab's text, forwarded as l5d-ctx-dtab (empty: not sent).
  std::string text;
};

// The policy in checkable form (prefixes parsed once).
struct CompiledPolicy {
  size_t max_bytes = 8192;
  size_t max_dentries = 100;
  std::vector<dtab::Path> allowed_prefixes;  // empty: any prefix

  // REQUIRES: every allowed prefix parses (ParseConfig checked it).
  static CompiledPolicy From(const OverridePolicy& policy);
};

// Checks and parses ctx ++ user against `policy` (no cache). Errors
// (InvalidArgument, in Override::status):
//   "l5d-dtab: <parser message>" / "l5d-ctx-dtab: <parser message>";
//   "override is N bytes, over the limit of M";
//   "override has N dentries, over the limit of M";
//   "override dentry 'P=>D': prefix P is not allowed (allowed: /a, /b)".
std::shared_ptr<const Override> ParseOverride(absl::Span<const absl::string_view> ctx,
                                              absl::Span<const absl::string_view> user,
                                              const CompiledPolicy& policy);

// A direct-mapped cache of parsed overrides keyed by the header bytes and
// the policy (a policy's address identifies it: policies live as long as
// their router). A hit costs one hash of the bytes and one comparison, and
// allocates nothing. Bounded: `slots` entries.
class OverrideCache {
 public:
  explicit OverrideCache(size_t slots = 1024);

  std::shared_ptr<const Override> Get(absl::Span<const absl::string_view> ctx,
                                      absl::Span<const absl::string_view> user,
                                      const CompiledPolicy& policy);

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  struct Entry {
    const CompiledPolicy* policy = nullptr;
    size_t ctx_count = 0;
    // Every value as its 4-byte length then its bytes (ctx first, then
    // user): unambiguous even when values hold NUL bytes.
    std::string key;
    std::shared_ptr<const Override> value;
  };

  std::vector<Entry> entries_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_OVERRIDE_H_
