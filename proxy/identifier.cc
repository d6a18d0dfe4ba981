#include "proxy/identifier.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "dtab/parser.h"

namespace dtabd::proxy {
namespace {

// The path part of an origin-form target, without the query.
absl::string_view TargetPath(absl::string_view target) {
  size_t q = target.find_first_of("?#");
  return q == absl::string_view::npos ? target : target.substr(0, q);
}

}  // namespace

Identifier::Identifier(std::vector<IdentifierConfig> configs, dtab::Path dst_prefix)
    : dst_prefix_(std::move(dst_prefix)) {
  for (IdentifierConfig& c : configs) {
    Compiled::Kind kind = Compiled::Kind::kHeaderToken;  // io.l5d.header.token
    if (c.kind == "io.l5d.methodAndHost") {
      kind = Compiled::Kind::kMethodAndHost;
    } else if (c.kind == "io.l5d.path") {
      kind = Compiled::Kind::kPath;
    } else if (c.kind == "io.l5d.header") {
      kind = Compiled::Kind::kHeader;
    }
    if (c.header.empty()) c.header = kind == Compiled::Kind::kHeader ? "l5d-name" : "Host";
    identifiers_.push_back({kind, std::move(c)});
  }
}

absl::StatusOr<Identified> Identifier::Identify(const RequestInfo& request) const {
  absl::Status first_error;
  for (const Compiled& c : identifiers_) {
    absl::StatusOr<Identified> id = IdentifyOne(c, request);
    if (id.ok()) return id;
    if (first_error.ok()) first_error = id.status();
  }
  return first_error;
}

absl::StatusOr<Identified> Identifier::IdentifyOne(const Compiled& c,
                                                   const RequestInfo& request) const {
  const IdentifierConfig& config = c.config;
  Identified out;
  out.name = dst_prefix_;
  if (c.kind == Compiled::Kind::kMethodAndHost) {
    if (request.version == 11) {
      std::optional<absl::string_view> host = request.header("host");
      if (!host.has_value() || host->empty()) {
        return absl::InvalidArgumentError("HTTP/1.1 request missing hostname");
      }
      out.name.Append("1.1");
      out.name.Append(request.method);
      out.name.Append(absl::AsciiStrToLower(*host));
    } else if (request.version == 10) {
      out.name.Append("1.0");
      out.name.Append(request.method);
    } else {
      return absl::InvalidArgumentError("unknown HTTP version");
    }
    return out;
  }
  if (c.kind == Compiled::Kind::kPath) {
    absl::string_view path = TargetPath(request.target);
    size_t pos = 0;
    int taken = 0;
    while (taken < config.segments && pos < path.size()) {
      while (pos < path.size() && path[pos] == '/') ++pos;
      size_t end = path.find('/', pos);
      if (end == absl::string_view::npos) end = path.size();
      if (end > pos) {
        out.name.Append(path.substr(pos, end - pos));
        ++taken;
      }
      pos = end;
    }
    if (taken < config.segments) {
      return absl::InvalidArgumentError("not enough segments in path");
    }
    if (config.consume) {
      absl::string_view rest = request.target.substr(pos);
      out.rewritten_target = rest.empty() || rest[0] != '/' ? absl::StrCat("/", rest)
                                                              : std::string(rest);
    }
    return out;
  }
  if (c.kind == Compiled::Kind::kHeader) {
    const std::string& name = config.header;
    std::optional<absl::string_view> value = request.header(name);
    if (!value.has_value() || value->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name, " header is absent"));
    }
    absl::StatusOr<dtab::Path> path = dtab::ParsePath(*value);
    if (!path.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " header is not a path: ", path.status().message()));
    }
    out.name.AppendPath(*path);
    return out;
  }
  // io.l5d.header.token (the default): the value verbatim as one label.
  const std::string& name = config.header;
  std::optional<absl::string_view> value = request.header(name);
  if (!value.has_value() || value->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, " header is absent"));
  }
  out.name.Append(*value);
  return out;
}

}  // namespace dtabd::proxy
