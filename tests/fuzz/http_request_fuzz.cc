// Fuzzes the proxy's HTTP request path up to routing: the bytes go through a
// Beast request_parser set up as the data plane's (buffer_body, header limit
// 16 KiB = DataPlane::Options::max_header_bytes, no body limit), the body is
// drained in small chunks, and a parsed header is identified with every
// identifier kind and its override taken through an OverrideCache. That
// sequence lives inside DataPlane::Impl::Handle (proxy/data_plane.cc), which
// has no entry point without sockets, so this target makes the same public
// calls in the same order, including the obs-fold check on the consumed
// header bytes (a folded request is answered 400 there, so it stops here).
// Properties:
//   - no crash, leak or hang, whatever the bytes (smuggling shapes included);
//   - HasObsFold agrees with a plain search for "\n " and "\n\t" in the
//     bytes the parser consumed for the header;
//   - an identified name starts with the dst prefix, has no empty label and
//     its Show re-parses to it; io.l5d.header names are the prefix ++ the
//     header's path; io.l5d.path with consume rewrites to a '/' target;
//   - the override seen is the one of ALL l5d-ctx-dtab then ALL l5d-dtab
//     fields, in order, and a second cache lookup hits the same object.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "boost/asio/buffer.hpp"
#include "boost/beast/http.hpp"
#include "dtab/parser.h"
#include "proxy/identifier.h"
#include "proxy/override.h"
#include "proxy/request_framing.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace bhttp = boost::beast::http;
using dtabd::proxy::IdentifierConfig;
using dtabd::proxy::Identifier;

constexpr uint32_t kMaxHeaderBytes = 16 * 1024;  // DataPlane::Options default

absl::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

const dtabd::dtab::Path& DstPrefix() {
  static const dtabd::dtab::Path* const p = new dtabd::dtab::Path({"svc"});
  return *p;
}

IdentifierConfig Config(const char* kind, int segments = 1, bool consume = false) {
  IdentifierConfig c;
  c.kind = kind;
  c.segments = segments;
  c.consume = consume;
  return c;
}

template <typename Request>
void CheckIdentifiers(const Request& req) {
  static const std::vector<Identifier>* const kIdentifiers = [] {
    auto* v = new std::vector<Identifier>;
    for (IdentifierConfig c :
         {Config("io.l5d.header.token"), Config("io.l5d.header"), Config("io.l5d.methodAndHost"),
          Config("io.l5d.path", 1, false), Config("io.l5d.path", 2, true)}) {
      v->emplace_back(std::vector<IdentifierConfig>{c}, DstPrefix());
    }
    return v;
  }();
  auto header = [&req](absl::string_view name) -> std::optional<absl::string_view> {
    auto it = req.find(boost::beast::string_view(name.data(), name.size()));
    if (it == req.end()) return std::nullopt;
    return View(it->value());
  };
  const int version = req.version() == 10 ? 10 : 11;
  const dtabd::proxy::RequestInfo info{View(req.method_string()), View(req.target()), version,
                                       header};
  for (size_t k = 0; k < kIdentifiers->size(); ++k) {
    absl::StatusOr<dtabd::proxy::Identified> id = (*kIdentifiers)[k].Identify(info);
    if (!id.ok()) {
      FUZZ_CHECK(id.status().code() == absl::StatusCode::kInvalidArgument, id.status().ToString());
      continue;
    }
    const dtabd::dtab::Path& name = id->name;
    FUZZ_CHECK(name.StartsWith(DstPrefix()), "name without the dst prefix: " + name.Show());
    for (size_t i = 0; i < name.size(); ++i) {
      FUZZ_CHECK(!name.label(i).empty(), "empty label in " + name.Show());
    }
    absl::StatusOr<dtabd::dtab::Path> reparsed = dtabd::dtab::ParsePath(name.Show());
    FUZZ_CHECK(reparsed.ok() && *reparsed == name, "name does not re-parse: " + name.Show());
    if (k == 1) {  // io.l5d.header: prefix ++ the l5d-name path
      absl::StatusOr<dtabd::dtab::Path> value = dtabd::dtab::ParsePath(*header("l5d-name"));
      FUZZ_CHECK(value.ok() && name == DstPrefix().Concat(*value), "io.l5d.header name");
    }
    if (k == 4) {
      FUZZ_CHECK(id->rewritten_target.has_value() &&
                     absl::StartsWith(*id->rewritten_target, "/"),
                 "consume without a '/' target");
    }
  }
}

template <typename Request>
void CheckOverride(const Request& req) {
  static const dtabd::proxy::CompiledPolicy* const kPolicy = new dtabd::proxy::CompiledPolicy;
  // As DataPlane::Impl::Handle collects them.
  std::vector<absl::string_view> ctx;
  std::vector<absl::string_view> user;
  for (auto it = req.find("l5d-ctx-dtab");
       it != req.end() && absl::EqualsIgnoreCase(View(it->name_string()), "l5d-ctx-dtab"); ++it) {
    ctx.push_back(View(it->value()));
  }
  for (auto it = req.find("l5d-dtab");
       it != req.end() && absl::EqualsIgnoreCase(View(it->name_string()), "l5d-dtab"); ++it) {
    user.push_back(View(it->value()));
  }
  // Every such field, in order.
  std::vector<absl::string_view> all_ctx;
  std::vector<absl::string_view> all_user;
  for (const auto& f : req) {
    if (absl::EqualsIgnoreCase(View(f.name_string()), "l5d-ctx-dtab")) {
      all_ctx.push_back(View(f.value()));
    }
    if (absl::EqualsIgnoreCase(View(f.name_string()), "l5d-dtab")) {
      all_user.push_back(View(f.value()));
    }
  }
  FUZZ_CHECK(ctx == all_ctx && user == all_user,
             absl::StrCat("the data plane's loop sees ", ctx.size(), "+", user.size(),
                          " override fields of ", all_ctx.size(), "+", all_user.size()));
  if (ctx.empty() && user.empty()) return;
  dtabd::proxy::OverrideCache cache(16);  // small: a fresh cache per input
  const auto first = cache.Get(ctx, user, *kPolicy);
  const auto second = cache.Get(ctx, user, *kPolicy);
  FUZZ_CHECK(first == second && cache.hits() == 1, "override cache missed twice");
  const auto direct = dtabd::proxy::ParseOverride(ctx, user, *kPolicy);
  FUZZ_CHECK(first->status == direct->status && first->text == direct->text,
             "cached override differs from ParseOverride");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bhttp::request_parser<bhttp::buffer_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_header_done()) return 0;  // answered 400/431, or waiting for more

  const absl::string_view header(reinterpret_cast<const char*>(data), used);
  const bool folded = dtabd::proxy::HasObsFold(header);
  const bool expected = absl::StrContains(header, "\n ") || absl::StrContains(header, "\n\t");
  FUZZ_CHECK(folded == expected, absl::StrCat("HasObsFold says ", folded));
  if (folded) return 0;  // answered 400 and closed

  const auto& req = parser.get();
  CheckIdentifiers(req);
  CheckOverride(req);

  // The body, as the proxy streams it (small chunks; chunked framing parsed).
  char chunk[64];
  for (int rounds = 0; rounds < 100000 && !parser.is_done() && used < size; ++rounds) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    const size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) break;
    if (n == 0 && parser.get().body().size == sizeof chunk) break;  // needs more input
    used += n;
  }
  return 0;
}
