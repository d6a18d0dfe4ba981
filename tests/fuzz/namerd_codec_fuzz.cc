// Fuzzes what dtabd's namerd HTTP API parses from a request without gRPC
// or storage (server/namerd_codec.h): JSON dtab bodies, `application/dtab`
// text bodies, and ETag / If-Match values. The first byte picks the input
// kind (the rest is the input). NamerdHttpApi::Handle itself needs a store,
// a hub and an executor (and so the gRPC-linked server library); its body
// and header parsing is these functions plus dtab::ParseDtab. Properties:
//   - JSON: an accepted body's canonical text re-parses as a dtab whose
//     Show is that text, and DtabToJson of it decodes to the same text;
//   - text: a dtab that parses survives DtabToJson -> JsonToDtabText;
//   - ETag: an accepted value re-encodes (VersionToEtag) to an ETag that
//     decodes to the same version; W/ and quotes are tolerated;
//   - errors are InvalidArgument; no crash or hang on any input.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dtab/parser.h"
#include "server/namerd_codec.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void CheckJson(absl::string_view body) {
  absl::StatusOr<std::string> text = dtabd::server::JsonToDtabText(body);
  if (!text.ok()) {
    FUZZ_CHECK(text.status().code() == absl::StatusCode::kInvalidArgument,
               text.status().ToString());
    return;
  }
  absl::StatusOr<dtabd::dtab::Dtab> dtab = dtabd::dtab::ParseDtab(*text);
  FUZZ_CHECK(dtab.ok(), "JsonToDtabText gave text that does not parse: " + *text);
  FUZZ_CHECK(dtab->Show() == *text, "JsonToDtabText is not canonical: " + *text);
  const std::string json = dtabd::server::DtabToJson(*dtab);
  absl::StatusOr<std::string> again = dtabd::server::JsonToDtabText(json);
  FUZZ_CHECK(again.ok() && *again == *text, "DtabToJson does not decode back: " + json);
}

void CheckText(absl::string_view body) {
  absl::StatusOr<dtabd::dtab::Dtab> dtab = dtabd::dtab::ParseDtab(body);
  if (!dtab.ok()) return;
  const std::string json = dtabd::server::DtabToJson(*dtab);
  absl::StatusOr<std::string> text = dtabd::server::JsonToDtabText(json);
  FUZZ_CHECK(text.ok(), absl::StrCat("DtabToJson output rejected: ", json, ": ",
                                     text.status().message()));
  absl::StatusOr<dtabd::dtab::Dtab> reparsed = dtabd::dtab::ParseDtab(*text);
  FUZZ_CHECK(reparsed.ok() && reparsed->Show() == *text && *text == dtab->Show(),
             "text -> JSON -> text changed the dtab: " + json);
}

void CheckEtag(absl::string_view value) {
  absl::StatusOr<int64_t> version = dtabd::server::EtagToVersion(value);
  if (!version.ok()) {
    FUZZ_CHECK(version.status().code() == absl::StatusCode::kInvalidArgument,
               version.status().ToString());
  } else {
    const std::string etag = dtabd::server::VersionToEtag(*version);
    for (const std::string& form : {etag, "\"" + etag + "\"", "W/\"" + etag + "\""}) {
      absl::StatusOr<int64_t> back = dtabd::server::EtagToVersion(form);
      FUZZ_CHECK(back.ok() && *back == *version, "ETag does not round-trip: " + form);
    }
  }
  // Any version (here: the first 8 bytes) round-trips through its ETag.
  int64_t v = 0;
  std::memcpy(&v, value.data(), std::min<size_t>(value.size(), sizeof v));
  absl::StatusOr<int64_t> back = dtabd::server::EtagToVersion(dtabd::server::VersionToEtag(v));
  FUZZ_CHECK(back.ok() && *back == v, absl::StrCat("version ", v, " does not round-trip"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      CheckJson(input);
      break;
    case 1:
      CheckText(input);
      break;
    default:
      CheckEtag(input);
      break;
  }
  return 0;
}
