#include "server/auth.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace dtabd::server {

std::unique_ptr<Authenticator> Authenticator::AllowAll() {
  return std::unique_ptr<Authenticator>(new Authenticator());
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("tokens file '", path, "' cannot be read"));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  return Parse(contents.str(), path);
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Parse(absl::string_view contents,
                                                                    absl::string_view source) {
  std::unique_ptr<Authenticator> a(new Authenticator());
  a->enabled_ = true;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const std::string where = absl::StrCat(source, ":", line_no);
    if (f.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected 'TOKEN IDENTITY read|write', got ", f.size(), " fields"));
    }
    Identity id{std::string(f[1]), Scope::kRead};
    if (f[2] == "write") {
      id.scope = Scope::kWrite;
    } else if (f[2] != "read") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": scope '", f[2], "' must be 'read' or 'write'"));
    }
    if (!a->tokens_.emplace(std::string(f[0]), std::move(id)).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": duplicate token"));
    }
  }
  if (a->tokens_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no tokens"));
  }
  return a;
}

absl::StatusOr<Identity> Authenticator::Authorize(absl::string_view authorization,
                                                  Scope needed) const {
  if (!enabled_) {
    return Identity{"anonymous", Scope::kWrite};
  }
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "missing credentials: send 'authorization: Bearer TOKEN' (dtabctl --token)");
  }
  constexpr absl::string_view kBearer = "bearer ";
  if (authorization.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError("malformed authorization: expected 'Bearer TOKEN'");
  }
  const absl::string_view token =
      absl::StripAsciiWhitespace(authorization.substr(kBearer.size()));
  auto it = tokens_.find(token);
  if (it == tokens_.end()) {
    return absl::UnauthenticatedError("unknown token");
  }
  if (needed == Scope::kWrite && it->second.scope != Scope::kWrite) {
    return absl::PermissionDeniedError(
        absl::StrCat("token of '", it->second.name, "' is read-only; writing needs a write token"));
  }
  return it->second;
}

}  // namespace dtabd::server
