#include "storage/dtab_store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace dtabd::storage {

absl::Status ValidateNamespace(absl::string_view ns) {
  if (ns.empty() || ns.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat(
        "namespace '", ns.substr(0, 200), "' must be 1 to 128 characters long (it has ",
        ns.size(), ")"));
  }
  for (char c : ns) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("namespace '", ns, "' may contain only letters, digits, '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

std::optional<int64_t> CurrentVersionFromStatus(const absl::Status& status) {
  auto payload = status.GetPayload(kCurrentVersionPayload);
  int64_t v = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &v)) {
    return std::nullopt;
  }
  return v;
}

}  // namespace dtabd::storage
