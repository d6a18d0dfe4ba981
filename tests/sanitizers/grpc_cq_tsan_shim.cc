// ThreadSanitizer build only (`make test-tsan`, docs/RELIABILITY.md "Sanitizers").
//
// gRPC's async API hands each operation's tag from the thread that starts it to the thread
// that takes its completion off a completion queue, through Debian's uninstrumented libgrpc:
// TSan sees no synchronization there, so state written before an operation starts (a stream
// object built on one thread, then driven by a queue's thread) is reported as a race when
// the completion is handled. This file interposes the C-core calls that carry a tag into a
// queue and the one that takes it out, and tells TSan what gRPC guarantees: starting an
// operation with tag T happens before its completion with tag T is returned.
//   grpc_call_start_batch, grpc_server_request_call, grpc_server_request_registered_call:
//     __tsan_release(T), then the library's own function;
//   grpc_completion_queue_next, grpc_completion_queue_pluck: the library's own function,
//     then __tsan_acquire(T) for a completed operation.
// The C++ API (libgrpc++, and the grpcpp headers) calls these through the dynamic symbol
// table, where the executable's definitions (exported by tests/sanitizers/tsan.cmake) come
// first. Callback-API completions run inside libgrpc and are not seen here.
//
// Thread-safety: the lookups are function-local statics (thread-safe initialization).

#include <grpc/grpc.h>
#include <sanitizer/tsan_interface.h>

#include "tests/sanitizers/real_symbol.h"

namespace {

// libgrpc's definition of `name` (only called when something linked libgrpc).
template <typename Fn>
Fn RealGrpc(const char* name) {
  return dtabd::tsan::RealSymbol<Fn>("grpc_cq_tsan_shim", name);
}

}  // namespace

extern "C" {

grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops, size_t nops,
                                      void* tag, void* reserved) {
  using Fn = grpc_call_error (*)(grpc_call*, const grpc_op*, size_t, void*, void*);
  static const Fn real = RealGrpc<Fn>("grpc_call_start_batch");
  __tsan_release(tag);
  return real(call, ops, nops, tag, reserved);
}

grpc_call_error grpc_server_request_call(grpc_server* server, grpc_call** call,
                                         grpc_call_details* details,
                                         grpc_metadata_array* request_metadata,
                                         grpc_completion_queue* cq_bound_to_call,
                                         grpc_completion_queue* cq_for_notification,
                                         void* tag_new) {
  using Fn = grpc_call_error (*)(grpc_server*, grpc_call**, grpc_call_details*,
                                 grpc_metadata_array*, grpc_completion_queue*,
                                 grpc_completion_queue*, void*);
  static const Fn real = RealGrpc<Fn>("grpc_server_request_call");
  __tsan_release(tag_new);
  return real(server, call, details, request_metadata, cq_bound_to_call, cq_for_notification,
              tag_new);
}

grpc_call_error grpc_server_request_registered_call(
    grpc_server* server, void* registered_method, grpc_call** call, gpr_timespec* deadline,
    grpc_metadata_array* request_metadata, grpc_byte_buffer** optional_payload,
    grpc_completion_queue* cq_bound_to_call, grpc_completion_queue* cq_for_notification,
    void* tag_new) {
  using Fn = grpc_call_error (*)(grpc_server*, void*, grpc_call**, gpr_timespec*,
                                 grpc_metadata_array*, grpc_byte_buffer**,
                                 grpc_completion_queue*, grpc_completion_queue*, void*);
  static const Fn real = RealGrpc<Fn>("grpc_server_request_registered_call");
  __tsan_release(tag_new);
  return real(server, registered_method, call, deadline, request_metadata, optional_payload,
              cq_bound_to_call, cq_for_notification, tag_new);
}

grpc_event grpc_completion_queue_next(grpc_completion_queue* cq, gpr_timespec deadline,
                                      void* reserved) {
  using Fn = grpc_event (*)(grpc_completion_queue*, gpr_timespec, void*);
  static const Fn real = RealGrpc<Fn>("grpc_completion_queue_next");
  grpc_event ev = real(cq, deadline, reserved);
  if (ev.type == GRPC_OP_COMPLETE) {
    __tsan_acquire(ev.tag);
  }
  return ev;
}

grpc_event grpc_completion_queue_pluck(grpc_completion_queue* cq, void* tag,
                                       gpr_timespec deadline, void* reserved) {
  using Fn = grpc_event (*)(grpc_completion_queue*, void*, gpr_timespec, void*);
  static const Fn real = RealGrpc<Fn>("grpc_completion_queue_pluck");
  grpc_event ev = real(cq, tag, deadline, reserved);
  if (ev.type == GRPC_OP_COMPLETE) {
    __tsan_acquire(ev.tag);
  }
  return ev;
}

}  // extern "C"
