#include "proxy/request_framing.h"

#include <cstring>

namespace dtabd::proxy {

bool HasObsFold(absl::string_view header) {
  const char* p = header.data();
  const char* const end = p + header.size();
  while (p < end) {
    p = static_cast<const char*>(std::memchr(p, '\n', end - p));
    if (p == nullptr || ++p == end) return false;
    if (*p == ' ' || *p == '\t') return true;
  }
  return false;
}

}  // namespace dtabd::proxy
