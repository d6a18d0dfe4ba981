// Status propagation macros for functions returning absl::Status or
// absl::StatusOr<T> (Debian's abseil ships none). Header-only; no state.
#ifndef DTABD_COMMON_STATUS_MACROS_H_
#define DTABD_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status) once and returns it from the enclosing
// function if it is not OK.
#define DTABD_RETURN_IF_ERROR(expr)                       \
  do {                                                    \
    if (absl::Status dtabd_s_ = (expr); !dtabd_s_.ok()) { \
      return dtabd_s_;                                    \
    }                                                     \
  } while (false)

#define DTABD_STATUS_MACROS_CONCAT_INNER_(x, y) x##y
#define DTABD_STATUS_MACROS_CONCAT_(x, y) DTABD_STATUS_MACROS_CONCAT_INNER_(x, y)

// Evaluates `expr` (an absl::StatusOr<T>) once; on error returns its status
// from the enclosing function, otherwise moves the value into `lhs`, which
// may be a declaration (`DTABD_ASSIGN_OR_RETURN(auto x, F());`).
#define DTABD_ASSIGN_OR_RETURN(lhs, expr) \
  DTABD_ASSIGN_OR_RETURN_IMPL_(DTABD_STATUS_MACROS_CONCAT_(dtabd_sor_, __LINE__), lhs, expr)

#define DTABD_ASSIGN_OR_RETURN_IMPL_(sor, lhs, expr) \
  auto sor = (expr);                                 \
  if (!sor.ok()) {                                   \
    return std::move(sor).status();                  \
  }                                                  \
  lhs = *std::move(sor)

#endif  // DTABD_COMMON_STATUS_MACROS_H_
