// Checks on a client request's raw header bytes that Beast's parser cannot
// make because it normalises what it reads. The data plane answers a request
// that fails one 400 and closes the connection; the fuzz target
// http_request_fuzz runs the same checks on its input.
#ifndef DTABD_PROXY_REQUEST_FRAMING_H_
#define DTABD_PROXY_REQUEST_FRAMING_H_

#include "absl/strings/string_view.h"

namespace dtabd::proxy {

// Whether `header`, the bytes a parser consumed for one request's start line
// and fields, holds obs-fold: a line break followed by a space or a tab
// (RFC 9112 section 5.2). Beast unfolds such a line into one value; a proxy
// must not forward a value its peers may split differently.
bool HasObsFold(absl::string_view header);

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_REQUEST_FRAMING_H_
