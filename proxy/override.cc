#include "proxy/override.h"

#include <cstring>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dtab/dtab.h"
#include "dtab/parser.h"

namespace dtabd::proxy {
namespace {

std::shared_ptr<const Override> Rejected(absl::Status status) {
  return std::make_shared<const Override>(std::move(status));
}

// The bytes a value's length takes in an OverrideCache key.
constexpr size_t kLengthBytes = sizeof(uint32_t);

// Whether a dentry prefix lies below `allowed` (every element of `allowed`
// matched literally, in order; a wildcard never counts as a match).
bool PrefixWithin(const dtab::Prefix& prefix, const dtab::Path& allowed) {
  if (prefix.size() < allowed.size()) return false;
  for (size_t i = 0; i < allowed.size(); ++i) {
    const dtab::PrefixElem& e = prefix.elems()[i];
    if (e.wildcard || e.label != allowed.label(i)) return false;
  }
  return true;
}

}  // namespace

CompiledPolicy CompiledPolicy::From(const OverridePolicy& policy) {
  CompiledPolicy out;
  out.max_bytes = policy.max_bytes;
  out.max_dentries = policy.max_dentries;
  for (const std::string& p : policy.allowed_prefixes) {
    absl::StatusOr<dtab::Path> path = dtab::ParsePath(p);
    if (path.ok()) out.allowed_prefixes.push_back(*std::move(path));
  }
  return out;
}

std::shared_ptr<const Override> ParseOverride(absl::Span<const absl::string_view> ctx,
                                              absl::Span<const absl::string_view> user,
                                              const CompiledPolicy& policy) {
  size_t bytes = 0;
  for (absl::string_view v : ctx) bytes += v.size();
  for (absl::string_view v : user) bytes += v.size();
  if (bytes > policy.max_bytes) {
    return Rejected(absl::InvalidArgumentError(
        absl::StrCat("override is ", bytes, " bytes, over the limit of ", policy.max_bytes)));
  }
  dtab::Dtab combined;
  auto add = [&](absl::string_view header, absl::string_view value) -> absl::Status {
    absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(value);
    if (!d.ok()) return absl::InvalidArgumentError(absl::StrCat(header, ": ", d.status().message()));
    combined.Append(*d);
    if (combined.size() > policy.max_dentries) {
      return absl::InvalidArgumentError(absl::StrCat("override has ", combined.size(),
                                                     " dentries, over the limit of ",
                                                     policy.max_dentries));
    }
    return absl::OkStatus();
  };
  for (absl::string_view v : ctx) {
    if (absl::Status s = add("l5d-ctx-dtab", v); !s.ok()) return Rejected(std::move(s));
  }
  for (absl::string_view v : user) {
    if (absl::Status s = add("l5d-dtab", v); !s.ok()) return Rejected(std::move(s));
  }
  if (!policy.allowed_prefixes.empty()) {
    for (const dtab::Dentry& d : combined.dentries()) {
      bool ok = false;
      for (const dtab::Path& allowed : policy.allowed_prefixes) {
        if (PrefixWithin(d.prefix, allowed)) {
          ok = true;
          break;
        }
      }
      if (!ok) {
        return Rejected(absl::InvalidArgumentError(absl::StrCat(
            "override dentry '", d.Show(), "': prefix ", d.prefix.Show(),
            " is not allowed (allowed: ",
            absl::StrJoin(policy.allowed_prefixes, ", ",
                          [](std::string* out, const dtab::Path& p) { p.ShowTo(out); }),
            ")")));
      }
    }
  }
  std::string text = combined.Show();
  return std::make_shared<const Override>(std::move(combined), std::move(text));
}

OverrideCache::OverrideCache(size_t slots) : entries_(slots == 0 ? 1 : slots) {}

std::shared_ptr<const Override> OverrideCache::Get(absl::Span<const absl::string_view> ctx,
                                                   absl::Span<const absl::string_view> user,
                                                   const CompiledPolicy& policy) {
  size_t h = absl::HashOf(&policy, ctx.size());
  size_t key_size = 0;
  for (absl::string_view v : ctx) {
    h = absl::HashOf(h, v);
    key_size += kLengthBytes + v.size();
  }
  for (absl::string_view v : user) {
    h = absl::HashOf(h, v);
    key_size += kLengthBytes + v.size();
  }
  Entry& e = entries_[h % entries_.size()];
  if (e.value != nullptr && e.policy == &policy && e.ctx_count == ctx.size() &&
      e.key.size() == key_size) {
    size_t pos = 0;
    bool same = true;
    for (absl::Span<const absl::string_view> part : {ctx, user}) {
      for (absl::string_view v : part) {
        const uint32_t len = static_cast<uint32_t>(v.size());
        if (pos + kLengthBytes + v.size() > e.key.size() ||
            std::memcmp(e.key.data() + pos, &len, kLengthBytes) != 0 ||
            absl::string_view(e.key).substr(pos + kLengthBytes, v.size()) != v) {
          same = false;
          break;
        }
        pos += kLengthBytes + v.size();
      }
      if (!same) break;
    }
    if (same) {
      ++hits_;
      return e.value;
    }
  }
  ++misses_;
  e.policy = &policy;
  e.ctx_count = ctx.size();
  e.key.clear();
  e.key.reserve(key_size);
  for (absl::Span<const absl::string_view> part : {ctx, user}) {
    for (absl::string_view v : part) {
      const uint32_t len = static_cast<uint32_t>(v.size());
      e.key.append(reinterpret_cast<const char*>(&len), kLengthBytes);
      e.key.append(v.data(), v.size());
    }
  }
  e.value = ParseOverride(ctx, user, policy);
  return e.value;
}

}  // namespace dtabd::proxy
