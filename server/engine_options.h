// Engine options and batching policies, apart from the engine so that config code can validate
// them without LibTorch.
#ifndef FASTDISS_SERVER_ENGINE_OPTIONS_H_
#define FASTDISS_SERVER_ENGINE_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fastdiss {

enum class BatchPolicy { kStep, kRequest, kNone };
absl::StatusOr<BatchPolicy> ParseBatchPolicy(const std::string& name);
const char* BatchPolicyName(BatchPolicy policy);

// The order in which waiting requests are admitted when the batch cannot take them all. Nobody
// overtakes the head of that order: under FIFO a request with many rows is not starved by small
// ones behind it. Under shortest-first a request with many steps waits while requests with fewer
// keep coming; its deadline bounds that wait.
enum class AdmissionOrder {
  kFifo,           // first come, first served
  kShortestFirst,  // fewest steps first, arrival order among equals
};
absl::StatusOr<AdmissionOrder> ParseAdmissionOrder(const std::string& name);
const char* AdmissionOrderName(AdmissionOrder order);

struct EngineOptions {
  BatchPolicy policy = BatchPolicy::kStep;
  int max_rows_per_batch = 256;
  int64_t max_tokens_per_batch = 8192;  // target tokens of the rows of one forward
  int max_queued_requests = 256;        // waiting (not yet admitted); beyond: RESOURCE_EXHAUSTED
  absl::Duration max_queue_delay = absl::ZeroDuration();  // wait this long to fill an idle batch
  int max_steps = 200;  // most denoising steps one request may ask for
  AdmissionOrder admission_order = AdmissionOrder::kFifo;
  // Refuse a request at once (DEADLINE_EXCEEDED) when the predicted finish is past its deadline,
  // and stop a waiting or running one as soon as it can no longer make it, instead of spending
  // steps on an answer nobody will get.
  bool deadline_aware = true;
  // A request that gives a step range runs the most steps whose predicted finish is within this
  // time of its arrival (and before its deadline); the fewest when none is.
  absl::Duration adaptive_latency_target = absl::Seconds(1);
};

// The checks Engine::Create makes that need no model (config validation reuses them).
absl::Status ValidateEngineOptions(const EngineOptions& options);

// What the engine reports about each denoiser forward, for metrics.
struct StepStats {
  int rows = 0;
  int requests = 0;
  int64_t tokens = 0;
  absl::Duration duration;
};

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_ENGINE_OPTIONS_H_
