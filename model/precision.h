// The number types a model's linear layers may be stored and multiplied in (a served model's
// `precision`, fastdiss-eval's and fastdiss-step-bench's --precision), applied by
// FastDissModelImpl::SetLinearPrecision. Free of LibTorch, so that config code can check a name.
#ifndef FASTDISS_MODEL_PRECISION_H_
#define FASTDISS_MODEL_PRECISION_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace fastdiss {

enum class LinearPrecision { kFloat32, kBFloat16 };

inline std::string_view LinearPrecisionName(LinearPrecision precision) {
  return precision == LinearPrecision::kBFloat16 ? "bfloat16" : "float32";
}

inline absl::StatusOr<LinearPrecision> ParseLinearPrecision(std::string_view name) {
  if (name == "float32") return LinearPrecision::kFloat32;
  if (name == "bfloat16") return LinearPrecision::kBFloat16;
  return absl::InvalidArgumentError("precision must be float32 or bfloat16, got '" +
                                    std::string(name) + "'");
}

}  // namespace fastdiss

#endif  // FASTDISS_MODEL_PRECISION_H_
