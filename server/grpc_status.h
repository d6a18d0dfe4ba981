// The one place where absl::Status becomes a gRPC status (STYLE.md section 3).
//
// Thread-safety: pure functions.
#ifndef DTABD_SERVER_GRPC_STATUS_H_
#define DTABD_SERVER_GRPC_STATUS_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace dtabd::server {

// Same code (abseil and gRPC share the numbering) and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The call's `authorization` metadata ("Bearer TOKEN"), or "".
std::string AuthorizationOf(const grpc::ServerContextBase& ctx);

}  // namespace dtabd::server

#endif  // DTABD_SERVER_GRPC_STATUS_H_
