// Errors are absl::Status and absl::StatusOr everywhere: in the model and trainer as in the
// server, whose gRPC edge maps the codes one to one. Abseil 20220623 (Debian 12) has no
// RETURN_IF_ERROR; these two macros are the project's one local pair.
#ifndef FASTDISS_BASE_STATUS_H_
#define FASTDISS_BASE_STATUS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns the status of `expr` (an absl::Status) from the calling function when it is not OK.
#define FASTDISS_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    ::absl::Status fastdiss_status_ = (expr);            \
    if (!fastdiss_status_.ok()) return fastdiss_status_; \
  } while (0)

// Declares or assigns `lhs` from the value of `expr` (an absl::StatusOr), or returns its status.
#define FASTDISS_CONCAT_INNER(a, b) a##b
#define FASTDISS_CONCAT(a, b) FASTDISS_CONCAT_INNER(a, b)
#define FASTDISS_ASSIGN_OR_RETURN(lhs, expr) \
  FASTDISS_ASSIGN_OR_RETURN_IMPL(FASTDISS_CONCAT(fastdiss_statusor_, __LINE__), lhs, expr)
#define FASTDISS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()

#endif  // FASTDISS_BASE_STATUS_H_
