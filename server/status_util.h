// The one conversion between the model library's Status and absl::Status (the server's type).
// The codes are the same numbers in both.
#ifndef FASTDISS_SERVER_STATUS_UTIL_H_
#define FASTDISS_SERVER_STATUS_UTIL_H_

#include "absl/status/status.h"
#include "model/status.h"

namespace fastdiss {

inline absl::Status ToAbslStatus(const Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.code()), status.message());
}

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_STATUS_UTIL_H_
