// namerd's HTTP API encodings (shared/reference/linkerd-behaviour.md 1.3):
// versions as ETags, and dtabs as JSON arrays of {"prefix","dst"}.
//
// Thread-safety: pure functions.
#ifndef DTABD_SERVER_NAMERD_CODEC_H_
#define DTABD_SERVER_NAMERD_CODEC_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dtab/dtab.h"

namespace dtabd::server {

// The ETag of a version: base64 of its 8-byte big-endian value, as namerd's
// in-memory store makes them (version 1 is "AAAAAAAAAAE=").
std::string VersionToEtag(int64_t version);
// Parses an ETag or If-Match value (quotes and a W/ prefix tolerated).
// InvalidArgument: not an ETag this server issued.
absl::StatusOr<int64_t> EtagToVersion(absl::string_view etag);

// `[{"prefix":"/svc","dst":"/#/io.l5d.fs"},...]`, dst in canonical form.
std::string DtabToJson(const dtab::Dtab& dtab);

// Parses namerd's JSON dtab: an array of {"prefix":..,"dst":..} objects, or
// an object {"dtab":[...]} (namerctl's {version, dtab} form). Returns the
// dtab as canonical text. InvalidArgument names what was wrong ("The dtab
// contains invalid dentries: ..." for null or malformed entries).
absl::StatusOr<std::string> JsonToDtabText(absl::string_view json);

}  // namespace dtabd::server

#endif  // DTABD_SERVER_NAMERD_CODEC_H_
