// Fuzzes the io.l5d.fs endpoint-file parser, ParseFsEndpoints
// (proxy/fs_namer.h). Host names in a file are resolved with getaddrinfo,
// which may block on DNS for seconds; so inputs with a host token that is
// not an IP literal but could be a name (only letters, digits, '.', '-',
// '_') are skipped: the rest of the parser is still reached, and the
// resolver is not ours to fuzz. Properties:
//   - no crash or hang; errors are InvalidArgument "line N: ...";
//   - accepted files give one address per non-blank line, each with a
//     numeric host, a port in 1-65535 and a finite positive weight;
//   - the addresses written back as `host port * weight` lines parse to the
//     same addresses.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "proxy/fs_namer.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

bool IsIpLiteral(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    in6_addr v6;
    return inet_pton(AF_INET6, host.c_str(), &v6) == 1;
  }
  in_addr v4;
  in6_addr v6;
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

bool MightResolve(absl::string_view token) {
  if (IsIpLiteral(std::string(token))) return false;
  for (char c : token) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}

// The host tokens (first token of each non-blank line) and the number of
// non-blank lines.
std::vector<absl::string_view> HostTokens(absl::string_view text) {
  std::vector<absl::string_view> hosts;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (const size_t hash = line.find('#'); hash != line.npos) line = line.substr(0, hash);
    size_t i = 0;
    while (i < line.size() && IsBlank(line[i])) ++i;
    size_t end = i;
    while (end < line.size() && !IsBlank(line[end])) ++end;
    if (end > i) hosts.push_back(line.substr(i, end - i));
  }
  return hosts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<absl::string_view> hosts = HostTokens(text);
  for (absl::string_view h : hosts) {
    if (MightResolve(h)) return -1;  // keep DNS out of the corpus
  }
  absl::StatusOr<std::vector<dtabd::proxy::Address>> parsed = dtabd::proxy::ParseFsEndpoints(text);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument &&
                   absl::StartsWith(parsed.status().message(), "line "),
               parsed.status().ToString());
    return 0;
  }
  FUZZ_CHECK(parsed->size() == hosts.size(),
             absl::StrCat(parsed->size(), " addresses from ", hosts.size(), " non-blank lines"));
  std::string written;
  for (const dtabd::proxy::Address& a : *parsed) {
    FUZZ_CHECK(a.port >= 1, "port 0");
    FUZZ_CHECK(std::isfinite(a.weight) && a.weight > 0, absl::StrCat("weight ", a.weight));
    FUZZ_CHECK(!a.host.empty() && IsIpLiteral(a.host) && a.host.front() != '[',
               "host is not a bare IP literal: " + a.host);
    absl::StrAppend(&written, a.host, " ", a.port, " * ", absl::StrFormat("%.17g", a.weight), "\n");
  }
  absl::StatusOr<std::vector<dtabd::proxy::Address>> again = dtabd::proxy::ParseFsEndpoints(written);
  FUZZ_CHECK(again.ok() && *again == *parsed, "addresses written back parse differently:\n" + written);
  return 0;
}
