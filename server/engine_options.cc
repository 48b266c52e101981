#include "server/engine_options.h"

namespace fastdiss {

absl::StatusOr<BatchPolicy> ParseBatchPolicy(const std::string& name) {
  if (name == "step") return BatchPolicy::kStep;
  if (name == "request") return BatchPolicy::kRequest;
  if (name == "none") return BatchPolicy::kNone;
  return absl::InvalidArgumentError("batching policy must be step, request or none, got '" + name +
                                    "'");
}

const char* BatchPolicyName(BatchPolicy policy) {
  switch (policy) {
    case BatchPolicy::kStep:
      return "step";
    case BatchPolicy::kRequest:
      return "request";
    case BatchPolicy::kNone:
      return "none";
  }
  return "?";
}

absl::StatusOr<AdmissionOrder> ParseAdmissionOrder(const std::string& name) {
  if (name == "fifo") return AdmissionOrder::kFifo;
  if (name == "shortest_first") return AdmissionOrder::kShortestFirst;
  return absl::InvalidArgumentError("admission order must be fifo or shortest_first, got '" + name +
                                    "'");
}

const char* AdmissionOrderName(AdmissionOrder order) {
  switch (order) {
    case AdmissionOrder::kFifo:
      return "fifo";
    case AdmissionOrder::kShortestFirst:
      return "shortest_first";
  }
  return "?";
}

absl::Status ValidateEngineOptions(const EngineOptions& options) {
  if (options.max_rows_per_batch < 1) {
    return absl::InvalidArgumentError("max_rows_per_batch must be positive, got " +
                                      std::to_string(options.max_rows_per_batch));
  }
  if (options.max_tokens_per_batch < 1) {
    return absl::InvalidArgumentError("max_tokens_per_batch must be positive, got " +
                                      std::to_string(options.max_tokens_per_batch));
  }
  if (options.max_queued_requests < 1) {
    return absl::InvalidArgumentError("max_queued_requests must be positive, got " +
                                      std::to_string(options.max_queued_requests));
  }
  if (options.max_queue_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_queue_delay must not be negative");
  }
  if (options.adaptive_latency_target <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("adaptive_latency_target must be positive");
  }
  if (options.max_steps < 1) {
    return absl::InvalidArgumentError("max_steps must be positive, got " +
                                      std::to_string(options.max_steps));
  }
  return absl::OkStatus();
}

}  // namespace fastdiss
