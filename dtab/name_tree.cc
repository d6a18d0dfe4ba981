#include "dtab/name_tree.h"

#include <charconv>
#include <system_error>

namespace dtabd::dtab {

std::string FormatWeight(double w) {
  // Shortest round-trip digits in fixed notation, then round half-up on the
  // decimal string (Java's Formatter does the same for %.2f).
  char buf[400];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), w, std::chars_format::fixed);
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
  std::string int_part = s;
  std::string frac;
  if (const size_t dot = s.find('.'); dot != std::string::npos) {
    int_part = s.substr(0, dot);
    frac = s.substr(dot + 1);
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
