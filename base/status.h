// Status and StatusOr for the model library.
//
// model/ must build with LibTorch alone (so it also builds against a CUDA LibTorch on machines
// without Abseil), so it carries this small error type instead of absl::Status. The codes carry
// the same meaning as absl's and gRPC's; the server maps them one to one at its RPC edge.
#ifndef FASTDISS_BASE_STATUS_H_
#define FASTDISS_BASE_STATUS_H_

#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <variant>

namespace fastdiss {

enum class StatusCode {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: steps must be in [1, 2000], got 0".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgumentError(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status FailedPreconditionError(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status DataLossError(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status UnavailableError(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status OutOfRangeError(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status ResourceExhaustedError(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }

std::ostream& operator<<(std::ostream& os, const Status& status);

// Holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit like absl
    if (status_.ok()) status_ = InternalError("StatusOr built from an OK status without a value");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit like absl

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace fastdiss

// Abseil 20220623 has no RETURN_IF_ERROR; these are the project's one local pair.
#define FASTDISS_RETURN_IF_ERROR(expr)                 \
  do {                                                 \
    ::fastdiss::Status fastdiss_status_ = (expr);      \
    if (!fastdiss_status_.ok()) return fastdiss_status_; \
  } while (0)

#define FASTDISS_CONCAT_INNER(a, b) a##b
#define FASTDISS_CONCAT(a, b) FASTDISS_CONCAT_INNER(a, b)
#define FASTDISS_ASSIGN_OR_RETURN(lhs, expr) \
  FASTDISS_ASSIGN_OR_RETURN_IMPL(FASTDISS_CONCAT(fastdiss_statusor_, __LINE__), lhs, expr)
#define FASTDISS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()

#endif  // FASTDISS_BASE_STATUS_H_
