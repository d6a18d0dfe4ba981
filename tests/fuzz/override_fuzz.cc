// Fuzzes the proxy's override-header handling: ParseOverride and
// OverrideCache (proxy/override.h). The input is a policy selector byte,
// then header values separated by '\x01'; a value whose first byte is even
// is an l5d-ctx-dtab value, else an l5d-dtab value (that byte is dropped).
// Properties:
//   - ParseOverride accepts exactly when the byte total and dentry count are
//     within the policy, every value parses as a dtab and every prefix lies
//     below an allowed one; its dtab is then ctx values ++ user values, and
//     its text re-parses to that dtab (weights as printed);
//   - a rejection has an empty dtab and one of the documented messages;
//   - OverrideCache::Get returns what ParseOverride does; a second Get of the
//     same values hits and returns the same object; a one-slot cache asked
//     for other values (ctx and user swapped) misses and answers for those;
//   - IndexedDtab::Matches agrees with a linear scan of the dtab.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "dtab/dtab.h"
#include "dtab/indexed_dtab.h"
#include "dtab/parser.h"
#include "proxy/override.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using dtabd::proxy::CompiledPolicy;
using dtabd::proxy::Override;
using dtabd::proxy::OverrideCache;
using Values = std::vector<absl::string_view>;

const CompiledPolicy& Policy(uint8_t selector) {
  static const CompiledPolicy* const kPolicies = [] {
    auto* p = new CompiledPolicy[3];
    // [0]: the defaults (8 KiB, 100 dentries, any prefix).
    p[1].max_bytes = 96;
    p[1].max_dentries = 3;
    p[2].allowed_prefixes = {*dtabd::dtab::ParsePath("/svc"),
                             *dtabd::dtab::ParsePath("/s/x")};
    return p;
  }();
  return kPolicies[selector % 3];
}

bool Within(const dtabd::dtab::Prefix& prefix, const dtabd::dtab::Path& allowed) {
  if (prefix.size() < allowed.size()) return false;
  for (size_t i = 0; i < allowed.size(); ++i) {
    if (prefix.elems()[i].wildcard || prefix.elems()[i].label != allowed.label(i)) return false;
  }
  return true;
}

void CheckSame(const Override& a, const Override& b, absl::string_view what) {
  FUZZ_CHECK(a.status == b.status && a.text == b.text && a.dtab.dtab() == b.dtab.dtab(),
             absl::StrCat(what, ": '", a.status.ToString(), "' / '", a.text, "' vs '",
                          b.status.ToString(), "' / '", b.text, "'"));
}

// A path each dentry's prefix matches (wildcards filled in), plus one more
// label; and the empty path.
std::vector<dtabd::dtab::Path> ProbePaths(const dtabd::dtab::Dtab& dtab) {
  std::vector<dtabd::dtab::Path> out = {dtabd::dtab::Path()};
  for (const dtabd::dtab::Dentry& d : dtab.dentries()) {
    dtabd::dtab::Path p;
    for (const dtabd::dtab::PrefixElem& e : d.prefix.elems()) {
      p.Append(e.wildcard ? "w" : e.label);
    }
    p.Append("x");
    out.push_back(p);
  }
  return out;
}

void CheckIndex(const dtabd::dtab::IndexedDtab& indexed) {
  const dtabd::dtab::Dtab& dtab = indexed.dtab();
  for (const dtabd::dtab::Path& path : ProbePaths(dtab)) {
    dtabd::dtab::MatchList expected;
    for (size_t i = dtab.size(); i > 0; --i) {
      if (dtab.dentries()[i - 1].prefix.Matches(path)) expected.push_back(i - 1);
    }
    FUZZ_CHECK(indexed.Matches(path) == expected,
               absl::StrCat("IndexedDtab::Matches(", path.Show(), ") differs from a scan of ",
                            dtab.Show()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const CompiledPolicy& policy = Policy(data[0]);
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  Values ctx;
  Values user;
  if (!rest.empty()) {
    for (absl::string_view piece : absl::StrSplit(rest, '\x01')) {
      if (piece.empty()) {
        user.push_back(piece);
        continue;
      }
      (static_cast<uint8_t>(piece[0]) % 2 == 0 ? ctx : user).push_back(piece.substr(1));
    }
  }

  const std::shared_ptr<const Override> parsed = dtabd::proxy::ParseOverride(ctx, user, policy);
  FUZZ_CHECK(parsed != nullptr, "ParseOverride returned null");

  // The expected outcome, computed independently.
  size_t bytes = 0;
  for (absl::string_view v : ctx) bytes += v.size();
  for (absl::string_view v : user) bytes += v.size();
  bool expect_ok = bytes <= policy.max_bytes;
  dtabd::dtab::Dtab expected;
  for (const Values* part : {&ctx, &user}) {
    for (absl::string_view v : *part) {
      if (!expect_ok) break;
      absl::StatusOr<dtabd::dtab::Dtab> d = dtabd::dtab::ParseDtab(v);
      if (!d.ok()) {
        expect_ok = false;
        break;
      }
      expected.Append(*d);
      if (expected.size() > policy.max_dentries) expect_ok = false;
    }
  }
  if (expect_ok && !policy.allowed_prefixes.empty()) {
    for (const dtabd::dtab::Dentry& d : expected.dentries()) {
      bool ok = false;
      for (const dtabd::dtab::Path& allowed : policy.allowed_prefixes) ok |= Within(d.prefix, allowed);
      if (!ok) expect_ok = false;
    }
  }
  FUZZ_CHECK(parsed->status.ok() == expect_ok,
             absl::StrCat("ParseOverride says '", parsed->status.ToString(), "'"));
  if (parsed->status.ok()) {
    FUZZ_CHECK(parsed->dtab.dtab() == expected, "override dtab is not ctx ++ user");
    FUZZ_CHECK(parsed->text == expected.Show(), "override text is not the dtab's Show");
    absl::StatusOr<dtabd::dtab::Dtab> reparsed = dtabd::dtab::ParseDtab(parsed->text);
    FUZZ_CHECK(reparsed.ok(), "override text does not re-parse: " + parsed->text);
    FUZZ_CHECK(reparsed->Show() == parsed->text, "override text is not canonical");
    CheckIndex(parsed->dtab);
  } else {
    const absl::string_view m = parsed->status.message();
    FUZZ_CHECK(parsed->status.code() == absl::StatusCode::kInvalidArgument,
               parsed->status.ToString());
    FUZZ_CHECK(parsed->dtab.dtab().empty() && parsed->text.empty(), "rejected override has a dtab");
    FUZZ_CHECK(absl::StartsWith(m, "l5d-dtab: ") || absl::StartsWith(m, "l5d-ctx-dtab: ") ||
                   absl::StartsWith(m, "override is ") || absl::StartsWith(m, "override has ") ||
                   absl::StartsWith(m, "override dentry '"),
               std::string(m));
  }

  OverrideCache cache(16);  // small: a fresh cache per input
  const std::shared_ptr<const Override> first = cache.Get(ctx, user, policy);
  CheckSame(*first, *parsed, "cache miss vs ParseOverride");
  FUZZ_CHECK(cache.misses() == 1 && cache.hits() == 0, "first Get did not miss");
  const std::shared_ptr<const Override> second = cache.Get(ctx, user, policy);
  FUZZ_CHECK(second == first && cache.hits() == 1, "second Get did not hit the same object");

  // One slot: every lookup lands on the same entry.
  OverrideCache tiny(1);
  const std::shared_ptr<const Override> a = tiny.Get(ctx, user, policy);
  CheckSame(*a, *parsed, "one-slot cache vs ParseOverride");
  if (ctx != user) {
    const std::shared_ptr<const Override> swapped = tiny.Get(user, ctx, policy);
    FUZZ_CHECK(tiny.misses() == 2, "swapped ctx/user hit the cache");
    CheckSame(*swapped, *dtabd::proxy::ParseOverride(user, ctx, policy), "swapped values");
  }
  return 0;
}
