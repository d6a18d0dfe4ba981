// Pure HTTP text helpers for http/: request-target parsing and
// percent-decoding, listen-address splitting, header validation, reason
// phrases and the Date format. No I/O, no Beast.
//
// Thread-safety: stateless functions, safe to call concurrently.
#ifndef DTABD_HTTP_INTERNAL_WIRE_H_
#define DTABD_HTTP_INTERNAL_WIRE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace dtabd::http::internal {

// Decodes %XX escapes (either hex case); with `plus_is_space`, '+' becomes a
// space (query strings). InvalidArgument: a '%' not followed by two hex
// digits, or an escape that decodes to NUL.
absl::StatusOr<std::string> PercentDecode(absl::string_view in, bool plus_is_space);

struct ParsedTarget {
  std::string path;                                        // decoded, without the query
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
};

// Splits a request target into its decoded path and query parameters.
// Accepts origin-form ("/a/b?x=1"), absolute-form ("http://host/a?x=1",
// whose authority is dropped; path "/" if absent) and "*". A '#' fragment is
// dropped. InvalidArgument: any other form, or a bad escape (names the
// target).
absl::StatusOr<ParsedTarget> ParseTarget(absl::string_view target);

struct HostPort {
  std::string host;  // without IPv6 brackets
  int port = 0;      // 0..65535
};

// Splits "HOST:PORT" / "[V6]:PORT". InvalidArgument (naming `address`):
// missing host or port, unbalanced brackets, port not in 0..65535.
absl::StatusOr<HostPort> SplitHostPort(absl::string_view address);

// True if `s` is a non-empty RFC 9110 token (valid header name).
bool IsToken(absl::string_view s);

// True if `s` holds no CR, LF or NUL (safe as a header value).
bool IsSafeHeaderValue(absl::string_view s);

// The standard reason phrase of `status`, or "" if unknown.
absl::string_view ReasonPhrase(int status);

// `t` in the IMF-fixdate format of the Date header:
// "Sun, 06 Nov 1994 08:49:37 GMT".
std::string HttpDate(absl::Time t);

}  // namespace dtabd::http::internal

#endif  // DTABD_HTTP_INTERNAL_WIRE_H_
