#include "dtab/name_tree.h"

#include <charconv>
#include <cstdlib>
#include <system_error>

namespace dtabd::dtab {

std::string FormatWeight(double w) {
  // Shortest round-trip digits (scientific, so that large values keep only
  // their significant digits, as Java's FloatingDecimal does: 2e30 prints as
  // "2000000000000000000000000000000.00", not as the double's exact integer
  // value), laid out in fixed notation, then rounded half-up on the decimal
  // string (Java's Formatter does the same for %.2f).
  char buf[64];
  const std::to_chars_result r =
      std::to_chars(buf, buf + sizeof(buf), w, std::chars_format::scientific);
  if (r.ec != std::errc()) {
    return "NaN";
  }
  std::string s(buf, r.ptr);
  if (s == "nan" || s == "-nan") {
    return "NaN";
  }
  if (s == "inf") {
    return "Infinity";
  }
  if (s == "-inf") {
    return "-Infinity";
  }
  std::string sign;
  if (!s.empty() && s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  // s is "d[.ddd]e[+-]xx": the value is 0.dddd * 10^(exponent + 1).
  const size_t e = s.find('e');
  std::string sig = s.substr(0, e);
  if (const size_t dot = sig.find('.'); dot != std::string::npos) {
    sig.erase(dot, 1);
  }
  const long point = std::strtol(s.c_str() + e + 1, nullptr, 10) + 1;  // digits before '.'
  std::string int_part;
  std::string frac;
  if (point <= 0) {
    int_part = "0";
    frac = std::string(static_cast<size_t>(-point), '0') + sig;
  } else if (static_cast<size_t>(point) >= sig.size()) {
    int_part = sig + std::string(static_cast<size_t>(point) - sig.size(), '0');
  } else {
    int_part = sig.substr(0, static_cast<size_t>(point));
    frac = sig.substr(static_cast<size_t>(point));
  }
  bool round_up = frac.size() > 2 && frac[2] >= '5';
  frac.resize(2, '0');
  std::string digits = int_part + frac;
  if (round_up) {
    size_t i = digits.size();
    while (i > 0) {
      --i;
      if (digits[i] == '9') {
        digits[i] = '0';
      } else {
        ++digits[i];
        round_up = false;
        break;
      }
    }
    if (round_up) {
      digits.insert(digits.begin(), '1');
    }
  }
  return sign + digits.substr(0, digits.size() - 2) + "." + digits.substr(digits.size() - 2);
}

std::string Show(const NameTree<Path>& tree) {
  std::string out;
  ShowTreeTo(tree, [](const Path& p, std::string* o) { p.ShowTo(o); }, &out);
  return out;
}

}  // namespace dtabd::dtab
