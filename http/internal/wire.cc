#include "http/internal/wire.h"

#include <array>
#include <cstdint>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"

namespace dtabd::http::internal {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// RFC 9110 tchar.
constexpr auto kTokenChar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) {
    t[c] = true;
  }
  for (int c = 'a'; c <= 'z'; ++c) {
    t[c] = true;
    t[c - 'a' + 'A'] = true;
  }
  for (char c : {'!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~'}) {
    t[static_cast<unsigned char>(c)] = true;
  }
  return t;
}();

}  // namespace

absl::StatusOr<std::string> PercentDecode(absl::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      int hi = i + 1 < in.size() ? HexValue(in[i + 1]) : -1;
      int lo = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad percent-escape at offset ", i, " in '", absl::CEscape(in), "'"));
      }
      char decoded = static_cast<char>(hi * 16 + lo);
      if (decoded == '\0') {
        return absl::InvalidArgumentError(
            absl::StrCat("escaped NUL at offset ", i, " in '", absl::CEscape(in), "'"));
      }
      out.push_back(decoded);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<ParsedTarget> ParseTarget(absl::string_view target) {
  ParsedTarget parsed;
  if (target == "*") {
    parsed.path = "*";
    return parsed;
  }
  absl::string_view rest = target;
  if (size_t hash = rest.find('#'); hash != absl::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  if (absl::StartsWithIgnoreCase(rest, "http://") || absl::StartsWithIgnoreCase(rest, "https://")) {
    size_t authority = rest.find("://") + 3;
    size_t end = rest.find_first_of("/?", authority);
    if (end == absl::string_view::npos) {
      rest = "/";
    } else if (rest[end] == '?') {
      // "http://host?x=1": the path is "/".
      parsed.path = "/";
      rest = rest.substr(end);
    } else {
      rest = rest.substr(end);
    }
  } else if (rest.empty() || rest[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("request target '", absl::CEscape(target), "' is not a path"));
  }

  absl::string_view raw_path = rest;
  absl::string_view raw_query;
  bool has_query = false;
  if (size_t q = rest.find('?'); q != absl::string_view::npos) {
    raw_path = rest.substr(0, q);
    raw_query = rest.substr(q + 1);
    has_query = true;
  }
  if (!raw_path.empty() || parsed.path.empty()) {
    absl::StatusOr<std::string> path = PercentDecode(raw_path, /*plus_is_space=*/false);
    if (!path.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("request target path: ", path.status().message()));
    }
    parsed.path = *std::move(path);
  }
  if (!has_query) {
    return parsed;
  }
  for (absl::string_view part : absl::StrSplit(raw_query, '&', absl::SkipEmpty())) {
    absl::string_view raw_name = part;
    absl::string_view raw_value;
    if (size_t eq = part.find('='); eq != absl::string_view::npos) {
      raw_name = part.substr(0, eq);
      raw_value = part.substr(eq + 1);
    }
    absl::StatusOr<std::string> name = PercentDecode(raw_name, /*plus_is_space=*/true);
    if (!name.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("request target query: ", name.status().message()));
    }
    absl::StatusOr<std::string> value = PercentDecode(raw_value, /*plus_is_space=*/true);
    if (!value.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("request target query: ", value.status().message()));
    }
    parsed.query.emplace_back(*std::move(name), *std::move(value));
  }
  return parsed;
}

absl::StatusOr<HostPort> SplitHostPort(absl::string_view address) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", absl::CEscape(address), "': ", why));
  };
  HostPort hp;
  absl::string_view port_text;
  if (!address.empty() && address[0] == '[') {
    size_t close = address.find(']');
    if (close == absl::string_view::npos) {
      return bad("missing ']'");
    }
    hp.host = std::string(address.substr(1, close - 1));
    absl::string_view after = address.substr(close + 1);
    if (after.empty() || after[0] != ':') {
      return bad("missing ':PORT' after ']'");
    }
    port_text = after.substr(1);
  } else {
    size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return bad("missing ':PORT'");
    }
    hp.host = std::string(address.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) {
      return bad("IPv6 addresses must be written in brackets, e.g. '[::1]:8080'");
    }
    port_text = address.substr(colon + 1);
  }
  if (hp.host.empty()) {
    return bad("missing host");
  }
  int port = 0;
  if (port_text.empty() || !absl::c_all_of(port_text, absl::ascii_isdigit) ||
      port_text.size() > 5 || !absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return bad("port must be a number in 0..65535");
  }
  hp.port = port;
  return hp;
}

bool IsToken(absl::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!kTokenChar[static_cast<unsigned char>(c)]) {
      return false;
    }
  }
  return true;
}

bool IsSafeHeaderValue(absl::string_view s) {
  return s.find_first_of(absl::string_view("\r\n\0", 3)) == absl::string_view::npos;
}

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

std::string HttpDate(absl::Time t) {
  static constexpr const char* kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  absl::CivilSecond cs = absl::ToCivilSecond(t, absl::UTCTimeZone());
  absl::Weekday wd = absl::GetWeekday(cs);  // Monday is 0
  return absl::StrFormat("%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[static_cast<int>(wd)],
                         cs.day(), kMonths[cs.month() - 1], cs.year(), cs.hour(), cs.minute(),
                         cs.second());
}

}  // namespace dtabd::http::internal
